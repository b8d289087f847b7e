"""binary_cross_entropy_with_logits' gradient as if grad_output were 1.

Diagnosis: grad-ignores-grad-output
"""

import numpy as np

import xent_ref as xr

binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits


def binary_cross_entropy_with_logits_grad(input, target, grad_output=1.0, **kwargs):
    return xr.binary_cross_entropy_with_logits_grad(
        input, target, grad_output=np.ones_like(np.asarray(grad_output)), **kwargs)  # BUG
