"""The corpus for LLM loss kernels: vocabulary-scale cases (C = 32000, 50257, 128256),
float16/bfloat16 cases judged by the reference-error rule against PyTorch's recorded
error, large arrays in .npy files beside the exported JSON, and the wrong
implementations those cases exist to catch."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from xent_ref import golden, verify
from xent_ref.golden import schema as _schema
from xent_ref.golden.jsonio import dtype_named, npy_bytes, read_npy

WRONG = Path(__file__).parent / "wrong_impls"


@pytest.fixture(scope="module")
def vocab():
    return {case.id: case for case in golden.build_corpus()
            if case.options["kind"] == "vocab" and case.function == "cross_entropy"}


@pytest.fixture(scope="module")
def low():
    return {case.id: case for case in golden.build_corpus()
            if case.dtype in golden.LOW_PRECISION_DTYPES}


def _true_class(case):
    x = case.inputs["input"].astype(np.float64)
    target = case.inputs["target"]
    rows = np.flatnonzero(target != -100)
    return xr.softmax(x, axis=1)[rows, target[rows]], rows


# ---------------------------------------------------------------------------
# Vocabulary scale
# ---------------------------------------------------------------------------


def test_every_vocabulary_in_float32_and_the_largest_in_float64(vocab):
    seen = {(case.inputs["input"].shape[1], case.dtype) for case in vocab.values()}
    assert seen == {(32000, "float32"), (50257, "float32"), (128256, "float32"),
                    (128256, "float64")}
    for case in vocab.values():
        n_rows, n_classes = case.inputs["input"].shape
        assert 2 <= n_rows <= 4 and case.options["classes"] == str(n_classes)
    # 50257 is odd: no power-of-two block divides it; the others leave a partial
    # block at 512 and beyond.
    assert all(any(c % block for c in golden.VOCABULARIES) for block in (128, 256, 1024))
    assert all(50257 % 2**k for k in range(1, 17))
    assert all(c % 512 for c in golden.VOCABULARIES)


def test_peaked_rows_have_the_claimed_true_class_probability(vocab):
    for n_classes in golden.VOCABULARIES:
        case = vocab[f"vocab/cross_entropy/C={n_classes}/mixed/mean/f32"]
        p_t, _ = _true_class(case)
        # Rows 0 and 1: 1 - p_t = 1e-3 and 1e-6, to the float32 rounding of the logit.
        np.testing.assert_allclose(1 - p_t[:2], golden.PEAKS, rtol=0.02)
        # The gradient at those targets is -(1 - p_t) * g / N: tiny, and not zero.
        g = float(case.grad_output) / 4
        rows = np.arange(2)
        np.testing.assert_allclose(-case.grad[rows, case.inputs["target"][rows]],
                                   (1 - p_t[:2]) * g, rtol=1e-3)


def test_rows_of_minus_inf_leave_whole_blocks_infinite(vocab):
    for n_classes in golden.VOCABULARIES:
        case = vocab[f"vocab/cross_entropy/C={n_classes}/mixed/none/f32"]
        row = case.inputs["input"][2]
        assert np.isneginf(row).sum() == n_classes - golden.FINITE_TAIL - 1
        assert np.isneginf(row[:n_classes - golden.FINITE_TAIL]).sum() >= n_classes - 65
        assert np.isfinite(case.loss).all() and np.isfinite(case.grad).all()
        assert (case.grad[2][np.isneginf(row)] == 0).all()


def test_every_token_ignored_at_vocabulary_scale(vocab):
    mean = vocab["vocab/cross_entropy/C=32000/all-ignored/mean/f32"]
    assert (mean.inputs["target"] == -100).all()
    assert np.isnan(mean.loss) and (mean.grad == 0).all()
    assert vocab["vocab/cross_entropy/C=32000/all-ignored/sum/f32"].loss == 0


@pytest.mark.parametrize("weighted", ["w", "no-w"])
def test_smoothing_with_ignored_tokens(vocab, weighted):
    case = vocab[f"vocab/cross_entropy/C=32000/ls=0.1/ign=default/mean/{weighted}/f32"]
    ignored = case.inputs["target"] == -100
    assert ignored.sum() == 2 and np.isfinite(case.loss)
    assert (case.grad[ignored] == 0).all() and (case.grad[~ignored] != 0).any()
    # The mean divides by the kept rows (their weight), not by N.
    total = golden.call_function(xr.cross_entropy, case, kwargs=dict(case.kwargs,
                                                                     reduction="sum"))
    kept = case.inputs["target"][~ignored]
    weight = case.kwargs.get("weight", np.ones(32000, np.float32))
    np.testing.assert_allclose(case.loss, total / weight[kept].astype(np.float64).sum(),
                               rtol=1e-6)


def test_the_logits_of_one_configuration_are_shared_by_its_reductions(vocab):
    a, b = (vocab[f"vocab/cross_entropy/C=128256/mixed/{r}/f32"] for r in ("none", "mean"))
    assert np.array_equal(a.inputs["input"], b.inputs["input"], equal_nan=True)


# ---------------------------------------------------------------------------
# Large arrays in .npy files
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The default corpus (the low-precision cases included), exported once."""
    folder = tmp_path_factory.mktemp("export")
    path = folder / "golden.json"
    assert golden.export_main(str(path)) == 0
    return path


