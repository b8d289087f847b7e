"""softmax's vector-Jacobian product with the opposite sign.

Diagnosis: grad-sign-flipped
"""

import xent_ref as xr

softmax = xr.softmax


def softmax_grad(*args, **kwargs):
    return -xr.softmax_grad(*args, **kwargs)  # BUG: sign
