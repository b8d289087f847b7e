"""The focal losses. sigmoid_focal_loss against torchvision's formula run by torch (fixture,
logits up to +-100) and its exact rewrite, gamma = 0 as BCE with logits bit for bit, central
differences, a finite gradient for gamma in (0, 1) at p_t = 1, the textbook twin,
properties, errors, float16/bfloat16 rounded once, and accuracy against mpmath."""

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
LOW = [pytest.param(np.dtype(np.float16), id="float16"),
       pytest.param(np.dtype(ml_dtypes.bfloat16), id="bfloat16")]
rng = np.random.default_rng(23)
SIGMOID_CASES = fh.fixture_cases("sigmoid_focal_loss")


def _binary(shape, soft=False):
    y = rng.integers(0, 2, shape).astype(np.float64)
    if soft:
        y.flat[::3] = rng.uniform(0.05, 0.95, y.flat[::3].shape)
    return y


# ============================================================================ sigmoid focal


def test_sigmoid_fixture_covers_the_options():
    seen = {(c["kwargs"]["gamma"], c["kwargs"]["alpha"]) for c in SIGMOID_CASES}
    assert seen == {(g, a) for g in (0.0, 0.5, 2.0, 5.0) for a in (0.25, -1.0)}
    assert max(np.abs(fh.decode_array(c["args"][0])).max() for c in SIGMOID_CASES) == 100.0


@pytest.mark.parametrize("case", SIGMOID_CASES, ids=[c["id"] for c in SIGMOID_CASES])
def test_sigmoid_matches_torchvision(case):
    # (torchvision's autograd gradient is nan where 1 - p_t rounds to 0 and gamma < 1: ours
    # is finite there, and the exact rewrite below checks its value)
    fh.assert_torch_fixture(case, finite_where_torch_nan=True)


STABLE = [c for c in SIGMOID_CASES if "stable" in c]


@pytest.mark.parametrize("case", STABLE, ids=[c["id"] for c in STABLE])
def test_sigmoid_matches_the_exact_rewrite_to_the_last_digits(case):
    # torchvision's own formula rounds a confident right logit's loss to 0; the same loss
    # written without 1 - sigmoid (autograd through it too) keeps it, and so must we:
    # relative agreement, with no absolute slack.
    loss, grad = fh.run_fixture_case(case)
    np.testing.assert_allclose(loss, fh.decode_array(case["stable"]["loss"]), rtol=1e-12,
                               atol=0)
    np.testing.assert_allclose(grad, fh.decode_array(case["stable"]["grad"]), rtol=1e-11,
                               atol=0)


