"""kl_div that ignores ``log_target=True``: a log-probability target is read as a
probability (negative "probabilities", nan losses, a gradient of -log p instead of -p).

Diagnosis: kl-log-target-ignored
"""

import xent_ref as xr


def kl_div(input, target, reduction="mean", log_target=False):
    return xr.kl_div(input, target, reduction=reduction)  # BUG: log_target dropped


def kl_div_grad(input, target, reduction="mean", log_target=False, grad_output=None):
    return xr.kl_div_grad(input, target, reduction=reduction, grad_output=grad_output)  # BUG
