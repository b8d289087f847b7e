"""float16 and bfloat16 for KL, the focal losses and poly-1, against PyTorch computing in the
dtype (the low-precision cases of tests/fixtures/family_golden.json, written by
scripts/make_family_fixtures.py).

The rule is the library's low-precision rule, as written for the other losses: xent_ref's
answer is the float64 answer on the same (exactly widened) arguments, rounded once to the
dtype; PyTorch's own answer in the dtype may be less accurate. So, entry by entry, our error
against the float64 answer is at most PyTorch's (tests/test_lowprec.py), every answer passes
the corpus's ``"reference-error"`` rule with PyTorch's error as the allowance
(:func:`xent_ref.verify.compare.compare`, rtol one ulp of the dtype, atol PyTorch's largest
error plus the smallest subnormal), and PyTorch agrees with the float64 answer loosely (the
same semantics, not the same rounding). Where PyTorch's naive derivative of
``(1 - p_t)^gamma`` (gamma < 1) is nan at a ``p_t`` the dtype rounds to 1, ours is finite.
"""

from __future__ import annotations

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers import family as fh
from xent_ref._engine.lowprec import finfo, round_once
from xent_ref.golden.jsonio import decode_array, is_encoded_array
from xent_ref.verify.compare import compare

FUNCTIONS = ("kl_div", "sigmoid_focal_loss", "softmax_focal_loss", "poly1_cross_entropy")
LOW = ("float16", "bfloat16")
CASES = [case for name in FUNCTIONS for case in fh.fixture_cases(name, LOW)]


def _widened(value):
    low = isinstance(value, np.ndarray) and value.dtype.name in LOW  # (class indices stay)
    return value.astype(np.float64) if low else value


def _calls(case: dict, widen: bool):
    """``(loss, grad)`` of xent_ref on the case's arguments (widened exactly to float64)."""
    decode = lambda v: decode_array(v) if is_encoded_array(v) else v  # noqa: E731
    prepare = _widened if widen else (lambda v: v)
    args = [prepare(decode_array(a)) for a in case["args"]]
    kwargs = {k: prepare(decode(v)) for k, v in case["kwargs"].items()}
    g = prepare(decode_array(case["grad_output"]))
    name = case["function"]
    return getattr(xr, name)(*args, **kwargs), getattr(xr, name + "_grad")(*args, **kwargs,
                                                                          grad_output=g)


def _error(value: np.ndarray, exact: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(value == exact, 0.0, np.abs(value - exact))


def test_every_function_has_both_dtypes():
    found = {(case["function"], case["dtype"]) for case in CASES}
    assert found == {(f, d) for f in FUNCTIONS for d in LOW}
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_no_further_from_float64_than_pytorch_in_the_dtype(case):
    dtype = decode_array(case["args"][0]).dtype
    info = finfo(dtype)
    ours = _calls(case, widen=False)
    exact = _calls(case, widen=True)
    for what, o, e in zip(("loss", "grad"), ours, exact, strict=True):
        assert o.dtype == dtype and o.shape == e.shape, what
        # the library's promise: the float64 answer, rounded once
        np.testing.assert_array_equal(o.astype(np.float64),
                                      round_once(e, dtype).astype(np.float64), err_msg=what)
        o = o.astype(np.float64)
        t = decode_array(case["expected"][what]).astype(np.float64)
        naive_nan = np.isnan(t) & np.isfinite(e)  # torch's (1 - p_t)^(gamma - 1) at p_t = 1
        assert np.isfinite(o[naive_nan]).all()
        assert not naive_nan.any() or case["function"] == "sigmoid_focal_loss", what
        o, e, t = o[~naive_nan], e[~naive_nan], t[~naive_nan]
        assert (_error(o, e) <= _error(t, e)).all(), what
        finite = np.isfinite(e)
        torch_error = float(np.abs(t[finite] - e[finite]).max(initial=0.0))
        check = compare(e, o, float(info.eps), torch_error + float(info.smallest_subnormal))
        assert check.ok, (what, check)
        scale = np.abs(e[finite]).max(initial=1.0)
        np.testing.assert_allclose(t[finite], e[finite], rtol=0.05, atol=0.05 * scale,
                                   err_msg=what)
        np.testing.assert_array_equal(t[~finite], o[~finite])
