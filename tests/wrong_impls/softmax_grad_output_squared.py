"""softmax's vector-Jacobian product with grad_output applied twice.

Diagnosis: grad-output-squared
"""

import numpy as np

import xent_ref as xr

softmax = xr.softmax


def softmax_grad(x, grad_output, **kwargs):
    g = np.asarray(grad_output)
    return xr.softmax_grad(x, g * g, **kwargs)  # BUG: grad_output twice
