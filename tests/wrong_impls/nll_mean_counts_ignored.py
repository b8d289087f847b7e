"""nll_loss with reduction='mean' and no weights divides by every target, ignored ones
included.

Diagnosis: ignored-in-denominator
"""

import numpy as np

import xent_ref as xr


def nll_loss(input, target, weight=None, reduction="mean", **kwargs):
    if reduction != "mean" or weight is not None:
        return xr.nll_loss(input, target, weight=weight, reduction=reduction, **kwargs)
    total = xr.nll_loss(input, target, reduction="sum", **kwargs)
    return (total / np.size(target)).astype(total.dtype)  # BUG: counts ignored targets
