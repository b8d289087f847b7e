"""cross_entropy with reduction="mean" and no class weights divides by every target,
ignored ones included, instead of by the kept ones.

Diagnosis: ignored-in-denominator
"""

import numpy as np

import xent_ref as xr


def cross_entropy(input, target, weight=None, reduction="mean", **kwargs):
    if reduction != "mean" or weight is not None or np.shape(target) == np.shape(input):
        return xr.cross_entropy(input, target, weight=weight, reduction=reduction, **kwargs)
    total = xr.cross_entropy(input, target, reduction="sum", **kwargs)
    return (total / np.size(target)).astype(total.dtype)  # BUG: counts ignored targets
