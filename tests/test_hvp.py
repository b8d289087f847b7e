"""Hessian-vector products and the dense cross-entropy Hessian.

Against PyTorch 2.13's double backward (tests/fixtures/second_order.json); against central
finite differences, in float64, of the library's *own* gradients (``H v ~ (grad(x + h v) -
grad(x - h v)) / 2h``, every option); the Hessian's structure (symmetric, positive
semidefinite, rows summing to 0); low precision; errors; and the wrong implementations of
tests/wrong_impls/second_order, each caught.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers.second_order import assert_close, cases_of, replay
from xent_ref._engine.dtypes import dtype_named
from xent_ref._engine.lowprec import round_once

HVP_FUNCTIONS = ("softmax_hvp", "log_softmax_hvp", "cross_entropy_hvp", "nll_loss_hvp",
                 "binary_cross_entropy_hvp", "binary_cross_entropy_with_logits_hvp",
                 "linear_cross_entropy_hvp", "cross_entropy_hessian")
H = 1e-5
BOUND = 1e-7
WRONG = Path(__file__).parent / "wrong_impls" / "second_order"
rng = np.random.default_rng(1818)


# ---------------------------------------------------------------------------------------------
# PyTorch's double backward
# ---------------------------------------------------------------------------------------------


def test_every_second_order_function_has_torch_cases_with_the_hard_options():
    cases = cases_of(*HVP_FUNCTIONS)
    assert {c["function"] for c in cases} == set(HVP_FUNCTIONS)
    ce = [c["kwargs"] for c in cases if c["function"] == "cross_entropy_hvp"]
    assert any("softcap" in k for k in ce) and any("label_smoothing" in k for k in ce)
    assert any("z_loss" in k for k in ce) and any("weight" in k for k in ce)
    assert {k["reduction"] for k in ce if "reduction" in k} == {"mean", "sum", "none"}


@pytest.mark.parametrize("case", cases_of(*HVP_FUNCTIONS), ids=lambda c: c["id"])
def test_equals_torch_double_backward(case):
    got, expected = replay(case)
    if isinstance(expected, list):
        assert len(got) == len(expected)
        for part, want in zip(got, expected):
            assert (part is None) == (want is None)
            if want is not None:
                assert_close(part, want, case["dtype"], case["id"])
    else:
        assert_close(got, expected, case["dtype"], case["id"])


# ---------------------------------------------------------------------------------------------
# finite differences of the library's own gradients
# ---------------------------------------------------------------------------------------------


def _relative_error(a, b):
    a, b = np.concatenate([np.ravel(x) for x in a]), np.concatenate([np.ravel(x) for x in b])
    assert np.linalg.norm(b) > 0  # not comparing zeros
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b)))


def _difference(grad, x, v):
    """``(grad(x + h v) - grad(x - h v)) / 2h``: the directional derivative of ``grad``."""
    return (np.asarray(grad(x + H * v)) - np.asarray(grad(x - H * v))) / (2 * H)


CE_OPTIONS = [dict(zip(("weight", "label_smoothing", "softcap", "logit_scale", "z_loss",
                        "reduction"), values))
              for values in itertools.product((None, [0.5, 2.0, 1.0, 3.0, 0.7]), (0.0, 0.2),
                                              (None, 2.5), (1.0, 1.4), (0.0, 0.05),
                                              ("mean", "sum", "none"))]


@pytest.mark.parametrize("options", CE_OPTIONS[::3] + CE_OPTIONS[1::7],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()
                                                if v not in (None, 0.0, 1.0)))
@pytest.mark.parametrize("targets", ["index", "probabilities"])
def test_cross_entropy_hvp_is_the_derivative_of_its_gradient(options, targets):
    x = rng.normal(size=(4, 5)) * 2
    if targets == "index":
        target = np.array([0, 3, -100, 4])
    else:
        target = rng.dirichlet(np.ones(5), size=4)
    g = rng.uniform(0.5, 2, 4) if options["reduction"] == "none" else 1.7
    v = rng.normal(size=x.shape)
    kw = dict(options, grad_output=g)
    got = xr.cross_entropy_hvp(x, target, v, **kw)
    numeric = _difference(lambda z: xr.cross_entropy_grad(z, target, **kw), x, v)
    assert _relative_error([got], [numeric]) < BOUND
    if targets == "index":
        assert not got[2].any()  # an ignored token has no curvature


def test_softmax_and_log_softmax_hvp_are_derivatives_of_their_vjps():
    for axis in (0, 1, -1):
        x, g, v = (rng.normal(size=(3, 4, 2)) for _ in range(3))
        for hvp, vjp in ((xr.softmax_hvp, xr.softmax_grad),
                         (xr.log_softmax_hvp, xr.log_softmax_grad)):
            numeric = _difference(lambda z: vjp(z, g, axis=axis), x, v)
            assert _relative_error([hvp(x, g, v, axis=axis)], [numeric]) < BOUND


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_hvps_are_derivatives_of_their_gradients(reduction):
    p, y = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0, 1, (4, 3))
    v, w = rng.normal(size=(4, 3)), rng.uniform(0.5, 2, 3)
    g = rng.uniform(0.5, 2, (4, 3)) if reduction == "none" else 0.8
    kw = dict(weight=w, reduction=reduction, grad_output=g)
    numeric = _difference(lambda z: xr.binary_cross_entropy_grad(z, y, **kw), p, v)
    assert _relative_error([xr.binary_cross_entropy_hvp(p, y, v, **kw)], [numeric]) < 1e-6
    x = rng.normal(size=(4, 3)) * 3
    for extra in ({}, {"pos_weight": [0.5, 2.0, 4.0]}):
        got = xr.binary_cross_entropy_with_logits_hvp(x, y, v, **kw, **extra)
        numeric = _difference(
            lambda z: xr.binary_cross_entropy_with_logits_grad(z, y, **kw, **extra), x, v)
        assert _relative_error([got], [numeric]) < BOUND


@pytest.mark.parametrize("options", [
    {}, {"linear_bias": True, "weight": True, "label_smoothing": 0.1},
    {"linear_bias": True, "softcap": 2.0, "logit_scale": 1.3, "z_loss": 0.05},
    {"reduction": "none", "softcap": 3.0}, {"reduction": "sum", "probabilities": True},
])
def test_linear_hvp_is_the_joint_derivative_of_the_three_gradients(options):
    options = dict(options)
    n, hidden, vocab = 5, 3, 6
    h, w = rng.normal(size=(n, hidden)), rng.normal(size=(vocab, hidden)) / 2
    target = (rng.dirichlet(np.ones(vocab), size=n) if options.pop("probabilities", False)
              else np.array([1, -100, 5, 0, 2]))
    if options.pop("weight", False):
        options["weight"] = rng.uniform(0.5, 2, vocab)
    params = [h, w] + ([rng.normal(size=vocab)] if options.pop("linear_bias", False) else [])
    if options.get("reduction") == "none":
        options["grad_output"] = rng.uniform(0.5, 2, n)
    directions = [rng.normal(size=p.shape) for p in params]

    def grads(step):
        moved = [p + step * d for p, d in zip(params, directions)]
        bias = moved[2] if len(moved) == 3 else None
        parts = xr.linear_cross_entropy_grad(moved[0], moved[1], target, linear_bias=bias,
                                             **options)
        return [part for part in parts if part is not None]

    numeric = [(a - b) / (2 * H) for a, b in zip(grads(H), grads(-H))]
    bias = params[2] if len(params) == 3 else None
    got = xr.linear_cross_entropy_hvp(h, w, target, tuple(directions), linear_bias=bias,
                                      chunk_size=2, **options)
    assert (got[2] is None) == (bias is None)
    assert _relative_error([g for g in got if g is not None], numeric) < BOUND


def test_linear_hvp_one_parameter_at_a_time_is_the_joint_one_with_zero_directions():
    h, w, t = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), np.array([0, 4, 2, -100])
    v_h, v_w = rng.normal(size=h.shape), rng.normal(size=w.shape)
    joint = xr.linear_cross_entropy_hvp(h, w, t, (v_h, v_w))
    only_h = xr.linear_cross_entropy_hvp(h, w, t, (v_h, None))
    only_w = xr.linear_cross_entropy_hvp(h, w, t, (None, v_w))
    for a, b, c in zip(joint[:2], only_h[:2], only_w[:2]):
        np.testing.assert_allclose(a, b + c, rtol=1e-12, atol=1e-15)


def test_linear_hvp_does_not_depend_on_the_chunking():
    h, w, t = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)), rng.integers(0, 5, 7)
    v = (rng.normal(size=h.shape), rng.normal(size=w.shape))
    one = xr.linear_cross_entropy_hvp(h, w, t, v, softcap=2.0, chunk_size=7)
    for rows in (1, 3):
        for a, b in zip(one[:2], xr.linear_cross_entropy_hvp(h, w, t, v, softcap=2.0,
                                                             chunk_size=rows)[:2]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# the dense Hessian
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"weight": [0.5, 2.0, 1.0, 3.0]},
                                     {"label_smoothing": 0.3, "reduction": "sum"},
                                     {"logit_scale": 2.0}])
def test_the_hessian_is_symmetric_psd_with_rows_summing_to_zero(options):
    x = rng.normal(size=(6, 4)) * 3
    target = np.array([0, 1, 2, 3, -100, 1])
    hessian = xr.cross_entropy_hessian(x, target, **options)
    assert hessian.shape == (6, 4, 4)
    np.testing.assert_allclose(hessian, np.swapaxes(hessian, -1, -2), rtol=0, atol=1e-15)
    assert np.linalg.eigvalsh(hessian).min() > -1e-14  # the covariance of a one-hot: PSD
    np.testing.assert_allclose(hessian.sum(axis=-1), 0, atol=1e-15)
    assert not hessian[4].any()  # ignored


def test_the_hessian_is_the_softmax_covariance():
    x = np.array([0.3, -1.0, 2.0])
    p = xr.softmax(x)
    np.testing.assert_allclose(xr.cross_entropy_hessian(x, 1), np.diag(p) - np.outer(p, p),
                               rtol=1e-15, atol=1e-17)


@pytest.mark.parametrize("options", [{"softcap": 1.5, "z_loss": 0.1, "label_smoothing": 0.1},
                                     {"reduction": "none", "grad_output": [1.0, 2.0]}])
def test_the_hessian_applied_to_v_is_the_hvp(options):
    x, v = rng.normal(size=(2, 5, 3)) * 2, rng.normal(size=(2, 5, 3))
    if options.get("reduction") == "none":
        options = dict(options, grad_output=rng.uniform(0.5, 2, (2, 3)))
    target = np.array([[0, 4, -100], [2, 2, 1]])
    hessian = xr.cross_entropy_hessian(x, target, **options)
    assert hessian.shape == (2, 3, 5, 5)
    applied = np.einsum("nscd,nds->ncs", hessian, v)
    np.testing.assert_allclose(applied, xr.cross_entropy_hvp(x, target, v, **options),
                               rtol=1e-12, atol=1e-15)


def test_a_softcap_makes_the_hessian_indefinite():
    # the cap's curvature (dL/dz) phi'' is a diagonal of both signs
    x = np.array([[4.0, -4.0, 0.0]])
    eigenvalues = np.linalg.eigvalsh(xr.cross_entropy_hessian(x, [1], softcap=1.0))
    assert eigenvalues.min() < -1e-3


def test_nll_loss_hvp_is_zero_because_the_loss_is_linear():
    x, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = xr.nll_loss_hvp(x, [0, -100, 3], v, weight=[1.0, 2.0, 3.0, 4.0])
    assert got.shape == x.shape and not got.any()
    g1 = xr.nll_loss_grad(x, [0, -100, 3])
    np.testing.assert_array_equal(g1, xr.nll_loss_grad(x + v, [0, -100, 3]))


# ---------------------------------------------------------------------------------------------
# low precision, errors, inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_is_the_float64_answer_rounded_once(dtype):
    low = dtype_named(dtype)
    x, v = (rng.normal(size=(3, 6)) * 2).astype(low), rng.normal(size=(3, 6)).astype(low)
    t = np.array([0, 5, -100])
    kw = dict(softcap=3.0, z_loss=0.01, label_smoothing=0.1)
    got = xr.cross_entropy_hvp(x, t, v, **kw)
    wide = xr.cross_entropy_hvp(x.astype(float), t, v.astype(float), **kw)
    assert got.dtype == low
    np.testing.assert_array_equal(got.astype(float), round_once(wide, low).astype(float))
    p = rng.uniform(0.1, 0.9, 4).astype(low)
    got = xr.binary_cross_entropy_hvp(p, p, p)
    assert got.dtype == low
    np.testing.assert_array_equal(
        got.astype(float), round_once(xr.binary_cross_entropy_hvp(*(p.astype(float),) * 3),
                                      low).astype(float))


def test_bad_directions_are_errors_naming_them():
    with pytest.raises(ValueError, match="^v: expected the input's shape"):
        xr.cross_entropy_hvp([[0.0, 1.0]], [1], [1.0, 2.0])
    with pytest.raises(ValueError, match="^v: "):
        xr.binary_cross_entropy_hvp([0.5], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="^grad_output: "):
        xr.softmax_hvp([0.0, 1.0], [1.0], [1.0, 0.0])
    h, w = np.ones((2, 3)), np.ones((4, 3))
    with pytest.raises(TypeError, match="^v: expected a tuple"):
        xr.linear_cross_entropy_hvp(h, w, [0, 1], h)
    with pytest.raises(ValueError, match="no linear_bias"):
        xr.linear_cross_entropy_hvp(h, w, [0, 1], (h, w, np.ones(4)))
    with pytest.raises(ValueError, match=r"^v\[1\]"):
        xr.linear_cross_entropy_hvp(h, w, [0, 1], (h, h))


def test_inputs_are_not_modified():
    x, v, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), np.array([0, 1, 2])
    before = x.copy(), v.copy()
    xr.cross_entropy_hvp(x, t, v, softcap=2.0, z_loss=0.1)
    xr.cross_entropy_hessian(x, t, softcap=2.0)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(v, before[1])


# ---------------------------------------------------------------------------------------------
# wrong implementations, each different from the right answer on a small input
# ---------------------------------------------------------------------------------------------


def _wrong(stem):
    spec = importlib.util.spec_from_file_location(f"wrong_second_order_{stem}",
                                                  WRONG / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


X = np.array([[2.0, 0.5, 0.5, -1.0], [3.0, 3.0, 1.0, 0.0], [40.0, 0.0, 39.0, -2.0]])
T = np.array([1, 1, 2])
WRONG_CASES = {
    "hvp-missing-outer-product": ("cross_entropy_hvp", (X, T, np.ones_like(X)), {}, None),
    "hvp-softcap-second-derivative-missing": (
        "cross_entropy_hvp", (X, T, np.ones_like(X)), {"softcap": 5.0, "logit_scale": 0.5}, None),
    "entropy-of-unscaled-logits": ("cross_entropy_stats", (X, T), {"logit_scale": 2.0},
                                   "entropy"),
    "argmax-last-index": ("cross_entropy_stats", (X, T), {"softcap": 1.0}, "argmax"),
    "z-loss-returned-unscaled": ("cross_entropy_stats", (X, T), {"z_loss": 0.01}, "z_loss"),
}


def test_every_wrong_implementation_names_its_diagnosis():
    named = {}
    for path in sorted(WRONG.glob("*.py")):
        lines = [line for line in (_wrong(path.stem).__doc__ or "").splitlines()
                 if line.startswith("Diagnosis: ")]
        assert len(lines) == 1, path.name
        named[lines[0].removeprefix("Diagnosis: ")] = path.stem
        assert path.stem == lines[0].removeprefix("Diagnosis: ").replace("-", "_")
    assert set(named) == set(WRONG_CASES)


@pytest.mark.parametrize("diagnosis", sorted(WRONG_CASES))
def test_each_wrong_implementation_differs_from_the_right_answer(diagnosis):
    function, args, kwargs, field = WRONG_CASES[diagnosis]
    wrong = getattr(_wrong(diagnosis.replace("-", "_")), function)(*args, **kwargs)
    right = getattr(xr, function)(*args, **kwargs)
    if field is not None:
        wrong, right = getattr(wrong, field), getattr(right, field)
    assert wrong.shape == right.shape
    assert not np.allclose(wrong, right, rtol=1e-6, atol=0), diagnosis


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_linear_hvp_in_low_precision_is_the_float64_answer_rounded_once(dtype):
    low = dtype_named(dtype)
    h, w = rng.normal(size=(3, 3)).astype(low), rng.normal(size=(3, 3)).astype(low)
    v = (rng.normal(size=(3, 3)).astype(low), rng.normal(size=(3, 3)).astype(low))
    t = np.array([0, 2, 1])
    got = xr.linear_cross_entropy_hvp(h, w, t, v, softcap=2.0)
    wide = xr.linear_cross_entropy_hvp(h.astype(float), w.astype(float), t,
                                       tuple(a.astype(float) for a in v), softcap=2.0)
    for part, want in zip(got[:2], wide[:2]):
        assert part.dtype == low
        np.testing.assert_array_equal(part.astype(float), round_once(want, low).astype(float))
