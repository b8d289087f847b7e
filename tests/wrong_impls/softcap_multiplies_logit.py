"""The softcap written z = y tanh(y / c) with y = s x (unslothai/unsloth-zoo#593), not
c tanh(y / c): the forward pass and its own derivative, s (tanh(y/c) + (y/c)
sech^2(y/c)), in the gradients (cross_entropy, linear_cross_entropy). Everything in
float64 from xent_ref's cross_entropy of the transformed logits, rounded once.

Diagnosis: softcap-multiplies-logit
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import rounded, widen, without


def _transformed(logits, kwargs):
    scale, cap = float(kwargs.get("logit_scale", 1.0)), kwargs["softcap"]
    y = scale * logits
    t = np.tanh(y / cap)
    return y * t, scale * (t + y / cap * (1 - t * t))  # BUG: y tanh(y/c), not c tanh(y/c)


def _options(kwargs):
    return {key: widen(value) for key, value in
            without(kwargs, "logit_scale", "softcap", "linear_bias", "grad_output").items()}


def cross_entropy(input, target, **kwargs):
    if kwargs.get("softcap") is None:
        return xr.cross_entropy(input, target, **kwargs)
    z, _ = _transformed(widen(input), kwargs)
    return rounded(xr.cross_entropy(z, target, **_options(kwargs)), np.asarray(input).dtype)


def cross_entropy_grad(input, target, grad_output=None, **kwargs):
    if kwargs.get("softcap") is None:
        return xr.cross_entropy_grad(input, target, grad_output=grad_output, **kwargs)
    z, slope = _transformed(widen(input), kwargs)
    g = xr.cross_entropy_grad(z, target, grad_output=widen(grad_output), **_options(kwargs))
    return rounded(slope * g, np.asarray(input).dtype)


def _logits(h, w, bias):
    logits = np.einsum("nh,v...h->nv...", np.atleast_2d(h), w)
    return logits if bias is None else logits + bias


def linear_cross_entropy(input, linear_weight, target, linear_bias=None, **kwargs):
    if kwargs.get("softcap") is None:
        return xr.linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias,
                                       **kwargs)
    h, w, b = widen(input), widen(linear_weight), widen(linear_bias)
    z, _ = _transformed(_logits(h, w, b), kwargs)
    z = z[0] if h.ndim == 1 else z
    return rounded(xr.cross_entropy(z, target, **_options(kwargs)), np.asarray(input).dtype)


def linear_cross_entropy_grad(input, linear_weight, target, linear_bias=None,
                              grad_output=None, **kwargs):
    if kwargs.get("softcap") is None:
        return xr.linear_cross_entropy_grad(input, linear_weight, target,
                                            linear_bias=linear_bias, grad_output=grad_output,
                                            **kwargs)
    h, w, b = widen(input), widen(linear_weight), widen(linear_bias)
    z, slope = _transformed(_logits(h, w, b), kwargs)
    if h.ndim == 1:
        z, slope = z[0], slope[0]
    g = slope * xr.cross_entropy_grad(z, target, grad_output=widen(grad_output),
                                      **_options(kwargs))
    g2 = np.atleast_2d(g) if h.ndim == 1 else g
    dh = np.einsum("nv...,v...h->nh", g2, w)
    grads = (dh[0] if h.ndim == 1 else dh, np.einsum("nv...,nh->v...h", g2, np.atleast_2d(h)),
             None if linear_bias is None else g2.sum(axis=0))
    return rounded(grads, np.asarray(input).dtype)