def test_large_logits_keep_their_tiny_losses():
    x = np.array([100.0, -100.0, 30.0, -30.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    loss = xr.sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0)
    # alpha_t sigma(-|x|)^2 softplus(-|x|): all positive, none rounded to 0
    expected = np.array([0.25, 0.75, 0.25, 0.75]) * np.exp(-np.abs(x)) ** 3
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    assert (xr.sigmoid_focal_loss_grad(x, y) * np.array([-1, 1, -1, 1]) > 0).all()


@pytest.mark.parametrize("alpha", [-1.0, 0.25, 0.0, 1.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gamma_zero_is_bce_with_logits_exactly(alpha, reduction):
    x = rng.normal(size=(4, 3)) * 5
    y = _binary((4, 3), soft=True)
    weight = None if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
    g = rng.uniform(size=(4, 3)) if reduction == "none" else 1.5
    np.testing.assert_array_equal(
        xr.sigmoid_focal_loss(x, y, alpha=alpha, gamma=0.0, reduction=reduction),
        xr.binary_cross_entropy_with_logits(x, y, weight=weight, reduction=reduction))
    np.testing.assert_array_equal(
        xr.sigmoid_focal_loss_grad(x, y, alpha=alpha, gamma=0, reduction=reduction,
                                   grad_output=g),
        xr.binary_cross_entropy_with_logits_grad(x, y, weight=weight, reduction=reduction,
                                                 grad_output=g))


def test_a_tiny_gamma_is_continuous_with_gamma_zero():
    x, y = rng.normal(size=(3, 5)) * 4, _binary((3, 5), soft=True)
    for fn in (xr.sigmoid_focal_loss, xr.sigmoid_focal_loss_grad):
        np.testing.assert_allclose(fn(x, y, gamma=1e-12), fn(x, y, gamma=0.0), rtol=1e-10)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0, 0.0])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_gradient_matches_central_differences(gamma, alpha, reduction):
    x = rng.normal(size=(3, 4)) * 3
    y = _binary((3, 4), soft=True)
    g = rng.uniform(0.5, 2, (3, 4)) if reduction == "none" else np.float64(0.9)
    fh.assert_gradient(xr.sigmoid_focal_loss, xr.sigmoid_focal_loss_grad, x, y, grad_output=g,
                       alpha=alpha, gamma=gamma, reduction=reduction)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_gradient_is_finite_for_gamma_below_one_at_p_t_one(gamma):
    # p_t rounds to exactly 1: the naive gamma (1 - p_t)^(gamma - 1) is 0^-0.5 = inf
    x = np.array([800.0, -800.0, 40.0, -40.0, 0.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    grad = xr.sigmoid_focal_loss_grad(x, y, gamma=gamma)
    assert np.isfinite(grad).all()
    assert grad[0] == 0.0 and grad[1] == 0.0
    assert grad[2] < 0 < grad[3]  # still pulling the right way, a tiny amount
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # textbook: nan
        assert np.isnan(tb.sigmoid_focal_loss_grad(x[:2], y[:2], gamma=gamma)).all()


@given(st.integers(1, 4), st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
       st.sampled_from([0.25, -1.0, 0.9]), st.sampled_from(["none", "mean", "sum"]),
       st.data())
@settings(max_examples=80, deadline=None)
def test_sigmoid_textbook_equals_production(n, gamma, alpha, reduction, data):
    x = data.draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(-15, 15)))
    y = data.draw(hnp.arrays(np.float64, (n, 3), elements=st.sampled_from([0.0, 1.0, 0.3])))
    kw = dict(alpha=alpha, gamma=gamma, reduction=reduction)
    g = np.ones((n, 3)) if reduction == "none" else 0.5
    np.testing.assert_allclose(tb.sigmoid_focal_loss(x, y, **kw),
                               xr.sigmoid_focal_loss(x, y, **kw), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tb.sigmoid_focal_loss_grad(x, y, **kw, grad_output=g),
                               xr.sigmoid_focal_loss_grad(x, y, **kw, grad_output=g),
                               rtol=1e-8, atol=1e-12)


@given(hnp.arrays(np.float64, (2, 5), elements=st.floats(-50, 50)),
       hnp.arrays(np.float64, (2, 5), elements=st.sampled_from([0.0, 1.0])),
       st.floats(0.1, 6), st.floats(0, 1))
@settings(max_examples=100, deadline=None)
def test_focal_is_a_down_weighted_bce(x, y, gamma, alpha):
    bce = xr.binary_cross_entropy_with_logits(x, y, reduction="none")
    loss = xr.sigmoid_focal_loss(x, y, alpha=-1.0, gamma=gamma)
    assert (loss >= 0).all() and (loss <= bce).all()
    weighted = xr.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma)
    np.testing.assert_allclose(weighted, loss * np.where(y == 1, alpha, 1 - alpha), rtol=1e-14)
    # easy examples (p_t > 1/2) lose more as gamma grows
    easier = xr.sigmoid_focal_loss(x, y, alpha=-1.0, gamma=gamma + 1)
    assert (easier <= loss).all()


