"""The golden corpus: what it covers, that its edge values are right, that it is the same
on every run, and that its JSON file reads back bit for bit."""

import json
import math

import numpy as np
import pytest

import xent_ref as xr
from xent_ref import cli, golden
from xent_ref.golden.expected import as_parts
from xent_ref.golden.inputs import Stream
from xent_ref.golden.jsonio import is_float

LOSSES = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
)


@pytest.fixture(scope="module")
def every_case():
    return golden.build_corpus()


@pytest.fixture(scope="module")
def cases(every_case):
    """The cases of a loss (or softmax) and its gradient: all but the second-order kinds,
    which come last (tests/test_golden_second_order.py)."""
    second = golden.second_order_cases()
    assert every_case[-len(second):] == second
    assert all(case.kind == "loss" for case in every_case[:-len(second)])
    return every_case[:-len(second)]


@pytest.fixture(scope="module")
def by_id(cases):
    return {case.id: case for case in cases}


def _where(cases, function, **wanted):
    """The cases of ``function`` whose kwargs hold every ``wanted`` item."""
    return [c for c in cases if c.function == function
            and all(c.kwargs.get(k, "absent") == v for k, v in wanted.items())]


def test_ids_are_unique(cases):
    assert len({case.id for case in cases}) == len(cases)


def test_every_function_in_every_dtype_with_its_gradient(cases):
    seen = {(case.function, case.dtype) for case in cases}
    wide = {(f, d) for f in golden.FUNCTIONS for d in ("float32", "float64")}
    low = {(f, d) for f in golden.FUNCTIONS for d in ("float16", "bfloat16")}
    assert seen == wide | low
    assert cases[-len(golden.low_precision_cases()):] == golden.low_precision_cases()
    assert golden.build_corpus()[:len(cases)] == cases
    assert {case.rule for case in cases if case.dtype in ("float16", "bfloat16")} == {
        "reference-error"}
    for case in cases:
        # one gradient per argument of SIGNATURES[...].grads (linear_cross_entropy: three)
        names = golden.SIGNATURES[case.function].grads or golden.POSITIONAL[case.function][:1]
        grads = case.grad if isinstance(case.grad, tuple) else (case.grad,)
        assert len(grads) == len(names)
        for name, grad in zip(names, grads):
            argument = case.inputs.get(name, case.kwargs.get(name))
            assert (grad is None) == (argument is None), (case.id, name)
            if grad is not None:
                assert grad.dtype == case.loss.dtype == case.grad_output.dtype
                assert grad.shape == argument.shape
        assert case.grad_output.shape == case.loss.shape


def test_every_option_is_exercised(cases):
    for function in LOSSES:
        reductions = {c.kwargs.get("reduction", "mean") for c in cases if c.function == function}
        assert reductions == {"none", "mean", "sum"}
        ranks = {c.inputs["input"].ndim for c in cases if c.function == function}
        assert ranks == {1, 2, 3, 4}
        assert [c for c in cases if c.function == function and "weight" in c.kwargs]
    for function in ("cross_entropy", "nll_loss"):
        assert {c.kwargs.get("ignore_index") for c in cases if c.function == function} >= {
            None, 1, -1}
        # The default ignore_index (kwarg absent) with some targets equal to -100.
        assert any("ignore_index" not in c.kwargs and (c.inputs["target"] == -100).any()
                   for c in cases if c.function == function)
    ce = [c for c in cases if c.function == "cross_entropy"]

    def kind(target):  # NumPy calls bfloat16 kind "V"
        return "f" if is_float(target.dtype) else target.dtype.kind

    kinds = {kind(c.inputs["target"]) for c in ce}
    assert kinds == {"i", "f"}  # class indices and class probabilities
    for target_kind in ("i", "f"):
        assert any(c.kwargs.get("label_smoothing", 0) > 0 and kind(c.inputs["target"]) ==
                   target_kind for c in ce)
    assert _where(cases, "binary_cross_entropy_with_logits", reduction="mean")
    assert any("pos_weight" in c.kwargs for c in cases)
    axes = {c.kwargs.get("axis", -1) for c in cases if c.function in ("softmax", "log_softmax")}
    assert axes == {-1, 0, 1}


