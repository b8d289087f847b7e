"""sigmoid_focal_loss with ``alpha`` applied to every element, positives and negatives
alike, instead of ``alpha`` on positives and ``1 - alpha`` on negatives.

Diagnosis: focal-alpha-on-negatives
"""

import numpy as np

import xent_ref as xr


def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    losses = xr.sigmoid_focal_loss(input, target, alpha=-1.0, gamma=gamma, reduction="none")
    if alpha >= 0:
        losses = alpha * losses  # BUG: negatives need 1 - alpha
    if reduction != "none":
        losses = np.asarray(losses.sum() if reduction == "sum" else losses.mean())
    return losses.astype(np.asarray(input).dtype)


def sigmoid_focal_loss_grad(input, target, alpha=0.25, gamma=2.0, reduction="none",
                            grad_output=None):
    grad = xr.sigmoid_focal_loss_grad(input, target, alpha=-1.0, gamma=gamma,
                                      reduction=reduction, grad_output=grad_output)
    return (alpha * grad if alpha >= 0 else grad).astype(grad.dtype)  # BUG
