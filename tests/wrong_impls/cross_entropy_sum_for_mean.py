"""cross_entropy with reduction='mean' returning the sum (the division forgotten).

Diagnosis: mean-is-sum
"""

import xent_ref as xr


def cross_entropy(input, target, reduction="mean", **kwargs):
    if reduction == "mean":
        reduction = "sum"  # BUG: never divided
    return xr.cross_entropy(input, target, reduction=reduction, **kwargs)