def test_confident_prediction_keeps_its_tiny_loss(by_id):
    case = by_id["edge/cross_entropy/confident-tiny-loss/one-dim/f64"]
    exact = math.log1p(2 * math.exp(-50))  # 3.86e-22
    assert case.loss == pytest.approx(exact, rel=1e-15)
    assert case.grad[0] == pytest.approx(-2 * math.exp(-50) / (1 + 2 * math.exp(-50)), rel=1e-15)
    assert case.exact_only and case.loss < case.atol


def test_exact_only_marks_values_below_atol(cases):
    marked = [c for c in cases if c.exact_only and c.rule == "tolerance"]
    assert marked
    for case in marked:
        tiny = [a[(a != 0) & np.isfinite(a)] for a in (case.loss, case.grad)]
        assert min(np.abs(t).min() for t in tiny if t.size) < case.atol


def test_exact_only_marks_low_precision_cases_pytorch_loses(cases):
    # Under the reference-error rule exact_only says something else: PyTorch's own error
    # (the rule's allowance) is at least half the largest expected value there.
    low = [c for c in cases if c.rule == "reference-error"]
    marked = [c for c in low if c.exact_only]
    assert 0 < len(marked) < len(low)
    for case in low:
        errors = [case.rule_params["loss_error"],
                  *as_parts(case.rule_params["grad_error"])]
        references = [case.rule_params["loss_reference"],
                      *as_parts(case.rule_params["grad_reference"])]
        loses = any(error >= 0.5 * np.abs(reference).max()
                    for error, reference in zip(errors, references) if reference is not None)
        assert bool(case.exact_only) == loses, case.id
        if loses:
            assert "peaked" in case.id and "round p_t to 1" in case.exact_only


@pytest.mark.parametrize("reduction, loss", [("mean", math.nan), ("sum", 0.0), ("none", 0.0)])
def test_every_target_ignored(by_id, reduction, loss):
    for suffix in ("f32", "f64"):
        for name in ("-100", "-100/weight", "-100/label_smoothing", "1", "1/weight"):
            case = by_id[f"edge/cross_entropy/all-ignored/{name}/{reduction}/{suffix}"]
            np.testing.assert_array_equal(case.loss, np.full(case.loss.shape, loss))
            assert not case.grad.any()


def test_bce_clamps_each_log_at_minus_100(by_id):
    case = by_id["edge/binary_cross_entropy/p-0-and-1/none/f64"]
    np.testing.assert_array_equal(case.loss, [0.0, 100.0, 50.0, 100.0, 0.0, 50.0])
    # PyTorch's clamp for the gradient's denominator is a C++ float 1e-12.
    p_minus_y = case.inputs["input"] - case.inputs["target"]
    expected = case.grad_output * p_minus_y / float(np.float32(1e-12))
    np.testing.assert_allclose(case.grad, expected, rtol=1e-15)


def test_large_logits_are_exact(by_id):
    case = by_id["edge/cross_entropy/large-1e4/none/f64"]
    # Row 0: logits 1e4 and 1e4 - 1 (the rest underflow), target 0: log(1 + e^-1).
    # Row 1: target 1 holds the maximum -1e4 + 0.5; two others sit 0.5 below it.
    expected = [math.log1p(math.exp(-1)), math.log1p(2 * math.exp(-0.5) + math.exp(-7.5))]
    np.testing.assert_allclose(case.loss, expected, rtol=1e-15)
    for magnitude in ("100", "10000", "1e+30"):
        logits = by_id[f"edge/binary_cross_entropy_with_logits/large-logits-{magnitude}/none/f64"]
        x, y = logits.inputs["input"], logits.inputs["target"]
        # y softplus(-x) + (1 - y) softplus(x), by NumPy's own logaddexp(0, z) = softplus(z)
        expected = y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)
        np.testing.assert_allclose(logits.loss, expected, rtol=1e-15, atol=0)


def test_minus_inf_logits(by_id):
    off_target = by_id["edge/cross_entropy/neg-inf-off-target/none/f64"]
    assert np.isfinite(off_target.loss).all() and np.isfinite(off_target.grad).all()
    assert (off_target.grad[np.isneginf(off_target.inputs["input"])] == 0).all()
    smoothed = by_id["edge/cross_entropy/neg-inf-label-smoothing/none/f64"]
    assert np.isposinf(smoothed.loss).all() and np.isfinite(smoothed.grad).all()
    assert np.isposinf(by_id["edge/cross_entropy/neg-inf-at-target/mean/f32"].loss)


