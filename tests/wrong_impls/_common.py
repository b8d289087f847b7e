"""What the wrong implementations of the LLM losses share: xent_ref's answers in float64,
combined linearly (a loss and, by linearity, its gradients) and rounded once to the
input's dtype, and the smoothing term written as a probability target."""

import numpy as np

from xent_ref.golden import round_once


def rounded(value, dtype):
    """``value`` (an array, or a tuple of gradients with ``None``) in ``dtype``."""
    if isinstance(value, tuple):
        return tuple(None if part is None else rounded(part, dtype) for part in value)
    low = dtype.name in ("float16", "bfloat16")
    return round_once(value, dtype) if low else np.asarray(value).astype(dtype)


def widen(value):
    value = np.asarray(value) if isinstance(value, (np.ndarray, list)) else value
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" or (
            isinstance(value, np.ndarray) and value.dtype.name == "bfloat16"):
        return value.astype(np.float64)
    return value


def combined(terms):
    """``sum(coef * value)``, part by part for several gradients."""
    total = None
    for coef, value in terms:
        if isinstance(value, tuple):
            old = total if isinstance(total, tuple) else (None,) * len(value)
            total = tuple(None if v is None else coef * np.asarray(v, np.float64)
                          + (0.0 if t is None else t) for v, t in zip(value, old))
        else:
            total = coef * np.asarray(value, np.float64) + (0.0 if total is None else total)
    return total


def wrapped(fn, terms_of):
    """``fn``, except where ``terms_of(args, kwargs)`` (float64 copies) gives terms
    ``[(coef, args, kwargs)]``: then ``sum(coef * fn(*args, **kwargs))`` rounded once."""
    def call(*args, **kwargs):
        dtype = np.asarray(args[0]).dtype
        wide_args = [widen(a) for a in args]
        wide_kwargs = {key: widen(value) for key, value in kwargs.items()}
        terms = terms_of(wide_args, wide_kwargs)
        if terms is None:
            return fn(*args, **kwargs)
        with np.errstate(all="ignore"):
            return rounded(combined([(c, fn(*a, **k)) for c, a, k in terms]), dtype)
    return call


def kept(target, kwargs):
    ignore_index = kwargs.get("ignore_index")
    return np.asarray(target) != (-100 if ignore_index is None else ignore_index)


def spread(target, n_classes, rows, classes=slice(None)):
    """A probability target of 1/K on each of ``classes`` at the positions ``rows``."""
    mass = np.zeros(n_classes)
    mass[classes] = 1.0
    mass /= mass.sum()
    if target.ndim == 0:
        return mass * float(rows)
    return np.expand_dims(rows, 1) * mass.reshape((-1,) + (1,) * (target.ndim - 1))


def without(mapping, *keys):
    return {k: v for k, v in mapping.items() if k not in keys}


def mean_term(kwargs, coef, denominator):
    """A term's ``(coef, reduction)``: reduction='mean' as a sum over ``denominator``."""
    reduction = kwargs.get("reduction", "mean")
    if reduction == "mean":
        return coef / denominator, "sum"
    return coef, reduction


# The LLM losses: (name, where the target is among the positional arguments)
LLM_LOSSES = (("cross_entropy", 1), ("linear_cross_entropy", 2))


def n_classes(name, args):
    if name == "linear_cross_entropy":
        return np.asarray(args[1]).shape[0]
    x = np.asarray(args[0])
    return x.shape[0 if x.ndim == 1 else 1]


def llm_pairs(xr, make):
    """``{name: wrapped(xr.name, make(name, target_at)), name_grad: ...}``."""
    out = {}
    for name, target_at in LLM_LOSSES:
        for suffix in ("", "_grad"):
            out[name + suffix] = wrapped(getattr(xr, name + suffix), make(name, target_at))
    return out