def test_sigmoid_module_and_dtypes():
    x, y = (rng.normal(size=(2, 3)) * 3).astype(np.float32), _binary((2, 3))
    saved = x.copy(), y.copy()
    module = xr.SigmoidFocalLoss(alpha=0.5, gamma=1.5, reduction="mean")
    assert module(x, y) == xr.sigmoid_focal_loss(x, y, 0.5, 1.5, "mean")
    np.testing.assert_array_equal(module.grad(x, y, grad_output=2.0),
                                  xr.sigmoid_focal_loss_grad(x, y, 0.5, 1.5, "mean", 2.0))
    assert module(x, y).dtype == np.float32 and module.grad(x, y).dtype == np.float32
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(y, saved[1])
    assert xr.sigmoid_focal_loss(np.float64(2.0), 1.0).shape == ()


@pytest.mark.parametrize("call, error, words", [
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0], alpha=1.5), ValueError, "alpha"),
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0], alpha="a"), TypeError, "alpha"),
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0], gamma=-1.0), ValueError, "gamma"),
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0], gamma=np.inf), ValueError, "gamma"),
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0], gamma=None), TypeError, "gamma"),
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0], reduction="batchmean"), ValueError,
     "reduction"),
    (lambda: xr.sigmoid_focal_loss([1.0], [1.0, 0.0]), ValueError, "target"),
    (lambda: xr.sigmoid_focal_loss_grad([1.0], [1.0], grad_output=[1.0, 2.0]), ValueError,
     "grad_output"),
])
def test_sigmoid_errors_name_the_argument(call, error, words):
    fh.check_error(call, error, words)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_low_precision_is_rounded_once(dtype, gamma, reduction):
    x = rng.normal(size=(4, 6)) * 4
    y = _binary((4, 6), soft=True)
    g = rng.uniform(0.5, 2, (4, 6)) if reduction == "none" else np.float64(0.7)
    kw = dict(alpha=0.25, gamma=gamma, reduction=reduction)
    fh.assert_rounded_once(xr.sigmoid_focal_loss, [x, y], kw, dtype)
    fh.assert_rounded_once(xr.sigmoid_focal_loss_grad, [x, y], dict(kw, grad_output=g), dtype)


def _sigmoid_exact(x, y, alpha, gamma):
    """mpmath: each element's loss and gradient (the derivation's formula, exactly), and the
    size of the gradient's two terms (for a hard target they have the same sign: their sum)."""
    losses, grads, terms = [], [], []
    for xv, yv in zip(fh.mp(x), fh.mp(y)):
        s, s_neg = 1 / (1 + mpmath.exp(-xv)), 1 / (1 + mpmath.exp(xv))
        ce = yv * mpmath.log1p(mpmath.exp(-xv)) + (1 - yv) * mpmath.log1p(mpmath.exp(xv))
        q = yv * s_neg + (1 - yv) * s
        a = 1 if alpha < 0 else alpha * yv + (1 - alpha) * (1 - yv)
        g = mpmath.mpf(gamma)
        losses.append(a * ce * q**g)
        r = s * s_neg / q
        # (sigma(x) - y as (1 - y) sigma(x) - y sigma(-x): no cancellation at 50 digits either)
        slope, pull = (1 - yv) * s - yv * s_neg, g * (1 - 2 * yv) * r * ce
        grads.append(a * q**g * (slope + pull))
        terms.append(abs(a) * q**g * (abs(slope) + abs(pull)))
    return losses, grads, terms


