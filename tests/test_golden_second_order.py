"""The golden corpus's second-order kinds (Hessian-vector products, gradients with respect
to the target, per-token statistics): what they cover, that they come after every other
case without moving one, and that their JSON reads back bit for bit."""

import json

import numpy as np
import pytest

import xent_ref as xr
from xent_ref import golden

# The corpus before the second-order kinds joined (schema 4): its cases are the same,
# byte for byte, as the first part of today's.
BEFORE_SECOND_ORDER_SHA256 = "f9a544fd39dd3129f06e945dbc6860c7ea2a1982717058857453a450608730e8"
BEFORE_SECOND_ORDER_CASES = 1658
# The second-order part: its inputs (golden.inputs_sha256, drawn as every other case's)
# and, as NumPy 2.4.6 computes it, the whole part (expected values included).
SECOND_ORDER_INPUTS_SHA256 = "7de88ab1eea8cdc6d92a6bc32a03c39fc67aae57067d8693bff20acf5a3c38eb"
SECOND_ORDER_SHA256 = "bd7b2d7851eab3f687198be430da69992c274ee90e8ef28b1144fbf70bfadc5d"


@pytest.fixture(scope="module")
def second():
    return golden.second_order_cases()


def test_they_come_after_every_other_case_which_did_not_move(second):
    cases = golden.build_corpus()
    assert cases[-len(second):] == second
    before = cases[:-len(second)]
    assert len(before) == BEFORE_SECOND_ORDER_CASES
    assert golden.corpus_sha256(before) == BEFORE_SECOND_ORDER_SHA256
    assert {case.kind for case in before} == {"loss"}


def test_they_are_deterministic(second):
    again = golden.second_order_cases.__wrapped__()  # bypass the cache
    assert json.dumps(golden.corpus_to_json(again)) == json.dumps(golden.corpus_to_json(second))


def test_their_inputs_are_pinned(second):
    assert golden.inputs_sha256(second) == SECOND_ORDER_INPUTS_SHA256


def test_their_content_is_pinned_under_this_numpy(second):
    if np.__version__ != "2.4.6":
        pytest.skip("expected values may move by an ulp with NumPy")
    assert golden.corpus_sha256(second) == SECOND_ORDER_SHA256


def test_every_function_in_both_dtypes(second):
    seen = {(case.function, case.dtype) for case in second}
    assert seen == {(f, d) for f in golden.SECOND_ORDER_FUNCTIONS for d in golden.DTYPES}
    assert 60 <= len(second) <= 80
    assert len({case.id for case in golden.build_corpus()}) == len(golden.build_corpus())
    for case in second:
        signature = golden.signature_of(case.function)
        assert case.kind == signature.kind == case.options["kind"]
        assert case.loss is None and case.grad is None
        assert set(case.expected) == set(signature.fields)
        assert (case.grad_output is None) == (case.kind == "stats")


def test_every_option_is_exercised(second):
    def having(function, **kwargs):
        return [c for c in second if c.function == function
                and all(c.kwargs.get(k, "absent") == v for k, v in kwargs.items())]

    for function in ("cross_entropy_hvp", "cross_entropy_stats"):
        mine = having(function)
        assert {c.kwargs.get("reduction", "mean") for c in mine} == {"none", "mean", "sum"}
        assert any("weight" in c.kwargs for c in mine)
        assert any(c.kwargs.get("label_smoothing") for c in mine)
        assert any((c.inputs["target"] == -100).any() for c in mine
                   if c.inputs["target"].dtype.kind == "i")
        for option in ("logit_scale", "softcap", "z_loss"):
            assert any(c.kwargs.get(option) not in (None, 0.0, 1.0) for c in mine), option
        assert any(c.inputs["target"].dtype.kind == "f" for c in mine)  # probabilities
    # a softcap without the other options: its second derivative shows alone
    assert having("cross_entropy_hvp", softcap=5.0, reduction="absent")
    for function in ("binary_cross_entropy_grad_target", "cross_entropy_grad_target"):
        assert {c.kwargs.get("reduction", "mean") for c in having(function)} == {
            "none", "mean", "sum"}
    assert any(c.inputs["v"][2] is None for c in having("linear_cross_entropy_hvp"))


def test_the_ties_are_broken_to_the_first_index(second):
    case = next(c for c in second if "softcap=1" in c.id and c.dtype == "float64")
    z = np.tanh(case.inputs["input"])
    stats = case.expected
    assert z[0, 0] == z[0, 1] == 1.0 and stats["argmax"][0] == 0  # raw argmax: 1
    assert stats["argmax"][3] == 1 and z[3, 1] == z[3, 2] == z[3, 3]
    assert stats["argmax"].tolist() == np.argmax(z, axis=1).tolist()
    assert stats["correct"].tolist() == [False, False, False, False]
    assert not stats["kept"][2] and stats["z_loss"][2] == 0


def test_the_expected_values_are_xent_refs(second):
    for case in second[::5]:
        signature = golden.signature_of(case.function)
        again = golden.call_second_order(getattr(xr, signature.calls), case)
        if case.kind == "stats":
            for name in signature.fields:
                np.testing.assert_array_equal(getattr(again, name), case.expected[name])
        else:
            for want, got in zip(golden.grad_parts(case.expected[signature.fields[0]]),
                                 golden.grad_parts(again)):
                np.testing.assert_array_equal(got, want)


def test_the_json_reads_back_bit_for_bit(tmp_path, second):
    path = tmp_path / "second.json"
    golden.write_corpus(path, second)
    document = json.loads(path.read_text())
    kinds = {c["kind"] for c in document["cases"]}
    assert kinds == {"hvp", "grad_target", "stats"}
    target = next(c for c in document["cases"] if c["kind"] == "grad_target")
    assert target["calls"].endswith("_grad") and target["call_kwargs"] == {"wrt": "target"}
    assert "loss" not in target and "grad_target" in target
    back = golden.read_corpus(path)
    assert golden.corpus_sha256(back) == golden.corpus_sha256(second)
    for original, read in zip(second, back):
        assert (read.id, read.function, read.kwargs.keys(), read.rtol, read.grad_atol) == (
            original.id, original.function, original.kwargs.keys(), original.rtol,
            original.grad_atol)
        for name, value in original.expected.items():
            for a, b in zip(golden.grad_parts(value), golden.grad_parts(read.expected[name])):
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (original.id, name)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("hvp"), "missing hvp"),
    (lambda c: c.update(exact_only="why"), "tolerance rule"),
    (lambda c: c["inputs"].pop("v"), "inputs: missing v"),
])
def test_a_malformed_second_order_case_is_refused(second, change, message):
    case = next(c for c in second if c.function == "cross_entropy_hvp")
    obj = json.loads(json.dumps(golden.case_to_json(case)))
    change(obj)
    with pytest.raises(golden.SchemaError, match=message):
        golden.case_from_json(obj)


def test_a_malformed_statistics_object_is_refused(second):
    case = next(c for c in second if c.kind == "stats")
    obj = json.loads(json.dumps(golden.case_to_json(case)))
    obj["stats"].pop("entropy")
    with pytest.raises(golden.SchemaError, match="stats: missing entropy"):
        golden.case_from_json(obj)
