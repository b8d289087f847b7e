"""The gradient of binary_cross_entropy_with_logits forgets pos_weight (the loss keeps it).

Diagnosis: grad-missing-pos-weight
"""

import xent_ref as xr

binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits


def binary_cross_entropy_with_logits_grad(input, target, pos_weight=None, **kwargs):
    return xr.binary_cross_entropy_with_logits_grad(input, target, **kwargs)  # BUG
