"""Label smoothing spread over the C - 1 other classes (eps / (C - 1) each) instead of
eps / C over all C classes (cross_entropy, index targets).

xent_ref's smoothed loss is (1 - eps) nll + (eps / C) S, where S sums -w_c log p_c over
every class; the bug is (1 - eps) nll + eps / (C - 1) (S - nll). Both are linear in
xent_ref's own results, so the wrapper recovers S from them, for the loss and the gradient.

Diagnosis: smoothing-c-minus-1
"""

import numpy as np

import xent_ref as xr


def _spread_over_others(fn, input, target, kwargs):
    eps = kwargs.get("label_smoothing", 0.0)
    if eps == 0.0 or np.shape(target) == np.shape(input):
        return fn(input, target, **kwargs)
    n_classes = np.shape(input)[0 if np.ndim(input) == 1 else 1]
    # In float64, rounded once at the end: recovering S from two float16 results would
    # multiply their rounding by C / eps.
    dtype = np.asarray(input).dtype
    kwargs = {key: np.asarray(value, np.float64) if key == "weight" and value is not None
              else value for key, value in kwargs.items()}
    wide = np.asarray(input, np.float64)
    smoothed = fn(wide, target, **kwargs)
    nll = fn(wide, target, **dict(kwargs, label_smoothing=0.0))
    every_class = (smoothed - (1 - eps) * nll) * n_classes / eps
    spread = (1 - eps) * nll + eps / (n_classes - 1) * (every_class - nll)  # BUG: C - 1
    return spread.astype(dtype)


def cross_entropy(input, target, **kwargs):
    return _spread_over_others(xr.cross_entropy, input, target, kwargs)


def cross_entropy_grad(input, target, **kwargs):
    return _spread_over_others(xr.cross_entropy_grad, input, target, kwargs)