def test_tolerance_follows_the_documented_rule(cases):
    for case in cases:
        if case.rule != "tolerance":
            continue
        arrays = [*case.inputs.values(), *case.kwargs.values(), case.grad_output]
        floats = [a[np.isfinite(a)] for a in arrays
                  if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        scale = max([1.0] + [float(np.abs(a).max()) for a in floats if a.size])
        terms = max(a.size for a in case.inputs.values() if a.dtype.kind == "f")
        eps = float(np.finfo(case.dtype).eps) * max(256, 8 * np.sqrt(terms))
        assert terms > 1024 or eps == 256 * float(np.finfo(case.dtype).eps)
        assert (case.rtol, case.atol) == (eps, eps * scale)
        # the gradient's atol follows the expected gradient's own magnitude (at least 1),
        # except in exact_only cases, which keep the inputs' scale
        grad_scale = max([1.0] + [float(np.abs(g[np.isfinite(g)]).max(initial=0.0))
                                  for g in golden.grad_parts(case.grad)])
        expected_grad_atol = case.atol if case.exact_only else eps * grad_scale
        assert case.grad_atol == expected_grad_atol, case.id


def test_inputs_are_pinned(by_id):
    # A change here changes the corpus every consumer has exported: bump SCHEMA_VERSION.
    case = by_id["cross_entropy/index/NxC/mean/w/ign=1/ls=0.1/f64"]
    assert case.inputs["input"][0, :2].tolist() == [-2.7094415618620653, 2.4680240971488416]
    assert case.inputs["target"].tolist() == [1, 2, 1]


# sha256 of every case's inputs (golden.inputs_sha256), measured identical under NumPy 1.23.5
# and 2.4.6 (the inputs use only exactly rounded operations on PCG64's raw bits). Under
# schema 2, 71 nll_loss cases differed by an ulp between those versions (log_softmax).
# Schema 4 added the vocabulary-scale, LLM-option and linear cases without changing any other
# case's inputs (SMALL_INPUTS_SHA256 is schema 3's hash); the peaked logits use Python's
# math.exp and math.log (the C library's, not NumPy's), rounded to float32. The low-precision cases'
# inputs are rounded to float16/bfloat16 by NumPy and ml_dtypes (measured with NumPy 2.4.6,
# ml_dtypes 0.6.0). They joined the default corpus (after the float32/float64 cases) with
# their inputs unchanged: INPUTS_SHA256 moved, WIDE_INPUTS_SHA256 (the float32/float64
# cases, INPUTS_SHA256 before) did not. Then 10 low-precision LLM cases (cross_entropy with
# the options, linear_cross_entropy) joined, 5 per dtype: LOW_PRECISION_INPUTS_SHA256 moved,
# the first 34 low-precision cases' inputs did not (FIRST_LOW_PRECISION_INPUTS_SHA256).
# Then 6 linear_cross_entropy cases with a K-dimensional weight (V, 2, 3) joined the
# float32/float64 cases: WIDE_INPUTS_SHA256 moved, the others' inputs did not
# (FIRST_WIDE_INPUTS_SHA256). Then the cases that separate the mistakes of LLM kernels
# joined at the end of both parts (39 float32/float64: linear_cross_entropy with every
# option, micro-batches, smoothing with the frequent tokens first; 7 float16/bfloat16: the
# options at C = 32000 and 128256, a bfloat16 sweep of token counts): WIDE_ and
# LOW_PRECISION_INPUTS_SHA256 moved, the earlier cases' inputs did not (the _BEFORE hashes).
SMALL_INPUTS_SHA256 = "da2fc391a711c4536685d5508496dfe710e37a844370b1268e249f8bcbc39b94"
FIRST_WIDE_INPUTS_SHA256 = "a48bb05e4cbafdbbbf04dd440ab89d891389a9cbba6f908a7f04773b0c40637d"
WIDE_BEFORE_INPUTS_SHA256 = "62bf02f7fa3425016fe645dacf3c177375d70785e8feb984e020006d0b635679"
WIDE_INPUTS_SHA256 = "a2147d7a95837192652b16de53a433707dbdeef5c904e41ba3c3263436d44b3a"
FIRST_LOW_PRECISION_INPUTS_SHA256 = (
    "e79e3c922d4ea32e5c3fa2a42ba5f0a543c6890d024823e69aef40a6274924d7")
LOW_PRECISION_BEFORE_INPUTS_SHA256 = (
    "d5d0f619102fad8c3127e84b3f80a53395fc52b92bc728e636da89ac14791d01")
LOW_PRECISION_INPUTS_SHA256 = "9ccc38216b024aa611567f8004b42c54e846150527895f20ba4ce604aa42e0d7"
# Then the rest of the family (kl_div, the focal losses, poly-1) joined, after every other
# case of its dtypes: INPUTS_SHA256 moved, every other hash here (computed without them) did
# not; FAMILY_INPUTS_SHA256 pins theirs.
INPUTS_SHA256 = "09feb85e0e9f0490dd81b7d18330c8bf85d808c1074a9af127667f32cf076507"
FAMILY = ("kl_div", "sigmoid_focal_loss", "softmax_focal_loss", "poly1_cross_entropy")
FAMILY_INPUTS_SHA256 = "30cddd9872bc126c4d1312daa300de330c445be92c90a1311fdb6474e416c117"
SEPARATING_CASES = (39, 7)  # float32/float64, float16/bfloat16: the last of each part


def test_all_inputs_are_pinned(cases):
    # Any drift (a NumPy release, a change to the generator) fails here: bump SCHEMA_VERSION
    # and update the constant only when the change is deliberate.
    assert golden.inputs_sha256(cases) == INPUTS_SHA256
    family = [case for case in cases if case.function in FAMILY]
    assert golden.inputs_sha256(family) == FAMILY_INPUTS_SHA256
    cases = [case for case in cases if case.function not in FAMILY]
    wide = [case for case in cases if case.dtype in ("float32", "float64")]
    assert golden.inputs_sha256(wide) == WIDE_INPUTS_SHA256
    wide = wide[:-SEPARATING_CASES[0]]
    assert golden.inputs_sha256(wide) == WIDE_BEFORE_INPUTS_SHA256
    first_wide = [case for case in wide if "/V=5xd1=2/" not in case.id]
    assert golden.inputs_sha256(first_wide) == FIRST_WIDE_INPUTS_SHA256
    small = [case for case in wide if case.options["kind"] not in ("vocab", "llm")
             and case.function != "linear_cross_entropy"]
    assert golden.inputs_sha256(small) == SMALL_INPUTS_SHA256
    low = [case for case in cases if case.dtype in ("float16", "bfloat16")]
    assert golden.inputs_sha256(low) == LOW_PRECISION_INPUTS_SHA256
    low = low[:-SEPARATING_CASES[1]]
    assert golden.inputs_sha256(low) == LOW_PRECISION_BEFORE_INPUTS_SHA256
    first = [case for case in low
             if not case.id.startswith(("lowprec/llm/", "lowprec/linear_cross_entropy/"))]
    assert golden.inputs_sha256(first) == FIRST_LOW_PRECISION_INPUTS_SHA256


def test_the_inputs_hash_sees_a_one_ulp_change(cases):
    case = next(c for c in cases if c.function == "nll_loss")
    nudged = np.array(case.inputs["input"])
    nudged.reshape(-1)[0] = np.nextafter(nudged.reshape(-1)[0], nudged.dtype.type(np.inf))
    changed = golden.Case(**{**case.__dict__, "inputs": {**case.inputs, "input": nudged}})
    assert golden.inputs_sha256([changed]) != golden.inputs_sha256([case])


def test_nll_loss_inputs_are_negative_like_log_probabilities(cases):
    for case in cases:
        if case.function == "nll_loss" and case.id.startswith("nll_loss/"):
            assert (case.inputs["input"] < 0).all(), case.id


def test_corpus_is_deterministic(every_case):
    again = golden.build_corpus.__wrapped__()  # bypass the cache
    assert json.dumps(golden.corpus_to_json(again)) == json.dumps(
        golden.corpus_to_json(every_case))


def test_corpus_is_read_only(cases):
    with pytest.raises(ValueError):
        cases[0].loss[...] = 0


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal, except that every nan is the same nan (JSON spells it "nan")."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind != "f":
        return a.tobytes() == b.tobytes()
    nan = np.isnan(a)
    return bool((nan == np.isnan(b)).all()) and a[~nan].tobytes() == b[~nan].tobytes()


def test_export_reads_back_bit_for_bit(tmp_path, cases, every_case):
    path = tmp_path / "golden.json"
    assert golden.export_main(str(path)) == 0
    text = path.read_text(encoding="utf-8")

    def no_bare_constants(token):
        raise AssertionError(f"bare {token} in the JSON")

    document = json.loads(text, parse_constant=no_bare_constants)
    assert document["format"] == "xent-ref-golden"
    assert document["schema"] == golden.SCHEMA_VERSION == 4
    assert document["xent_ref_version"] == xr.__version__
    assert document["numpy_version"] == np.__version__
    back = golden.read_corpus(path)
    assert [c.id for c in back] == [c.id for c in every_case]
    # (the second-order cases' own fields: tests/test_golden_second_order.py)
    assert golden.corpus_sha256(back[len(cases):]) == golden.corpus_sha256(
        every_case[len(cases):])
    back = back[:len(cases)]
    for original, read in zip(cases, back):
        assert (read.function, read.rtol, read.atol, read.grad_atol, read.exact_only) == (
            original.function, original.rtol, original.atol, original.grad_atol,
            original.exact_only)
        assert list(read.inputs) == list(original.inputs)
        assert list(read.kwargs) == list(original.kwargs)
        for key, value in original.kwargs.items():
            if isinstance(value, np.ndarray):
                assert _same_bits(value, read.kwargs[key]), (original.id, key)
            else:
                assert read.kwargs[key] == value and type(read.kwargs[key]) is type(value)
        pairs = [(original.inputs[k], read.inputs[k]) for k in original.inputs]
        pairs += [(original.grad_output, read.grad_output), (original.loss, read.loss)]
        assert isinstance(read.grad, tuple) == isinstance(original.grad, tuple)
        pairs += zip(golden.grad_parts(original.grad), golden.grad_parts(read.grad))
        assert all(_same_bits(a, b) for a, b in pairs), original.id
    non_finite = [c for c in back if not (np.isfinite(c.loss).all() and
                                          all(np.isfinite(g).all() for g in
                                              golden.grad_parts(c.grad)))]
    assert {"nan", "inf"} <= {s for c in non_finite for s in map(str, c.loss.ravel())}
    assert any(np.isneginf(a).any() for c in back for a in c.inputs.values()
               if a.dtype.kind == "f")


def test_cli_export(tmp_path, capsys):
    path = tmp_path / "corpus.json"
    assert cli.main(["golden", "export", str(path)]) == 0
    assert f"{len(golden.build_corpus())} cases" in capsys.readouterr().out
    assert len(golden.read_corpus(path)) == len(golden.build_corpus())


def test_export_to_an_unwritable_path_fails(tmp_path, capsys):
    assert golden.export_main(str(tmp_path / "missing-dir" / "corpus.json")) == 2
    assert "cannot write" in capsys.readouterr().out


def test_read_corpus_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"cases": []}')
    with pytest.raises(ValueError, match="not an xent-ref golden corpus"):
        golden.read_corpus(path)


