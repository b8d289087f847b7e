"""binary_cross_entropy_with_logits' gradient as y - sigmoid(x): the opposite sign.

Diagnosis: grad-sign-flipped
"""

import xent_ref as xr

binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits


def binary_cross_entropy_with_logits_grad(*args, **kwargs):
    return -xr.binary_cross_entropy_with_logits_grad(*args, **kwargs)  # BUG: sign