def test_sigmoid_within_four_units_of_exact():
    """The measure of tests/helpers/accuracy_oracle.py for element-wise losses: the error
    in units of eps * |exact| * (1 + |x|), for every element's loss and gradient (per
    element, stricter than per row). For a soft target the gradient is a sum of two terms
    of opposite signs, sigma(x) - y and the pull of the factor, that can cancel: there
    |exact| is the size of the two terms (for hard targets, of one sign, it is |exact|)."""
    sizes = np.array([1e-3, 0.1, 1.0, 3.0, 10.0, 30.0, 37.0, 100.0, 300.0, 700.0])
    draw = np.random.default_rng(5)
    soft = np.where(draw.uniform(size=40) < 0.5, draw.integers(0, 2, 40), draw.uniform(size=40))
    x = np.concatenate([sizes, -sizes, draw.normal(size=40) * 5, draw.normal(size=40)])
    y = np.concatenate([np.ones(10), np.ones(10), soft, soft])
    x, y = np.concatenate([x, x]), np.concatenate([y, 1 - y])
    worst = {}
    with mpmath.workdps(50):
        for gamma in (0.5, 2.0, 5.0):
            for alpha in (0.25, -1.0):
                losses, grads, terms = _sigmoid_exact(x, y, alpha, gamma)

                def scale(values):
                    return [max(abs(v), mpmath.mpf(fh.TINY)) * (1 + abs(float(xv)))
                            for v, xv in zip(values, x)]
                kw = dict(alpha=alpha, gamma=gamma, reduction="none")
                worst[("loss", gamma, alpha)] = fh.error_units(
                    xr.sigmoid_focal_loss(x, y, **kw), losses, scale(losses))
                worst[("grad", gamma, alpha)] = fh.error_units(
                    xr.sigmoid_focal_loss_grad(x, y, **kw), grads, scale(terms))
                # the mean: over the whole input, scaled by 1 + max|x|
                mean = mpmath.fsum(losses) / len(x)
                worst[("mean", gamma, alpha)] = fh.error_units(
                    xr.sigmoid_focal_loss(x, y, alpha, gamma, "mean"), [mean],
                    [abs(mean) * (1 + np.abs(x).max())])
    assert len(worst) == 18
    assert max(worst.values()) <= fh.BOUND, worst


# ============================================================================ softmax focal

SOFTMAX_CASES = fh.fixture_cases("softmax_focal_loss")


def test_softmax_fixture_covers_the_options():
    assert {c["id"].split("/")[1] for c in SOFTMAX_CASES} == {"index", "ignored", "probs",
                                                              "image"}
    assert {c["kwargs"]["gamma"] for c in SOFTMAX_CASES} == {0.0, 0.5, 2.0}


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=[c["id"] for c in SOFTMAX_CASES])
def test_softmax_matches_torch(case):
    fh.assert_torch_fixture(case)


