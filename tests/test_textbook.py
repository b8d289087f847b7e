"""The textbook reading (``xent_ref.textbook``) against the production functions.

On ordinary inputs (moderate logits, probabilities away from 0 and 1) the plain
formulas and the exact, blocked production code must agree to rounding. Where
they do not (huge logits, confident rows) is the subject of ``docs/textbook.md``;
the last tests here pin those numbers so the doc cannot go stale.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xent_ref as xr
from xent_ref import textbook as tb

MODERATE = st.floats(-20, 20)
RTOL, ATOL = 1e-10, 1e-12


def close(textbook_value, production_value):
    np.testing.assert_allclose(textbook_value, production_value, rtol=RTOL, atol=ATOL)


@st.composite
def batches(draw):
    """Moderate (N, C) logits, index targets with some ignored, weights, options."""
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(hnp.arrays(np.float64, (n, c), elements=MODERATE))
    target = draw(hnp.arrays(np.int64, (n,), elements=st.one_of(st.integers(0, c - 1),
                                                                  st.just(-100))))
    if (target == -100).all():  # "mean" of nothing is 0/0: an edge case, not ordinary
        target[0] = 0
    weight = draw(st.none() | hnp.arrays(np.float64, (c,), elements=st.floats(0.1, 3.0)))
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    shape = (n,) if reduction == "none" else ()
    grad_output = draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    return logits, target, weight, reduction, grad_output


@given(batches(), st.sampled_from([0.0, 0.1, 0.5]), st.booleans())
@settings(max_examples=150, deadline=None)
def test_cross_entropy(batch, label_smoothing, probabilities):
    logits, target, weight, reduction, grad_output = batch
    if probabilities:  # the same call with a probability target of the same rows
        target = tb.softmax(np.cos(np.arange(logits.size)).reshape(logits.shape))
    options = dict(weight=weight, reduction=reduction, label_smoothing=label_smoothing)
    close(tb.cross_entropy(logits, target, **options), xr.cross_entropy(logits, target, **options))
    close(tb.cross_entropy_grad(logits, target, **options, grad_output=grad_output),
          xr.cross_entropy_grad(logits, target, **options, grad_output=grad_output))


@given(batches())
@settings(max_examples=100, deadline=None)
def test_nll_loss(batch):
    logits, target, weight, reduction, grad_output = batch
    log_probs = xr.log_softmax(logits)
    options = dict(weight=weight, reduction=reduction)
    close(tb.nll_loss(log_probs, target, **options), xr.nll_loss(log_probs, target, **options))
    close(tb.nll_loss_grad(log_probs, target, **options, grad_output=grad_output),
          xr.nll_loss_grad(log_probs, target, **options, grad_output=grad_output))


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
                  elements=MODERATE), st.data())
@settings(max_examples=100, deadline=None)
def test_softmax_family(logits, data):
    g = data.draw(hnp.arrays(np.float64, logits.shape, elements=st.floats(-2, 2)))
    close(tb.softmax(logits), xr.softmax(logits))
    close(tb.log_softmax(logits), xr.log_softmax(logits))
    close(tb.softmax_grad(logits, g), xr.softmax_grad(logits, g))
    close(tb.log_softmax_grad(logits, g), xr.log_softmax_grad(logits, g))


@st.composite
def binary_batches(draw, elements):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=elements))
    y = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    # weights broadcast from the last axis, as a per-class weight would
    weight = draw(st.none() | hnp.arrays(np.float64, shape[-1:], elements=st.floats(0.1, 3)))
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    g = draw(hnp.arrays(np.float64, shape if reduction == "none" else (),
                        elements=st.floats(-2, 2)))
    return x, y, weight, reduction, g


@given(binary_batches(st.floats(0.01, 0.99)))
@settings(max_examples=100, deadline=None)
def test_binary_cross_entropy(batch):
    p, y, weight, reduction, g = batch
    options = dict(weight=weight, reduction=reduction)
    close(tb.binary_cross_entropy(p, y, **options), xr.binary_cross_entropy(p, y, **options))
    close(tb.binary_cross_entropy_grad(p, y, **options, grad_output=g),
          xr.binary_cross_entropy_grad(p, y, **options, grad_output=g))


# log(1 - sigmoid(x)) cancels: the textbook's error grows like eps * e^|x| (5e-9 at
# x = 17, see docs/textbook.md), so "ordinary" logits here stay within +-10.
@given(binary_batches(st.floats(-10, 10)), st.none() | st.floats(0.1, 5))
@settings(max_examples=100, deadline=None)
def test_binary_cross_entropy_with_logits(batch, pos_weight):
    x, y, weight, reduction, g = batch
    options = dict(weight=weight, pos_weight=pos_weight, reduction=reduction)
    close(tb.binary_cross_entropy_with_logits(x, y, **options),
          xr.binary_cross_entropy_with_logits(x, y, **options))
    close(tb.binary_cross_entropy_with_logits_grad(x, y, **options, grad_output=g),
          xr.binary_cross_entropy_with_logits_grad(x, y, **options, grad_output=g))


def test_the_gradient_is_scale_times_A_p_minus_q():
    """The docstring's reading: weight 2 doubles a row, smoothing spreads q, rows sum to A - A."""
    logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    target = np.array([0, 1, -100])
    grad = tb.cross_entropy_grad(logits, target, weight=[1.0, 2.0], reduction="sum")
    p = tb.softmax(logits)
    np.testing.assert_allclose(grad[0], p[0] - [1, 0])
    np.testing.assert_allclose(grad[1], 2 * (p[1] - [0, 1]))
    assert (grad[2] == 0).all()  # the ignored row


