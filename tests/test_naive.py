"""The vectorized library against its loop-based naive twins (``tests/naive.py``).

hypothesis draws small float64 problems of every shape the API accepts (1-D to
4-D, empty batches included) with every option, and each function must agree with
its twin to ``rtol=1e-12``. The small absolute floor ``ATOL`` is there for the
twins, not for the library: they compute ``log(1 + tiny)`` and ``p - 1`` plainly,
which is off by about one ulp of 1 (1e-16) when the true value is near 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xent_ref as xr
from tests.helpers import naive
from tests.helpers.strategies import (REDUCTIONS, class_axis, class_inputs, class_weights,
                                      index_targets, loss_shape, probability_targets)

RTOL = 1e-12
ATOL = 1e-13

LOGITS = st.floats(-10, 10, allow_nan=False, width=64)
POSITIVE_WEIGHTS = st.floats(0.1, 3.0, width=64)
UPSTREAM = st.floats(-2.0, 2.0, width=64)

fast = settings(max_examples=100, deadline=None)


def assert_matches(got, want):
    got = np.asarray(got)
    assert got.dtype == np.float64
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------


@st.composite
def upstream(draw, reduction, shape):
    """``grad_output``: None (the default), a scalar for mean/sum, an array for none."""
    if draw(st.booleans()):
        return None
    if reduction == "none":
        return draw(hnp.arrays(np.float64, shape, elements=UPSTREAM))
    return draw(UPSTREAM)


def maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def class_index_targets(draw, logits):
    """Class indices, some equal to ``ignore_index`` (-100, -1 or a real class), and it."""
    n_classes = logits.shape[class_axis(logits)]
    ignore_index = draw(st.sampled_from([-100, -1, draw(st.integers(0, n_classes - 1))]))
    return draw(index_targets(logits, ignore_index)), ignore_index


@st.composite
def cross_entropy_calls(draw):
    """``(input, target, options, grad_output)`` for cross_entropy, either target kind."""
    logits = draw(class_inputs(LOGITS))
    if draw(st.booleans()):
        target = draw(probability_targets(logits))
        ignore_index = draw(st.sampled_from([-100, -1]))
    else:
        target, ignore_index = draw(class_index_targets(logits))
    reduction = draw(st.sampled_from(REDUCTIONS))
    options = dict(
        weight=draw(maybe(class_weights(logits.shape[class_axis(logits)]))),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=draw(st.one_of(st.just(0.0), st.floats(0, 1))),
    )
    return logits, target, options, draw(upstream(reduction, loss_shape(logits.shape)))


@st.composite
def nll_calls(draw):
    """``(input, target, options, grad_output)`` for nll_loss (any real input, as in PyTorch)."""
    log_probs = draw(class_inputs(LOGITS))
    target, ignore_index = draw(class_index_targets(log_probs))
    reduction = draw(st.sampled_from(REDUCTIONS))
    options = dict(weight=draw(maybe(class_weights(log_probs.shape[class_axis(log_probs)]))),
                   ignore_index=ignore_index, reduction=reduction)
    return log_probs, target, options, draw(upstream(reduction, loss_shape(log_probs.shape)))


@st.composite
def broadcastable_shape(draw, shape):
    """A shape that broadcasts (right-aligned) to ``shape``: a suffix, some sides set to 1."""
    k = draw(st.integers(0, len(shape)))
    suffix = shape[len(shape) - k:]
    return tuple(draw(st.sampled_from([side, 1])) for side in suffix)


@st.composite
def elementwise_weight(draw, shape):
    return draw(hnp.arrays(np.float64, draw(broadcastable_shape(shape)),
                           elements=POSITIVE_WEIGHTS))


@st.composite
def binary_calls(draw, logits):
    """``(input, target, options, grad_output)`` for the binary losses."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=3))
    values = LOGITS if logits else st.floats(0, 1)
    x = draw(hnp.arrays(np.float64, shape, elements=values))
    y = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    reduction = draw(st.sampled_from(REDUCTIONS))
    options = dict(weight=draw(maybe(elementwise_weight(shape))), reduction=reduction)
    if logits:
        options["pos_weight"] = draw(maybe(elementwise_weight(shape)))
    return x, y, options, draw(upstream(reduction, shape))


@st.composite
def softmax_calls(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=LOGITS))
    g = draw(hnp.arrays(np.float64, shape, elements=UPSTREAM))
    return x, g, draw(st.integers(-len(shape), len(shape) - 1))


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


@fast
@given(softmax_calls())
def test_softmax(call):
    x, g, axis = call
    assert_matches(xr.softmax(x, axis=axis), naive.naive_softmax(x, axis))
    assert_matches(xr.log_softmax(x, axis=axis), naive.naive_log_softmax(x, axis))
    assert_matches(xr.softmax_grad(x, g, axis=axis), naive.naive_softmax_grad(x, g, axis))
    assert_matches(xr.log_softmax_grad(x, g, axis=axis), naive.naive_log_softmax_grad(x, g, axis))


LOSSES = [  # (library loss, library gradient, naive loss, naive gradient, calls)
    pytest.param(xr.cross_entropy, xr.cross_entropy_grad, naive.naive_cross_entropy,
                 naive.naive_cross_entropy_grad, cross_entropy_calls(), id="cross_entropy"),
    pytest.param(xr.nll_loss, xr.nll_loss_grad, naive.naive_nll_loss, naive.naive_nll_loss_grad,
                 nll_calls(), id="nll_loss"),
    pytest.param(xr.binary_cross_entropy, xr.binary_cross_entropy_grad,
                 naive.naive_binary_cross_entropy, naive.naive_binary_cross_entropy_grad,
                 binary_calls(logits=False), id="binary_cross_entropy"),
    pytest.param(xr.binary_cross_entropy_with_logits, xr.binary_cross_entropy_with_logits_grad,
                 naive.naive_binary_cross_entropy_with_logits,
                 naive.naive_binary_cross_entropy_with_logits_grad,
                 binary_calls(logits=True), id="binary_cross_entropy_with_logits"),
]


@pytest.mark.parametrize(("loss", "grad", "naive_loss", "naive_grad", "calls"), LOSSES)
@fast
@given(data=st.data())
def test_loss_and_gradient(loss, grad, naive_loss, naive_grad, calls, data):
    x, target, options, grad_output = data.draw(calls)
    assert_matches(loss(x, target, **options), naive_loss(x, target, **options))
    assert_matches(grad(x, target, **options, grad_output=grad_output),
                   naive_grad(x, target, **options, grad_output=grad_output))
