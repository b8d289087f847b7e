"""Binary cross-entropy without PyTorch's clamp of each log at -100: p = 0 or 1 gives
inf or nan instead of 100."""

import numpy as np


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    p, y = np.asarray(input), np.asarray(target)
    losses = -(y * np.log(p) + (1 - y) * np.log1p(-p))  # BUG: no max(log, -100)
    if weight is not None:
        losses = losses * weight
    if reduction == "none":
        return losses
    return np.asarray(losses.sum() if reduction == "sum" else losses.mean(), dtype=p.dtype)
