"""log_softmax's gradient computed as if grad_output were all ones.

Diagnosis: grad-ignores-grad-output
"""

import numpy as np

import xent_ref as xr

log_softmax = xr.log_softmax


def log_softmax_grad(x, grad_output, **kwargs):
    return xr.log_softmax_grad(x, np.ones_like(grad_output), **kwargs)  # BUG
