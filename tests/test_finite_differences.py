"""Every hand-derived gradient against central finite differences, in float64.

For a gradient function ``grad(x, ..., grad_output=g)`` we differentiate the scalar
``f(x) = sum(g * loss(x))`` (``g`` is a scalar for mean/sum, the loss's shape for
none, and 1 when left at its default) one coordinate at a time:

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h),   h = 1e-6,

and require the norm-wise relative error ``|a - b| / max(|a|, |b|)`` (CS231n's measure,
taken over the whole gradient so that entries that are nearly 0 do not divide by
their own rounding noise) to be below 1e-7. With inputs of order 1 the truncation
error is ~h^2 = 1e-12 and the rounding error ~eps |f| / h ~ 1e-10 |f|, so a correct
gradient lands near 1e-9 and a wrong one (a missing weight, a wrong denominator, a
dropped smoothing term) far above 1e-7.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xent_ref as xr

H = 1e-6
BOUND = 1e-7
TINY = np.finfo(np.float64).tiny


def numerical_gradient(f, x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar function ``f`` at ``x``, one coordinate at a time."""
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[i] += H
        down[i] -= H
        # divide by the step actually taken: x_i + h is rounded
        grad[i] = (f(up) - f(down)) / (up[i] - down[i])
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), TINY))


def check_gradient(loss, grad, x, *args, grad_output=None, **options):
    """Compare ``grad(x, *args, **options, grad_output=...)`` with differences of ``loss``."""
    g = 1.0 if grad_output is None else np.asarray(grad_output)

    def f(z):
        return float(np.sum(g * loss(z, *args, **options)))

    analytic = grad(x, *args, **options, grad_output=grad_output)
    assert analytic.shape == x.shape and analytic.dtype == np.float64
    numeric = numerical_gradient(f, x)
    assert np.linalg.norm(numeric) > 0  # the check below is not comparing zeros
    error = relative_error(analytic, numeric)
    assert error < BOUND, f"relative error {error:.3g}"


def seed_of(*params) -> int:
    """A stable per-case seed (``hash`` of a str is randomised per process)."""
    return sum((i + 1) * ord(ch) for i, ch in enumerate(repr(params)))


