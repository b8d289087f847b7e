"""nll_loss's weighted mean divided by the number of kept targets, not their weights.

Diagnosis: mean-denominator-count
"""

import numpy as np

import xent_ref as xr


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    if reduction != "mean" or weight is None:
        return xr.nll_loss(input, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction)
    total = xr.nll_loss(input, target, weight=weight, ignore_index=ignore_index,
                        reduction="sum")
    kept = np.count_nonzero(np.asarray(target) != ignore_index)
    return (total / kept).astype(total.dtype)  # BUG: a count, not sum_i w[t_i]
