"""The recorded PyTorch answers beyond the first gradient (tests/fixtures/second_order.json,
written by scripts/make_second_order_fixtures.py) and how the tests replay them, without torch.

Tolerances: float64 ``rtol 1e-10``, float32 ``rtol 1e-5`` (relative to each entry), and an
absolute floor of that same ``rtol`` times the largest magnitude of the expected array: a
second derivative that is a difference of nearly equal terms (``p (u - <p, u>)`` for a
confident row, ``sigma(x)(1 - sigma(x))`` at ``x = 30``) is known to an error relative to its
array's scale, not to itself, in torch's arithmetic as in ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xent_ref.functions import named
from xent_ref.golden.jsonio import decode_array, is_encoded_array

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "second_order.json").read_text())
CASES = FIXTURE["cases"]
RTOL = {"float64": 1e-10, "float32": 1e-5}


def decoded(value):
    if is_encoded_array(value):
        return decode_array(value)
    if isinstance(value, list):
        return [None if a is None else decode_array(a) for a in value]
    if isinstance(value, dict) and not is_encoded_array(value):
        return {k: decode_array(a) for k, a in value.items()}
    return value


def cases_of(*functions: str) -> list:
    """The recorded cases of these library functions, as pytest parameters' values."""
    return [case for case in CASES if case["function"] in functions]


def replay(case):
    """``(got, expected)``: the library's answer for a recorded case, and torch's. The
    arguments are checked to come back unmodified."""
    args = [decoded(a) for a in case["args"]]
    kwargs = {k: decoded(v) for k, v in case["kwargs"].items()}
    before = [a.tobytes() for a in args if isinstance(a, np.ndarray)]
    got = named(case["function"])(*args, **kwargs)
    assert [a.tobytes() for a in args if isinstance(a, np.ndarray)] == before
    return got, decoded(case["expected"])


def assert_close(got, expected, dtype: str, what: str) -> None:
    """Same dtype (the floating ones) and shape, values within the module's tolerances."""
    assert isinstance(got, np.ndarray), (what, type(got))
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    if expected.dtype.kind != "f":
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    assert got.dtype == np.dtype(dtype), (what, got.dtype)
    finite = np.abs(expected[np.isfinite(expected)])
    floor = RTOL[dtype] * (finite.max() if finite.size else 0.0)
    np.testing.assert_allclose(got, expected, rtol=RTOL[dtype], atol=floor, equal_nan=True,
                               err_msg=what)
