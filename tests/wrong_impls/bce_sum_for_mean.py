"""binary_cross_entropy_with_logits with reduction='mean' returning the sum.

Diagnosis: mean-is-sum
"""

import xent_ref as xr


def binary_cross_entropy_with_logits(input, target, reduction="mean", **kwargs):
    if reduction == "mean":
        reduction = "sum"  # BUG: never divided
    return xr.binary_cross_entropy_with_logits(input, target, reduction=reduction, **kwargs)
