"""softmax_grad and log_softmax_grad always work along the last axis, whatever ``axis``.

Diagnosis: class-axis-last
"""

import xent_ref as xr


def softmax_grad(x, grad_output, axis=-1):
    return xr.softmax_grad(x, grad_output)  # BUG: axis dropped


def log_softmax_grad(x, grad_output, axis=-1):
    return xr.log_softmax_grad(x, grad_output)  # BUG: axis dropped
