"""``verify`` and ``xent_ref.testing`` on the second-order kinds: hvp, the target's gradient
(only from a ``_grad`` that takes ``wrt``), the statistics; their results fields, their
reports and their diagnoses (tests/wrong_impls/second_order/, named in
tests/test_verify.py with the rest of the catalogue)."""

import dataclasses
import json
import textwrap

import numpy as np
import pytest

import xent_ref as xr
from xent_ref import cli, golden, testing, verify
from xent_ref.golden.jsonio import encode_array


def _module(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_each_kind_through_testing_check():
    for name in golden.SECOND_ORDER_FUNCTIONS:
        calls = golden.signature_of(name).calls
        report = testing.check(getattr(xr, calls), name)
        assert report.ok and len(report.outcomes) == len(testing.cases(name)), name
    assert testing.cases(kind="stats", softcap=1)
    with pytest.raises(TypeError, match="grad: cross_entropy_hvp has no gradient twin"):
        testing.check(xr.cross_entropy_hvp, "cross_entropy_hvp", grad=xr.cross_entropy_grad)


def test_a_wrong_statistic_is_named_in_the_reason():
    def shifted(input, target, **kwargs):
        stats = xr.cross_entropy_stats(input, target, **kwargs)
        return dataclasses.replace(stats, lse=stats.lse + 1)

    report = testing.check(shifted, "cross_entropy_stats")
    assert not report.ok and len(report.failures) == len(testing.cases("cross_entropy_stats"))
    assert all(o.check.why.startswith("statistic lse: at index") for o in report.failures)
    assert "lse: " in report.text(full=True, lang="zh")


def test_statistics_as_a_mapping_and_a_missing_one():
    def as_dict(input, target, **kwargs):
        stats = xr.cross_entropy_stats(input, target, **kwargs)
        return {k: v for k, v in dataclasses.asdict(stats).items() if k != "entropy"}

    report = testing.check(as_dict, "cross_entropy_stats")
    assert {o.check.why for o in report.failures} == {
        "statistic entropy: expected an array, got None"}


def test_the_hvp_of_several_parameters_is_judged_part_by_part():
    def no_weight_part(*args, **kwargs):
        hv_h, hv_w, hv_b = xr.linear_cross_entropy_hvp(*args, **kwargs)
        return hv_h, hv_w * 0, hv_b

    report = testing.check(no_weight_part, "linear_cross_entropy_hvp")
    assert report.failures and all(o.check.why.startswith("grad of linear_weight: ")
                                   for o in report.failures)


def test_a_grad_without_wrt_skips_the_target_cases_and_says_why(tmp_path, capsys):
    path = _module(tmp_path, "no_wrt", """
        import xent_ref as xr

        def cross_entropy_grad(input, target, grad_output=None, **kwargs):
            return xr.cross_entropy_grad(input, target, grad_output=grad_output, **kwargs)

        def binary_cross_entropy_grad(input, target, *, wrt="input", **kwargs):
            return xr.binary_cross_entropy_grad(input, target, wrt=wrt, **kwargs)
    """)
    json_path = tmp_path / "report.json"
    assert verify.main(impl=path, json_path=str(json_path)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("skipped (offered, but not callable as the cases need): cross_entropy_grad_target "
            "(cross_entropy_grad takes no wrt= argument)") in out
    document = json.loads(json_path.read_text())
    assert document["skipped"] == {
        "cross_entropy_grad_target": "cross_entropy_grad takes no wrt= argument"}
    assert document["functions"]["binary_cross_entropy_grad_target"]["failed"] == 0
    assert "cross_entropy_grad_target" not in document["functions"]
    assert verify.accepts_wrt(xr.cross_entropy_grad) and not verify.accepts_wrt(print)


def test_a_module_without_the_second_order_functions_is_told_so(tmp_path, capsys):
    path = _module(tmp_path, "losses_only", """
        from xent_ref import softmax, softmax_grad
    """)
    assert verify.main(impl=path) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "not offered (not checked):" in out and "cross_entropy_stats" in out


@pytest.fixture(scope="module")
def second_results():
    """A results document for the second-order cases alone, from xent_ref."""
    results = []
    for case in golden.second_order_cases():
        got = golden.call_second_order(getattr(xr, golden.signature_of(case.function).calls),
                                       case)
        if case.kind == "stats":
            entry = {"stats": {n: encode_array(getattr(got, n)) for n in golden.STATISTICS}}
        else:
            entry = {case.kind: golden.encode_grad(got)}
        results.append(dict(entry, id=case.id))
    return {"format": "xent-ref-results", "schema": 1, "results": results}


def _verify_results(tmp_path, document):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document, allow_nan=False))
    return verify.main(results=str(path))


def test_second_order_results_pass_and_a_wrong_one_fails(tmp_path, second_results, capsys):
    assert _verify_results(tmp_path, second_results) == 0
    assert f"PASSED: all {len(golden.second_order_cases())} checks" in capsys.readouterr().out
    wrong = json.loads(json.dumps(second_results))
    entry = next(r for r in wrong["results"] if "stats" in r)
    entry["stats"]["argmax"]["data"][0] += 1
    assert _verify_results(tmp_path, wrong) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "statistic argmax: at index (0,)" in out


def test_a_malformed_statistics_result_is_a_bad_file(tmp_path, second_results, capsys):
    wrong = json.loads(json.dumps(second_results))
    entry = next(r for r in wrong["results"] if "stats" in r)
    entry["stats"]["colour"] = entry["stats"].pop("lse")
    assert _verify_results(tmp_path, wrong) == 2
    assert "unknown statistic 'colour'" in capsys.readouterr().out


def test_the_diagnoses_speak_chinese(capsys):
    path = "tests/wrong_impls/second_order/hvp_missing_outer_product.py"
    assert cli.main(["verify", "--impl", path, "--lang", "zh", "--short"]) == 1
    out = capsys.readouterr().out
    assert "[hvp-missing-outer-product]" in out and "diag(p)" in out and "改法：" in out


def test_each_diagnosis_predicts_only_where_its_mistake_shows():
    from xent_ref.verify import conventions

    by_id = conventions.BY_ID
    second = golden.second_order_cases()
    plain = next(c for c in second if c.id == "hvp/cross_entropy/index/NxC/mean/f64")
    capped = next(c for c in second if c.id == "hvp/cross_entropy/index/NxC/mean/softcap=5/f64")
    softcap = by_id["hvp-softcap-second-derivative-missing"].predict
    assert softcap(plain, plain.function, None) is None
    predicted = softcap(capped, capped.function, None)
    assert not np.allclose(predicted, capped.expected["hvp"])
    outer = by_id["hvp-missing-outer-product"].predict(plain, plain.function, None)
    p = xr.softmax(plain.inputs["input"], axis=1)
    n = plain.inputs["input"].shape[0]
    np.testing.assert_allclose(outer, plain.grad_output * p * plain.inputs["v"] / n, rtol=1e-12)
    stats = next(c for c in second if c.id == "stats/cross_entropy/index/NxC/mean/f64")
    assert by_id["entropy-of-unscaled-logits"].predict(stats, stats.function, None) is None
    assert by_id["argmax-last-index"].predict(stats, stats.function, None) is None


@pytest.mark.torch
def test_torch_computes_every_second_order_case(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "torch.json"
    assert verify.main(impl="torch", json_path=str(path)) == 0
    functions = json.loads(path.read_text())["functions"]
    for name in golden.SECOND_ORDER_FUNCTIONS:  # double backward, target.grad, logsumexp
        count = sum(c.function == name for c in golden.second_order_cases())
        assert functions[name] == {"passed": count, "failed": 0}, name
