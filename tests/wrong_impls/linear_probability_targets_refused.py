"""A linear cross-entropy kernel that takes class indices only: probability targets
raise (loss and gradients).

Diagnosis: probability-targets-refused
"""

import numpy as np

import xent_ref as xr


def _indices_only(fn):
    def call(input, linear_weight, target, **kwargs):
        if np.asarray(target).dtype.kind != "i":
            raise ValueError("target: class indices only")  # BUG
        return fn(input, linear_weight, target, **kwargs)
    return call


linear_cross_entropy = _indices_only(xr.linear_cross_entropy)
linear_cross_entropy_grad = _indices_only(xr.linear_cross_entropy_grad)
