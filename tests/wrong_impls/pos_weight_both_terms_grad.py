"""binary_cross_entropy_with_logits' gradient with pos_weight on both terms:
pw (sigmoid(x) - y) instead of (pw y + 1 - y) sigmoid(x) - pw y.

Diagnosis: pos-weight-both-terms
"""

import numpy as np

import xent_ref as xr

binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits


def binary_cross_entropy_with_logits_grad(input, target, pos_weight=None, **kwargs):
    grad = xr.binary_cross_entropy_with_logits_grad(input, target, **kwargs)
    if pos_weight is None:
        return grad
    return (grad * np.asarray(pos_weight, np.float64)).astype(grad.dtype)  # BUG
