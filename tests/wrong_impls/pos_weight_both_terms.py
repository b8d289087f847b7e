"""binary_cross_entropy_with_logits with pos_weight multiplying both terms, the y = 0
term too: pw (y softplus(-x) + (1 - y) softplus(x)).

Diagnosis: pos-weight-both-terms
"""

import numpy as np

import xent_ref as xr


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    losses = xr.binary_cross_entropy_with_logits(input, target, weight=weight,
                                                 reduction="none")
    dtype = losses.dtype
    losses = losses.astype(np.float64)
    if pos_weight is not None:
        losses = losses * np.asarray(pos_weight, np.float64)  # BUG: on both terms
    if reduction != "none":
        losses = losses.sum() if reduction == "sum" else losses.mean()
    return np.asarray(losses).astype(dtype)
