"""The backward pass treats the soft cap as the identity: the gradient is dL/dz times the
logit scale s, without the cap's slope sech^2(s x / c) (cross_entropy_grad,
linear_cross_entropy_grad). Computed in float64 and rounded once to the input's dtype.

Diagnosis: softcap-grad-without-slope
"""

import numpy as np

import xent_ref as xr
from xent_ref._engine.lowprec import round_once


def _rounded(value, dtype):
    return round_once(value, dtype) if dtype.name in ("float16", "bfloat16") \
        else value.astype(dtype)


def _wide(value):
    return None if value is None else np.asarray(value, np.float64)


def _grad_at_capped(logits, target, kwargs):
    """``s * dL/dz`` at ``z = c tanh(s x / c)``, in float64."""
    scale, cap = float(kwargs.pop("logit_scale", 1.0)), kwargs.pop("softcap")
    kwargs.pop("chunk_size", None)
    for key in ("weight", "grad_output"):
        if kwargs.get(key) is not None:
            kwargs[key] = _wide(kwargs[key])
    z = cap * np.tanh(scale * logits / cap)
    return scale * xr.cross_entropy_grad(z, target, **kwargs)  # BUG: no sech^2 slope


def cross_entropy_grad(input, target, **kwargs):
    if kwargs.get("softcap") is None:
        return xr.cross_entropy_grad(input, target, **kwargs)
    dtype = np.asarray(input).dtype
    return _rounded(_grad_at_capped(_wide(input), target, dict(kwargs)), dtype)


def linear_cross_entropy_grad(input, linear_weight, target, *, linear_bias=None, **kwargs):
    if kwargs.get("softcap") is None:
        return xr.linear_cross_entropy_grad(input, linear_weight, target,
                                            linear_bias=linear_bias, **kwargs)
    dtype = np.asarray(input).dtype
    h, w = _wide(input), _wide(linear_weight)
    logits = h @ w.T + (0.0 if linear_bias is None else _wide(linear_bias))
    g = _grad_at_capped(logits, target, dict(kwargs))
    grads = (g @ w, g.T @ h, None if linear_bias is None else g.sum(axis=0))
    return tuple(None if part is None else _rounded(part, dtype) for part in grads)
