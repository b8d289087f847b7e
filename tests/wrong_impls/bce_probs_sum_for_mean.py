"""binary_cross_entropy with reduction='mean' returning the sum.

Diagnosis: mean-is-sum
"""

import xent_ref as xr


def binary_cross_entropy(input, target, reduction="mean", **kwargs):
    if reduction == "mean":
        reduction = "sum"  # BUG: never divided
    return xr.binary_cross_entropy(input, target, reduction=reduction, **kwargs)
