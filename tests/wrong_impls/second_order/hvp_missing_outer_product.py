"""The cross-entropy Hessian taken as diag(p) alone, without its - p p^T: H v = s p * v
(cross_entropy_hvp; plain class-index targets, reduction "mean").

Diagnosis: hvp-missing-outer-product
"""

import numpy as np

import xent_ref as xr


def cross_entropy_hvp(input, target, v, **kwargs):
    x = np.asarray(input, dtype=float)
    p = xr.softmax(x, axis=1)
    return p * np.asarray(v, dtype=float) / x.shape[0]  # BUG: diag(p) v, no - p (p . v)
