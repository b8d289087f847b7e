"""Gradients with respect to the target (``wrt="target"``): against PyTorch 2.13's
``target.grad`` (tests/fixtures/second_order.json), against central finite differences of the
losses in the target (float64), and the errors of a wrong ``wrt`` or a class-index target.
"""

from __future__ import annotations

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers.second_order import FIXTURE, assert_close, cases_of, replay
from tests.test_finite_differences import numerical_gradient, relative_error
from xent_ref._engine.lowprec import round_once

TARGET_CASES = cases_of("cross_entropy_grad", "binary_cross_entropy_grad",
                        "binary_cross_entropy_with_logits_grad")
rng = np.random.default_rng(18)


def test_the_fixture_is_torch_2_13_and_covers_every_target_gradient():
    assert FIXTURE["torch_version"].startswith("2.13.")
    assert {c["function"] for c in TARGET_CASES} == {
        "cross_entropy_grad", "binary_cross_entropy_grad", "binary_cross_entropy_with_logits_grad"}
    assert all(c["kwargs"]["wrt"] == "target" for c in TARGET_CASES)
    assert {"float32", "float64"} == {c["dtype"] for c in TARGET_CASES}


@pytest.mark.parametrize("case", TARGET_CASES, ids=lambda c: c["id"])
def test_equals_torch_target_grad(case):
    got, expected = replay(case)
    assert_close(got, expected, case["dtype"], case["id"])


def _check_fd(loss, grad, y):
    numeric = numerical_gradient(loss, y)
    assert np.linalg.norm(numeric) > 0
    error = relative_error(grad, numeric)
    assert error < 1e-7, f"relative error {error:.3g}"


@pytest.mark.parametrize("options", [
    {}, {"weight": [0.5, 2.0, 1.0, 3.0]}, {"label_smoothing": 0.3},
    {"weight": [0.5, 2.0, 1.0, 3.0], "label_smoothing": 0.1, "reduction": "sum"},
    {"softcap": 2.0, "logit_scale": 1.5, "z_loss": 0.1},
    {"reduction": "none", "grad_output": [0.5, 1.0, 2.0]},
])
def test_cross_entropy_target_grad_is_the_derivative_of_the_loss(options):
    options = dict(options)
    x = rng.normal(size=(3, 4)) * 2
    y = rng.dirichlet(np.ones(4), size=3)
    g = options.pop("grad_output", None)
    grad = xr.cross_entropy_grad(x, y, grad_output=g, wrt="target", **options)
    weights = 1.0 if g is None else np.asarray(g)
    _check_fd(lambda t: float(np.sum(weights * xr.cross_entropy(x, t, **options))), grad, y)


@pytest.mark.parametrize("options", [{}, {"weight": [2.0, 0.5, 1.0]}, {"reduction": "sum"}])
def test_binary_target_grads_are_the_derivatives_of_the_losses(options):
    p = rng.uniform(0.05, 0.95, (4, 3))
    y = rng.uniform(0.1, 0.9, (4, 3))
    grad = xr.binary_cross_entropy_grad(p, y, wrt="target", **options)
    _check_fd(lambda t: float(xr.binary_cross_entropy(p, t, **options)), grad, y)
    x = rng.normal(size=(4, 3)) * 3
    for extra in ({}, {"pos_weight": [3.0, 0.5, 1.5]}):
        grad = xr.binary_cross_entropy_with_logits_grad(x, y, wrt="target", **options, **extra)
        _check_fd(lambda t: float(xr.binary_cross_entropy_with_logits(x, t, **options, **extra)),
                  grad, y)


def test_the_bce_target_grad_ignores_the_loss_clamp_as_pytorch():
    # log(0) is clamped at -100 in the loss, not in its target gradient: -logit(0) = inf
    grad = xr.binary_cross_entropy_grad([0.0, 1.0], [0.5, 0.5], reduction="sum", wrt="target")
    assert grad.tolist() == [np.inf, -np.inf]


def test_the_default_is_the_input_gradient():
    x, y = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3)
    np.testing.assert_array_equal(xr.cross_entropy_grad(x, y, wrt="input"),
                                  xr.cross_entropy_grad(x, y))
    p = rng.uniform(0.1, 0.9, 3)
    np.testing.assert_array_equal(xr.binary_cross_entropy_grad(p, p, wrt="input"),
                                  xr.binary_cross_entropy_grad(p, p))
    assert not np.array_equal(xr.cross_entropy_grad(x, y, wrt="target"),
                              xr.cross_entropy_grad(x, y))


@pytest.mark.parametrize("function", [xr.cross_entropy_grad, xr.binary_cross_entropy_grad,
                                      xr.binary_cross_entropy_with_logits_grad])
def test_a_bad_wrt_is_an_error_naming_it(function):
    args = ([[0.2, 0.8]], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="wrt"):
        function(*args, wrt="weight")
    with pytest.raises(TypeError, match="wrt"):
        function(*args, wrt=None)


def test_class_index_targets_have_no_target_gradient():
    with pytest.raises(TypeError, match="target.*probability targets"):
        xr.cross_entropy_grad([[0.0, 1.0]], [1], wrt="target")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_is_the_float64_answer_rounded_once(dtype):
    from xent_ref._engine.dtypes import dtype_named
    low = dtype_named(dtype)
    x = (rng.normal(size=(3, 5)) * 2).astype(low)
    y = rng.dirichlet(np.ones(5), size=3).astype(low)
    got = xr.cross_entropy_grad(x, y, wrt="target", label_smoothing=0.1, softcap=3.0)
    wide = xr.cross_entropy_grad(x.astype(np.float64), y.astype(np.float64), wrt="target",
                                 label_smoothing=0.1, softcap=3.0)
    assert got.dtype == low
    np.testing.assert_array_equal(got.astype(np.float64), round_once(wide, low).astype(np.float64))
