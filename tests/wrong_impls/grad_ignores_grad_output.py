"""nll_loss_grad and cross_entropy_grad drop the upstream gradient (as if it were 1).

Diagnosis: grad-ignores-grad-output
"""

import xent_ref as xr


def nll_loss_grad(input, target, grad_output=None, **kwargs):
    return xr.nll_loss_grad(input, target, **kwargs)  # BUG: grad_output dropped


def cross_entropy_grad(input, target, grad_output=None, **kwargs):
    return xr.cross_entropy_grad(input, target, **kwargs)  # BUG: grad_output dropped