# ----- where the textbook loses: the numbers docs/textbook.md quotes ------------------------


def test_confident_row_loses_its_tiny_loss():
    logits, target = np.array([[50.0, 0.0, 0.0]]), np.array([0])
    assert tb.cross_entropy(logits, target) == 0.0
    assert f"{float(xr.cross_entropy(logits, target)):.3g}" == "3.86e-22"


def test_huge_logits_overflow():
    logits, target = np.array([[1000.0, 0.0]]), np.array([1])
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(tb.cross_entropy(logits, target))
    assert float(xr.cross_entropy(logits, target)) == 1000.0


def test_binary_with_logits_at_40():
    x, y = np.array([40.0]), np.array([0.0])
    with np.errstate(divide="ignore"):
        assert tb.binary_cross_entropy_with_logits(x, y) == np.inf
    assert float(xr.binary_cross_entropy_with_logits(x, y)) == pytest.approx(40.0, rel=1e-15)


# ----- what the textbook functions take: dtypes, shapes, bad arguments ----------------
MULTICLASS = ["cross_entropy", "cross_entropy_grad", "nll_loss", "nll_loss_grad"]
BINARY = ["binary_cross_entropy", "binary_cross_entropy_grad",
          "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad"]


def _call(name, x, t, **kwargs):
    return getattr(tb, name)(x, t, **kwargs), getattr(xr, name)(x, t, **kwargs)


@pytest.mark.parametrize("name", MULTICLASS + BINARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_textbook_keeps_the_input_dtype(name, dtype):
    rng = np.random.default_rng(3)
    if name in MULTICLASS:
        x = rng.normal(size=(4, 3)).astype(dtype)
        x = x if name.startswith("cross") else np.log(tb.softmax(x))
        t = np.array([0, 2, 1, -100])
        kwargs = {"weight": [1.0, 2.0, 0.5]}  # a float64 list must not promote float32
    else:
        x = rng.uniform(0.1, 0.9, size=(4, 3)).astype(dtype)
        t = (rng.uniform(size=(4, 3)) > 0.5).astype(dtype)
        kwargs = {"weight": [1.0, 2.0, 0.5]}
    for reduction in ("mean", "sum", "none"):
        ours, production = _call(name, x, t, reduction=reduction, **kwargs)
        assert ours.dtype == dtype == production.dtype, (reduction, ours.dtype)
        np.testing.assert_allclose(ours, production, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("name", MULTICLASS)
def test_textbook_takes_4d_and_1d_inputs(name):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 4, 5))
    x = x if name.startswith("cross") else np.log(xr.softmax(x, axis=1))
    t = rng.integers(0, 3, size=(2, 4, 5))
    t[0, 0, 0] = -100
    for reduction in ("mean", "sum", "none"):
        ours, production = _call(name, x, t, reduction=reduction, weight=[1.0, 2.0, 3.0])
        assert ours.shape == production.shape
        close(ours, production)
    ours, production = _call(name, x[0, :, 0, 0], t[1, 0, 0])  # (C,) with a 0-d target
    assert ours.shape == production.shape
    close(ours, production)


def test_textbook_cross_entropy_takes_4d_probability_targets():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4, 5))
    y = xr.softmax(rng.normal(size=x.shape), axis=1)
    for reduction in ("mean", "none"):
        for name in ("cross_entropy", "cross_entropy_grad"):
            close(*_call(name, x, y, reduction=reduction, label_smoothing=0.1))


@pytest.mark.parametrize(("name", "call", "error", "argument"), [
    ("cross_entropy", lambda f: f(np.zeros((2, 3)), [0, 3]), ValueError, "target"),
    ("cross_entropy", lambda f: f(np.zeros((2, 3)), [0.5, 1]), (TypeError, ValueError),
     "target"),
    ("cross_entropy", lambda f: f(np.zeros((2, 3)), [0, 1], weight=[1.0]), ValueError, "weight"),
    ("cross_entropy", lambda f: f(np.zeros((2, 3)), [0, 1], reduction="avg"), ValueError,
     "reduction"),
    ("cross_entropy_grad", lambda f: f(np.zeros((2, 3)), [0, 1], grad_output=[1.0, 2.0]),
     ValueError, "grad_output"),
    ("nll_loss", lambda f: f(np.zeros((2, 3)), [0, -1]), ValueError, "target"),
    ("binary_cross_entropy", lambda f: f(np.array([0.5, 1.5]), np.array([1.0, 0.0])),
     ValueError, "input"),
    ("binary_cross_entropy_with_logits",
     lambda f: f(np.zeros(3), np.zeros(3), pos_weight=np.ones(2)), ValueError, "pos_weight"),
])
def test_textbook_gives_the_production_errors(name, call, error, argument):
    with pytest.raises(error, match=argument) as ours:
        call(getattr(tb, name))
    with pytest.raises(error) as production:
        call(getattr(xr, name))
    assert str(ours.value) == str(production.value)


def test_textbook_does_not_take_the_llm_options():
    with pytest.raises(TypeError):
        tb.cross_entropy(np.zeros((2, 3)), [0, 1], softcap=30.0)


def test_textbook_leaves_its_inputs_alone():
    x, t, w = np.array([[1.0, 2.0, 3.0]], np.float32), np.array([2]), np.array([1.0, 2.0, 3.0])
    before = [a.copy() for a in (x, t, w)]
    tb.cross_entropy_grad(x, t, weight=w)
    for a, b in zip((x, t, w), before):
        np.testing.assert_array_equal(a, b)
