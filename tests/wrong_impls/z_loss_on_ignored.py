"""The z-loss is added for ignored tokens too: z_loss * lse^2 on every row, while the
cross-entropy drops the ignored ones (cross_entropy, linear_cross_entropy and their
gradients, index targets); the z-loss mean still divides by the kept count.

Everything in float64 from xent_ref's results, rounded once to the input's dtype: the
z-loss of every row is the difference of the loss with and without z_loss with each
ignored target replaced by class 0 (the cross-entropy parts cancel).

Diagnosis: z-loss-on-ignored
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import rounded as _rounded
from xent_ref.golden import widened


def _plus(a, b, coef):
    """a + coef * b, part by part for several gradients."""
    if isinstance(b, tuple):
        return tuple(None if y is None else x + coef * y for x, y in zip(a, b))
    return a + coef * b


def _on_every_row(fn, target_at):
    def call(*args, **kwargs):
        target = np.asarray(args[target_at])
        ignore_index = kwargs.get("ignore_index")
        kept = target != (-100 if ignore_index is None else ignore_index)
        if not kwargs.get("z_loss") or target.dtype.kind != "i" or kept.all():
            return fn(*args, **kwargs)
        dtype = np.asarray(args[0]).dtype
        args, kwargs = list(widened(dict(enumerate(args))).values()), widened(kwargs)
        every = list(args)
        every[target_at] = np.where(kept, target, 0)
        reduction = kwargs.get("reduction", "mean")
        if reduction == "mean" and not kept.any():
            return fn(*args, **kwargs)
        coef = 1.0 / kept.sum() if reduction == "mean" else 1.0
        z_kwargs = dict(kwargs, reduction="sum" if reduction == "mean" else reduction)
        no_z = dict(kwargs, z_loss=0.0)
        value = fn(*args, **no_z)
        # BUG: lse^2 of the ignored rows too
        value = _plus(value, fn(*every, **z_kwargs), coef)
        value = _plus(value, fn(*every, **dict(z_kwargs, z_loss=0.0)), -coef)
        return _rounded(value, dtype)
    return call


cross_entropy = _on_every_row(xr.cross_entropy, 1)
cross_entropy_grad = _on_every_row(xr.cross_entropy_grad, 1)
linear_cross_entropy = _on_every_row(xr.linear_cross_entropy, 2)
linear_cross_entropy_grad = _on_every_row(xr.linear_cross_entropy_grad, 2)