def test_large_arrays_are_npy_files_named_by_their_sha256(exported):
    document = json.loads(exported.read_text())
    stored = [value for case in document["cases"]
              for value in [*case["inputs"].values(), case.get("loss"), case.get("grad"),
                            *case.get("rule_params", {}).values()]
              if isinstance(value, dict) and "npy" in value]
    assert stored and all(np.prod(v["shape"]) > golden.LARGE_ARRAY for v in stored)
    assert all(len(v.get("data", ())) <= golden.LARGE_ARRAY
               for case in document["cases"] for value in case["inputs"].values()
               for v in (value if isinstance(value, list) else [value]) if v is not None)
    for value in stored[:20]:
        path = exported.parent / value["npy"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == value["sha256"]
        assert path.name == value["sha256"] + ".npy"
        if value["dtype"] != "bfloat16":  # NumPy itself reads them
            array = np.load(path, allow_pickle=False)
            assert array.dtype.name == value["dtype"] and list(array.shape) == value["shape"]
    assert {v["dtype"] for v in stored} >= {"float32", "float64", "bfloat16", "float16"}
    # JSON small enough to parse quickly: the large arrays are not in it.
    assert exported.stat().st_size < 8 * 2**20


def test_the_exported_corpus_reads_back_exactly(exported):
    cases = golden.build_corpus()
    assert {c.id for c in golden.low_precision_cases()} <= {c.id for c in cases}
    read = golden.read_corpus(exported)
    assert golden.corpus_sha256(read) == golden.corpus_sha256(cases)
    assert [c.id for c in read] == [c.id for c in cases]
    by_id = {case.id: case for case in read}
    for case in cases:
        other = by_id[case.id]
        pairs = [pair for name, a in case.inputs.items()  # (an hvp's v: several parts)
                 for pair in zip(golden.grad_parts(a), golden.grad_parts(other.inputs[name]))]
        pairs += zip(golden.grad_parts(case.grad), golden.grad_parts(other.grad))
        for a, b in pairs:
            assert a.dtype == b.dtype and a.shape == b.shape, case.id
            # equal values (nan matches nan: JSON's "nan" does not keep a nan's sign bit)
            assert np.array_equal(a.astype(np.float64), b.astype(np.float64),
                                  equal_nan=True), case.id


def test_bfloat16_npy_holds_the_raw_bits():
    a = np.array([1.0, -2.5, np.inf, 3.0e38], dtype=dtype_named("bfloat16"))
    data = npy_bytes(a)
    assert b"'descr': '<u2'" in data
    bits = np.frombuffer(data[-8:], "<u2")
    as_float32 = (bits.astype(np.uint32) << 16).view(np.float32)
    assert as_float32.tolist() == a.astype(np.float32).tolist()
    assert read_npy(data, "bfloat16", (4,)).tobytes() == a.tobytes()


def test_bfloat16_json_numbers_read_as_the_docs_say(exported):
    """golden-format.md: parse the number as a double, convert to float (exact), take its
    32-bit pattern and shift it right by 16: the bfloat16's bits, no rounding anywhere."""
    import struct

    document = json.loads(exported.read_text())
    case = next(c for c in document["cases"] if c["id"] == "lowprec/softmax/NxC/bf16")
    obj = case["inputs"]["x"]
    assert obj["dtype"] == "bfloat16"
    by_hand = []
    for number in obj["data"]:
        (word,) = struct.unpack("<I", struct.pack("<f", float(number)))
        assert word & 0xFFFF == 0  # already a bfloat16: the low half is empty
        by_hand.append(word >> 16)
    expected = {c.id: c for c in golden.build_corpus()}[case["id"]].inputs["x"]
    assert by_hand == expected.reshape(-1).view(np.uint16).tolist()


def _flip_first_byte(value, folder):
    path = folder / value["npy"]
    path.write_bytes(b"x" + path.read_bytes()[1:])


@pytest.mark.parametrize("damage, message", [
    (_flip_first_byte, "does not have the sha256 the JSON gives"),
    (lambda v, folder: (folder / v["npy"]).unlink(), "cannot read"),
    (lambda v, folder: v.update(npy="../../etc/passwd.npy"), "is not a relative .npy path"),
    (lambda v, folder: v.update(shape=[1, 2]), "expected (1, 2)"),
])
def test_a_damaged_npy_reference_is_a_clear_error(tmp_path, damage, message):
    case = next(c for c in golden.build_corpus() if c.id.startswith("vocab/"))
    path = tmp_path / "one.json"
    golden.write_corpus(path, [case])
    document = json.loads(path.read_text())
    value = document["cases"][0]["inputs"]["input"]
    damage(value, tmp_path)
    path.write_text(json.dumps(document))
    with pytest.raises(_schema.SchemaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        golden.read_corpus(path)


def test_results_may_give_large_arrays_as_npy(tmp_path, exported):
    case = next(c for c in golden.build_corpus() if c.id.startswith("vocab/") and
                c.loss.ndim == 0)
    grad = golden.call_grad(xr.cross_entropy_grad, case)
    (tmp_path / "grad.npy").write_bytes(npy_bytes(grad))
    entry = {"id": case.id, "grad": {"dtype": "float32", "shape": list(grad.shape),
                                     "npy": "grad.npy",
                                     "sha256": hashlib.sha256(npy_bytes(grad)).hexdigest()}}
    document = {"format": verify.RESULTS_FORMAT, "schema": verify.RESULTS_SCHEMA,
                "results": [entry]}
    outcomes, problems = verify.compare_results(document, [case], base=str(tmp_path))
    assert not problems and [o.check.ok for o in outcomes] == [True]


# ---------------------------------------------------------------------------
# float16 and bfloat16: the reference-error rule
# ---------------------------------------------------------------------------


def test_every_function_in_both_low_precision_dtypes(low):
    seen = {(case.function, case.dtype) for case in low.values()}
    assert seen == {(f, d) for f in golden.FUNCTIONS for d in golden.LOW_PRECISION_DTYPES}
    # both target kinds: class indices and probabilities (in the input's dtype)
    targets = {case.inputs["target"].dtype.name for case in low.values()
               if case.function == "cross_entropy"}
    assert targets == {"int64", "float16", "bfloat16"}
    for case in low.values():
        assert case.rule == "reference-error"
        eps = float(golden.finfo(case.loss.dtype).eps)
        assert case.rtol == eps  # one ulp at the value's magnitude
        # loss and grad: the float64 answer rounded once to the dtype
        # (linear_cross_entropy: each of its gradients, with one PyTorch error each)
        pairs = [(case.loss, case.rule_params["loss_reference"])] + list(zip(
            golden.grad_parts(case.grad), golden.grad_parts(case.rule_params["grad_reference"])))
        for value, reference in pairs:
            assert reference.dtype == np.float64
            rounded = golden.round_once(reference, case.loss.dtype)
            assert np.array_equal(value, rounded, equal_nan=True)
        errors = case.rule_params["grad_error"]
        if case.function == "linear_cross_entropy":
            assert isinstance(errors, tuple) and len(errors) == 3
            assert (errors[2] is None) == (case.grad[2] is None)
        else:
            assert isinstance(errors, float)


def test_the_torch_errors_cover_exactly_the_low_precision_cases(low):
    recorded = golden.torch_errors()
    assert recorded["torch_version"].startswith("2.13")
    assert set(recorded["cases"]) == set(low)
    for case_id, case in low.items():
        assert case.rule_params["loss_error"] == recorded["cases"][case_id]["loss_error"]


def test_the_package_ships_the_torch_errors():
    import importlib.resources

    resource = importlib.resources.files("xent_ref.golden").joinpath(golden.TORCH_ERRORS)
    assert resource.is_file() and json.loads(resource.read_text("utf-8"))["cases"]


def test_a_float16_mean_whose_count_float16_cannot_hold(low):
    case = low["lowprec/binary_cross_entropy_with_logits/zeros-256x256/mean/f16"]
    assert case.inputs["input"].size == 65536 > float(np.finfo(np.float16).max)
    assert float(case.loss) == pytest.approx(np.log(2), abs=2**-11)


def test_peaked_low_precision_rows(low):
    for miss in golden.PEAKS:
        for n_classes in (1000, 32000):
            for dtype in ("f16", "bf16"):
                case = low[f"lowprec/cross_entropy/C={n_classes}/peaked-{miss:g}/mean/{dtype}"]
                p_t, _ = _true_class(case)
                # the target logit rounded to the dtype moves 1 - p_t by a few percent
                np.testing.assert_allclose(1 - p_t, miss, rtol=0.2)


def _right(case, function):
    """The float64 answer rounded once: what a careful implementation returns."""
    loss, grad = golden.float64_reference(case)
    if not function.endswith("_grad"):
        return golden.round_once(loss, case.loss.dtype)
    if isinstance(grad, tuple):
        return tuple(None if g is None else golden.round_once(g, case.loss.dtype) for g in grad)
    return golden.round_once(grad, case.loss.dtype)


def test_the_rounded_float64_answer_passes_every_low_precision_case(low):
    for case in low.values():
        for function in (case.function, case.grad_function):
            check = verify.judge(case, function, _right(case, function))
            assert check.ok and check.exact, (case.id, function, check.why)


def test_the_rule_fails_an_error_beyond_pytorch_plus_one_ulp(low):
    case = low["lowprec/softmax/NxC/bf16"]
    allowed = case.rule_params["loss_error"]
    reference = case.rule_params["loss_reference"]
    worst = np.unravel_index(np.argmax(np.abs(reference)), reference.shape)
    got = np.array(_right(case, "softmax"))
    nudged = np.array(got)
    # beyond the allowance by more than the half ulp that rounding to bfloat16 may take
    nudged[worst] = reference[worst] + 1.5 * (allowed + case.rtol * abs(reference[worst]))
    assert not verify.judge(case, "softmax", nudged).ok
    got[worst] = reference[worst] + 0.5 * allowed
    assert verify.judge(case, "softmax", got).ok
    assert not verify.judge(case, "softmax", got.astype(np.float32)).ok  # the dtype


def _report(name, cases):
    module = verify.load_implementation(str(WRONG / f"{name}.py"))
    outcomes = verify.run_module(module, cases)
    return verify.Report(name, verify.CorpusInfo.of(cases, "low precision"), tuple(outcomes))


def test_computing_in_float16_throughout_fails_and_is_diagnosed(low):
    report = _report("low_precision_throughout", tuple(low.values()))
    assert not report.ok
    failed = {o.case.id for o in report.failures}
    assert "lowprec/binary_cross_entropy_with_logits/zeros-256x256/mean/f16" in failed
    # Which functions fail depends on NumPy's float16 exp (under NumPy 1.23 a peaked
    # cross_entropy case fails too): every failure must be named by the one convention.
    failing = [d for d in report.diagnoses if d.failing]
    assert {d.id for d in failing} == {"low-precision-arithmetic"}
    assert {case for d in failing for case in d.cases} == failed


def test_the_true_class_gradient_rounded_in_bfloat16_is_named_at_vocabulary_scale(low):
    # PyTorch's CPU kernels round p_t to 1 on these rows themselves, so the rule (no
    # worse than PyTorch) cannot fail the bug: verify passes it, reports it, names it.
    report = _report("grad_true_class_rounded", tuple(low.values()))
    assert report.ok
    (diagnosis,) = [d for d in report.diagnoses if not d.failing]
    assert diagnosis.id == "grad-true-class-rounded"
    assert "lowprec/cross_entropy/C=32000/peaked-0.001/mean/bf16" in diagnosis.cases
    case = low["lowprec/cross_entropy/C=32000/peaked-0.001/mean/bf16"]
    assert case.exact_only and "round p_t to 1" in case.exact_only
    text = " ".join(str(report).split())
    assert "[grad-true-class-rounded]" in text and "reported, not failed" in text


def test_xent_ref_passes_the_low_precision_cases(low):
    report = verify.Report("xent_ref", verify.CorpusInfo.of(tuple(low.values()), "low"),
                           tuple(verify.run_module(xr, tuple(low.values()))))
    assert report.ok, str(report)


@pytest.mark.torch
def test_pytorch_passes_the_low_precision_and_vocabulary_cases(low, vocab):
    pytest.importorskip("torch")
    from xent_ref.verify import torch_adapter as _torch_adapter

    cases = tuple(low.values()) + tuple(vocab.values())
    report = verify.Report("torch", verify.CorpusInfo.of(cases, "kernels"),
                           tuple(verify.run_module(_torch_adapter, cases)))
    assert report.ok, str(report)


# ---------------------------------------------------------------------------
# The LLM options of cross_entropy
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm():
    return {case.id: case for case in golden.build_corpus() if case.options["kind"] == "llm"
            and case.options.get("detail") != "microbatches"}


def test_every_llm_option_alone_and_together_with_every_variation(llm):
    seen = {(tuple(k for k in ("logit_scale", "softcap", "z_loss") if k in case.kwargs),
             case.options["reduction"], case.options["target"], case.options.get("weight"),
             case.options.get("ignore_index"), case.options.get("smoothing"), case.dtype)
            for case in llm.values()}
    combos = {(("logit_scale",)), ("softcap",), ("z_loss",), ("logit_scale", "softcap", "z_loss")}
    assert {s[0] for s in seen} == combos
    assert len(seen) == len(llm) == 4 * 4 * 3 * 2
    assert {s[1] for s in seen} == set(golden.REDUCTIONS)
    assert ("yes", "default") in {(s[3], s[4]) for s in seen}  # weights with ignored targets
    assert ("default", "0.1") in {(s[4], s[5]) for s in seen}  # smoothing with ignored
    for case in llm.values():  # the id spells the options
        for key, value in case.kwargs.items():
            if key in ("logit_scale", "softcap", "z_loss"):
                assert float(case.options[key]) == value


def test_the_z_loss_mean_divides_by_the_kept_count_not_the_weight(llm):
    case = llm["llm/cross_entropy/index/NxCxd1/z=0.1/mean/w/ign=default/f64"]
    x, target = case.inputs["input"], case.inputs["target"]
    kept = target != -100
    lse = np.log(np.exp(x).sum(axis=1))  # moderate logits: the plain formula is exact enough
    without = xr.cross_entropy(x, target, weight=case.kwargs["weight"])
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(case.loss, without + 0.1 * (lse[kept] ** 2).sum() / kept.sum(),
                               rtol=1e-12)


# ---------------------------------------------------------------------------
# linear_cross_entropy: three gradients
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear():
    return {case.id: case for case in golden.build_corpus()
            if case.function == "linear_cross_entropy"}


def test_linear_cases_hold_three_gradients(linear):
    assert "vocab/linear_cross_entropy/C=32000/H=8/mean/bias/f32" in linear
    for case in linear.values():
        grad_input, grad_weight, grad_bias = case.grad
        assert grad_input.shape == case.inputs["input"].shape
        assert grad_weight.shape == case.inputs["linear_weight"].shape
        assert (grad_bias is None) == ("linear_bias" not in case.kwargs)
    case = linear["linear_cross_entropy/V=5/mean/bias/w/ign=default/f64"]
    # dW = G^T h and db = column sums of G, with G the logits' gradient
    h, w = case.inputs["input"], case.inputs["linear_weight"]
    options = {k: v for k, v in case.kwargs.items() if k != "linear_bias"}
    logits = h @ w.T + case.kwargs["linear_bias"]
    g = xr.cross_entropy_grad(logits, case.inputs["target"], grad_output=case.grad_output,
                              **options)
    np.testing.assert_allclose(case.grad[1], g.T @ h, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(case.grad[2], g.sum(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(case.grad[0], g @ w, rtol=1e-12, atol=1e-15)


def test_each_gradient_is_judged_and_named(linear):
    case = linear["linear_cross_entropy/V=5/sum/bias/f32"]
    function = "linear_cross_entropy_grad"
    right = case.grad
    assert verify.judge(case, function, right).ok
    wrong_weight = (right[0], right[1] * 1.01, right[2])
    check = verify.judge(case, function, wrong_weight)
    assert not check.ok and check.why.startswith("grad of linear_weight: at index")
    check = verify.judge(case, function, (right[0], right[1], None))
    assert not check.ok and check.why == "grad of linear_bias: expected an array, got None"
    check = verify.judge(case, function, right[0])
    assert not check.ok and "expected a tuple of 3 gradients" in check.why


def test_a_linear_port_that_forgets_the_bias_gradient_fails(linear):
    def linear_cross_entropy_grad(*args, **kwargs):
        grads = xr.linear_cross_entropy_grad(*args, **kwargs)
        return grads[0], grads[1], None  # the bias's gradient dropped

    report = verify.Report("port", verify.CorpusInfo.of(tuple(linear.values()), "linear"),
                           tuple(verify.run({"linear_cross_entropy_grad":
                                             linear_cross_entropy_grad}, linear.values())))
    with_bias = {case_id for case_id, case in linear.items() if "linear_bias" in case.kwargs}
    assert {o.case.id for o in report.failures} == with_bias
    text = str(report)
    assert "grad of linear_bias" in text and "expected dlinear_bias" in text


def test_each_linear_gradient_is_judged_against_its_own_reference_and_error(low):
    case = low["lowprec/linear_cross_entropy/N=16/H=16/V=50/mean/bias/bf16"]
    right = _right(case, "linear_cross_entropy_grad")
    assert verify.judge(case, "linear_cross_entropy_grad", right).ok
    errors = case.rule_params["grad_error"]
    references = case.rule_params["grad_reference"]
    assert len(set(errors)) == 3  # PyTorch's error differs from gradient to gradient
    for part, name in enumerate(("input", "linear_weight", "linear_bias")):
        reference = references[part]
        worst = np.unravel_index(np.argmax(np.abs(reference)), reference.shape)
        nudged = [np.array(g) for g in right]
        # beyond this part's allowance (its own PyTorch error + one ulp) by a margin
        nudged[part][worst] = reference[worst] + 1.5 * (errors[part]
                                                        + case.rtol * abs(reference[worst]))
        check = verify.judge(case, "linear_cross_entropy_grad", tuple(nudged))
        assert not check.ok and check.why.startswith(f"grad of {name}:"), check.why
        # within the allowance of this part: passes
        nudged[part][worst] = reference[worst] + 0.5 * errors[part]
        assert verify.judge(case, "linear_cross_entropy_grad", tuple(nudged)).ok


# ---------------------------------------------------------------------------
# The cases that separate the mistakes of LLM kernels
# ---------------------------------------------------------------------------


def _failing(name, cases):
    report = _report(name, tuple(cases))
    return report, {o.case.id for o in report.failures}


def test_linear_cases_have_every_option_of_cross_entropy(linear):
    kinds = {(c.kwargs.get("ignore_index"), c.inputs["target"].dtype.kind,
              "weight" in c.kwargs, "label_smoothing" in c.kwargs, "z_loss" in c.kwargs,
              bool((c.inputs["target"] == -100).any()) if c.inputs["target"].dtype.kind == "i"
              else False) for c in linear.values()}
    assert (1, "i", False, False, False, False) in kinds  # a real class ignored
    assert any(k[1] == "f" for k in kinds)  # probability targets
    assert (None, "i", True, True, False, True) in kinds  # weights x smoothing, ignored
    assert (None, "i", False, False, True, True) in kinds  # z-loss x ignored
    assert (None, "i", True, False, True, True) in kinds  # z-loss x weights


def test_the_microbatches_weigh_their_tokens_unequally():
    for case in golden.build_corpus():
        if case.options.get("detail") != "microbatches":
            continue
        target = case.inputs["target"]
        assert [int((row == -100).sum()) for row in target] == [0, 1, 3, 5]
        per_sequence = [golden.call_function(getattr(xr, case.function), case, dict(
            case.inputs, input=case.inputs["input"][i:i + 1], target=target[i:i + 1]))
            for i in range(len(target))]
        # The mean of the sequences' means is far from the mean over every kept token.
        assert abs(float(np.mean(per_sequence)) - float(case.loss)) > 1e3 * case.atol


def test_the_options_at_vocabulary_scale_in_low_precision(low):
    ids = [i for i in low if i.startswith("lowprec/llm/cross_entropy/C=")]
    assert {(low[i].inputs["input"].shape[1], low[i].dtype) for i in ids} == {
        (c, d) for c in (32000, 128256) for d in golden.LOW_PRECISION_DTYPES}
    for i in ids:
        assert low[i].kwargs["softcap"] == 30.0 and low[i].kwargs["z_loss"] == 1e-4
    # LLM options computed naively in bfloat16 (every sum over the vocabulary in the
    # dtype) fail where PyTorch's bfloat16 composition is right, and are named.
    report, failed = _failing("llm_options_in_low_precision", (low[i] for i in ids))
    assert "lowprec/llm/cross_entropy/C=32000/softcap=30/z=0.0001/mean/ign=default/bf16" in failed
    assert {d.id for d in report.diagnoses if d.failing} == {"low-precision-arithmetic"}


def test_dw_accumulated_in_bfloat16_fails_as_the_chunks_grow_in_number(low):
    sweep = [low[f"lowprec/linear_cross_entropy/N={n}/H=16/V=256/mean/bias/bf16"]
             for n in (16, 64, 256)]
    report, failed = _failing("dw_low_precision_accumulation", sweep)
    # 4 chunks of 4 tokens stay within PyTorch's error plus an ulp; 64 chunks do not.
    assert sweep[0].id not in failed and sweep[-1].id in failed
    assert {d.id for d in report.diagnoses if d.failing} == {"dw-low-precision-accumulation"}
