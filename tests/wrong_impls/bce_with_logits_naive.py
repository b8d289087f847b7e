"""binary_cross_entropy_with_logits by the textbook formula through sigmoid:
-[pw y log(sigmoid(x)) + (1 - y) log(1 - sigmoid(x))]. sigmoid rounds to exactly 0 or 1
for large |x|, and the log of 0 is -inf: the loss becomes inf or nan.

Diagnosis: bce-logits-via-sigmoid
"""

import numpy as np


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    x, y = np.asarray(input), np.asarray(target)
    p = 1 / (1 + np.exp(-x))
    pw = 1 if pos_weight is None else pos_weight
    losses = -(pw * y * np.log(p) + (1 - y) * np.log(1 - p))  # BUG: no softplus
    if weight is not None:
        losses = losses * weight
    if reduction == "none":
        return losses.astype(x.dtype)
    return np.asarray(losses.sum() if reduction == "sum" else losses.mean(), dtype=x.dtype)
