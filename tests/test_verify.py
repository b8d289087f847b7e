"""``xent-ref verify``: the reference passes, every deliberately wrong implementation
fails, results files from outside Python are judged, and PyTorch passes (marker torch)."""

import contextlib
import ast
import hashlib
import io
import re
import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from xent_ref import cli, golden, verify
from xent_ref.verify import conventions as _conventions
from xent_ref.verify import torch_adapter as _torch_adapter
from xent_ref.golden.jsonio import decode_array, encode_array, npy_bytes
from tests.test_family_wrong_impls import FAMILY_IDS

FAMILY_FUNCTIONS = ("kl_div", "sigmoid_focal_loss", "softmax_focal_loss", "poly1_cross_entropy")

# Wrong, but passes: PyTorch makes the same error, which the float16/bfloat16 rule allows
# (verify names it in a note; tests/test_kernel_corpus.py has the details).
PASSES_NAMED = {"grad_true_class_rounded": "grad-true-class-rounded"}
WRONG_FOLDER = Path(__file__).parent / "wrong_impls"
# Every file of the catalogue, subfolders included; each is named by its path below
# wrong_impls/ without ".py" ("family/focal_gamma_ignored"), a top-level one by its stem.
ALL_WRONG = sorted(p for p in WRONG_FOLDER.rglob("*.py") if not p.name.startswith("_"))
WRONG_IMPLS = [p for p in ALL_WRONG if p.stem not in PASSES_NAMED]
REPO = Path(__file__).resolve().parent.parent


def wrong_name(path: Path) -> str:
    return path.relative_to(WRONG_FOLDER).with_suffix("").as_posix()


_DIAGNOSIS_LINE = re.compile(r"^Diagnosis:\s*(.+?)\s*$", re.MULTILINE)


