"""With class weights, the z-loss mean is divided by the cross-entropy's weighted
denominator sum_i w[t_i] instead of by the number of kept tokens (cross_entropy,
linear_cross_entropy and their gradients, index targets).

The per-token z-loss terms come from xent_ref as the difference of the loss with and without
z_loss (the loss is linear in them); everything in float64, rounded once to the input's
dtype.

Diagnosis: z-loss-mean-by-weight
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import rounded as _rounded
from xent_ref.golden import widened


def _combined(terms):
    """sum(coef * value), part by part for several gradients."""
    total = None
    for coef, value in terms:
        if isinstance(value, tuple):
            total = tuple(None if v is None else coef * v + (0.0 if total is None else t)
                          for v, t in zip(value, total or (None,) * len(value)))
        else:
            total = coef * value + (0.0 if total is None else total)
    return total


def _by_weight(fn, target_at):
    def call(*args, **kwargs):
        target = np.asarray(args[target_at])
        weight = kwargs.get("weight")
        if not (kwargs.get("z_loss") and weight is not None and target.dtype.kind == "i"
                and kwargs.get("reduction", "mean") == "mean"):
            return fn(*args, **kwargs)
        dtype = np.asarray(args[0]).dtype
        args, kwargs = list(widened(dict(enumerate(args))).values()), widened(kwargs)
        ignore_index = kwargs.get("ignore_index")
        kept = target != (-100 if ignore_index is None else ignore_index)
        total_weight = np.asarray(weight, np.float64)[target[kept]].sum()
        no_z = dict(kwargs, z_loss=0.0)
        summed = {"reduction": "sum"}
        z_sum = [(1.0, fn(*args, **dict(kwargs, **summed))),
                 (-1.0, fn(*args, **dict(no_z, **summed)))]
        # BUG: the z-loss sum over the weighted denominator, not the kept count
        value = _combined([(1.0, fn(*args, **no_z))]
                          + [(coef / total_weight, v) for coef, v in z_sum])
        return _rounded(value, dtype)
    return call


cross_entropy = _by_weight(xr.cross_entropy, 1)
cross_entropy_grad = _by_weight(xr.cross_entropy_grad, 1)
linear_cross_entropy = _by_weight(xr.linear_cross_entropy, 2)
linear_cross_entropy_grad = _by_weight(xr.linear_cross_entropy_grad, 2)
