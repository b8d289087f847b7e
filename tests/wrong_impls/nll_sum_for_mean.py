"""nll_loss with reduction='mean' returning the (weighted) sum.

Diagnosis: mean-is-sum
"""

import xent_ref as xr


def nll_loss(input, target, reduction="mean", **kwargs):
    if reduction == "mean":
        reduction = "sum"  # BUG: never divided
    return xr.nll_loss(input, target, reduction=reduction, **kwargs)
