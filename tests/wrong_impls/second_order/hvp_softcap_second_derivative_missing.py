"""The softcap's chain rule applied once only: H v = phi' H_z (phi' v), without the
(dL/dz) phi'' v term of the cap's own curvature (cross_entropy_hvp with softcap).

Diagnosis: hvp-softcap-second-derivative-missing
"""

import numpy as np

import xent_ref as xr


def cross_entropy_hvp(input, target, v, softcap=None, logit_scale=1.0, **kwargs):
    dtype = np.asarray(input).dtype
    x, v = np.asarray(input, dtype=float), np.asarray(v, dtype=float)
    kwargs = {k: np.asarray(a, dtype=float) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
              else a for k, a in kwargs.items()}
    right = xr.cross_entropy_hvp(x, target, v, softcap=softcap, logit_scale=logit_scale,
                                 **kwargs)
    if softcap is None:
        return right.astype(dtype)
    z = softcap * np.tanh(logit_scale * x / softcap)
    slope = logit_scale * (1 - np.tanh(logit_scale * x / softcap) ** 2)
    grad_z = xr.cross_entropy_grad(z, target, **kwargs)
    phi2 = -2 * logit_scale * z * slope / softcap**2
    return (right - grad_z * phi2 * v).astype(dtype)  # BUG: the cap's phi'' term dropped