# ---------------------------------------------------------------------------
# Room to grow: seed-spec inputs, a per-case rule, functions with more inputs
# ---------------------------------------------------------------------------


def _as_json(case) -> dict:
    return json.loads(json.dumps(golden.case_to_json(case), allow_nan=False))


def test_an_input_given_by_a_seed_spec_is_regenerated_on_load(cases):
    case = next(c for c in cases if c.id == "cross_entropy/index/NxC/mean/w/ign=1/ls=0.1/f64")
    obj = _as_json(case)
    obj["inputs"]["input"] = {"generate": "uniform", "stream": case.id, "low": -4.0,
                              "high": 4.0, "shape": [3, 5], "dtype": "float64"}
    obj["inputs"]["target"] = {"generate": "integers", "stream": "targets", "n": 5,
                               "shape": [3], "dtype": "int64"}
    read = golden.case_from_json(obj)
    # The generator's first draw for this id is the input; the spec reproduces it exactly.
    assert read.inputs["input"].tobytes() == case.inputs["input"].tobytes()
    assert read.inputs["target"].tolist() == Stream("targets").integers(5, (3,)).tolist()
    assert not read.inputs["input"].flags.writeable
    bad = dict(obj["inputs"]["input"], low=5.0)
    obj["inputs"]["input"] = bad
    with pytest.raises(golden.SchemaError, match="low < high"):
        golden.case_from_json(obj)