def upstream_gradient(rng, reduction, loss_shape, explicit):
    if not explicit:
        return None
    if reduction == "none":
        return rng.uniform(-2.0, 2.0, size=loss_shape)
    return float(rng.uniform(0.5, 2.0)) * rng.choice([-1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# softmax and log-softmax
# ---------------------------------------------------------------------------------------------

SOFTMAX_CASES = [((5,), -1), ((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 2, 3, 2), -2)]


@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_CASES)
@pytest.mark.parametrize(("func", "grad"), [(xr.softmax, xr.softmax_grad),
                                            (xr.log_softmax, xr.log_softmax_grad)],
                         ids=["softmax", "log_softmax"])
def test_softmax_family(func, grad, shape, axis):
    rng = np.random.default_rng(seed_of(shape, axis))
    x = rng.normal(size=shape)
    g = rng.uniform(-1.0, 1.0, size=shape)

    def f(z):
        return float(np.sum(g * func(z, axis=axis)))

    analytic = grad(x, g, axis=axis)
    assert relative_error(analytic, numerical_gradient(f, x)) < BOUND


# ---------------------------------------------------------------------------------------------
# cross-entropy and NLL
# ---------------------------------------------------------------------------------------------

CLASS_SHAPES = [(4,), (3, 4), (2, 3, 2), (2, 3, 2, 2)]
REDUCTIONS = ["none", "mean", "sum"]


def index_target(rng, shape, ignore):
    """Class indices for logits of ``shape``; ``ignore`` says which ``ignore_index`` is in play:
    ``None`` (none ignored), ``"negative"`` (-100, set on one sample) or ``"class"`` (class 1)."""
    n_classes = shape[0 if len(shape) == 1 else 1]
    loss_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = rng.integers(0, n_classes, size=loss_shape)
    if ignore is None:
        return target, -100
    if ignore == "class":
        target.flat[0] = 1  # at least one sample ignored, and (below) at least one kept
        target.flat[-1] = 0
        return target, 1
    if target.ndim:
        target.flat[0] = -100
    return target, -100


CE_CASES = [
    pytest.param(shape, kind, weighted, eps, reduction, explicit,
                 id=f"{shape}-{kind}-w{int(weighted)}-ls{eps}-{reduction}-g{int(explicit)}")
    for shape, kind, weighted, eps, reduction, explicit in itertools.product(
        CLASS_SHAPES, ["index", "ignore-negative", "ignore-class", "probability"],
        [False, True], [0.0, 0.3], REDUCTIONS, [False, True])
    # ignoring class 1 needs two samples (one kept)
    if not (kind == "ignore-class" and len(shape) == 1)
]


@pytest.mark.parametrize(("shape", "kind", "weighted", "eps", "reduction", "explicit"), CE_CASES)
def test_cross_entropy_grad(shape, kind, weighted, eps, reduction, explicit):
    rng = np.random.default_rng(seed_of(shape, kind, weighted, eps, reduction, explicit))
    x = rng.normal(size=shape)
    n_classes = shape[0 if len(shape) == 1 else 1]
    loss_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    if kind == "probability":
        target, ignore_index = rng.dirichlet(np.ones(n_classes), size=loss_shape), -100
        target = np.moveaxis(target, -1, 0 if len(shape) == 1 else 1)
    else:
        ignore = {"index": None, "ignore-negative": "negative", "ignore-class": "class"}[kind]
        target, ignore_index = index_target(rng, shape, ignore)
    weight = rng.uniform(0.2, 2.0, size=n_classes) if weighted else None
    check_gradient(xr.cross_entropy, xr.cross_entropy_grad, x, target,
                   grad_output=upstream_gradient(rng, reduction, loss_shape, explicit),
                   weight=weight, ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=eps)


NLL_CASES = [
    pytest.param(shape, ignore, weighted, reduction, explicit,
                 id=f"{shape}-{ignore}-w{int(weighted)}-{reduction}-g{int(explicit)}")
    for shape, ignore, weighted, reduction, explicit in itertools.product(
        CLASS_SHAPES, [None, "negative", "class"], [False, True], REDUCTIONS, [False, True])
    if not (ignore == "class" and len(shape) == 1)
]


@pytest.mark.parametrize(("shape", "ignore", "weighted", "reduction", "explicit"), NLL_CASES)
def test_nll_loss_grad(shape, ignore, weighted, reduction, explicit):
    rng = np.random.default_rng(seed_of(shape, ignore, weighted, reduction, explicit))
    log_probs = rng.normal(size=shape)
    n_classes = shape[0 if len(shape) == 1 else 1]
    loss_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target, ignore_index = index_target(rng, shape, ignore)
    weight = rng.uniform(0.2, 2.0, size=n_classes) if weighted else None
    check_gradient(xr.nll_loss, xr.nll_loss_grad, log_probs, target,
                   grad_output=upstream_gradient(rng, reduction, loss_shape, explicit),
                   weight=weight, ignore_index=ignore_index, reduction=reduction)


# ---------------------------------------------------------------------------------------------
# binary cross-entropy
# ---------------------------------------------------------------------------------------------

# (input shape, weight shape, pos_weight shape); None = not given
BINARY_SHAPES = [
    ((5,), None, None),
    ((5,), (5,), (1,)),
    ((3, 4), (4,), (4,)),
    ((3, 4), (3, 1), ()),
    ((2, 3, 2), (3, 1), (2,)),
    ((2, 2, 3, 2), (2, 1, 1, 2), (3, 1)),
]


def binary_case_ids(case):
    return "x".join(map(str, case[0])) + f"-w{case[1]}-pw{case[2]}"


def probabilities_and_targets(rng, shape):
    # probabilities well inside (0, 1): far from the -100 clamp and the 1e-12 floor,
    # and far enough from the ends that p +- h stays a valid input
    return rng.uniform(0.1, 0.9, size=shape), rng.uniform(0.0, 1.0, size=shape)


def logits_and_targets(rng, shape):
    return rng.normal(scale=2.0, size=shape), rng.uniform(0.0, 1.0, size=shape)


BINARY_LOSSES = [  # (loss, gradient, inputs, takes pos_weight)
    pytest.param(xr.binary_cross_entropy, xr.binary_cross_entropy_grad, probabilities_and_targets,
                 False, id="bce"),
    pytest.param(xr.binary_cross_entropy_with_logits, xr.binary_cross_entropy_with_logits_grad,
                 logits_and_targets, True, id="bce_with_logits"),
]


@pytest.mark.parametrize("explicit", [False, True], ids=["g-default", "g-given"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=binary_case_ids)
@pytest.mark.parametrize(("loss", "grad", "inputs", "has_pos_weight"), BINARY_LOSSES)
def test_binary_grads(loss, grad, inputs, has_pos_weight, shapes, reduction, explicit):
    shape, weight_shape, pos_weight_shape = shapes
    rng = np.random.default_rng(seed_of(shapes, reduction, explicit, loss.__name__))
    x, y = inputs(rng, shape)
    options = dict(reduction=reduction)
    if weight_shape is not None:
        options["weight"] = rng.uniform(0.2, 2.0, size=weight_shape)
    if has_pos_weight and pos_weight_shape is not None:
        options["pos_weight"] = rng.uniform(0.5, 3.0, size=pos_weight_shape)
    check_gradient(loss, grad, x, y, grad_output=upstream_gradient(rng, reduction, shape, explicit),
                   **options)
