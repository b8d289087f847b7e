"""nll_loss's gradient without the class weights (the loss keeps them).

Diagnosis: grad-missing-weight
"""

import xent_ref as xr

nll_loss = xr.nll_loss


def nll_loss_grad(input, target, weight=None, **kwargs):
    return xr.nll_loss_grad(input, target, **kwargs)  # BUG: weight left out
