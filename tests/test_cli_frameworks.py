"""``xent-ref verify --framework``, ``verify --convention``, ``golden export-onnx`` and the
per-framework golden slices (xent_ref.golden.framework_cases).

The parts that run PyTorch, JAX or onnx are marked ``torch`` / ``jax`` / ``onnx`` and skip
without them::

    PYTHONPATH=. python -m pytest -m "torch or jax or onnx" -o addopts="" \
        tests/test_cli_frameworks.py
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import textwrap
import warnings

import numpy as np
import pytest

from xent_ref import cli, frameworks_command
from xent_ref.golden.framework_cases import FRAMEWORKS, framework_cases
from xent_ref.verify.compare import compare


def _module(tmp_path, name: str, source: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def _checked_cases(text: str) -> int:
    """The number of checks a passing short report says it made (the report wraps its
    lines: read as one line)."""
    return int(re.search(r"PASSED: all (\d+) checks", " ".join(text.split())).group(1))


# ---------------------------------------------------------------------------------------
# verify --framework: what needs no framework
# ---------------------------------------------------------------------------------------


def test_framework_absent_is_exit_2_with_a_message(monkeypatch, capsys):
    monkeypatch.setitem(frameworks_command.FRAMEWORK_PACKAGES, "torch", "no_such_package_xr")
    status = cli.main(["verify", "--impl", "torch.nn.functional:cross_entropy",
                       "--framework", "torch"])
    assert status == 2
    assert "needs no_such_package_xr, which is not installed" in capsys.readouterr().out


@pytest.mark.parametrize("impl, message", [
    ("numpy", "give MODULE:FUNCTION"),
    ("numpy:no_such_function", "cannot load"),
    ("numpy:pi", "is not callable"),
    ("numpy:sum", "is not named after a corpus function"),
])
def test_framework_bad_callables_are_exit_2(impl, message, monkeypatch, capsys):
    monkeypatch.setitem(frameworks_command.FRAMEWORK_PACKAGES, "jax", "numpy")
    assert cli.main(["verify", "--impl", impl, "--framework", "jax"]) == 2
    assert message in capsys.readouterr().out


def test_framework_and_convention_need_impl(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["verify", "--results", "x.json", "--framework", "torch"])
    assert exit_info.value.code == 2
    assert "need --impl" in capsys.readouterr().err


def test_names_parse_peers_and_pairs():
    assert frameworks_command.parse_names("liger") == {"z_loss": "lse_square_scale"}
    assert frameworks_command.parse_names("z_loss=lse_square_scale, softcap=cap") == {
        "z_loss": "lse_square_scale", "softcap": "cap"}
    with pytest.raises(frameworks_command.Unavailable, match="--names"):
        frameworks_command.parse_names("nonsense")


# ---------------------------------------------------------------------------------------
# verify --framework torch / jax
# ---------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("name", ["cross_entropy", "linear_cross_entropy"])
def test_torch_functional_passes_from_the_command_line(name, tmp_path, capsys):
    pytest.importorskip("torch")
    report = tmp_path / "report.json"
    status = cli.main(["verify", "--impl", f"torch.nn.functional:{name}", "--framework",
                       "torch", "--dtypes", "float32,float64", "--json", str(report)])
    out = capsys.readouterr().out
    assert status == 0, out
    functions = json.loads(report.read_text())["functions"]
    assert functions[name]["passed"] > 0 and functions[name + "_grad"]["passed"] > 0
    assert "--framework torch" in " ".join(out.split())  # (the report wraps its lines)


@pytest.mark.torch
def test_torch_mean_by_count_bug_fails_and_is_named(tmp_path, capsys):
    pytest.importorskip("torch")
    path = _module(tmp_path, "count_bug", """
        import torch.nn.functional as F

        def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                          label_smoothing=0.0):
            losses = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                                     reduction="none", label_smoothing=label_smoothing)
            if reduction == "none":
                return losses
            return losses.sum() / (losses.numel() if reduction == "mean" else 1)  # the bug
    """)
    report = tmp_path / "report.json"
    status = cli.main(["verify", "--impl", f"{path}:cross_entropy", "--framework", "torch",
                       "--dtypes", "float64", "--json", str(report)])
    assert status == 1
    diagnoses = {d["id"] for d in json.loads(report.read_text())["diagnoses"]}
    assert "ignored-in-denominator" in diagnoses
    assert "ignored-in-denominator" in capsys.readouterr().out


@pytest.mark.torch
def test_torch_peer_names_reach_the_llm_cases(tmp_path, capsys):
    pytest.importorskip("torch")
    path = _module(tmp_path, "liger_like", """
        import torch
        import torch.nn.functional as F

        def fused_ce(input, target, ignore_index=-100, reduction="mean",
                     lse_square_scale=0.0):
            loss = F.cross_entropy(input, target, ignore_index=ignore_index,
                                   reduction=reduction)
            lse = torch.logsumexp(input, dim=1 if input.dim() > 1 else 0)
            kept = (torch.ones_like(lse, dtype=torch.bool) if target.is_floating_point()
                    else target != ignore_index)  # probabilities: every row counts
            penalty = torch.where(kept, lse_square_scale * lse**2, torch.zeros_like(lse))
            if reduction == "none":
                return loss + penalty
            return loss + (penalty.sum() if reduction == "sum" else penalty.sum() / kept.sum())
    """)
    common = ["verify", "--impl", f"{path}:fused_ce", "--framework", "torch",
              "--function", "cross_entropy", "--dtypes", "float64"]
    assert cli.main(common + ["--names", "liger"]) == 0
    renamed = capsys.readouterr().out
    assert cli.main(common) == 0
    plain = capsys.readouterr().out
    assert _checked_cases(renamed) > _checked_cases(plain)  # the z_loss cases come in


@pytest.mark.jax
def test_jax_log_softmax_passes_and_a_sum_for_mean_fails(tmp_path, capsys):
    pytest.importorskip("jax")
    assert cli.main(["verify", "--impl", "jax.nn:log_softmax", "--framework", "jax",
                     "--names", "x=x,axis=axis", "--dtypes", "float32,float64"]) == 0
    path = _module(tmp_path, "summed", """
        import jax.numpy as jnp
        import optax

        def cross_entropy(input, target, reduction="mean"):
            logits = jnp.moveaxis(input, 1, -1) if input.ndim > 1 else input
            losses = optax.losses.softmax_cross_entropy_with_integer_labels(logits, target)
            return losses if reduction == "none" else jnp.sum(losses)  # sum for mean too
    """)
    pytest.importorskip("optax")
    assert cli.main(["verify", "--impl", f"{path}:cross_entropy", "--framework", "jax",
                     "--dtypes", "float64"]) == 1
    assert "FAILED" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# verify --convention and the golden slices
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_each_reference_passes_its_own_convention(name, capsys):
    assert cli.main(["verify", "--convention", name, "--impl",
                     f"xent_ref.frameworks.{name}", "--dtypes", "float64"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and f"{name} slice" in out


def test_convention_names_an_implementation_that_follows_pytorch(tmp_path, capsys):
    path = _module(tmp_path, "keras_like_pytorch", """
        from xent_ref.cross_entropy import cross_entropy

        def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False,
                                            ignore_class=None, axis=-1, *, reduction="none",
                                            sample_weight=None):
            ignore = -100 if ignore_class is None else ignore_class
            return cross_entropy(y_pred, y_true, ignore_index=ignore,
                                 reduction={"sum_over_batch_size": "mean"}.get(reduction,
                                                                              reduction))
    """)
    report = tmp_path / "report.json"
    assert cli.main(["verify", "--convention", "keras", "--impl", path,
                     "--json", str(report)]) == 1
    out = capsys.readouterr().out
    failures = json.loads(report.read_text())["failures"]
    # PyTorch's 0/0 = nan where Keras's masked mean over nothing is 0: only there
    assert failures and all("all-ignored" in f["id"] and f["like_pytorch"] for f in failures)
    assert "this is PyTorch's value" in out


def test_convention_without_any_function_is_exit_2(capsys):
    assert cli.main(["verify", "--convention", "optax", "--impl", "xent_ref.softmax"]) == 2
    assert "offers none of optax's functions" in capsys.readouterr().out


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_every_framework_has_a_slice_with_unique_ids(name):
    cases = framework_cases(name)
    assert cases and len({c.id for c in cases}) == len(cases)
    assert {c.dtype for c in cases} == {"float32", "float64"}
    for case in cases:
        assert case.id.startswith(f"{name}/{case.function}/{case.source}")


def test_slices_differ_from_pytorch_where_the_docs_say():
    keras_all_ignored = [c for c in framework_cases("keras", "sparse_categorical_crossentropy")
                         if "all-ignored" in c.source and "/mean/" in c.source]
    assert keras_all_ignored and all(float(c.loss) == 0.0 for c in keras_all_ignored)
    onnx_all_ignored = [c for c in framework_cases("onnx", "softmax_cross_entropy_loss")
                        if "all-ignored" in c.source and "/mean/" in c.source]
    assert onnx_all_ignored and all(np.isnan(c.loss) for c in onnx_all_ignored)
    with pytest.raises(ValueError, match="name"):
        framework_cases("caffe")
    with pytest.raises(ValueError, match="function"):
        framework_cases("keras", "log_loss")


def test_slice_inputs_are_not_modified_by_a_call():
    case = framework_cases("megatron")[0]
    before = [np.array(shard) for shard in case.args[0]]

    def clobber(shards, target, label_smoothing=0.0):
        for shard in shards:
            shard[...] = 0.0
        return np.zeros((2,) + target.shape)

    case.call(clobber)
    assert all(np.array_equal(a, b) for a, b in zip(before, case.args[0]))


# ---------------------------------------------------------------------------------------
# golden export-onnx
# ---------------------------------------------------------------------------------------


def test_export_onnx_without_onnx_is_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    assert cli.main(["golden", "export-onnx", str(tmp_path / "out")]) == 2
    assert "needs the onnx package" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


# onnx.reference's own departures from the operators' definitions, each seen on the
# corpus: log(softmax(x)) overflows at logits of 1e30; NegativeLogLikelihoodLoss takes
# ignore_index=-1 without weights for "no ignore_index" (its mean then counts the ignored
# targets); a batch of 0 cannot be reshaped.
REFERENCE_DEPARTURES = (
    re.compile(r"edge/cross_entropy/huge-1e30/"),
    re.compile(r"^nll_loss/index/.*/mean/no-w/ign=-1/"),
    re.compile(r"edge/nll_loss/empty-batch/"),
)


def _tensor(path):
    from onnx import TensorProto, numpy_helper

    proto = TensorProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return numpy_helper.to_array(proto)


def _node_tests(directory):
    """``(entry of cases.json, model path, feeds, expected)`` per exported test."""
    import onnx

    index = json.loads((directory / "cases.json").read_text())
    for entry in index["tests"]:
        folder = directory / entry["test"]
        model = onnx.load(str(folder / "model.onnx"))
        onnx.checker.check_model(model)
        inputs = sorted(glob.glob(str(folder / "test_data_set_0" / "input_*.pb")))
        feeds = {info.name: _tensor(p) for info, p in zip(model.graph.input, inputs)}
        yield entry, str(folder / "model.onnx"), feeds, _tensor(
            folder / "test_data_set_0" / "output_0.pb")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnx")
    directory = tmp_path_factory.mktemp("onnx") / "tests"
    assert cli.main(["golden", "export-onnx", str(directory)]) == 0
    return directory


@pytest.mark.onnx
def test_export_onnx_refuses_a_non_empty_folder(exported, capsys):
    assert cli.main(["golden", "export-onnx", str(exported)]) == 2
    assert "--force" in capsys.readouterr().out


@pytest.mark.onnx
def test_export_onnx_runs_clean_through_onnx_reference(exported):
    from onnx.reference import ReferenceEvaluator

    failing, total = [], 0
    for entry, model, feeds, expected in _node_tests(exported):
        total += 1
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the infinities of the edge cases
                got = ReferenceEvaluator(model).run(None, feeds)[0]
            ok = compare(expected, np.asarray(got), entry["rtol"], entry["atol"]).ok
        except ValueError:
            ok = False
        if not ok:
            failing.append(entry["source"])
    assert total == len(framework_cases("onnx")) > 300
    unexplained = [s for s in failing if not any(p.search(s) for p in REFERENCE_DEPARTURES)]
    assert not unexplained, unexplained


@pytest.mark.onnx
def test_export_onnx_runs_through_onnxruntime(exported):
    runtime = pytest.importorskip("onnxruntime")
    failing = []
    for entry, model, feeds, expected in _node_tests(exported):
        session = runtime.InferenceSession(model, providers=["CPUExecutionProvider"])
        got = session.run(None, feeds)[0]
        if not compare(expected, np.asarray(got), entry["rtol"], entry["atol"]).ok:
            failing.append(entry["source"])
    assert not failing, failing


def test_export_is_documented_with_its_index(tmp_path):
    """The folder names are the ONNX backend-test names, one per case (no onnx needed)."""
    from xent_ref.golden.onnx_export import node_test_name

    names = [node_test_name(c) for c in framework_cases("onnx")]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"test_[A-Za-z0-9_]+", n) for n in names)
    assert os.sep not in "".join(names)
