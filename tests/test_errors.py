"""Bad input fails loudly and names the argument; edge cases behave as documented.

Every bad call must raise a ``ValueError`` or ``TypeError`` whose message starts with
the name of the offending argument (``target: ...``, ``weight: ...``), checked with
``match=``. The edge cases (everything ignored, empty batches, infinite and huge
logits, the BCE clamps, tiny losses) must give the stated numbers without any NumPy
warning: pytest runs with ``filterwarnings = error``, so a warning fails the test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import xent_ref as xr

EPS = np.finfo(np.float64).eps
LOGITS = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])  # (N, C) = (2, 3)
PROBS = np.array([[0.2, 0.5, 0.9], [0.6, 0.1, 0.4]])
BINARY_TARGET = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])

# The class-index losses: each error below must come from all four.
def deep(make) -> list:
    """``[make()]``, a case with a 64-dimensional array, under NumPy 2 (whose arrays have
    up to 64 dimensions); ``[]`` under NumPy 1 (32 at most: the case cannot be built)."""
    return [make()] if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else []


CLASS_FUNCS = [xr.cross_entropy, xr.cross_entropy_grad, xr.nll_loss, xr.nll_loss_grad]
CE_FUNCS = [xr.cross_entropy, xr.cross_entropy_grad]  # label smoothing, probability targets
BCE_FUNCS = [xr.binary_cross_entropy, xr.binary_cross_entropy_grad]
LOGIT_FUNCS = [xr.binary_cross_entropy_with_logits, xr.binary_cross_entropy_with_logits_grad]
SOFTMAX_FUNCS = [xr.softmax, xr.log_softmax]
SOFTMAX_GRADS = [xr.softmax_grad, xr.log_softmax_grad]


def bad(case_id, *args, error, message, **kwargs):
    """One bad call: ``func(*args, **kwargs)`` must raise ``error`` matching ``message``."""
    return case_id, args, kwargs, error, message


def params(funcs, cases):
    """Every ``(function, case)`` pair, with readable ids."""
    return [pytest.param(f, *case[1:], id=f"{f.__name__}-{case[0]}") for f in funcs
            for case in cases]


# ---------------------------------------------------------------------------------------------
# class indices: cross_entropy, nll_loss and their gradients
# ---------------------------------------------------------------------------------------------

CLASS_CASES = [
    bad("target-too-large", LOGITS, [0, 3], error=ValueError,
        message=r"^target: class index 3 is out of range for 3 classes"),
    bad("target-negative", LOGITS, [0, -1], error=ValueError,
        message=r"^target: class index -1 is out of range"),
    # -100 is only special when it is the ignore_index
    bad("target-not-ignored", LOGITS, [0, -100], ignore_index=1, error=ValueError,
        message=r"^target: class index -100 is out of range"),
    bad("target-nan", LOGITS, [0.0, np.nan], error=TypeError,
        message=r"^target: class indices must be integers"),
    bad("target-float", LOGITS, [0.0, 1.0], error=TypeError,
        message=r"^target: class indices must be integers"),
    bad("target-fractional", LOGITS, [0.5, 1.0], error=TypeError,
        message=r"^target: class indices must be integers"),
    bad("target-bool", LOGITS, [True, False], error=TypeError,
        message=r"^target: class indices must be integers"),
    bad("target-strings", LOGITS, ["a", "b"], error=TypeError,
        message=r"^target: class indices must be integers"),
    bad("target-batch", LOGITS, [0, 1, 2], error=ValueError,
        message=r"^target: expected shape \(2,\) .* got shape \(3,\)"),
    bad("target-2d", LOGITS, [[0], [1]], error=ValueError,
        message=r"^target: expected shape \(2,\) .* got shape \(2, 1\)"),
    bad("target-spatial", np.zeros((2, 3, 4)), np.zeros((2, 5), dtype=int), error=ValueError,
        message=r"^target: expected shape \(2, 4\) .* got shape \(2, 5\)"),
    # a (C,) input takes a 0-d target
    bad("target-1d-input", np.zeros(3), [0], error=ValueError,
        message=r"^target: expected shape \(\) .* got shape \(1,\)"),
    bad("weight-length", LOGITS, [0, 1], weight=[1.0, 2.0], error=ValueError,
        message=r"^weight: expected shape \(3,\), one weight per class, got shape \(2,\)"),
    bad("weight-2d", LOGITS, [0, 1], weight=[[1.0, 2.0, 3.0]], error=ValueError,
        message=r"^weight: expected shape \(3,\)"),
    bad("weight-strings", LOGITS, [0, 1], weight=["a", "b", "c"], error=TypeError,
        message=r"^weight: expected real numbers"),
    bad("reduction-unknown", LOGITS, [0, 1], reduction="avg", error=ValueError,
        message=r"^reduction: unknown reduction 'avg'"),
    bad("reduction-None", LOGITS, [0, 1], reduction=None, error=TypeError,
        message=r"^reduction: expected one of"),
    bad("reduction-int", LOGITS, [0, 1], reduction=1, error=TypeError,
        message=r"^reduction: expected one of"),
    bad("ignore_index-float", LOGITS, [0, 1], ignore_index=1.5, error=TypeError,
        message=r"^ignore_index: expected an integer"),
    bad("input-0d", np.float64(1.0), 0, error=ValueError,
        message=r"^input: expected at least 1 dimension"),
    bad("input-strings", [["a", "b", "c"]], [0], error=TypeError,
        message=r"^input: expected real numbers"),
    bad("input-ragged", [[1.0, 2.0], [3.0]], [0, 0], error=TypeError,
        message=r"^input: cannot be read as a numeric array"),
    bad("input-no-classes", np.zeros((2, 0)), [0, 0], error=ValueError,
        message=r"^input: the class axis has size 0"),
    bad("ignore_index-too-large", LOGITS, [0, 1], ignore_index=2**63, error=ValueError,
        message=r"^ignore_index: must fit in int64"),
    bad("ignore_index-too-small", LOGITS, [0, 1], ignore_index=-(2**63) - 1, error=ValueError,
        message=r"^ignore_index: must fit in int64"),
    *deep(lambda: bad("input-64d", np.zeros((1,) * 64), np.zeros((1,) * 63, np.int64),
                      error=ValueError,
                      message=r"^input: at most 63 dimensions are supported, got 64")),
]

CE_CASES = [
    bad("smoothing-above-1", LOGITS, [0, 1], label_smoothing=1.5, error=ValueError,
        message=r"^label_smoothing: must be in \[0, 1\], got 1.5"),
    # stricter than PyTorch, which treats a negative value as 0
    bad("smoothing-negative", LOGITS, [0, 1], label_smoothing=-0.1, error=ValueError,
        message=r"^label_smoothing: must be in \[0, 1\], got -0.1"),
    bad("smoothing-nan", LOGITS, [0, 1], label_smoothing=math.nan, error=ValueError,
        message=r"^label_smoothing: must be in \[0, 1\], got nan"),
    bad("smoothing-string", LOGITS, [0, 1], label_smoothing="0.1", error=TypeError,
        message=r"^label_smoothing: expected a number"),
    # as PyTorch: a Fraction is a real number, but not a float
    bad("smoothing-fraction", LOGITS, [0, 1], label_smoothing=Fraction(1, 10), error=TypeError,
        message=r"^label_smoothing: expected a number in \[0, 1\], got Fraction\(1, 10\)"),
    bad("integer-probabilities", LOGITS, np.zeros((2, 3), dtype=int), error=TypeError,
        message=r"^target: probability targets .* must be floating point"),
    bad("probabilities-ignore_index", LOGITS, np.full((2, 3), 1 / 3), ignore_index=0,
        error=ValueError, message=r"^ignore_index: not supported with probability targets"),
]


# ---------------------------------------------------------------------------------------------
# binary losses
# ---------------------------------------------------------------------------------------------


def with_entry(array, index, value):
    array = array.copy()
    array[index] = value
    return array


BCE_CASES = [
    *(bad(f"input-{v}", with_entry(PROBS, (1, 2), v), BINARY_TARGET, error=ValueError,
          message=r"^input: every element must be in \[0, 1\]")
      for v in (1.5, -0.1, math.nan, math.inf)),
    *(bad(f"target-{v}", PROBS, with_entry(BINARY_TARGET, (0, 0), v), error=ValueError,
          message=r"^target: every element must be in \[0, 1\]")
      for v in (1.5, -0.5, math.nan)),
]

BINARY_CASES = [
    # (3,) would broadcast, but PyTorch requires the shapes to be equal
    bad("target-shape-broadcastable", PROBS, BINARY_TARGET[0], error=ValueError,
        message=r"^target: expected the input's shape \(2, 3\), got shape \(3,\)"),
    bad("target-shape-transposed", PROBS, BINARY_TARGET.T, error=ValueError,
        message=r"^target: expected the input's shape \(2, 3\), got shape \(3, 2\)"),
    bad("weight-not-broadcastable", PROBS, BINARY_TARGET, weight=[1.0, 2.0], error=ValueError,
        message=r"^weight: shape \(2,\) does not broadcast to the target's shape \(2, 3\)"),
    bad("weight-more-dimensions", PROBS, BINARY_TARGET, weight=np.ones((1, 2, 3)),
        error=ValueError, message=r"^weight: shape \(1, 2, 3\) does not broadcast"),
    # (a 0-d input is accepted, as PyTorch accepts it: see test_parity.py)
    bad("target-bool", [0.5, 0.5], [True, False], error=TypeError,
        message=r"^target: expected real numbers, got booleans; pass target.astype\(float\)"),
    *deep(lambda: bad("input-64d", np.full((1,) * 64, 0.5), np.ones((1,) * 64),
                      error=ValueError,
                      message=r"^input: at most 63 dimensions are supported, got 64")),
    bad("input-strings", ["a"], [1.0], error=TypeError, message=r"^input: expected real numbers"),
    bad("target-strings", [0.5], ["a"], error=TypeError, message=r"^target: expected real numbers"),
    bad("reduction-unknown", PROBS, BINARY_TARGET, reduction="batchmean", error=ValueError,
        message=r"^reduction: unknown reduction"),
]

LOGIT_CASES = [
    # a (C,) pos_weight applies to the LAST axis, as in PyTorch
    bad("pos_weight-not-broadcastable", LOGITS, BINARY_TARGET, pos_weight=[1.0, 2.0],
        error=ValueError,
        message=r"^pos_weight: shape \(2,\) does not broadcast to the target's shape \(2, 3\)"),
    bad("pos_weight-strings", LOGITS, BINARY_TARGET, pos_weight=["a", "b", "c"], error=TypeError,
        message=r"^pos_weight: expected real numbers"),
]


# ---------------------------------------------------------------------------------------------
# softmax and log-softmax
# ---------------------------------------------------------------------------------------------

SOFTMAX_CASES = [
    bad("axis-2", LOGITS, axis=2, error=ValueError,
        message=r"^axis: 2 is out of range for an input with 2 dimension"),
    bad("axis-minus-3", LOGITS, axis=-3, error=ValueError, message=r"^axis: -3 is out of range"),
    bad("axis-float", LOGITS, axis=1.0, error=TypeError,
        message=r"^axis: expected an integer, got 1.0"),
    bad("x-0d", 1.0, error=ValueError, message=r"^x: expected at least 1 dimension"),
    *deep(lambda: bad("x-64d", np.zeros((1,) * 64), error=ValueError,
                      message=r"^x: at most 63 dimensions are supported, got 64")),
    bad("x-strings", ["a", "b"], error=TypeError,
        message=r"^x: expected real numbers, got an array of dtype <U"),
    bad("x-complex", [1j, 2.0], error=TypeError,
        message=r"^x: expected real numbers, got an array of dtype complex"),
    bad("x-object", np.array([None, 1.0]), error=TypeError,
        message=r"^x: expected real numbers, got an array of dtype object"),
]

SOFTMAX_GRAD_CASES = [
    bad("grad_output-shape", LOGITS, np.ones(3), error=ValueError,
        message=r"^grad_output: expected the shape of x \(2, 3\), got shape \(3,\)"),
    bad("axis-2", LOGITS, np.ones((2, 3)), axis=2, error=ValueError,
        message=r"^axis: 2 is out of range for an input with 2 dimension"),
]

MODULE_CASES = [
    bad("CrossEntropyLoss", xr.CrossEntropyLoss(label_smoothing=-0.5), LOGITS, [0, 1],
        error=ValueError, message=r"^label_smoothing: must be in \[0, 1\]"),
    bad("NLLLoss.grad", xr.NLLLoss(weight=[1.0]).grad, LOGITS, [0, 1], error=ValueError,
        message=r"^weight: expected shape \(3,\)"),
    bad("BCELoss", xr.BCELoss(), LOGITS, BINARY_TARGET, error=ValueError,
        message=r"^input: every element must be in \[0, 1\]"),
    bad("BCEWithLogitsLoss", xr.BCEWithLogitsLoss(pos_weight=[1.0, 2.0]), LOGITS, BINARY_TARGET,
        error=ValueError, message=r"^pos_weight: shape \(2,\) does not broadcast"),
]


def call_module(module, *args, **kwargs):
    return module(*args, **kwargs)


BAD_CALLS = (
    params(CLASS_FUNCS, CLASS_CASES) + params(CE_FUNCS, CE_CASES)
    + params(BCE_FUNCS, BCE_CASES) + params(BCE_FUNCS + LOGIT_FUNCS, BINARY_CASES)
    + params(LOGIT_FUNCS, LOGIT_CASES) + params(SOFTMAX_FUNCS, SOFTMAX_CASES)
    + params(SOFTMAX_GRADS, SOFTMAX_GRAD_CASES) + params([call_module], MODULE_CASES)
)


@pytest.mark.parametrize(("func", "args", "kwargs", "error", "message"), BAD_CALLS)
def test_bad_input(func, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        func(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# grad_output
# ---------------------------------------------------------------------------------------------

GRAD_CALLS = [  # (gradient, input, target, the loss's shape for reduction="none")
    pytest.param(xr.cross_entropy_grad, LOGITS, [0, 1], (2,), id="cross_entropy_grad"),
    pytest.param(xr.nll_loss_grad, LOGITS, [0, 1], (2,), id="nll_loss_grad"),
    pytest.param(xr.binary_cross_entropy_grad, PROBS, BINARY_TARGET, (2, 3),
                 id="binary_cross_entropy_grad"),
    pytest.param(xr.binary_cross_entropy_with_logits_grad, LOGITS, BINARY_TARGET, (2, 3),
                 id="binary_cross_entropy_with_logits_grad"),
]


@pytest.mark.parametrize(("grad", "x", "target", "loss_shape"), GRAD_CALLS)
def test_grad_output_of_the_wrong_shape(grad, x, target, loss_shape):
    for reduction in ("mean", "sum"):
        for wrong in ([1.0, 1.0], np.ones(loss_shape), [1.0]):
            with pytest.raises(ValueError,
                               match=r"^grad_output: expected a scalar \(\) for reduction="):
                grad(x, target, reduction=reduction, grad_output=wrong)
    for wrong in (1.0, np.ones((1,)), np.ones(loss_shape + (1,)), np.ones(loss_shape[::-1] + (1,))):
        with pytest.raises(ValueError, match=r"^grad_output: expected the loss's shape"):
            grad(x, target, reduction="none", grad_output=wrong)
    with pytest.raises(TypeError, match=r"^grad_output: expected real numbers"):
        grad(x, target, grad_output="1.0")


# ---------------------------------------------------------------------------------------------
# edge cases (no warning allowed: filterwarnings = error)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    dict(), dict(weight=[1.0, 2.0, 3.0]), dict(label_smoothing=0.3),
    dict(weight=[1.0, 2.0, 3.0], label_smoothing=1.0),
], ids=["plain", "weight", "smoothing", "weight+smoothing"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_every_target_ignored(options, ignore_index):
    x = np.array([[0.0, 1.0, -np.inf], [2.0, 0.5, 1.0]])  # -inf on an ignored target: still fine
    target = [ignore_index, ignore_index]
    assert np.isnan(xr.cross_entropy(x, target, ignore_index=ignore_index, **options))
    assert xr.cross_entropy(x, target, ignore_index=ignore_index, reduction="sum", **options) == 0
    np.testing.assert_array_equal(
        xr.cross_entropy(x, target, ignore_index=ignore_index, reduction="none", **options), 0)
    for reduction in ("mean", "sum", "none"):
        grad = xr.cross_entropy_grad(x, target, ignore_index=ignore_index, reduction=reduction,
                                     **options)
        np.testing.assert_array_equal(grad, np.zeros((2, 3)))
    nll_options = {k: v for k, v in options.items() if k == "weight"}
    assert np.isnan(xr.nll_loss(x, target, ignore_index=ignore_index, **nll_options))
    np.testing.assert_array_equal(
        xr.nll_loss_grad(x, target, ignore_index=ignore_index, **nll_options), np.zeros((2, 3)))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_zero_total_weight_is_nan_like_pytorch(label_smoothing):
    # Every kept target has weight 0: mean divides by 0. PyTorch 2.13 gives a nan loss and
    # nan gradient rows (its NLL part is 0/0); nll_loss's gradient is nan only at the target.
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    target, weight = [0, 0], [0.0, 1.0, 1.0]
    assert np.isnan(xr.cross_entropy(x, target, weight=weight, label_smoothing=label_smoothing))
    grad = xr.cross_entropy_grad(x, target, weight=weight, label_smoothing=label_smoothing)
    assert np.isnan(grad).all()
    nll_grad = xr.nll_loss_grad(x, target, weight=weight)
    assert np.isnan(nll_grad[:, 0]).all() and (nll_grad[:, 1:] == 0).all()


EMPTY_BATCHES = [
    pytest.param(xr.cross_entropy, xr.cross_entropy_grad, np.zeros((0, 3)),
                 np.zeros(0, dtype=int), id="cross_entropy[index]"),
    pytest.param(xr.cross_entropy, xr.cross_entropy_grad, np.zeros((0, 3)), np.zeros((0, 3)),
                 id="cross_entropy[probs]"),
    pytest.param(xr.cross_entropy, xr.cross_entropy_grad, np.zeros((0, 3, 2, 2)),
                 np.zeros((0, 2, 2), dtype=int), id="cross_entropy[4-d]"),
    pytest.param(xr.nll_loss, xr.nll_loss_grad, np.zeros((0, 3)), np.zeros(0, dtype=int),
                 id="nll_loss"),
    pytest.param(xr.binary_cross_entropy, xr.binary_cross_entropy_grad, np.zeros((0, 3)),
                 np.zeros((0, 3)), id="bce"),
    pytest.param(xr.binary_cross_entropy_with_logits, xr.binary_cross_entropy_with_logits_grad,
                 np.zeros((0, 3)), np.zeros((0, 3)), id="bce_with_logits"),
]


@pytest.mark.parametrize(("loss", "grad", "x", "target"), EMPTY_BATCHES)
def test_empty_batch(loss, grad, x, target):
    assert np.isnan(loss(x, target))
    assert loss(x, target, reduction="sum") == 0
    assert loss(x, target, reduction="none").size == 0
    assert grad(x, target).shape == x.shape


def test_minus_inf_logits_off_the_target():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]])
    target = [0, 1]
    for options in (dict(), dict(weight=[1.0, 2.0, 0.5]), dict(reduction="none")):
        loss = xr.cross_entropy(x, target, **options)
        grad = xr.cross_entropy_grad(x, target, **options)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    losses = xr.cross_entropy(x, target, reduction="none")
    np.testing.assert_allclose(losses, [math.log1p(math.e), 0.0], rtol=4 * EPS)
    grad = xr.cross_entropy_grad(x, target, reduction="none")
    p0 = 1 / (1 + math.e)
    np.testing.assert_allclose(grad, [[p0 - 1, 0.0, 1 - p0], [0.0, 0.0, 0.0]], rtol=4 * EPS)
    # the same in a (N, C, d) layout, the class axis in the middle
    x3 = np.moveaxis(x[None], 1, 2)  # (1, 3, 2)
    np.testing.assert_allclose(xr.cross_entropy(x3, [[0, 1]], reduction="none"), [losses],
                               rtol=4 * EPS)


def test_minus_inf_logit_on_the_target():
    x = np.array([[0.0, -np.inf, 1.0]])
    assert xr.cross_entropy(x, [1]) == np.inf
    assert xr.cross_entropy(x, [1], weight=[1.0, 2.0, 3.0]) == np.inf
    # the gradient is still softmax - one_hot, finite
    p = np.array([1.0, 0.0, math.e]) / (1 + math.e)
    np.testing.assert_allclose(xr.cross_entropy_grad(x, [1]), [p - [0.0, 1.0, 0.0]], rtol=4 * EPS)


def test_huge_logits():
    x = np.array([[1e300, -1e300, 0.0], [-1e300, -1e300, 1e300]])
    np.testing.assert_array_equal(xr.cross_entropy(x, [0, 1], reduction="none"), [0.0, 2e300])
    np.testing.assert_array_equal(xr.cross_entropy_grad(x, [0, 1], reduction="none"),
                                  [[0.0, 0.0, 0.0], [0.0, -1.0, 1.0]])
    np.testing.assert_array_equal(xr.softmax(x), [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(xr.log_softmax(x), [[0.0, -2e300, -1e300], [-2e300, -2e300, 0.0]])
    g = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    np.testing.assert_array_equal(xr.softmax_grad(x, g), np.zeros((2, 3)))
    # g - p sum(g) with p one-hot
    np.testing.assert_array_equal(xr.log_softmax_grad(x, g), [[-5.0, 2.0, 3.0], [-1.0, 0.5, 0.5]])
    for options in (dict(label_smoothing=0.1), dict(weight=[1.0, 2.0, 3.0])):
        assert np.isfinite(xr.cross_entropy(x, [0, 2], **options))
        assert np.all(np.isfinite(xr.cross_entropy_grad(x, [0, 2], **options)))
    probs = np.full((2, 3), 1 / 3)
    assert np.all(np.isfinite(xr.cross_entropy(x, probs, reduction="none")))
    assert np.all(np.isfinite(xr.cross_entropy_grad(x, probs)))
    z, y = np.array([1e300, -1e300, 1e300]), np.array([1.0, 1.0, 0.0])
    np.testing.assert_array_equal(xr.binary_cross_entropy_with_logits(z, y, reduction="none"),
                                  [0.0, 1e300, 1e300])
    np.testing.assert_array_equal(xr.binary_cross_entropy_with_logits_grad(z, y, reduction="none"),
                                  [0.0, -1.0, 1.0])


def test_bce_clamps():
    floor = float(np.float32(1e-12))  # PyTorch's float constant, 9.9999999600e-13
    p, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(xr.binary_cross_entropy(p, y, reduction="none"),
                                  [100.0, 100.0, 0.0, 0.0])
    grad = xr.binary_cross_entropy_grad(p, y, reduction="none")
    np.testing.assert_array_equal(grad, [-1 / floor, 1 / floor, 0.0, 0.0])
    assert grad[0] == pytest.approx(-1.0000000040e12, rel=1e-10)
    # p = 1e-50 < exp(-100): the log is clamped, and p (1 - p) is below the floor
    np.testing.assert_array_equal(xr.binary_cross_entropy([1e-50], [1.0]), 100.0)
    np.testing.assert_array_equal(xr.binary_cross_entropy_grad([1e-50], [1.0]), [-1 / floor])
    # p = 1e-4: neither clamp applies
    np.testing.assert_allclose(xr.binary_cross_entropy([1e-4], [1.0]), -math.log(1e-4),
                               rtol=2 * EPS)
    np.testing.assert_allclose(xr.binary_cross_entropy_grad([1e-4], [1.0]), [-1 / 1e-4],
                               rtol=2 * EPS)


def test_bce_with_logits_keeps_tiny_losses():
    """``softplus(-30) = log1p(e^-30)`` and ``-sigmoid(-30)``, from mpmath at 50 digits.

    Note: 9.357622968840175e-14 is ``e^-30`` itself; the loss is ``log1p(e^-30)``, about
    ``e^-60 / 2`` (210 ulp) smaller, and the gradient ``e^-30 / (1 + e^-30)`` smaller still."""
    with mpmath.workdps(50):
        e = mpmath.exp(-30)
        exact_loss, exact_grad = float(mpmath.log1p(e)), float(-e / (1 + e))
    loss = float(xr.binary_cross_entropy_with_logits([30.0], [1.0]))
    assert loss == exact_loss == 9.357622968839737e-14
    grad = xr.binary_cross_entropy_with_logits_grad([30.0], [1.0])
    np.testing.assert_allclose(grad, [exact_grad], rtol=2 * EPS)
    assert grad[0] == pytest.approx(-9.3576229688393e-14, rel=1e-14)
    # -log(sigmoid(30)) in floating point would give 0: make sure we are far from it
    assert -math.log(1 / (1 + math.exp(-30))) != loss


def test_cross_entropy_keeps_tiny_losses():
    with mpmath.workdps(50):
        e = mpmath.exp(-50)
        exact_loss = float(mpmath.log1p(2 * e))
        exact_grad = [float(-2 * e / (1 + 2 * e)), float(e / (1 + 2 * e)), float(e / (1 + 2 * e))]
    loss = float(xr.cross_entropy([[50.0, 0.0, 0.0]], [0]))
    assert loss == exact_loss == 3.8574996959278356e-22
    assert loss == math.log1p(2 * math.exp(-50))
    grad = xr.cross_entropy_grad([[50.0, 0.0, 0.0]], [0])
    np.testing.assert_allclose(grad, [exact_grad], rtol=2 * EPS)
    assert grad[0, 0] == pytest.approx(-3.857e-22, rel=1e-4)
    assert grad[0, 1] == pytest.approx(1.929e-22, rel=1e-4)


@pytest.mark.parametrize("target", [1, np.int64(1), np.array(1)], ids=["int", "np.int64", "0-d"])
def test_one_dimensional_input(target):
    x = np.array([1.0, 2.0, 3.0])
    loss = xr.cross_entropy(x, target, reduction="none")
    assert isinstance(loss, np.ndarray) and loss.shape == ()
    np.testing.assert_allclose(loss, 3.0 - 2.0 + math.log1p(math.exp(-1) + math.exp(-2)),
                               rtol=4 * EPS)
    for reduction in ("mean", "sum"):
        np.testing.assert_array_equal(xr.cross_entropy(x, target, reduction=reduction), loss)
    grad = xr.cross_entropy_grad(x, target, reduction="none", grad_output=np.array(2.0))
    assert grad.shape == (3,)
    np.testing.assert_allclose(grad, 2 * (xr.softmax(x) - [0.0, 1.0, 0.0]), rtol=4 * EPS)
    assert xr.nll_loss(x, target, reduction="none").shape == ()
    assert xr.nll_loss_grad(x, target, reduction="none").shape == (3,)


def test_rows_without_a_finite_maximum_are_nan_like_pytorch():
    # PyTorch 2.13: a row that is all -inf, or holds +inf or nan, has a nan softmax, and
    # its nan reaches the loss and the gradient -- even an ignored row's gradient (0 * nan).
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [np.nan, 1.0], [0.0, 1.0]])
    assert np.isnan(xr.softmax(x)[:3]).all() and np.isfinite(xr.softmax(x)[3]).all()
    losses = xr.cross_entropy(x, [0, 1, 1, 0], reduction="none")
    assert np.isnan(losses[:3]).all() and np.isfinite(losses[3])
    grad = xr.cross_entropy_grad(x, [-100, -100, -100, 0], reduction="sum")
    assert np.isnan(grad[:3]).all() and np.isfinite(grad[3]).all()
    # the loss of an ignored row stays 0, as in PyTorch
    np.testing.assert_array_equal(xr.cross_entropy(x, [-100, -100, -100, 0], reduction="none")[:3], 0)


def test_ignored_sample_with_minus_inf_logit_is_quiet():
    # The ignored sample's stand-in class 0 has a -inf logit: its 0 weight times inf must
    # not surface as a warning (filterwarnings=error) nor as a nan.
    x = np.array([[-np.inf, 1.0, 2.0], [0.5, 0.0, 1.0]])
    for options in (dict(), dict(weight=[1.0, 2.0, 3.0]), dict(label_smoothing=0.1)):
        assert np.isfinite(xr.cross_entropy(x, [-100, 1], **options))
        assert np.isfinite(xr.cross_entropy_grad(x, [-100, 1], **options)).all()
    assert np.isfinite(xr.nll_loss(x, [-100, 1]))


def test_infinite_bce_logits_are_quiet():
    x = np.array([np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    losses = xr.binary_cross_entropy_with_logits(x, y, reduction="none")
    # PyTorch 2.13 gives [nan, nan, inf, nan]; the last is exactly inf (-log sigma(-inf)).
    assert np.isnan(losses[:2]).all() and losses[2] == np.inf and losses[3] == np.inf
    np.testing.assert_array_equal(
        xr.binary_cross_entropy_with_logits_grad(x, y, reduction="sum"), [0.0, 0.0, 1.0, -1.0])


@pytest.mark.parametrize("loss", [xr.cross_entropy, xr.nll_loss])
def test_ragged_target_names_the_argument(loss):
    with pytest.raises(TypeError, match=r"^target: cannot be read as a numeric array"):
        loss([[1.0, 2.0], [3.0, 4.0]], [[0, 1], [1]])


def test_float16_bce_gradient_at_the_clamp_is_quiet():
    # float16 has no 1e-12: the floor is 0, and p = 0 or 1 gives -inf / inf, as in PyTorch.
    grad = xr.binary_cross_entropy_grad(np.array([0.0, 1.0], np.float16),
                                        np.array([1.0, 0.0], np.float16))
    assert grad.dtype == np.float16 and grad.tolist() == [-np.inf, np.inf]


# ---------------------------------------------------------------------------------------------
# No warnings, one behaviour. PyTorch 2.13's answers in the comments.
# ---------------------------------------------------------------------------------------------


def test_no_warning_on_the_calls_that_used_to_warn():
    # overflow in the sum: PyTorch inf
    huge = np.full((2, 2), -3e38, np.float32)
    assert xr.binary_cross_entropy_with_logits(huge, np.ones((2, 2), np.float32),
                                               reduction="sum") == np.inf
    # an infinite class weight off the target: PyTorch 2.4076; on the target: nan
    logits = [[1.0, 2.0, 3.0]]
    assert xr.cross_entropy(logits, [0], weight=[1.0, np.inf, 1.0]) == pytest.approx(2.40760596)
    assert np.isnan(xr.cross_entropy(logits, [1], weight=[1.0, np.inf, 1.0]))
    # an infinite upstream gradient to softmax: PyTorch [nan, -inf]
    np.testing.assert_array_equal(xr.softmax_grad([0.0, 0.0], [np.inf, 1.0]), [np.nan, -np.inf])
    # an overflowing sum of upstream gradients: PyTorch [-inf, -inf]
    np.testing.assert_array_equal(xr.log_softmax_grad([0.0, 0.0], [1e308, 1e308]),
                                  [-np.inf, -np.inf])
    # an infinite probability target: PyTorch loss inf, gradient [nan, inf]
    assert xr.cross_entropy([[1.0, 2.0]], [[np.inf, 0.0]]) == np.inf
    np.testing.assert_array_equal(xr.cross_entropy_grad([[1.0, 2.0]], [[np.inf, 0.0]]),
                                  [[np.nan, np.inf]])


@pytest.mark.parametrize("n", [4, 40000])
def test_the_callers_errstate_does_not_change_the_answer(n):
    # (40000, 50) is cut into blocks that run on worker threads, which never see the
    # caller's (thread-local) errstate: the library runs under its own at every size.
    logits = np.zeros((n, 50))
    logits[0, 1] = -800.0  # exp underflows to 0
    target = np.zeros(n, np.int64)
    expected = xr.cross_entropy(logits, target)
    expected_grad = xr.cross_entropy_grad(logits, target)
    with np.errstate(all="raise"):
        assert xr.cross_entropy(logits, target) == expected
        np.testing.assert_array_equal(xr.cross_entropy_grad(logits, target), expected_grad)
        assert np.isfinite(xr.binary_cross_entropy_with_logits(logits, (logits < 0) * 1.0))
    assert np.geterr()["over"] == "warn"  # and the caller's own state is left as it was


def test_a_multi_block_call_from_an_atexit_handler_runs(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "at_exit.py"
    script.write_text(
        "import atexit\n"
        "import numpy as np\n"
        "import xent_ref as xr\n"
        "def late():\n"
        "    x = np.zeros((40000, 50))\n"
        "    print(float(xr.cross_entropy(x, np.zeros(40000, np.int64))))\n"
        "atexit.register(late)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert float(result.stdout) == pytest.approx(np.log(50))


# ---------------------------------------------------------------------------------------------
# Memory: a bound on the memory a loss needs beyond its input, not a timing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [xr.binary_cross_entropy, xr.binary_cross_entropy_with_logits])
def test_binary_losses_need_no_full_size_temporary(loss):
    import tracemalloc

    rng = np.random.default_rng(0)

    def peak(rows):
        p = rng.uniform(0.01, 0.99, (rows, 1024)).astype(np.float32)
        y = rng.uniform(0.0, 1.0, (rows, 1024)).astype(np.float32)
        loss(p, y)  # (the worker threads and their pool exist before measuring)
        tracemalloc.start()
        try:
            loss(p, y)
            return tracemalloc.get_traced_memory()[1], p.nbytes
        finally:
            tracemalloc.stop()

    # The blocks' temporaries are a fixed cost (a few block-sized arrays per worker);
    # what grows with the input must stay under 5% of it. A full-size boolean mask
    # (the range check of binary_cross_entropy once made two) is 25% of a float32 input.
    small_peak, small_bytes = peak(2048)
    large_peak, large_bytes = peak(8192)
    assert large_peak - small_peak < 0.05 * (large_bytes - small_bytes)
    assert large_peak < 0.1 * large_bytes
