"""binary_cross_entropy_with_logits' gradient for reduction='mean' is the sum's.

Diagnosis: grad-mean-not-divided
"""

import xent_ref as xr

binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits


def binary_cross_entropy_with_logits_grad(input, target, reduction="mean", **kwargs):
    if reduction == "mean":
        reduction = "sum"  # BUG: never divided by the element count
    return xr.binary_cross_entropy_with_logits_grad(input, target, reduction=reduction,
                                                    **kwargs)