def stated_diagnosis(path: Path):
    """The id(s) a wrong implementation's docstring states on its ``Diagnosis:`` line
    (one id: a str; several: a tuple), or None when it has no such line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    found = _DIAGNOSIS_LINE.search(doc)
    if not found:
        return None
    ids = tuple(i.strip() for i in found.group(1).split(",") if i.strip())
    return ids[0] if len(ids) == 1 else ids


def expected_diagnosis(path: Path):
    """The docstring's ``Diagnosis:`` line, else the DIAGNOSIS table's entry."""
    stated = stated_diagnosis(path)
    return stated if stated is not None else DIAGNOSIS.get(wrong_name(path))


def _functions_in_corpus(path: Path) -> list[str]:
    """The corpus functions the module offers, as verify loads it (some are made in a
    loop, ``globals().update(...)``, which no reading of the source would see)."""
    names = set(dir(verify.load_implementation(str(path))))
    return sorted(names & set(verify.function_order()))


def skip_unless_in_corpus(path: Path):
    if not _functions_in_corpus(path):
        pytest.skip(f"{wrong_name(path)}: none of its functions is in the corpus yet")


def _module(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_reference_passes_its_own_corpus(capsys):
    assert verify.main(impl="xent_ref") == 0
    out = capsys.readouterr().out
    for name in golden.FUNCTIONS:
        assert f"\n{name} " in out and f"\n{name}_grad " in out
    assert "PASSED: all" in out and "FAIL" not in out and "exact_only" not in out
    assert max(len(line) for line in out.splitlines()) <= 100


# The diagnosis each deliberately wrong implementation must get: the id naming its bug
# (or, for an implementation with several, every one of them).
DIAGNOSIS = {
    "framework_conventions": ("mean-denominator-n", "ignored-in-denominator", "bce-clip-1e-7"),
    "bce_grad_epsilon_double": "bce-grad-clamp-double",
    "bce_weight_on_axis_1": "weight-on-axis-1",
    "bce_with_logits_clipped_sigmoid": "bce-clip-1e-7",
    "bce_with_logits_naive": "bce-logits-via-sigmoid",
    "bce_without_clamp": "bce-no-clamp",
    "float32_returned_as_float64": "wrong-dtype",
    "grad_forgets_pos_weight": "grad-missing-pos-weight",
    "grad_ignores_grad_output": "grad-ignores-grad-output",
    "grad_wrong_for_huge_logits": "softmax-via-rounded-lse",
    "ignore_index_dropped": "ignore-index-not-applied",
    "low_precision_throughout": "low-precision-arithmetic",
    "mean_by_all_targets": "mean-denominator-n",
    "mean_counts_ignored": "ignored-in-denominator",
    "probability_mean_by_weight_sum": "probs-mean-by-weight",
    "smoothing_over_c_minus_1": "smoothing-c-minus-1",
    "smoothing_without_weights": "smoothing-unweighted",
    "soft_target_grad_p_minus_y": "soft-target-grad-p-minus-y",
    "softmax_grad_last_axis": "class-axis-last",
    "softmax_without_max_shift": "no-max-shift",
    "weighted_mean_by_count": "mean-denominator-count",
    "zero_weight_mean_is_zero": "zero-weight-mean-not-nan",
    "bias_grad_averaged": "bias-grad-averaged",
    "grad_mean_not_divided": "grad-mean-not-divided",
    "softcap_before_scale": "softcap-before-scale",
    "softcap_grad_without_slope": "softcap-grad-without-slope",
    "z_loss_grad_missing": "z-loss-grad-missing",
    "z_loss_mean_by_weight": "z-loss-mean-by-weight",
    "z_loss_on_ignored": "z-loss-on-ignored",
    # The mistakes of LLM loss kernels
    "smoothing_on_ignored": "smoothing-on-ignored",
    "softcap_multiplies_logit": "softcap-multiplies-logit",
    "softcap_not_applied": "softcap-not-applied",
    "grad_output_first_element": "grad-output-first-element",
    "per_microbatch_mean": "per-microbatch-mean",
    "z_loss_when_off": "z-loss-when-off",
    "z_loss_mean_all_tokens": "z-loss-mean-all-tokens",
    "dw_low_precision_accumulation": "dw-low-precision-accumulation",
    "smoothing_local_vocab": "smoothing-local-vocab",
    "linear_ignore_index_dropped": "linear-ignore-index-dropped",
    "smoothing_weights_missing": "smoothing-weights-missing",
    "linear_probability_targets_refused": "probability-targets-refused",
    "llm_options_in_low_precision": "low-precision-arithmetic",
}


def _ids(expected) -> set[str]:
    return {expected} if isinstance(expected, str) else set(expected)


def test_every_wrong_implementation_has_its_diagnosis():
    names = {wrong_name(p) for p in WRONG_IMPLS}
    assert set(DIAGNOSIS) <= names, set(DIAGNOSIS) - names  # no entry for a missing file
    for path in ALL_WRONG:
        expected = expected_diagnosis(path)
        assert expected, f"{wrong_name(path)}: no 'Diagnosis: <id>' line in its docstring"
        if _functions_in_corpus(path):
            assert _ids(expected) <= set(_conventions.BY_ID), (wrong_name(path), expected)
        # The table (until its entries move into the docstrings) agrees with the line.
        if wrong_name(path) in DIAGNOSIS and stated_diagnosis(path) is not None:
            assert _ids(DIAGNOSIS[wrong_name(path)]) == _ids(stated_diagnosis(path))
    for name, expected in PASSES_NAMED.items():
        assert expected_diagnosis(WRONG_FOLDER / f"{name}.py") == expected


def test_the_catalogue_is_large_enough():
    assert len(ALL_WRONG) >= 60


@pytest.fixture(scope="module")
def wrong_reports(tmp_path_factory):
    """Each wrong implementation through the command once: exit status, text, JSON, XML."""
    folder = tmp_path_factory.mktemp("reports")
    reports = {}
    for path in WRONG_IMPLS:
        if not _functions_in_corpus(path):
            continue
        stem = wrong_name(path).replace("/", "--")
        json_path, xml_path = folder / f"{stem}.json", folder / f"{stem}.xml"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = verify.main(impl=str(path), json_path=str(json_path),
                                 junit_path=str(xml_path))
        reports[wrong_name(path)] = (status, out.getvalue(),
                                     json.loads(json_path.read_text()),
                                     ET.parse(xml_path).getroot())
    return reports


@pytest.mark.parametrize("path", WRONG_IMPLS, ids=wrong_name)
def test_every_wrong_implementation_fails_and_is_diagnosed(path, wrong_reports):
    skip_unless_in_corpus(path)
    status, out, document, _ = wrong_reports[wrong_name(path)]
    assert status == 1 and not document["ok"]
    assert "FAIL " in out and "FAILED:" in out
    # The first failing case is shown in full: its id, inputs, expected, got and why.
    for label in ("case ", "expected ", "got ", "why "):
        assert f"\n  {label}" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    failing = [d for d in document["diagnoses"] if d["failing"]]
    expected = expected_diagnosis(path)
    assert verify.UNEXPLAINED not in {d["id"] for d in failing}
    if isinstance(expected, str):
        # The bug's own diagnosis explains the most failing cases of all diagnoses.
        top = max(failing, key=lambda d: len(d["cases"]))
        assert len(top["cases"]) == max(len(d["cases"]) for d in failing
                                        if d["id"] == expected)
        assert f"[{expected}]" in out
        # ... and every failing float32/float64 check. Another name is only for the
        # float16/bfloat16 cases of an implementation that computes in those dtypes (what
        # the bug's own NumPy code does there): low-precision-arithmetic.
        for d in failing:
            if d["id"] != expected:
                assert d["id"] == "low-precision-arithmetic", (d["id"], d["cases"])
                assert {golden.parse_id(c)["dtype"] for c in d["cases"]} <= {
                    "float16", "bfloat16"}
    else:  # several bugs: each named, and nothing left unexplained
        assert {d["id"] for d in failing} == set(expected)
    # Every failure is in exactly one group.
    failed = sum(f["failed"] for f in document["functions"].values())
    assert sum(g["failed"] for g in document["groups"]) == failed
    for group in document["groups"]:
        assert group["all"] == (group["failed"] == group["total"])


def test_every_convention_of_the_catalogue_is_seen(wrong_reports):
    seen = {d["id"] for _, _, document, _ in wrong_reports.values()
            for d in document["diagnoses"]}
    # (the family's wrong versions, tests/wrong_impls/family/, are named there)
    seen |= FAMILY_IDS
    assert seen | set(PASSES_NAMED.values()) >= set(_conventions.BY_ID), \
        set(_conventions.BY_ID) - seen
    assert len(_conventions.CATALOGUE) == len(_conventions.BY_ID)  # ids are unique


@pytest.mark.parametrize("name", sorted(PASSES_NAMED))
def test_an_error_pytorch_makes_too_passes_and_is_named(name, capsys):
    path = Path(__file__).parent / "wrong_impls" / f"{name}.py"
    assert verify.main(impl=str(path)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"[{PASSES_NAMED[name]}]" in out and "reported, not failed" in out


def test_the_json_report(wrong_reports):
    status, out, document, _ = wrong_reports["weighted_mean_by_count"]
    assert set(document) >= {"ok", "corpus", "functions", "groups", "diagnoses"}
    assert document["corpus"] == {"version": golden.SCHEMA_VERSION,
                                  "cases": len(golden.build_corpus()),
                                  "sha256": golden.corpus_sha256(golden.build_corpus()),
                                  "origin": "generated afresh"}
    # 28 float32/float64 cases and 2 float16/bfloat16 (a weighted mean: by count, wrong)
    assert document["functions"]["nll_loss"] == {"passed": 152, "failed": 30}
    assert document["dtypes"] is None  # every dtype checked
    (nll,) = [d for d in document["diagnoses"] if d["function"] == "nll_loss"]
    assert nll["id"] == "mean-denominator-count" and len(nll["cases"]) == 30
    assert nll["explanation"].startswith("reduction='mean' with class weights divides by")
    assert {"function": "nll_loss", "options": {"reduction": "mean", "weight": "yes"},
            "failed": 28, "total": 28, "all": True} in [
        {k: g[k] for k in ("function", "options", "failed", "total", "all")}
        for g in document["groups"]]
    assert document["corpus"]["sha256"][:16] in out


def test_the_junit_report(wrong_reports):
    _, _, document, suite = wrong_reports["weighted_mean_by_count"]
    testcases = suite.findall("testcase")
    counts = document["functions"]
    # (its cross_entropy_grad takes no wrt=: the target-gradient cases, one skipped entry)
    assert document["skipped"] == {
        "cross_entropy_grad_target": "cross_entropy_grad takes no wrt= argument"}
    skipped = [t for t in testcases if t.find("skipped") is not None]
    assert [t.get("classname") for t in skipped] == ["cross_entropy_grad_target"]
    assert int(suite.get("skipped")) == 1
    assert len(testcases) - 1 == sum(c["passed"] + c["failed"] for c in counts.values())
    assert int(suite.get("tests")) == len(testcases)
    assert int(suite.get("failures")) == sum(c["failed"] for c in counts.values())
    failures = [t for t in testcases if t.find("failure") is not None]
    assert len(failures) == int(suite.get("failures"))
    one = next(t for t in failures if t.get("name") == "nll_loss/index/NxC/mean/w/ign=1/f32")
    assert one.get("classname") == "nll_loss"
    failure = one.find("failure")
    assert failure.get("type") == "mean-denominator-count"
    assert failure.get("message").startswith("[mean-denominator-count] at index ()")
    assert "count of kept targets" in failure.text


def test_json_to_stdout_is_the_json_alone(capsys):
    assert verify.main(impl="xent_ref", json_path="-") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["groups"] == [] and document["diagnoses"] == []
    assert document["functions"]["softmax"] == {"passed": 26, "failed": 0}  # 2 low-precision


def test_dtypes_leaves_out_the_other_dtypes_and_says_so(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert cli.main(["verify", "--impl", "xent_ref", "--dtypes", "float32, f64",
                     "--json", str(path)]) == 0
    out = capsys.readouterr().out
    wide = [c for c in golden.build_corpus() if c.dtype in ("float32", "float64")]
    assert f": {len(wide)} of {len(golden.build_corpus())} golden cases" in out
    assert "\ndtypes checked: float32, float64 only; left out: 59 cases (28 float16, " \
        "31 bfloat16)\n" in out
    assert "float16/bfloat16: |got" not in out  # no such case checked, no such rule shown
    document = json.loads(path.read_text())
    assert document["dtypes"] == {"checked": ["float32", "float64"], "left_out": 59,
                                  "left_out_by_dtype": {"float16": 28, "bfloat16": 31}}
    checks = sum(1 if c.kind != "loss" else 2 for c in wide)  # a second-order case: one
    assert sum(c["passed"] for c in document["functions"].values()) == checks
    assert cli.main(["verify", "--impl", "xent_ref", "--dtypes", "bf16"]) == 0
    out = capsys.readouterr().out
    assert " 31 of " in out and "left out: 1703 cases (" in out
    assert "float16/bfloat16: |got - float64 answer| <= PyTorch's own error + one ulp" in out


@pytest.mark.parametrize("spelled, message", [
    ("float32,fp8", "fp8 is not a dtype of the corpus; expected some of float32, float64, "
                    "float16, bfloat16"),
    ("int64", "int64 is not a dtype of the corpus"),
    (",", "no dtype given"),
])
def test_dtypes_refuses_what_the_corpus_has_no_case_of(spelled, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["verify", "--impl", "xent_ref", "--dtypes", spelled])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"xent-ref verify: error: argument --dtypes: {message}" in err
    assert verify.main(impl="xent_ref", dtypes=[d for d in spelled.split(",") if d]) == 2
    assert f"xent-ref verify: dtypes: {message}" in capsys.readouterr().out


def test_a_failure_no_convention_explains_says_so(tmp_path, capsys):
    path = _module(tmp_path, "off_by_a_little", """
        import xent_ref as xr
        def nll_loss(*args, **kwargs):
            return xr.nll_loss(*args, **kwargs) * 1.001
    """)
    assert verify.main(impl=path) == 1
    out = capsys.readouterr().out
    assert "[unexplained]" in out and "no known convention explains these" in out


RIGHT_IMPL = Path(__file__).parent / "right_impls" / "scipy_impl.py"


def test_pytorch_semantics_on_scipy_primitives_pass(capsys):
    assert verify.main(impl=str(RIGHT_IMPL)) == 0
    out = capsys.readouterr().out
    # (it has no kl_div, focal or poly-1: those cases are not offered)
    offered = [c for c in golden.build_corpus()
               if c.kind == "loss" and c.function not in FAMILY_FUNCTIONS]
    assert f"PASSED: all {2 * len(offered)} checks" in out
    # It rounds the confident rows' tiny losses (as PyTorch does): reported, named, passed.
    assert "16 exact_only checks pass only through atol" in out
    assert "[tiny-loss-rounded] cross_entropy:" in " ".join(out.split())


def test_an_exception_is_a_failure_with_its_message(tmp_path, capsys):
    path = _module(tmp_path, "raising", """
        import xent_ref as xr
        softmax = xr.softmax
        def log_softmax(x, axis=-1):
            raise ValueError("boom: not implemented for axis 0")
    """)
    assert verify.main(impl=path) == 1
    out = capsys.readouterr().out
    assert "raised ValueError: boom: not implemented for axis 0" in out
    assert "\nsoftmax " in out and "FAIL softmax" not in out


def test_rounding_tiny_losses_to_zero_passes_but_is_reported(tmp_path, capsys):
    # What lse(x) - x_t gives (PyTorch too): honest rounding, not a semantic error.
    path = _module(tmp_path, "rounding", """
        import numpy as np
        import xent_ref as xr
        def cross_entropy(*args, **kwargs):
            loss = xr.cross_entropy(*args, **kwargs)
            return np.where(np.abs(loss) < 1e-20, np.zeros((), loss.dtype), loss)
    """)
    assert verify.main(impl=path) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "8 exact_only checks pass only through atol" in out
    assert "confident-tiny-loss" in out and "the implementation is not exact here" in out


def test_an_implementation_is_found_by_module_name_from_the_current_directory(
        tmp_path, monkeypatch, capsys):
    _module(tmp_path, "my_softmax_impl", "from xent_ref import softmax, softmax_grad\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_softmax_impl", raising=False)
    try:
        assert verify.main(impl="my_softmax_impl") == 0
    finally:
        sys.modules.pop("my_softmax_impl", None)
    assert "not offered (not checked): log_softmax," in capsys.readouterr().out


@pytest.mark.parametrize("impl", ["no_such_module_xyz", "missing/file.py"])
def test_an_unimportable_implementation_exits_2(impl, capsys):
    assert verify.main(impl=impl) == 2
    assert "cannot import" in capsys.readouterr().out


def test_a_module_offering_nothing_exits_2(tmp_path, capsys):
    assert verify.main(impl=_module(tmp_path, "empty", "VALUE = 1\n")) == 2
    assert "offers none of" in capsys.readouterr().out


def test_torch_missing_is_reported(monkeypatch, capsys):
    monkeypatch.setattr(_torch_adapter, "UNAVAILABLE", "PyTorch is not installed")
    assert verify.main(impl="torch") == 2
    assert "torch is not available: PyTorch is not installed" in capsys.readouterr().out


@pytest.mark.torch
def test_torch_passes_and_its_known_inaccuracy_is_reported(capsys):
    pytest.importorskip("torch")
    assert verify.main(impl="torch") == 0
    out = capsys.readouterr().out
    assert "PASSED: all" in out
    assert "known torch inaccuracy" in out and "confident-tiny-loss" in out
    assert "[tiny-loss-rounded] cross_entropy:" in " ".join(out.split())


def test_compare_rules():
    f32 = np.float32
    expected = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], dtype=f32)
    assert verify.compare(expected, expected.copy(), 1e-6, 1e-6).ok
    cases = {
        "dtype float64, expected float32": expected.astype(np.float64),
        "shape (4,), expected (5,)": expected[:4],
        "at index (1,): expected nan, got 1.0": np.array([1, 1, np.inf, -np.inf, 0], f32),
        "at index (2,): expected inf, got -inf": np.array([1, np.nan, -np.inf, -np.inf, 0], f32),
        "at index (4,): expected 0.0, got nan": np.array([1, np.nan, np.inf, -np.inf, np.nan], f32),
    }
    for why, got in cases.items():
        check = verify.compare(expected, got, 1e-6, 1e-6)
        assert not check.ok and check.why.startswith(why), check.why
    # The bound is atol + rtol*|expected|: just inside passes, just outside fails.
    e = np.array([100.0])
    assert verify.compare(e, e + 0.0199, 1e-4, 0.01).ok
    assert not verify.compare(e, e + 0.0201, 1e-4, 0.01).ok


# ---------------------------------------------------------------------------
# --results: an outside implementation reads the exported corpus, writes results
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "golden.json"
    golden.write_corpus(path)
    return path


RESULTS_ARRAYS = "results-arrays"


def _outside_implementation(corpus_path) -> dict:
    """What a C or Rust harness does: read the JSON (and the .npy files it names), compute,
    write a results document (large arrays as .npy files beside it). Here the computing is
    xent_ref's, called as the format describes (no golden helpers)."""
    import ml_dtypes

    import xent_ref as xr

    folder = Path(corpus_path).parent
    (folder / RESULTS_ARRAYS).mkdir(exist_ok=True)

    def load(obj):
        if "npy" not in obj:
            return decode_array(obj)
        array = np.load(folder / obj["npy"], allow_pickle=False)
        # bfloat16 has no .npy code: its raw bits are stored as '<u2' (golden-format.md)
        return array.view(ml_dtypes.bfloat16) if obj["dtype"] == "bfloat16" else array

    def store(array, name):
        if array.size <= 4096:
            return encode_array(array)
        data = npy_bytes(array)
        (folder / name).write_bytes(data)
        return {"dtype": array.dtype.name, "shape": list(array.shape), "npy": name,
                "sha256": hashlib.sha256(data).hexdigest()}

    document = json.loads(Path(corpus_path).read_text())
    results = []
    for i, case in enumerate(document["cases"]):
        if "kind" in case:  # a second-order case: its own fields
            results.append(_second_order_result(case, load))
            continue
        args = [load(case["inputs"][name]) for name in case["inputs"]]
        kwargs = {k: load(v) if isinstance(v, dict) else v for k, v in case["kwargs"].items()}
        grad_output = load(case["grad_output"])
        loss = getattr(xr, case["function"])(*args, **kwargs)
        if case["function"] in ("softmax", "log_softmax"):
            grad = getattr(xr, case["grad_function"])(*args, grad_output, **kwargs)
        else:
            grad = getattr(xr, case["grad_function"])(*args, grad_output=grad_output, **kwargs)
        if isinstance(grad, tuple):  # linear_cross_entropy: a list, null for no bias
            grad = [None if g is None else store(g, f"{RESULTS_ARRAYS}/grad-{i}-{j}.npy")
                    for j, g in enumerate(grad)]
        else:
            grad = store(grad, f"{RESULTS_ARRAYS}/grad-{i}.npy")
        results.append({"id": case["id"], "loss": store(loss, f"{RESULTS_ARRAYS}/loss-{i}.npy"),
                        "grad": grad})
    return {"format": "xent-ref-results", "schema": 1, "implementation": "test harness",
            "results": results}


