"""binary_cross_entropy_with_logits' gradient without the elementwise weight.

Diagnosis: grad-missing-weight
"""

import xent_ref as xr

binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits


def binary_cross_entropy_with_logits_grad(input, target, weight=None, **kwargs):
    return xr.binary_cross_entropy_with_logits_grad(input, target, **kwargs)  # BUG
