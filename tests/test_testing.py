"""``xent_ref.testing``: check / assert_matches / cases, the Python face of ``verify``."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from xent_ref import golden, testing


def weighted_mean_by_count(input, target, weight=None, ignore_index=-100, reduction="mean",
                           label_smoothing=0.0, **llm_options):
    """A common mistake: the weighted mean divided by the number of kept targets."""
    options = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                   **llm_options)
    if weight is None or reduction != "mean" or np.asarray(target).dtype.kind != "i":
        return xr.cross_entropy(input, target, reduction=reduction, **options)
    total = xr.cross_entropy(input, target, reduction="sum", **options)
    return (total / np.sum(np.asarray(target) != ignore_index)).astype(total.dtype)


def test_the_reference_passes():
    report = testing.check(xr.cross_entropy, "cross_entropy", grad=xr.cross_entropy_grad)
    assert report.ok and not report.failures and not report.diagnoses
    n = len(testing.cases("cross_entropy"))
    # 528 small cases, 20 at vocabulary scale, 100 with the LLM options or micro-batches,
    # 32 in float16/bfloat16 (10 of them with the options)
    assert n == 680
    assert report.counts() == {"cross_entropy": {"passed": n, "failed": 0},
                               "cross_entropy_grad": {"passed": n, "failed": 0}}
    assert f"PASSED: all {2 * n} checks" in str(report)


def test_a_wrong_implementation_is_grouped_and_diagnosed():
    report = testing.check(weighted_mean_by_count, "cross_entropy")
    assert not report.ok
    assert {d.id for d in report.diagnoses} == {"mean-denominator-count"}
    (diagnosis,) = report.diagnoses
    assert set(diagnosis.cases) == {o.case.id for o in report.failures}
    # Every failure is in exactly one group, and the big group is "all N with ...".
    grouped = [case for g in report.groups for case in g.cases]
    assert sorted(grouped) == sorted(o.case.id for o in report.failures)
    assert report.groups[0].all
    assert report.groups[0].options == {"reduction": "mean", "target": "index", "weight": "yes"}
    # 52 small cases, 8 with the LLM options, 2 micro-batches, 4 in float16/bfloat16 (2
    # with the options)
    assert report.groups[0].describe() == (
        "all 66 cases with reduction=mean, target=index, weight=yes")
    text = report.text(full=True)
    assert "[mean-denominator-count]" in text and "fix: divide by" in text
    assert "not offered (not checked): cross_entropy_grad\n" in text
    short = str(report)  # the learner's form: the cause first, its fix, one case
    assert len(short.splitlines()) <= 12 and "not offered" not in short
    assert any(line.startswith("cause [mean-denominator-count]")
               for line in short.splitlines()[:3])
    html = report._repr_html_()
    assert "<table>" in html and "mean-denominator-count" in html


def test_assert_matches_raises_with_the_report():
    with pytest.raises(AssertionError, match="mean-denominator-count"):
        testing.assert_matches(weighted_mean_by_count, "cross_entropy", dtypes=["float64"])
    report = testing.assert_matches(xr.nll_loss, "nll_loss", dtypes="f32")
    assert {o.case.dtype for o in report.outcomes} == {"float32"}
    report = testing.check(xr.nll_loss, "nll_loss", dtypes=np.float64)
    assert {o.case.dtype for o in report.outcomes} == {"float64"}


def test_dtypes_leaves_out_the_other_dtypes_and_says_so():
    import ml_dtypes

    every = testing.check(xr.softmax, "softmax", grad=xr.softmax_grad)
    assert {o.case.dtype for o in every.outcomes} == {"float16", "bfloat16", "float32",
                                                      "float64"}
    assert every.selection is None and "dtypes checked" not in str(every)
    assert every.to_json()["dtypes"] is None
    wide = testing.check(xr.softmax, "softmax", grad=xr.softmax_grad,
                         dtypes=("float32", "float64"))
    assert wide.ok and {o.case.dtype for o in wide.outcomes} == {"float32", "float64"}
    assert len(wide.outcomes) == len(every.outcomes) - 4  # 2 cases, value and gradient
    assert "dtypes checked: float32, float64 only; left out: 2 cases (1 float16, " \
        "1 bfloat16)" in str(wide)
    assert wide.to_json()["dtypes"] == {"checked": ["float32", "float64"], "left_out": 2,
                                        "left_out_by_dtype": {"float16": 1, "bfloat16": 1}}
    # the low-precision dtypes by name, by short name and by type
    for spelled in ("bfloat16", "bf16", ml_dtypes.bfloat16):
        report = testing.check(xr.cross_entropy, "cross_entropy", dtypes=spelled)
        assert report.ok and {o.case.dtype for o in report.outcomes} == {"bfloat16"}
    report = testing.check(xr.nll_loss, "nll_loss", dtypes=[np.float16, "float64"])
    assert {o.case.dtype for o in report.outcomes} == {"float16", "float64"}
    for bad, message in (("float8", "float8 is not a dtype of the corpus"),
                         (np.int64, "int64 is not a dtype of the corpus"),
                         ([], "no dtype given")):
        with pytest.raises(ValueError, match=f"dtypes: {message}"):
            testing.check(xr.softmax, "softmax", dtypes=bad)


def test_cases_filters_by_the_options_in_the_ids():
    chosen = testing.cases("cross_entropy", weight=True, reduction="mean", dtype="f64",
                           target="index", shape="NxC")
    assert chosen and all(c.function == "cross_entropy" for c in chosen)
    for case in chosen:
        assert "weight" in case.kwargs and case.kwargs["reduction"] == "mean"
        assert case.dtype == "float64" and case.inputs["input"].shape == (3, 5)
    # cross_entropy: 2 ignore_index x 3 extras x 3 reductions x 2 dtypes; nll_loss: 3 x 2
    assert len(testing.cases(kind="edge", edge="all-ignored")) == 36 + 6
    assert len(testing.cases()) == len(golden.build_corpus())
    # Values as Python spells them: 0 for "0.0", np.float32 for "f32", -1 for "-1".
    assert testing.cases("cross_entropy", smoothing=0, dtype=np.float32, ignore_index=-1,
                         shape="NxC", reduction="sum", weight=False) == [
        c for c in golden.build_corpus()
        if c.id == "cross_entropy/index/NxC/sum/no-w/ign=-1/ls=0.0/f32"]
    assert testing.cases("softmax", axis=[0, 1]) == [
        c for c in golden.build_corpus() if c.function == "softmax"
        and c.kwargs.get("axis") in (0, 1)]
    with pytest.raises(TypeError, match="unknown filters"):
        testing.cases("softmax", colour="red")
    with pytest.raises(ValueError, match="unknown function"):
        testing.cases("softmaxx")


def test_every_option_in_every_id_is_a_filter():
    # The LLM options of the linear cases (spelled, or "llm" for the three together),
    # the linear sizes and the bias are filters like the others, with the kwargs they say.
    together = testing.cases("linear_cross_entropy", z_loss=0.01)
    assert len(together) == 20
    assert all(c.kwargs["z_loss"] == 0.01 and c.kwargs["softcap"] == 5.0 for c in together)
    assert testing.cases("linear_cross_entropy", softcap=5, logit_scale=0.5) == together
    assert {c.kwargs["softcap"] for c in testing.cases("cross_entropy", softcap=30.0)} == {30.0}
    no_bias = testing.cases("linear_cross_entropy", bias=False)
    assert no_bias and all("linear_bias" not in c.kwargs for c in no_bias)
    for case in testing.cases("linear_cross_entropy", classes=5, positions=6):
        assert case.inputs["linear_weight"].shape[:2] == (5, 6)
    assert [c.inputs["input"].shape for c in testing.cases(tokens=256, hidden=16)] == [(256, 16)]
    # Every token of every id is read into some option: nothing is left unparsed.
    keys = set(golden.ID_KEYS)
    for case in golden.build_corpus():
        assert set(case.options) <= keys
        for key, value in case.options.items():
            assert case in testing.cases(case.function, **{key: value}), (case.id, key)


@pytest.mark.parametrize("filters", [{"z_loss": 0.5}, {"shape": "NxCC"}, {"kind": "vocab",
                                                                           "dtype": "f16"}])
def test_a_filter_that_selects_nothing_raises_naming_it(filters):
    with pytest.raises(ValueError, match="selects no golden case") as raised:
        testing.cases("cross_entropy", **filters)
    for key, value in filters.items():
        assert f"{key}={value!r}" in str(raised.value)


@pytest.mark.parametrize("case", testing.cases("log_softmax", shape="NxC", axis=-1))
def test_cases_name_themselves_in_parametrize(case, request):
    assert request.node.name == f"test_cases_name_themselves_in_parametrize[{case.id}]"
    testing.assert_matches(xr.log_softmax, "log_softmax", grad=xr.log_softmax_grad,
                           cases=[case])


def test_check_refuses_nonsense():
    with pytest.raises(ValueError, match="unknown function"):
        testing.check(xr.softmax, "soft_max")
    with pytest.raises(TypeError, match="fn must be callable"):
        testing.check(42, "softmax")
    with pytest.raises(ValueError, match="not a golden case of softmax"):
        testing.check(xr.softmax, "softmax", cases=testing.cases("log_softmax")[:1])


def test_check_the_gradient_alone():
    report = testing.check(None, "softmax", grad=xr.softmax_grad)
    assert report.ok and set(report.counts()) == {"softmax_grad"}


def _example_file(tmp_path):
    """The python block of docs/testing-example.md, as the test file a user would save."""
    text = (Path(__file__).parent.parent / "docs" / "testing-example.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    path = tmp_path / "test_my_softmax.py"
    path.write_text(block)
    return path


def test_the_docs_pytest_example_runs_under_pytest(tmp_path):
    path = _example_file(tmp_path)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-o", "addopts=", str(path)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    assert f"{len(testing.cases('log_softmax')) + 3} passed" in run.stdout


def test_the_docs_example_catches_a_wrong_axis(tmp_path):
    path = _example_file(tmp_path)
    source = path.read_text()
    buggy = "def my_softmax_grad(x, grad_output, axis=-1):\n    axis = -1  # BUG\n"
    path.write_text(source.replace("def my_softmax_grad(x, grad_output, axis=-1):\n", buggy))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-o", "addopts=", str(path), "-k", "every_dtype"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 1
    assert "[class-axis-last]" in run.stdout and "fix: reduce along the `axis`" in run.stdout
