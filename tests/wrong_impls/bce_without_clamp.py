"""Binary cross-entropy without PyTorch's clamp of each log at -100: p = 0 or 1 gives
inf or nan instead of 100. float16 and bfloat16 are computed in float32 and rounded once:
the missing clamp is its only bug.

Diagnosis: bce-no-clamp
"""

import numpy as np


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    dtype = np.asarray(input).dtype
    work = np.float32 if dtype.name in ("float16", "bfloat16") else dtype
    p, y = np.asarray(input, work), np.asarray(target, work)
    losses = -(y * np.log(p) + (1 - y) * np.log1p(-p))  # BUG: no max(log, -100)
    if weight is not None:
        losses = losses * np.asarray(weight, work)
    if reduction == "none":
        return losses.astype(dtype)
    return np.asarray(losses.sum() if reduction == "sum" else losses.mean()).astype(dtype)
