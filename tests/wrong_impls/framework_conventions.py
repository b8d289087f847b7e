"""Another framework's conventions, two at once, as a user porting code would meet them:
a "mean" that divides the (class-weighted) sum by every target N, ignored ones included
(sample-weight style), and binary cross-entropy on p clipped to [1e-7, 1 - 1e-7] instead
of each log clamped at -100. The report must name both causes, not just show numbers.

Diagnosis: mean-denominator-n, ignored-in-denominator, bce-clip-1e-7
"""

import numpy as np

import xent_ref as xr


def cross_entropy(input, target, reduction="mean", **kwargs):
    if reduction != "mean" or np.asarray(target).dtype.kind != "i":
        return xr.cross_entropy(input, target, reduction=reduction, **kwargs)
    total = xr.cross_entropy(input, target, reduction="sum", **kwargs)
    return (total / np.size(target)).astype(total.dtype)  # BUG: N, ignored included


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    p = np.asarray(input)
    clipped = np.clip(p, 1e-7, 1 - 1e-7).astype(p.dtype)  # BUG: a clip, not a clamp of the log
    return xr.binary_cross_entropy(clipped, target, weight=weight, reduction=reduction)