def test_a_case_judged_by_reference_error():
    from xent_ref import verify

    base = golden.build_corpus()[0]  # softmax, float32
    reference = base.loss.astype(np.float64) + 1e-6
    case = golden.Case(**{**base.__dict__, "rule": "reference-error", "rule_params": {
        "loss_reference": reference, "grad_reference": base.grad.astype(np.float64),
        "loss_error": 2e-6, "grad_error": 0.0}})
    read = golden.case_from_json(_as_json(case))
    assert read.rule == "reference-error" and read.rule_params["loss_error"] == 2e-6
    np.testing.assert_array_equal(read.rule_params["loss_reference"], reference)
    # Within the recorded error (plus atol) of the float64 reference: passes; beyond: fails.
    assert verify.judge(read, "softmax", base.loss).ok
    off = (reference + 2e-6 + 2 * base.atol).astype(np.float32)
    assert not verify.judge(read, "softmax", off).ok
    assert "dtype float64" in verify.judge(read, "softmax", reference).why
    obj = _as_json(case)
    del obj["rule_params"]["loss_error"]
    with pytest.raises(golden.SchemaError, match="missing loss_error"):
        golden.case_from_json(obj)


def test_a_new_function_with_more_positional_inputs(monkeypatch, cases):
    """linear_cross_entropy(input, linear_weight, target) is one more signature entry."""
    from xent_ref.golden import schema as _schema

    signature = _schema.Signature(("input", "linear_weight", "target"), False,
                                  {"reduction": "reduction"})
    monkeypatch.setitem(_schema.SIGNATURES, "linear_cross_entropy", signature)
    hidden = np.array([[1.0, 2.0], [0.5, -1.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    target = np.array([2, 0])
    loss = xr.cross_entropy(hidden @ w.T, target, reduction="sum")
    obj = {"id": "linear_cross_entropy/tiny/f64", "function": "linear_cross_entropy",
           "inputs": {"input": hidden, "linear_weight": w, "target": target},
           "kwargs": {"reduction": "sum"}, "grad_output": np.array(1.0),
           "loss": np.asarray(loss), "grad": np.zeros_like(hidden),
           "rtol": 1e-12, "atol": 1e-12, "grad_atol": 1e-12}
    from xent_ref.golden.jsonio import encode_array

    obj = {k: encode_array(v) if isinstance(v, np.ndarray) else v for k, v in obj.items()}
    obj["inputs"] = {k: encode_array(v) for k, v in obj["inputs"].items()}
    case = golden.case_from_json(json.loads(json.dumps(obj)))

    def linear_cross_entropy(input, linear_weight, target, reduction="mean"):
        return xr.cross_entropy(input @ linear_weight.T, target, reduction=reduction)

    assert golden.call_function(linear_cross_entropy, case) == loss
    with pytest.raises(golden.SchemaError, match="inputs: missing linear_weight, target"):
        golden.case_from_json(dict(obj, inputs={"input": obj["inputs"]["input"]}))


def test_the_family_is_in_the_corpus_with_every_option(cases):
    from xent_ref import testing

    assert testing.cases("kl_div") and testing.cases("poly1_cross_entropy")
    kl = [c for c in cases if c.function == "kl_div" and c.rule == "tolerance"]
    assert {(c.kwargs["reduction"], c.kwargs.get("log_target", False), c.dtype)
            for c in kl} >= {(r, t, d) for r in ("none", "mean", "sum", "batchmean")
                             for t in (False, True) for d in ("float32", "float64")}
    assert any((c.inputs["target"] == 0).any() for c in kl)  # 0 log 0 = 0
    focal = [c for c in cases if c.function == "sigmoid_focal_loss"]
    assert {(c.kwargs.get("gamma"), c.kwargs.get("alpha")) for c in focal} >= {
        (g, a) for g in (0.0, 0.5, 2.0, 5.0) for a in (0.25, -1.0)}
    large = [c for c in focal if np.abs(c.inputs["input"]).max() == 100]
    # the tiny losses of confident right answers stay there, not 0
    assert large and all((c.loss > 0).all() for c in large if c.kwargs["reduction"] == "none")
    for function in ("softmax_focal_loss", "poly1_cross_entropy"):
        mine = [c for c in cases if c.function == function]
        assert {c.kwargs.get("reduction", "mean") for c in mine} == {"none", "mean", "sum"}
        assert any("weight" in c.kwargs and (c.inputs["target"] == -100).any() for c in mine)
        assert any("label_smoothing" in c.kwargs for c in mine)
        assert any(c.inputs["target"].dtype.kind == "f" for c in mine)  # probabilities