@pytest.mark.parametrize("kind", ["index", "ignored", "probs", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_gamma_zero_is_cross_entropy_exactly(kind, reduction):
    x, t = fh.class_batch(rng, kind)
    kw = dict(weight=rng.uniform(0.5, 2, 4), reduction=reduction, label_smoothing=0.1)
    np.testing.assert_array_equal(xr.softmax_focal_loss(x, t, 0.0, **kw),
                                  xr.cross_entropy(x, t, **kw))
    np.testing.assert_array_equal(xr.softmax_focal_loss_grad(x, t, 0, **kw),
                                  xr.cross_entropy_grad(x, t, **kw))
    # and the general formula is continuous there
    np.testing.assert_allclose(xr.softmax_focal_loss(x, t, 1e-12, **kw),
                               xr.cross_entropy(x, t, **kw), rtol=1e-10)
    np.testing.assert_allclose(xr.softmax_focal_loss_grad(x, t, 1e-12, **kw),
                               xr.cross_entropy_grad(x, t, **kw), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("kind", ["index", "ignored", "probs", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_softmax_gradient_matches_central_differences(kind, reduction, gamma):
    x, t = fh.class_batch(rng, kind)
    loss_shape = np.shape(xr.softmax_focal_loss(x, t, reduction="none"))
    g = rng.uniform(0.5, 2, loss_shape) if reduction == "none" else np.float64(1.3)
    for options in ({}, {"weight": rng.uniform(0.5, 2, 4), "label_smoothing": 0.2}):
        fh.assert_gradient(xr.softmax_focal_loss, xr.softmax_focal_loss_grad, x, t,
                           grad_output=g, gamma=gamma, reduction=reduction, **options)


@pytest.mark.parametrize("gamma", [0.1, 0.5])
def test_softmax_gradient_is_finite_for_gamma_below_one_at_p_one(gamma):
    x, t = np.array([[800.0, 0.0, 0.0], [40.0, 0.0, 0.0]]), np.array([0, 0])
    grad = xr.softmax_focal_loss_grad(x, t, gamma=gamma, reduction="none")
    assert np.isfinite(grad).all()
    assert (grad[0] == 0).all()
    assert grad[1, 0] < 0 < grad[1, 1]  # a tiny pull, the right way
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        assert np.isnan(tb.softmax_focal_loss_grad(x[:1], t[:1], gamma=gamma)).any()


@given(st.integers(1, 4), st.integers(1, 5), st.sampled_from([0.5, 1.0, 2.0, 5.0]),
       st.sampled_from(["none", "mean", "sum"]), st.sampled_from([0.0, 0.1]), st.booleans(),
       st.data())
@settings(max_examples=80, deadline=None)
def test_softmax_textbook_equals_production(n, c, gamma, reduction, smoothing, probabilities,
                                            data):
    x = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-15, 15)))
    if probabilities:
        t = tb.softmax(np.cos(np.arange(n * c)).reshape(n, c))
    else:
        t = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    if c == 1 or (np.max(tb.softmax(x), axis=1) > 1 - 1e-9).any():
        return  # the textbook's (1 - p)^(gamma - 1) at p = 1 is its own subject (above)
    kw = dict(gamma=gamma, reduction=reduction, label_smoothing=smoothing)
    g = np.ones(n) if reduction == "none" else 0.7
    np.testing.assert_allclose(tb.softmax_focal_loss(x, t, **kw),
                               xr.softmax_focal_loss(x, t, **kw), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tb.softmax_focal_loss_grad(x, t, **kw, grad_output=g),
                               xr.softmax_focal_loss_grad(x, t, **kw, grad_output=g),
                               rtol=1e-8, atol=1e-12)


@given(hnp.arrays(np.float64, (3, 4), elements=st.floats(-30, 30)), st.floats(0.1, 5))
@settings(max_examples=60, deadline=None)
def test_softmax_focal_is_a_down_weighted_cross_entropy(x, gamma):
    t = np.array([0, 1, 3])
    ce = xr.cross_entropy(x, t, reduction="none")
    loss = xr.softmax_focal_loss(x, t, gamma=gamma, reduction="none")
    assert (loss >= 0).all() and (loss <= ce).all()
    assert (xr.softmax_focal_loss(x, t, gamma=gamma + 1, reduction="none") <= loss).all()


def test_softmax_mean_uses_cross_entropys_denominator():
    x, t = fh.class_batch(rng, "ignored")
    w = np.array([0.5, 2.0, 1.0, 1.5])
    total = xr.softmax_focal_loss(x, t, weight=w, reduction="sum")
    kept = t != -100
    assert xr.softmax_focal_loss(x, t, weight=w) == pytest.approx(total / w[t[kept]].sum(),
                                                                   rel=1e-15)
    # a weight of alpha for every class cancels out of mean (Keras's alpha does not)
    np.testing.assert_allclose(xr.softmax_focal_loss(x, t, weight=np.full(4, 0.25)),
                               xr.softmax_focal_loss(x, t), rtol=1e-15)


def test_softmax_module_and_dtypes():
    x, t = fh.class_batch(rng, "image")
    x = x.astype(np.float32)
    saved = x.copy(), t.copy()
    module = xr.SoftmaxFocalLoss(gamma=1.5, reduction="sum")
    assert module(x, t) == xr.softmax_focal_loss(x, t, 1.5, reduction="sum")
    assert module(x, t).dtype == np.float32 and module.grad(x, t).dtype == np.float32
    assert module.grad(x, t).shape == x.shape
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(t, saved[1])


@pytest.mark.parametrize("call, error, words", [
    (lambda: xr.softmax_focal_loss([[0.0, 1.0]], [0], gamma=-0.5), ValueError, "gamma"),
    (lambda: xr.softmax_focal_loss([[0.0, 1.0]], [0], gamma="2"), TypeError, "gamma"),
    (lambda: xr.softmax_focal_loss([[0.0, 1.0]], [5]), ValueError, "target"),
    (lambda: xr.softmax_focal_loss([[0.0, 1.0]], [0.5]), TypeError, "target"),
    (lambda: xr.softmax_focal_loss([[0.0, 1.0]], [0], label_smoothing=2.0), ValueError,
     "label_smoothing"),
    (lambda: xr.softmax_focal_loss_grad([[0.0, 1.0]], [0], reduction="none",
                                        grad_output=1.0), ValueError, "grad_output"),
])
def test_softmax_errors_name_the_argument(call, error, words):
    fh.check_error(call, error, words)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("kind", ["ignored", "probs", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_low_precision_is_rounded_once(dtype, kind, reduction):
    x, t = fh.class_batch(rng, kind)
    kw = dict(gamma=2.0, weight=rng.uniform(0.5, 2, 4), reduction=reduction,
              label_smoothing=0.1)
    loss_shape = np.shape(xr.softmax_focal_loss(x, t, reduction="none"))
    g = rng.uniform(0.5, 2, loss_shape) if reduction == "none" else np.float64(0.6)
    fh.assert_rounded_once(xr.softmax_focal_loss, [x, t], kw, dtype)
    fh.assert_rounded_once(xr.softmax_focal_loss_grad, [x, t], dict(kw, grad_output=g), dtype)


def _softmax_exact_rows(x, q, gamma):
    """Per row: the exact loss and gradient rows H p - h, with 1 - p_c as the sum of the
    other probabilities and the top class's entry in its complement form."""
    g = mpmath.mpf(gamma)
    losses, grads = [], []
    for row, q_row in zip(x, q):
        gaps, probs = oracle.row_gaps(row)  # gaps: -log p_c
        a = fh.mp(q_row)
        u = oracle.others_sum(probs)
        losses.append(mpmath.fsum(a[c] * u[c]**g * gaps[c] for c in range(len(a)) if a[c]))
        h = [a[c] * u[c]**g * (1 + g * (probs[c] * gaps[c] / u[c] if u[c] else 1))
             if a[c] else mpmath.mpf(0) for c in range(len(a))]
        h_others = oracle.others_sum(h)
        grads.append([probs[j] * h_others[j] - h[j] * u[j] for j in range(len(a))])
    return losses, grads


def test_softmax_within_four_units_of_exact():
    """accuracy_oracle's measure, as in tests/test_poly.py."""
    draw = np.random.default_rng(oracle.SEED)
    worst = []
    for label, x in oracle.class_batches(draw):
        if label not in ("random x1", "random x10", "random x100", "near-ties", "confident",
                         "random x3, C=100"):
            continue
        for target in (oracle.index_targets(draw, x), oracle.prob_targets(draw, x.shape)):
            for gamma in (0.5, 2.0):
                q, _, denominator = tb.target_distribution(x, target)
                with mpmath.workdps(60):
                    losses, grads = _softmax_exact_rows(x, q, gamma)
                    scales = [oracle.loss_scale(r) for r in x]
                    for reduction in ("none", "mean"):
                        got = xr.softmax_focal_loss(x, target, gamma, reduction=reduction)
                        grad = xr.softmax_focal_loss_grad(x, target, gamma, reduction=reduction)
                        rows = np.array(grads, dtype=object)
                        if reduction == "none":
                            value = oracle.ratios(got, np.array(losses, object), scales)
                        else:
                            d = mpmath.mpf(float(denominator))
                            value = oracle.ratios(got, np.array([mpmath.fsum(losses) / d],
                                                                object), [oracle.loss_scale(x)])
                            rows = rows / d
                        grad_ratio = oracle.grad_ratios(grad, rows, scales)
                        worst.append((max(value.max(), grad_ratio.max()), label,
                                      "index" if target.ndim == 1 else "probs", gamma, reduction))
    assert len(worst) == 6 * 2 * 2 * 2
    assert max(worst)[0] <= oracle.BOUND, max(worst)
