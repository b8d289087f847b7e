"""The course notebooks 09 to 11 teach what they claim.

Each test runs a notebook's own code cells (the English variant of its source in
notebooks/src/, through the builder that writes the committed notebooks) in one
namespace, and checks the claims on the objects they leave behind: the max shift's
gradient is zero and the step-by-step backward pass equals the library's gradient
(09); both digits classifiers, trained with hand-written gradients, reach 95% test
accuracy (10). For the C port (11), a right answer compiled with ``cc`` (skipped
without one) passes ``xent-ref verify --results``, the blank template fails, and
classic mistakes are named. tests/test_notebooks.py checks that the committed
notebooks are current.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from scripts import build_notebooks

ROOT = Path(__file__).resolve().parent.parent


def _run(stem: str) -> dict:
    """Execute the code cells of notebooks/src/STEM.py (English) in one namespace."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")  # no display; plt.show() then draws nothing
    source = ROOT / "notebooks" / "src" / f"{stem}.py"
    namespace: dict = {}
    with np.printoptions():  # the notebooks set print options; give the next test its own
        for kind, body in build_notebooks.parse(source.read_text(encoding="utf-8"), "en"):
            if kind == "code":
                exec(compile(body, f"{stem}.py", "exec"), namespace)  # noqa: S102 (our source)
    import matplotlib.pyplot as plt

    plt.close("all")
    return namespace


def test_backprop_by_hand_matches_the_library_and_the_max_shift_gets_nothing(capsys):
    ns = _run("09_backprop_by_hand")
    logits, target = ns["logits"], ns["target"]
    assert logits.shape == (8, 10) and logits.dtype == np.float64
    # the max shift: zero to rounding, against a gradient of order 1/N elsewhere
    assert np.abs(ns["dlogit_maxes"]).max() < 1e-15
    assert np.abs(ns["dlogits"]).max() > 1e-2
    np.testing.assert_allclose(ns["dlogits"], xr.cross_entropy_grad(logits, target),
                               rtol=0, atol=1e-16)
    np.testing.assert_array_equal(ns["dlog_probs"], xr.nll_loss_grad(ns["v"]["log_probs"], target))
    # every intermediate of the unfused forward has its gradient checked in the output
    printed = capsys.readouterr().out
    for name in ("picked", "log_probs", "log_counts_sum", "counts_sum", "counts", "norm_logits",
                 "logit_maxes", "logits"):
        assert f"d{name} " in printed, name
    assert "approx: False" not in printed


def test_cmp_stops_on_a_wrong_gradient():
    ns = _run("09_backprop_by_hand")
    wrong = ns["dlogits"].copy()
    wrong[0, 0] += 1e-3
    with pytest.raises(AssertionError):
        ns["cmp"]("dlogits", wrong, xr.cross_entropy_grad(ns["logits"], ns["target"]))


def test_digits_training_reaches_95_percent_with_hand_written_gradients():
    pytest.importorskip("sklearn")
    ns = _run("10_training")
    for name, (params, history) in ns["results"].items():
        assert history.shape == (20, 4)
        test_accuracy = history[-1, 3]
        assert test_accuracy >= 0.95, (name, test_accuracy)
        # the recorded accuracy is the parameters' own on the held-out images
        assert test_accuracy == np.mean(ns["predict"](params, ns["X_test"]) == ns["y_test"])
        assert history[-1, 1] < history[0, 1] < np.log(10)  # the test loss fell
    # the held-out images are never trained on
    assert not set(ns["test"]) & set(ns["train"])
    assert len(ns["y_test"]) == 450


def test_the_hand_written_parameter_gradients_are_right():
    """The two-layer net's hand-written gradients against central differences, on
    parameters other than the notebook's (a trained-looking random point)."""
    pytest.importorskip("sklearn")
    ns = _run("10_training")
    rng = np.random.default_rng(7)
    params = {name: rng.normal(size=value.shape) for name, value in
              ns["initial"](ns["two_layer_net"]).items()}
    x, y = ns["X_train"][:5], ns["y_train"][:5]
    loss, grads = ns["two_layer_net"](params, x, y)
    for name in ("b1", "W2", "b2"):
        numeric = ns["central_differences"](lambda: ns["two_layer_net"](params, x, y)[0],
                                            params[name])
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- 11: the C port

C_PORT = ROOT / "exercises" / "c_port"


def _prepare():
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare", C_PORT / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _judge(folder: Path, port: str | None) -> subprocess.CompletedProcess:
    """Compile xent.c (its "your port" block replaced by ``port``), run it, verify it."""
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (cc)")
    prepare = _prepare()
    template = (C_PORT / "xent.c").read_text(encoding="utf-8")
    source = template if port is None else prepare.splice(template, port)
    (folder / "xent.c").write_text(source, encoding="utf-8")
    subprocess.run([compiler, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", "xent",
                    "xent.c", "-lm"], cwd=folder, check=True)
    with open(folder / "results.json", "w", encoding="utf-8") as results:
        subprocess.run(["./xent", "inputs.txt"], cwd=folder, stdout=results, check=True)
    return subprocess.run([sys.executable, "-m", "xent_ref", "verify", "--results",
                           "results.json", "--corpus", "corpus.json"], cwd=folder,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def port_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("c_port")
    _prepare().write(folder)
    return folder


ANSWER = (ROOT / "notebooks" / "solutions" / "c_port" / "port.c").read_text(encoding="utf-8")


def test_the_c_port_cases_are_the_corpus_cases_it_can_answer(port_folder):
    prepare = _prepare()
    cases = prepare.port_cases()
    assert len(cases) == 144
    assert {case.function for case in cases} == {"cross_entropy"}
    assert any(case.id.startswith("edge/") for case in cases)
    assert {case.kwargs.get("reduction", "mean") for case in cases} == {"none", "mean", "sum"}
    text = (port_folder / "inputs.txt").read_text(encoding="ascii")
    assert text.count("\ncase ") == 144
    # the answers stay in corpus.json: no expected loss is among the numbers the C program reads
    tokens = set(text.split())
    answers = {repr(float(v)) for case in cases for v in np.ravel(case.loss)
               if np.isfinite(v) and v != 0}
    assert len(answers) > 100 and not answers & tokens


def test_a_right_c_port_passes_verify(port_folder):
    report = _judge(port_folder, ANSWER)
    assert report.returncode == 0, report.stdout
    assert "PASSED: all 288 checks" in report.stdout


def test_the_blank_template_fails_verify(port_folder):
    report = _judge(port_folder, None)
    assert report.returncode == 1, report.stdout
    assert "FAIL cross_entropy:" in report.stdout and "FAIL cross_entropy_grad:" in report.stdout


@pytest.mark.parametrize(("mistake", "diagnosis"), [
    (("denominator += w;", "denominator += target[i] != ignore_index;"),
     "mean-denominator-count"),
    (("exp(x[j] - m) / s", "exp(x[j] - (m + log(s)))"), "softmax-via-rounded-lse"),
    (("reduction == NONE ? grad_output[i]", "reduction == NONE ? 1.0"),
     "grad-ignores-grad-output"),
])
def test_verify_names_the_classic_mistakes_of_a_c_port(port_folder, mistake, diagnosis):
    old, new = mistake
    assert old in ANSWER
    report = _judge(port_folder, ANSWER.replace(old, new))
    assert report.returncode == 1
    assert f"[{diagnosis}]" in report.stdout, report.stdout