def _second_order_result(case, load) -> dict:
    """A second-order case as golden-format.md says: call ``calls`` with ``call_kwargs``;
    an hvp of the softmaxes takes grad_output between x and v, the rest as a keyword."""
    import xent_ref as xr

    def loaded(value):
        return [None if p is None else load(p) for p in value] if isinstance(value, list) \
            else load(value)

    args = [loaded(value) for value in case["inputs"].values()]
    kwargs = {k: load(v) if isinstance(v, dict) else v for k, v in case["kwargs"].items()}
    kwargs.update(case.get("call_kwargs", {}))
    fn = getattr(xr, case["calls"])
    if case["kind"] == "stats":
        stats = fn(*args, **kwargs)
        return {"id": case["id"], "stats": {name: encode_array(getattr(stats, name))
                                            for name in case["stats"]}}
    grad_output = load(case["grad_output"])
    if case["function"] in ("softmax_hvp", "log_softmax_hvp"):
        value = fn(args[0], grad_output, *args[1:], **kwargs)
    else:
        if case["function"] == "linear_cross_entropy_hvp":
            args[-1] = tuple(args[-1])
        value = fn(*args, grad_output=grad_output, **kwargs)
    field = case["kind"]
    if isinstance(value, tuple):
        return {"id": case["id"], field: [None if v is None else encode_array(v)
                                          for v in value]}
    return {"id": case["id"], field: encode_array(value)}


