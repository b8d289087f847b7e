"""The cross-entropy Hessian taken as diag(p) alone, without its - p p^T: H v = s p * v
(cross_entropy_hvp; plain class-index targets, reduction "mean": the textbook case, where
s = grad_output / N; any other call is passed to xent_ref).

Diagnosis: hvp-missing-outer-product
"""

import numpy as np

import xent_ref as xr


def cross_entropy_hvp(input, target, v, grad_output=None, **kwargs):
    x, target = np.asarray(input), np.asarray(target)
    plain = (set(kwargs) <= {"reduction"} and kwargs.get("reduction", "mean") == "mean"
             and x.ndim == 2 and target.dtype.kind == "i" and (target != -100).all())
    if not plain:
        return xr.cross_entropy_hvp(input, target, v, grad_output=grad_output, **kwargs)
    p = xr.softmax(x.astype(float), axis=1)
    g = 1.0 if grad_output is None else float(grad_output)
    hv = g * p * np.asarray(v, dtype=float) / x.shape[0]  # BUG: diag(p) v, no - p (p . v)
    return hv.astype(x.dtype)
