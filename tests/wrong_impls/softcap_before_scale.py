"""The soft cap is applied before the logit scale: s * c tanh(x / c) instead of
c tanh(s x / c) (cross_entropy, linear_cross_entropy and their gradients).

s * c tanh(x / c) is the right order with a cap of s * c, so the wrapper asks xent_ref for
that: the same numbers as writing the wrong order out by hand.

Diagnosis: softcap-before-scale
"""

import xent_ref as xr


def _capped_first(fn):
    def call(*args, **kwargs):
        scale, cap = kwargs.get("logit_scale", 1.0), kwargs.get("softcap")
        if cap is not None:
            kwargs = dict(kwargs, softcap=scale * cap)  # BUG: cap, then scale
        return fn(*args, **kwargs)
    return call


cross_entropy = _capped_first(xr.cross_entropy)
cross_entropy_grad = _capped_first(xr.cross_entropy_grad)
linear_cross_entropy = _capped_first(xr.linear_cross_entropy)
linear_cross_entropy_grad = _capped_first(xr.linear_cross_entropy_grad)
