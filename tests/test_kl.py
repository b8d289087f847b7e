"""kl_div and kl_div_grad: PyTorch's F.kl_div (fixture), central differences, the textbook
twin, properties (KL >= 0, cross-entropy = entropy + KL), errors, float16/bfloat16 rounded
once, and accuracy against mpmath."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers import family as fh
import xent_ref as xr
from xent_ref import textbook as tb

ml_dtypes = pytest.importorskip("ml_dtypes")
REDUCTIONS = ("none", "sum", "mean", "batchmean")
CASES = fh.fixture_cases("kl_div")
rng = np.random.default_rng(17)


def _log_probs(shape):
    return xr.log_softmax(rng.normal(size=shape) * 2, axis=-1)


def _probs(shape, zeros=False):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    if zeros:
        p[..., 0] = 0.0
        p /= p.sum(axis=-1, keepdims=True)
    return p


# ------------------------------------------------------------------------------ PyTorch


def test_fixture_covers_every_option():
    assert fh.FIXTURE["torch_version"].startswith("2.13.")
    seen = {(c["kwargs"]["reduction"], c["kwargs"].get("log_target", False), c["dtype"])
            for c in CASES}
    assert seen == {(r, lt, d) for r in REDUCTIONS for lt in (False, True)
                    for d in ("float32", "float64")}
    assert any("zeros=True" in c["id"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_matches_torch(case):
    fh.assert_torch_fixture(case)


# ------------------------------------------------------------------- finite differences


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_matches_central_differences(reduction, log_target):
    x = _log_probs((3, 4))
    p = _probs((3, 4), zeros=True)
    target = np.log(np.where(p > 0, p, 1e-3)) if log_target else p
    g = rng.uniform(0.5, 2, (3, 4)) if reduction == "none" else np.float64(1.3)
    fh.assert_gradient(xr.kl_div, xr.kl_div_grad, x, target, grad_output=g,
                       reduction=reduction, log_target=log_target)


def test_gradient_of_a_zero_d_input():
    fh.assert_gradient(xr.kl_div, xr.kl_div_grad, np.array(-0.7), np.array(0.3),
                       reduction="batchmean")


# ------------------------------------------------------------------------------ textbook


@given(st.integers(1, 4), st.integers(1, 5), st.sampled_from(REDUCTIONS), st.booleans(),
       st.data())
@settings(max_examples=80, deadline=None)
def test_textbook_equals_production(n, c, reduction, log_target, data):
    x = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-20, 0)))
    target = data.draw(hnp.arrays(np.float64, (n, c),
                                  elements=st.floats(-20, 0) if log_target
                                  else st.floats(0, 1)))
    g = np.ones((n, c)) if reduction == "none" else 0.8
    kw = dict(reduction=reduction, log_target=log_target)
    np.testing.assert_allclose(tb.kl_div(x, target, **kw), xr.kl_div(x, target, **kw),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tb.kl_div_grad(x, target, **kw, grad_output=g),
                               xr.kl_div_grad(x, target, **kw, grad_output=g),
                               rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- properties


@given(hnp.arrays(np.float64, (3, 4), elements=st.floats(-30, 30)),
       hnp.arrays(np.float64, (3, 4), elements=st.floats(0.01, 1)))
@settings(max_examples=100, deadline=None)
def test_cross_entropy_is_entropy_plus_kl(logits, weights):
    p = weights / weights.sum(axis=1, keepdims=True)
    log_q = xr.log_softmax(logits, axis=1)
    entropy = -(p * np.log(p)).sum()
    ce = xr.cross_entropy(logits, p, reduction="sum")
    kl = xr.kl_div(log_q, p, reduction="sum")
    assert kl >= -1e-12 * (1 + abs(ce))  # Gibbs' inequality
    np.testing.assert_allclose(ce, entropy + kl, rtol=1e-12, atol=1e-12)
    # the same gradient with respect to the logits: the entropy is a constant
    through_log_softmax = xr.log_softmax_grad(logits, xr.kl_div_grad(log_q, p, "batchmean"),
                                              axis=1)
    np.testing.assert_allclose(through_log_softmax, xr.cross_entropy_grad(logits, p),
                               rtol=1e-9, atol=1e-15)


def test_kl_of_a_distribution_from_itself_is_zero():
    p = _probs((4, 6), zeros=True)
    log_p = np.log(np.where(p > 0, p, 1.0))
    assert float(xr.kl_div(log_p, p, reduction="sum")) == 0.0
    np.testing.assert_array_equal(xr.kl_div(log_p[p > 0], log_p[p > 0], "none",
                                            log_target=True), 0.0)


def test_reductions_divide_as_pytorch_does():
    x, p = _log_probs((4, 5)), _probs((4, 5))
    total = xr.kl_div(x, p, reduction="sum")
    assert xr.kl_div(x, p, reduction="batchmean") == total / 4
    assert xr.kl_div(x, p, reduction="mean") == total / 20  # the trap: not the KL per sample
    assert xr.kl_div(x, p) == xr.kl_div(x, p, reduction="mean")  # PyTorch's default
    np.testing.assert_array_equal(xr.kl_div_grad(x, p, "batchmean"), -p / 4)
    np.testing.assert_allclose(xr.kl_div_grad(x, p, "mean"), -p / 20, rtol=2 * fh.EPS)


def test_log_target_is_the_same_divergence():
    x, p = _log_probs((3, 5)), _probs((3, 5))
    np.testing.assert_allclose(xr.kl_div(x, np.log(p), "none", log_target=True),
                               xr.kl_div(x, p, "none"), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(xr.kl_div_grad(x, np.log(p), log_target=True),
                               xr.kl_div_grad(x, p), rtol=1e-15)


def test_edges_follow_pytorch():
    # a zero target contributes 0 (0 log 0 = 0) -- nan against a -inf log-probability
    got = xr.kl_div(np.array([-1.0, -np.inf, -np.inf]), np.array([0.0, 0.0, 0.5]), "none")
    assert got[0] == 0.0 and np.isnan(got[1]) and got[2] == np.inf
    assert np.isnan(xr.kl_div(np.array([-1.0]), np.array([-0.5]), "none")[0])  # p < 0
    assert float(xr.kl_div(np.array(-1.0), np.array(0.5), "batchmean")) == pytest.approx(
        0.5 * (np.log(0.5) + 1))  # 0-d: batchmean is the sum
    assert np.isnan(xr.kl_div(np.zeros((0, 3)), np.zeros((0, 3)), "batchmean"))


def test_dtype_follows_the_input_and_inputs_are_not_modified():
    x, p = _log_probs((2, 3)).astype(np.float32), _probs((2, 3))
    saved = x.copy(), p.copy()
    for reduction in REDUCTIONS:
        assert xr.kl_div(x, p, reduction).dtype == np.float32
        assert xr.kl_div_grad(x, p, reduction).dtype == np.float32
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(p, saved[1])


def test_module():
    x, p = _log_probs((2, 3)), _probs((2, 3))
    loss = xr.KLDivLoss(reduction="batchmean", log_target=True)
    assert loss(x, np.log(p)) == xr.kl_div(x, np.log(p), "batchmean", True)
    np.testing.assert_array_equal(loss.grad(x, np.log(p), grad_output=2.0),
                                  xr.kl_div_grad(x, np.log(p), "batchmean", True, 2.0))
    assert "batchmean" in repr(loss)


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, error, words", [
    (lambda: xr.kl_div([[-1.0]], [[0.5]], reduction="batch"), ValueError, "reduction"),
    (lambda: xr.kl_div([[-1.0]], [[0.5]], reduction=None), TypeError, "reduction"),
    (lambda: xr.kl_div([[-1.0]], [[0.5]], log_target=1), TypeError, "log_target"),
    (lambda: xr.kl_div([[-1.0]], [[0.5, 0.5]]), ValueError, "target"),
    (lambda: xr.kl_div([["a"]], [[0.5]]), TypeError, "input"),
    (lambda: xr.kl_div([[-1.0]], [[True]]), TypeError, "target"),
    (lambda: xr.kl_div_grad([[-1.0]], [[0.5]], grad_output=[1.0, 2.0]), ValueError,
     "grad_output"),
    (lambda: xr.kl_div_grad([[-1.0]], [[0.5]], "none", grad_output=1.0), ValueError,
     "grad_output"),
])
def test_errors_name_the_argument(call, error, words):
    fh.check_error(call, error, words)


# ----------------------------------------------------------------------- low precision


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)],
                         ids=["float16", "bfloat16"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_low_precision_is_rounded_once(dtype, reduction, log_target):
    x = _log_probs((5, 7))
    p = _probs((5, 7), zeros=not log_target)
    target = np.log(p) if log_target else p
    g = rng.uniform(0.5, 2, (5, 7)) if reduction == "none" else np.float64(0.7)
    kw = dict(reduction=reduction, log_target=log_target)
    fh.assert_rounded_once(xr.kl_div, [x, target], kw, dtype)
    fh.assert_rounded_once(xr.kl_div_grad, [x, target], dict(kw, grad_output=g), dtype)


# ---------------------------------------------------------------------- accuracy (mpmath)


def _accuracy_cases():
    """Near-perfect predictions (log q within a few ulps of log p: the terms cancel),
    tiny and huge probabilities, zeros, and random rows."""
    p = _probs((6, 5), zeros=True)
    p[1] = [1 - 3e-12, 1e-12, 1e-12, 1e-12, 0.0]
    p[2] = [1e-300, 1e-200, 0.5, 0.25, 0.25 - 1e-200]
    log_p = np.log(np.where(p > 0, p, 1.0))
    near = log_p * (1 + fh.EPS * rng.integers(-3, 4, p.shape))
    near[p == 0] = -3.0
    far = _log_probs((6, 5)) * 30
    for x in (near, far, np.full((6, 5), -700.0)):
        for reduction in REDUCTIONS:
            yield x, p, dict(reduction=reduction, log_target=False)
            yield x, np.where(p > 0, log_p, -50.0), dict(reduction=reduction, log_target=True)


def _exact(x, target, reduction, log_target):
    """Exact losses and the measure's scale: the magnitude of the two terms ``p log p``
    and ``p x`` (their difference is the loss, so no float64 algorithm can do better than
    a few ulps of them; PyTorch's xlogy(p, p) - p x has the same bound)."""
    with mpmath.workdps(50):
        losses, scales = [], []
        for xv, tv in zip(fh.mp(x), fh.mp(target)):
            p = mpmath.exp(tv) if log_target else tv
            log_p = tv if log_target else (mpmath.log(p) if p > 0 else mpmath.mpf(0))
            losses.append(p * (log_p - xv))
            scales.append(max(p * (abs(log_p) + abs(xv)), mpmath.mpf(fh.np.finfo(float).tiny)))
        if reduction == "none":
            return losses, scales
        denominator = {"sum": 1, "mean": np.size(x), "batchmean": np.shape(x)[0]}[reduction]
        return [mpmath.fsum(losses) / denominator], [mpmath.fsum(scales) / denominator]


def test_within_four_units_of_exact():
    worst = (0.0, None)
    for x, target, kw in _accuracy_cases():
        exact, scale = _exact(x, target, **kw)
        units = fh.error_units(xr.kl_div(x, target, **kw), exact, scale)
        worst = max(worst, (units, kw), key=lambda w: w[0])
        # the gradient -p s: relative to each entry
        with mpmath.workdps(50):
            p = [mpmath.exp(t) for t in fh.mp(target)] if kw["log_target"] else fh.mp(target)
            d = {"none": 1, "sum": 1, "mean": x.size, "batchmean": x.shape[0]}[kw["reduction"]]
            grad_exact = [-v / d for v in p]
            grad_scale = [max(abs(v), mpmath.mpf(np.finfo(float).tiny)) for v in grad_exact]
        assert fh.error_units(xr.kl_div_grad(x, target, **kw), grad_exact, grad_scale) \
            <= fh.BOUND, kw
    assert worst[0] <= fh.BOUND, worst
