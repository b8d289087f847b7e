"""sigmoid_focal_loss_grad that treats the modulating factor ``(1 - p_t)^gamma`` as a
constant (``.detach()`` on it): the gradient is ``alpha_t (1 - p_t)^gamma (sigma(x) - y)``,
missing the factor's own derivative. The loss itself is right.

Diagnosis: focal-factor-not-differentiated
"""

import numpy as np

import xent_ref as xr


def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    return xr.sigmoid_focal_loss(input, target, alpha=alpha, gamma=gamma, reduction=reduction)


def sigmoid_focal_loss_grad(input, target, alpha=0.25, gamma=2.0, reduction="none",
                            grad_output=None):
    x, y = np.asarray(input, dtype=float), np.asarray(target, dtype=float)
    p = 1 / (1 + np.exp(-x))
    factor = (p * (1 - y) + (1 - p) * y) ** gamma
    alpha_t = 1.0 if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
    grad = alpha_t * factor * (p - y)  # BUG: d factor / dx dropped
    g = 1.0 if grad_output is None else np.asarray(grad_output)
    grad = grad * g / (x.size if reduction == "mean" else 1)
    return grad.astype(np.asarray(input).dtype)
