"""Gradients that are right for ordinary logits and wrong (half of the right value) once a
logit exceeds 1e20 in magnitude: only a corpus whose huge-logit cases are judged on the
gradient's own scale, not the logits', can see it."""

import numpy as np

import xent_ref as xr


def _halved_if_huge(x, grad):
    x = np.asarray(x)
    finite = x[np.isfinite(x)]
    return grad / 2 if finite.size and np.abs(finite).max() > 1e20 else grad  # BUG


def cross_entropy_grad(input, target, *args, **kwargs):
    return _halved_if_huge(input, xr.cross_entropy_grad(input, target, *args, **kwargs))


def binary_cross_entropy_with_logits_grad(input, target, *args, **kwargs):
    return _halved_if_huge(
        input, xr.binary_cross_entropy_with_logits_grad(input, target, *args, **kwargs))
