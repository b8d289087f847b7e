"""nll_loss's gradient with the opposite sign (+w/denominator at the target).

Diagnosis: grad-sign-flipped
"""

import xent_ref as xr

nll_loss = xr.nll_loss


def nll_loss_grad(*args, **kwargs):
    return -xr.nll_loss_grad(*args, **kwargs)  # BUG: sign
