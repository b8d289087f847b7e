"""kl_div computing KL(q || p) where KL(p || q) is asked for: the model's distribution
weights the log-ratio, ``q (log q - log p)``, as if input and target had been swapped.

Diagnosis: kl-args-swapped
"""

import numpy as np


def _log_p(target, log_target):
    t = np.asarray(target, dtype=float)
    if log_target:
        return t
    with np.errstate(divide="ignore"):
        return np.log(t)


def _reduce(losses, reduction, shape):
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return np.asarray(total)
    return np.asarray(total / (shape[0] if reduction == "batchmean" else np.prod(shape)))


def kl_div(input, target, reduction="mean", log_target=False):
    log_q = np.asarray(input, dtype=float)
    losses = np.exp(log_q) * (log_q - _log_p(target, log_target))  # BUG: KL(q || p)
    return _reduce(losses, reduction, log_q.shape).astype(np.asarray(input).dtype)


def kl_div_grad(input, target, reduction="mean", log_target=False, grad_output=None):
    log_q = np.asarray(input, dtype=float)
    q = np.exp(log_q)
    grad = q * (log_q - _log_p(target, log_target)) + q  # d/dx of e^x (x - log p)
    g = 1.0 if grad_output is None else np.asarray(grad_output)
    scale = {"none": 1, "sum": 1, "mean": log_q.size, "batchmean": log_q.shape[0]}[reduction]
    return (grad * g / scale).astype(np.asarray(input).dtype)
