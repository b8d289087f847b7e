"""Shared by tests/test_kl.py, test_focal.py and test_poly.py: the torch fixture
(tests/fixtures/family_golden.json, written by scripts/make_family_fixtures.py), the
low-precision rule, central differences, and the mpmath accuracy measure."""

from __future__ import annotations

import json
from pathlib import Path

import mpmath
import numpy as np
import pytest
from tests.helpers.torch_compare import TOLERANCE
from tests.test_finite_differences import numerical_gradient, relative_error

import xent_ref as xr
from xent_ref._engine.lowprec import round_once
from xent_ref.golden.jsonio import decode_array, is_encoded_array

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "family_golden.json").read_text())
EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
BOUND = 4.0  # the accuracy bound of tests/test_accuracy.py, in units of EPS


WIDE = ("float32", "float64")  # the dtypes compared with TOLERANCE; float16/bfloat16 have
# their own rule (tests/test_family_lowprec.py)


def fixture_cases(function: str, dtypes: tuple[str, ...] = WIDE) -> list[dict]:
    return [case for case in FIXTURE["cases"]
            if case["function"] == function and case["dtype"] in dtypes]


def _decode(value):
    return decode_array(value) if is_encoded_array(value) else value


def run_fixture_case(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(loss, grad)`` of xent_ref on a fixture case; asserts no argument was modified."""
    args = [decode_array(a) for a in case["args"]]
    kwargs = {k: _decode(v) for k, v in case["kwargs"].items()}
    g = decode_array(case["grad_output"])
    before = [a.tobytes() for a in args]
    loss = getattr(xr, case["function"])(*args, **kwargs)
    grad = getattr(xr, case["function"] + "_grad")(*args, **kwargs, grad_output=g)
    assert [a.tobytes() for a in args] == before, "an argument was modified in place"
    return loss, grad


def assert_torch_fixture(case: dict, finite_where_torch_nan: bool = False) -> None:
    """The loss and the gradient equal PyTorch's within the project's tolerances.

    With ``finite_where_torch_nan``, a gradient entry that autograd made nan (a naive
    derivative, such as ``gamma (1 - p_t)^(gamma - 1)`` at ``p_t = 1``) must be finite here.
    """
    loss, grad = run_fixture_case(case)
    for what, got in (("loss", loss), ("grad", grad)):
        want = decode_array(case["expected"][what])
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(case["dtype"]), what
        assert got.shape == want.shape, (what, got.shape, want.shape)
        if finite_where_torch_nan and what == "grad":
            torch_nan = np.isnan(want)
            assert np.isfinite(got[torch_nan]).all(), (case["id"], got[torch_nan])
            got, want = got[~torch_nan], want[~torch_nan]
        np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{case['id']} {what}",
                                   **TOLERANCE[case["dtype"]])


def assert_rounded_once(function, args: list, kwargs: dict, dtype) -> None:
    """``function`` on ``dtype`` arguments is the float64 answer on the same values, rounded
    once (the floating arrays in ``args``/``kwargs`` are float64; each is first rounded to
    ``dtype``)."""
    def narrow(a):
        floating = isinstance(a, (np.ndarray, np.floating)) and a.dtype.kind == "f"
        return round_once(a, dtype) if floating else a

    def wide(a):
        return np.asarray(a, np.float64) if getattr(a, "dtype", None) == dtype else a

    low_args = [narrow(a) for a in args]
    low_kwargs = {k: narrow(v) for k, v in kwargs.items()}
    got = function(*low_args, **low_kwargs)
    exact = function(*[wide(a) for a in low_args], **{k: wide(v) for k, v in low_kwargs.items()})
    assert got.dtype == dtype and got.shape == exact.shape
    np.testing.assert_array_equal(got.astype(np.float64),
                                  round_once(exact, dtype).astype(np.float64))


def assert_gradient(loss, grad, x, *args, grad_output=None, **options) -> None:
    """``grad`` against central differences of ``sum(grad_output * loss)`` (float64),
    norm-wise relative error below 1e-7 (tests/test_finite_differences.py's measure)."""
    g = 1.0 if grad_output is None else np.asarray(grad_output)
    analytic = grad(x, *args, **options, grad_output=grad_output)
    numeric = numerical_gradient(lambda z: float(np.sum(g * loss(z, *args, **options))), x)
    assert analytic.shape == x.shape and analytic.dtype == np.float64
    assert np.linalg.norm(numeric) > 0
    error = relative_error(analytic, numeric)
    assert error < 1e-7, f"relative error {error:.3g}"


def mp(a) -> list:
    """The float64 values of ``a`` as exact mpmath numbers (flattened)."""
    return [mpmath.mpf(float(v)) for v in np.ravel(np.asarray(a, dtype=np.float64))]


def error_units(got, exact: list, scale: list) -> float:
    """The largest ``|got - exact| / (EPS * scale)`` (``scale`` > 0, one per element)."""
    worst = 0.0
    for g, e, s in zip(np.ravel(got), exact, scale):
        worst = max(worst, float(abs(mpmath.mpf(float(g)) - e) / (EPS * s)))
    return worst


def class_batch(rng, kind: str, shape=(5, 4)):
    """Logits and a target of ``kind``: ``index``, ``ignored`` (one -100), ``probs``, or
    ``image`` ((N, C, H) logits, one target ignored)."""
    if kind == "image":
        x = rng.normal(size=(2, shape[1], 3)) * 3
        t = rng.integers(0, shape[1], (2, 3))
        t[0, 1] = -100
        return x, t
    x = rng.normal(size=shape) * 3
    if kind == "probs":
        return x, rng.dirichlet(np.ones(shape[1]), shape[0])
    t = rng.integers(0, shape[1], shape[0])
    if kind == "ignored":
        t[1] = -100
    return x, t


def check_error(call, error, words) -> None:
    """``call()`` raises ``error`` whose message names the argument (``words``)."""
    with pytest.raises(error, match=words):
        call()
