"""poly1_cross_entropy and its gradient: torch's composition F.cross_entropy + epsilon *
sum q (1 - softmax) (fixture), epsilon = 0 as cross_entropy bit for bit, optax's formula,
central differences, the textbook twin, errors, float16/bfloat16 rounded once, and accuracy
against mpmath."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers import accuracy_oracle as oracle
from tests.helpers import family as fh
import xent_ref as xr
from xent_ref import textbook as tb

ml_dtypes = pytest.importorskip("ml_dtypes")
CASES = fh.fixture_cases("poly1_cross_entropy")
rng = np.random.default_rng(29)


def test_fixture_covers_the_options():
    kinds = {c["id"].split("/")[1] for c in CASES}
    assert kinds == {"index", "ignored", "probs", "image"}
    assert {c["kwargs"]["epsilon"] for c in CASES} == {0.0, 1.0, -0.5}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_matches_torch(case):
    fh.assert_torch_fixture(case)


@pytest.mark.parametrize("kind", ["index", "ignored", "probs", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_epsilon_zero_is_cross_entropy_exactly(kind, reduction):
    x, t = fh.class_batch(rng, kind)
    kw = dict(weight=rng.uniform(0.5, 2, 4), reduction=reduction, label_smoothing=0.1)
    np.testing.assert_array_equal(xr.poly1_cross_entropy(x, t, 0.0, **kw),
                                  xr.cross_entropy(x, t, **kw))
    np.testing.assert_array_equal(xr.poly1_cross_entropy_grad(x, t, 0.0, **kw),
                                  xr.cross_entropy_grad(x, t, **kw))


def test_is_optax_poly_loss_for_probability_targets():
    # optax: softmax_cross_entropy(logits, labels) + epsilon * sum(labels * (1 - softmax))
    x, y = fh.class_batch(rng, "probs")
    expected = xr.cross_entropy(x, y, reduction="none") + 2.0 * (y * (1 - xr.softmax(x))).sum(1)
    np.testing.assert_allclose(xr.poly1_cross_entropy(x, y, 2.0, reduction="none"), expected,
                               rtol=1e-13)
    # and for a class index, -log p_t + epsilon (1 - p_t)
    t = np.array([0, 3, 1, 2, 2])
    p_t = xr.softmax(x)[np.arange(5), t]
    np.testing.assert_allclose(xr.poly1_cross_entropy(x, t, 1.0, reduction="none"),
                               -np.log(p_t) + (1 - p_t), rtol=1e-13)


def test_a_confident_row_keeps_its_tiny_poly_term():
    x, t = np.array([[50.0, 0.0, 0.0]]), np.array([0])
    tiny = 2 * np.exp(-50.0)  # 1 - p_t, to first order; -log p_t is the same
    np.testing.assert_allclose(xr.poly1_cross_entropy(x, t, 1.0), 2 * tiny, rtol=1e-15)
    assert xr.poly1_cross_entropy_grad(x, t, 1.0)[0, 0] == pytest.approx(-2 * tiny, rel=1e-15)


@pytest.mark.parametrize("kind", ["index", "ignored", "probs", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("options", [{}, {"weight": [0.5, 2.0, 1.0, 1.5],
                                          "label_smoothing": 0.2}])
def test_gradient_matches_central_differences(kind, reduction, options):
    x, t = fh.class_batch(rng, kind)
    loss_shape = np.shape(xr.poly1_cross_entropy(x, t, reduction="none"))
    g = rng.uniform(0.5, 2, loss_shape) if reduction == "none" else np.float64(1.3)
    for epsilon in (1.0, -0.5):
        fh.assert_gradient(xr.poly1_cross_entropy, xr.poly1_cross_entropy_grad, x, t,
                           grad_output=g, epsilon=epsilon, reduction=reduction,
                           weight=None if not options else np.array(options["weight"]),
                           label_smoothing=options.get("label_smoothing", 0.0))


@given(st.integers(1, 4), st.integers(1, 5), st.sampled_from([0.0, 1.0, 2.0, -1.0]),
       st.sampled_from(["none", "mean", "sum"]), st.sampled_from([0.0, 0.1]), st.booleans(),
       st.data())
@settings(max_examples=80, deadline=None)
def test_textbook_equals_production(n, c, epsilon, reduction, smoothing, probabilities, data):
    x = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-20, 20)))
    if probabilities:
        t = tb.softmax(np.cos(np.arange(n * c)).reshape(n, c))
    else:
        t = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    kw = dict(epsilon=epsilon, reduction=reduction, label_smoothing=smoothing)
    g = np.ones(n) if reduction == "none" else 0.7
    np.testing.assert_allclose(tb.poly1_cross_entropy(x, t, **kw),
                               xr.poly1_cross_entropy(x, t, **kw), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tb.poly1_cross_entropy_grad(x, t, **kw, grad_output=g),
                               xr.poly1_cross_entropy_grad(x, t, **kw, grad_output=g),
                               rtol=1e-9, atol=1e-12)


def test_module_dtypes_and_inputs_untouched():
    x, t = fh.class_batch(rng, "image")
    x = x.astype(np.float32)
    saved = x.copy(), t.copy()
    module = xr.Poly1CrossEntropyLoss(epsilon=2.0, reduction="sum")
    assert module(x, t) == xr.poly1_cross_entropy(x, t, 2.0, reduction="sum")
    assert module(x, t).dtype == np.float32 and module.grad(x, t).dtype == np.float32
    assert module.grad(x, t).shape == x.shape
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(t, saved[1])
    assert "epsilon=2.0" in repr(module)


@pytest.mark.parametrize("call, error, words", [
    (lambda: xr.poly1_cross_entropy([[0.0, 1.0]], [0], epsilon="1"), TypeError, "epsilon"),
    (lambda: xr.poly1_cross_entropy([[0.0, 1.0]], [0], epsilon=np.nan), ValueError, "epsilon"),
    (lambda: xr.poly1_cross_entropy([[0.0, 1.0]], [2]), ValueError, "target"),
    (lambda: xr.poly1_cross_entropy([[0.0, 1.0]], [0], weight=[1.0]), ValueError, "weight"),
    (lambda: xr.poly1_cross_entropy([[0.0, 1.0]], [0], reduction="avg"), ValueError,
     "reduction"),
    (lambda: xr.poly1_cross_entropy_grad([[0.0, 1.0]], [0], grad_output=[1.0]), ValueError,
     "grad_output"),
])
def test_errors_name_the_argument(call, error, words):
    fh.check_error(call, error, words)


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)],
                         ids=["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["ignored", "probs", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_low_precision_is_rounded_once(dtype, kind, reduction):
    x, t = fh.class_batch(rng, kind)
    kw = dict(epsilon=1.0, weight=rng.uniform(0.5, 2, 4), reduction=reduction,
              label_smoothing=0.1)
    loss_shape = np.shape(xr.poly1_cross_entropy(x, t, reduction="none"))
    g = rng.uniform(0.5, 2, loss_shape) if reduction == "none" else np.float64(0.6)
    fh.assert_rounded_once(xr.poly1_cross_entropy, [x, t], kw, dtype)
    fh.assert_rounded_once(xr.poly1_cross_entropy_grad, [x, t], dict(kw, grad_output=g), dtype)


# ---------------------------------------------------------------------- accuracy (mpmath)


def _exact_rows(x, q, epsilon):
    """Per row: the exact loss and gradient, every difference written without cancellation
    (1 - p_c as the sum of the other probabilities, as accuracy_oracle does)."""
    losses, grads = [], []
    eps = mpmath.mpf(epsilon)
    for row, q_row in zip(x, q):
        gaps, probs = oracle.row_gaps(row)
        a = fh.mp(q_row)
        one_minus_p = oracle.others_sum(probs)
        losses.append(mpmath.fsum(ac * (g + eps * u) for ac, g, u in zip(a, gaps, one_minus_p)))
        a_others = oracle.others_sum(a)
        qp_others = [mpmath.fsum(a[c] * probs[c] for c in range(len(a)) if c != j)
                     for j in range(len(a))]
        grads.append([probs[j] * a_others[j] - a[j] * one_minus_p[j]
                      + eps * probs[j] * (qp_others[j] - a[j] * one_minus_p[j])
                      for j in range(len(a))])
    return losses, grads


def test_within_four_units_of_exact():
    """accuracy_oracle's measure: losses in units of eps |exact| (1 + max|x|) of their row
    (of the whole input once reduced), gradient rows by their largest exact entry."""
    draw = np.random.default_rng(oracle.SEED)
    worst = []
    for label, x in oracle.class_batches(draw):
        if label not in ("random x1", "random x10", "random x100", "near-ties", "confident",
                         "random x3, C=100"):
            continue
        for target in (oracle.index_targets(draw, x), oracle.prob_targets(draw, x.shape)):
            for options in ({}, {"weight": draw.uniform(0.5, 2, x.shape[1]),
                                 "label_smoothing": 0.1}):
                q = tb.target_distribution(x, target, options.get("weight"),
                                           label_smoothing=options.get("label_smoothing", 0))
                _, _, denominator = q
                with mpmath.workdps(50):
                    losses, grads = _exact_rows(x, q[0], 1.0)
                    scales = [oracle.loss_scale(r) for r in x]
                    for reduction in ("none", "mean"):
                        kw = dict(options, reduction=reduction)
                        got = xr.poly1_cross_entropy(x, target, 1.0, **kw)
                        grad = xr.poly1_cross_entropy_grad(x, target, 1.0, **kw)
                        if reduction == "none":
                            value = oracle.ratios(got, np.array(losses, object), scales)
                            rows = np.array(grads, dtype=object)
                        else:
                            exact = mpmath.fsum(losses) / mpmath.mpf(float(denominator))
                            value = oracle.ratios(got, np.array([exact], object),
                                                  [oracle.loss_scale(x)])
                            rows = np.array(grads, dtype=object) / mpmath.mpf(float(denominator))
                        grad_ratio = oracle.grad_ratios(grad, rows, scales)
                        worst.append((max(value.max(), grad_ratio.max()), label, reduction))
    assert len(worst) == 6 * 2 * 2 * 2
    assert max(worst)[0] <= oracle.BOUND, max(worst)
