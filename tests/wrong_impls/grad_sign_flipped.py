"""log_softmax's gradient with the opposite sign.

Diagnosis: grad-sign-flipped
"""

import xent_ref as xr

log_softmax = xr.log_softmax


def log_softmax_grad(x, *args, **kwargs):
    return -xr.log_softmax_grad(x, *args, **kwargs)  # BUG: sign
