"""xent_ref against PyTorch 2.13's stored answers (tests/fixtures/torch_golden.json).

No torch needed here. The fixtures come from ``scripts/make_torch_fixtures.py`` (see
docs/fixtures.md); each case is one call with its arguments, the upstream gradient, and
PyTorch's loss and autograd gradient. Test ids are the case ids.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.torch_compare import assert_matches, call_xent
from xent_ref.golden.jsonio import decode_array, is_encoded_array

FIXTURE = Path(__file__).parent / "fixtures" / "torch_golden.json"
GOLDEN = json.loads(FIXTURE.read_text(encoding="utf-8"))
CASES = GOLDEN["cases"]
CASE_IDS = [case["id"] for case in CASES]
LOSSES = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
)


def _decode(value):
    return decode_array(value) if is_encoded_array(value) else value


def _run(case, want):
    """Fresh arrays for every call, so one test's mutation cannot leak into another."""
    args = [decode_array(a) for a in case["args"]]
    kwargs = {name: _decode(value) for name, value in case["kwargs"].items()}
    grad_output = decode_array(case["grad_output"])
    got = call_xent(case["function"], args, kwargs, grad_output, want)
    assert args[0].dtype == np.dtype(case["dtype"]), "fixture: input dtype differs from case dtype"
    return got


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_loss_matches_torch(case):
    expected = decode_array(case["expected"]["loss"])
    assert_matches(_run(case, "loss"), expected, case["dtype"], f"{case['id']}: loss")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_grad_matches_torch_autograd(case):
    expected = decode_array(case["expected"]["grad"])
    assert_matches(_run(case, "grad"), expected, case["dtype"], f"{case['id']}: grad")


def test_fixture_header_records_torch_2_13():
    assert GOLDEN["torch_version"].startswith("2.13."), GOLDEN["torch_version"]
    for key in ("numpy_version", "date", "command", "seed"):
        assert GOLDEN[key], key
    generator = Path(__file__).parents[1] / GOLDEN["generator"]
    assert generator.is_file(), generator


def test_fixture_covers_every_function_dtype_and_reduction():
    assert len(set(CASE_IDS)) == len(CASE_IDS), "duplicate case ids"
    assert GOLDEN["counts"] == dict(collections.Counter(c["function"] for c in CASES))
    seen = {(c["function"], c["dtype"], c["kwargs"].get("reduction")) for c in CASES}
    for dtype in ("float32", "float64"):
        for function in ("softmax", "log_softmax"):
            assert (function, dtype, None) in seen
        for function in LOSSES:
            for reduction in ("none", "mean", "sum"):
                assert (function, dtype, reduction) in seen, (function, dtype, reduction)
    ndims = {(c["function"], len(c["args"][0]["shape"])) for c in CASES}
    for function in ("softmax", "log_softmax", *LOSSES):
        assert {(function, n) for n in (1, 2, 3, 4)} <= ndims, function
    ce = [c for c in CASES if c["function"] == "cross_entropy"]
    kinds = {c["args"][1]["dtype"] for c in ce}
    assert kinds == {"int64", "float32", "float64"}, "both target kinds, both dtypes"
    assert {c["kwargs"]["label_smoothing"] for c in ce} == {0.0, 0.1, 0.3}