@pytest.fixture(scope="module")
def results(exported):
    with np.errstate(all="ignore"):
        return _outside_implementation(exported)


def _write(tmp_path, document, exported=None) -> str:
    """The results file; its large arrays are the ones the harness wrote beside the
    ``exported`` corpus (linked in)."""
    path = tmp_path / "results.json"
    if exported is not None and not (tmp_path / RESULTS_ARRAYS).exists():
        (tmp_path / RESULTS_ARRAYS).symlink_to(exported.parent / RESULTS_ARRAYS)
    path.write_text(json.dumps(document, allow_nan=False))
    return str(path)


def test_results_of_a_correct_implementation_pass(tmp_path, exported, results, capsys):
    assert verify.main(results=_write(tmp_path, results, exported), corpus=str(exported)) == 0
    assert verify.main(results=_write(tmp_path, results, exported)) == 0  # against a fresh corpus
    second = len(golden.second_order_cases())  # one check each
    total = 2 * (len(golden.build_corpus()) - second) + second
    assert f"PASSED: all {total} checks" in capsys.readouterr().out


def test_exported_corpus_verifies_like_the_generated_one(exported, capsys):
    assert verify.main(impl="xent_ref", corpus=str(exported)) == 0
    assert cli.main(["verify", "--impl", "xent_ref", "--corpus", str(exported)]) == 0
    assert "read from" in capsys.readouterr().out


