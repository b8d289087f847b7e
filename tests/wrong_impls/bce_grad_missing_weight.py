"""binary_cross_entropy's gradient without the elementwise weight (the loss keeps it).

Diagnosis: grad-missing-weight
"""

import xent_ref as xr

binary_cross_entropy = xr.binary_cross_entropy


def binary_cross_entropy_grad(input, target, weight=None, **kwargs):
    return xr.binary_cross_entropy_grad(input, target, **kwargs)  # BUG: weight left out
