"""sigmoid_focal_loss with ``alpha`` applied to every element, positives and negatives
alike, instead of ``alpha`` on positives and ``1 - alpha`` on negatives.

Computed in float64 from xent_ref's results and rounded once to the input's dtype, so
that this is the only bug (float16/bfloat16 arithmetic would be a second one).

Diagnosis: focal-alpha-on-negatives
"""

import numpy as np

import xent_ref as xr
from xent_ref.golden import round_once


def _wide(x):
    return np.asarray(x).astype(np.float64)


def _rounded(value, dtype):
    value = np.asarray(value)
    return round_once(value, dtype) if dtype.name in ("float16", "bfloat16") \
        else value.astype(dtype)


def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    dtype = np.asarray(input).dtype
    losses = xr.sigmoid_focal_loss(_wide(input), _wide(target), alpha=-1.0, gamma=gamma,
                                   reduction="none")
    if alpha >= 0:
        losses = alpha * losses  # BUG: negatives need 1 - alpha
    if reduction != "none":
        losses = np.asarray(losses.sum() if reduction == "sum" else losses.mean())
    return _rounded(losses, dtype)


def sigmoid_focal_loss_grad(input, target, alpha=0.25, gamma=2.0, reduction="none",
                            grad_output=None):
    dtype = np.asarray(input).dtype
    grad_output = None if grad_output is None else _wide(grad_output)
    grad = xr.sigmoid_focal_loss_grad(_wide(input), _wide(target), alpha=-1.0, gamma=gamma,
                                      reduction=reduction, grad_output=grad_output)
    return _rounded(alpha * grad if alpha >= 0 else grad, dtype)  # BUG