def _perturbed(results, case_id, key, change):
    document = json.loads(json.dumps(results))
    entry = next(r for r in document["results"] if r["id"] == case_id)
    change(entry, key)
    return document


def _nudge(entry, key):
    """Move the first value by 4 times the float32 tolerance (enough for any case)."""
    array = decode_array(entry[key])
    array.reshape(-1)[0] += np.float32(4 * 256 * np.finfo(np.float32).eps) * (
        1 + abs(array.reshape(-1)[0]))
    entry[key] = encode_array(array)


@pytest.mark.parametrize("key, change, why, failed", [
    ("loss", _nudge, "|got - expected|", 1),
    ("grad", _nudge, "|got - expected|", 1),
    ("grad", lambda entry, key: entry.pop(key), "no 'grad' for this case", 1),
    ("loss", lambda entry, key: entry.update(error="kernel launch failed"),
     "the implementation reported: kernel launch failed", 2),  # the loss and the gradient
])
def test_a_perturbed_result_fails(tmp_path, exported, results, capsys, key, change, why, failed):
    case_id = "cross_entropy/index/NxCxd1/mean/w/ign=-1/ls=0.1/f32"
    document = _perturbed(results, case_id, key, change)
    assert verify.main(results=_write(tmp_path, document, exported), corpus=str(exported)) == 1
    out = capsys.readouterr().out
    assert case_id in out and why in out and f"FAILED: {failed} of" in out


