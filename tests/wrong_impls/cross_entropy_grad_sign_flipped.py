"""cross_entropy's gradient as y - p: the opposite sign.

Diagnosis: grad-sign-flipped
"""

import xent_ref as xr

cross_entropy = xr.cross_entropy


def cross_entropy_grad(*args, **kwargs):
    return -xr.cross_entropy_grad(*args, **kwargs)  # BUG: sign
