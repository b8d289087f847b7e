"""cross_entropy's gradient multiplied by grad_output twice.

Diagnosis: grad-output-squared
"""

import numpy as np

import xent_ref as xr

cross_entropy = xr.cross_entropy


def cross_entropy_grad(input, target, grad_output=1.0, **kwargs):
    g = np.asarray(grad_output)
    return xr.cross_entropy_grad(input, target, grad_output=g * g, **kwargs)  # BUG