def test_a_malformed_result_array_is_a_bad_file(tmp_path, exported, results, capsys):
    case_id = "cross_entropy/index/NxCxd1/mean/w/ign=-1/ls=0.1/f32"
    document = _perturbed(results, case_id, "loss",
                          lambda entry, key: entry.update(loss={"dtype": "float32"}))
    assert verify.main(results=_write(tmp_path, document, exported), corpus=str(exported)) == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("xent-ref verify: cannot read the results: results[")
    assert line.endswith('.loss: must be {"dtype", "shape", "data"} '
                         'or {"dtype", "shape", "npy", "sha256"}')


def test_results_with_unknown_or_repeated_ids_fail(tmp_path, exported, results, capsys):
    document = json.loads(json.dumps(results))
    document["results"].append(dict(document["results"][0], id="no/such/case"))
    document["results"].append(document["results"][1])
    assert verify.main(results=_write(tmp_path, document, exported)) == 1
    out = capsys.readouterr().out
    assert "unknown case id 'no/such/case'" in out and "two results for case" in out


def test_results_without_low_precision_pass_with_dtypes(tmp_path, exported, results, capsys):
    document = json.loads(json.dumps(results))
    wide = [r for r in document["results"] if not r["id"].startswith("lowprec/")]
    assert len(wide) == len(document["results"]) - 59
    path = _write(tmp_path, dict(document, results=wide), exported)
    assert verify.main(results=path) == 1  # the float16/bfloat16 results are missing
    assert "no 'loss' for this case in the results" in capsys.readouterr().out
    assert verify.main(results=path, dtypes=["float32", "float64"]) == 0
    assert "left out: 59 cases" in capsys.readouterr().out
    # results for the cases left out are passed over, not judged and not unknown
    assert verify.main(results=_write(tmp_path, document, exported), dtypes=["f32"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "unknown case id" not in out


def test_results_for_some_functions_only(tmp_path, exported, results, capsys):
    document = json.loads(json.dumps(results))
    document["results"] = [r for r in document["results"]
                           if r["id"].startswith(("softmax/", "edge/softmax/",
                                                  "lowprec/softmax/"))]
    for entry in document["results"]:
        del entry["grad"]
    assert verify.main(results=_write(tmp_path, document, exported)) == 0
    out = capsys.readouterr().out
    assert "\nsoftmax " in out and "\nsoftmax_grad " not in out


def test_the_corpus_hash_is_reported_for_a_file_too(exported, capsys):
    assert verify.main(impl="xent_ref", corpus=str(exported)) == 0
    sha = golden.corpus_sha256(golden.build_corpus())
    assert f"sha256 {sha[:16]}" in capsys.readouterr().out
    assert json.loads(exported.read_text())["sha256"] == sha


def test_a_file_that_is_not_results_exits_2(tmp_path, exported, capsys):
    assert verify.main(results=str(exported)) == 2
    assert verify.main(results=str(tmp_path / "absent.json")) == 2
    assert verify.main(impl="xent_ref", corpus=str(tmp_path / "absent.json")) == 2
    assert "cannot read" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_program():
    run = subprocess.run(
        [sys.executable, "-m", "xent_ref", "verify", "--impl", str(WRONG_IMPLS[0])],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "FAILED:" in run.stdout


# ---------------------------------------------------------------------------
# Grouping, on made-up cases
# ---------------------------------------------------------------------------


def _outcomes(rows):
    """Outcomes of made-up cases: ``rows`` are ``(id, options, ok)``."""
    from types import SimpleNamespace

    return [SimpleNamespace(function="f", case=SimpleNamespace(id=case_id, options=options),
                            check=SimpleNamespace(ok=ok)) for case_id, options, ok in rows]


def test_groups_are_all_n_when_the_options_allow():
    groups = verify.group_failures(_outcomes([
        ("a", {"x": "1", "y": "1"}, False), ("b", {"x": "1", "y": "2"}, False),
        ("e", {"x": "1", "y": "3"}, False), ("c", {"y": "1"}, False), ("d", {"y": "2"}, True)]))
    assert [(g.options, g.cases, g.describe()) for g in groups] == [
        ({"x": "1"}, ("a", "b", "e"), "all 3 cases with x=1"),
        # c alone has no option of its own: y=1 holds a failure grouped already
        ({"y": "1"}, ("c",), "1 more cases with y=1 (all 2 of them fail)")]


def test_groups_fall_back_to_n_of_m():
    names = "abcd"
    rows = [("hit", dict.fromkeys(names, "1"), False)]
    for name in names:  # each neighbour differs from "hit" in one option only
        rows.append((f"miss-{name}", dict(dict.fromkeys(names, "1"), **{name: "2"}), True))
    (group,) = verify.group_failures(_outcomes(rows))
    assert group.cases == ("hit",) and group.total == 2 and not group.all
    assert group.describe().startswith("1 of 2 cases with ")


def test_the_kill_table_in_the_docs_is_current(wrong_reports):
    """scripts/kill_table.py's table, from the same reports: every wrong implementation
    caught, none misnamed, at least 95% named right; and the docs show it as it is."""
    from scripts import kill_table

    documents = {name: document for name, (_, _, document, _) in wrong_reports.items()}
    found = kill_table.rows(documents)
    results = [result for _, _, result in found]
    assert "passed" not in results and "misnamed" not in results, [
        row for row in found if row[2] in ("passed", "misnamed")]
    assert results.count("named") >= 0.95 * len(results)
    text = (REPO / "docs" / "golden-format.md").read_text(encoding="utf-8")
    assert kill_table.with_table(text, kill_table.table(found)) == text, \
        "the kill table is stale: run `uv run python scripts/kill_table.py`"


def test_the_short_report_leads_with_the_cause(capsys):
    path = WRONG_FOLDER / "cross_entropy_mean_by_count_float64.py"
    assert cli.main(["verify", "--impl", str(path), "--short"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= verify.SHORT_LINES
    assert lines[0].startswith("cause [mean-denominator-count]")
    assert lines[1 + lines[1].startswith("  ")].startswith("fix: divide by")
    assert any(line.startswith("note: [wrong-dtype]") for line in lines)
    assert any(line.startswith("one failing case") for line in lines)


def test_every_report_speaks_chinese(capsys):
    path = WRONG_FOLDER / "weighted_mean_by_count.py"
    for flags in (["--short"], []):
        assert cli.main(["verify", "--impl", str(path), "--lang", "zh", *flags]) == 1
        out = capsys.readouterr().out
        assert "改法：" in out and "[mean-denominator-count]" in out
        assert "fix:" not in out and "FAILED" not in out and "cases" not in out.split("(")[0]
    with pytest.raises(SystemExit):
        cli.main(["verify", "--impl", str(path), "--lang", "xx"])
    assert "invalid choice" in capsys.readouterr().err


def test_every_convention_speaks_chinese():
    """Each id of the catalogue has its explanation and fix in every report language."""
    from xent_ref._engine import i18n as reader
    from xent_ref.verify import messages

    for lang in messages.languages():
        if lang == messages.FALLBACK:
            continue
        catalogue = reader.catalogue(lang, messages.LOCALE)
        missing = [c.id for c in _conventions.CATALOGUE
                   for part in ("explanation", "fix")
                   if f"convention.{c.id}.{part}" not in catalogue]
        assert not missing, (lang, missing)
        english = reader.catalogue("en", messages.LOCALE)
        assert set(english) <= set(catalogue), set(english) - set(catalogue)
