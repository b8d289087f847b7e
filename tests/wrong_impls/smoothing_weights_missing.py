"""linear_cross_entropy leaves the class weights out of the label-smoothing term: eps/C
sum_c (-log p_c) on every kept token, while -log p_t is weighted and the mean divides by
the kept weight (loss and gradients).

Diagnosis: smoothing-weights-missing
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import kept, mean_term, spread, without, wrapped


def _terms(args, kwargs):
    target, weight = np.asarray(args[2]), kwargs.get("weight")
    eps = kwargs.get("label_smoothing", 0.0)
    if not eps or weight is None or target.dtype.kind != "i":
        return None
    mask = kept(target, kwargs)
    denominator = float(weight[target[mask]].sum())
    if kwargs.get("reduction", "mean") == "mean" and not denominator:
        return None
    coef, reduction = mean_term(kwargs, eps, denominator)
    smoothing = list(args)
    smoothing[2] = spread(target, np.asarray(args[1]).shape[0], mask)
    term_kwargs = without(kwargs, "ignore_index", "label_smoothing", "z_loss", "weight")  # BUG
    unsmoothed = without(kwargs, "label_smoothing")  # (the z-loss stays whole)
    return [(1.0, args, unsmoothed), (-eps, args, dict(unsmoothed, z_loss=0.0)),
            (coef, smoothing, dict(term_kwargs, reduction=reduction))]


linear_cross_entropy = wrapped(xr.linear_cross_entropy, _terms)
linear_cross_entropy_grad = wrapped(xr.linear_cross_entropy_grad, _terms)
