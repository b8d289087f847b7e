"""sigmoid_focal_loss through probabilities: ``p = sigmoid(x)``, then ``-log(p_t)`` and
``1 - p_t``. sigmoid rounds to 1 for a confident logit, and the tiny loss of a right answer
(``x = 40``, target 1) becomes 0 -- or ``inf``/``nan`` for a wrong one beyond ``|x| = 37``.

Diagnosis: focal-via-sigmoid
"""

import numpy as np


def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    x, y = np.asarray(input, dtype=float), np.asarray(target, dtype=float)
    p = 1 / (1 + np.exp(-x))
    p_t = p * y + (1 - p) * (1 - y)
    with np.errstate(divide="ignore", invalid="ignore"):
        losses = -np.log(p_t) * (1 - p_t) ** gamma  # BUG: log of a rounded probability
    if alpha >= 0:
        losses = losses * (alpha * y + (1 - alpha) * (1 - y))
    if reduction != "none":
        losses = np.asarray(losses.sum() if reduction == "sum" else losses.mean())
    return losses.astype(np.asarray(input).dtype)
