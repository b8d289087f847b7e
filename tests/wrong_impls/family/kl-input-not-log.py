"""kl_div written for probabilities ``q`` where the input is log-probabilities: it takes
the log of the input again, ``p (log p - log x)`` (nan for a negative log-probability).

Diagnosis: kl-input-not-log
"""

import numpy as np

import xent_ref as xr


def kl_div(input, target, reduction="mean", log_target=False):
    x = np.asarray(input, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_q = np.log(x)  # BUG: the input is already log q
    loss = xr.kl_div(log_q, target, reduction=reduction, log_target=log_target)
    return loss.astype(np.asarray(input).dtype)


def kl_div_grad(input, target, reduction="mean", log_target=False, grad_output=None):
    x = np.asarray(input, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = xr.kl_div_grad(np.log(x), target, reduction=reduction, log_target=log_target,
                               grad_output=grad_output)
        grad = inner / x  # BUG: chain rule through a log that should not be there
    return grad.astype(np.asarray(input).dtype)
