"""The exercises notebook (notebooks/src/06_exercises.py) judges answers fairly.

Each test runs the notebook's own cells: the setup cell (which defines
``check_answer``), then one exercise's check cell with the exercise replaced by
an answer. The blank stubs must give "not attempted yet"; the answers of the
solutions variant (notebooks/solutions/06_exercises.ipynb, same source) must
pass; the classic wrong answers must fail, and where ``xent_ref.testing`` knows
the mistake, with its name.

(``xent_ref.textbook`` is not a right answer here on purpose: its softmax skips
the max shift, its BCE with logits goes through the sigmoid, and it computes in
float64 whatever the input dtype, all to keep the formulas bare.)
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

from scripts import build_notebooks

ROOT = Path(__file__).resolve().parent.parent

SOURCE = ROOT / "notebooks" / "src" / "06_exercises.py"


def _code(variant):
    text = SOURCE.read_text(encoding="utf-8")
    return [body for kind, body in build_notebooks.parse(text, variant) if kind == "code"]


CODE = _code("en")
SETUP = next(cell for cell in CODE if "def check_answer" in cell)
_CHECK = re.compile(r'^report = check_answer\("\w+", (?:grad=)?(\w+)', re.MULTILINE)
CHECKS = {_CHECK.search(cell).group(1): cell for cell in CODE if _CHECK.search(cell)}
STUBS = {name: next(cell for cell in CODE if f"def {name}(" in cell) for name in CHECKS}
EXERCISES = ["softmax", "log_softmax", "cross_entropy", "cross_entropy_grad",
             "binary_cross_entropy_with_logits"]


def _solutions():
    """The filled-in exercise functions of the solutions variant."""
    namespace: dict = {}
    for cell in _code("solutions"):
        if "def check_answer" in cell or any(f"def {name}(" in cell for name in EXERCISES):
            exec(cell, namespace)
    return {name: namespace[name] for name in EXERCISES}


SOLUTIONS = _solutions()


def run_check(name, answer=None):
    """Run the setup cell, the stub cell of exercise ``name`` (replaced by
    ``answer`` when given), and its check cell; return (report, printed text)."""
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(SETUP, namespace)
        exec(STUBS[name], namespace)
        if answer is not None:
            namespace[name] = answer
        exec(CHECKS[name], namespace)
    return namespace["report"], printed.getvalue()


def test_every_exercise_has_a_stub_and_a_check_cell():
    assert sorted(CHECKS) == sorted(EXERCISES)


@pytest.mark.parametrize("name", EXERCISES)
def test_blank_exercise_is_not_attempted(name):
    report, printed = run_check(name)
    assert report is None
    assert "not attempted yet" in printed


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_passes(name):
    report, printed = run_check(name, SOLUTIONS[name])
    assert report.ok, printed
    assert report.outcomes and not report.failures
    assert "not attempted" not in printed and str(report) in printed


# ---- the classic wrong answers -------------------------------------------------

def softmax_without_max_shift(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_without_max_shift(x, axis=-1):
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def test_solutions_are_not_the_stubs():
    for name in EXERCISES:
        stub_namespace: dict = {"np": np}
        exec(STUBS[name], stub_namespace)
        assert stub_namespace[name].__code__.co_code != SOLUTIONS[name].__code__.co_code


def _kept_weights(logits, target, weight, ignore_index):
    w = np.ones(logits.shape[1]) if weight is None else np.asarray(weight)
    kept = target != ignore_index
    return np.where(kept, w[np.where(kept, target, 0)], 0), kept


def cross_entropy_mean_by_count(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """The weighted mean divided by the number of kept samples, not their weights."""
    if reduction != "mean":
        return SOLUTIONS["cross_entropy"](logits, target, weight, ignore_index, reduction)
    total = SOLUTIONS["cross_entropy"](logits, target, weight, ignore_index, "sum")
    return total / logits.dtype.type(np.count_nonzero(target != ignore_index))


def cross_entropy_ignored_counted(logits, target, weight=None, ignore_index=-100,
                                  reduction="mean"):
    """The mean divided by all N targets, the ignored ones too."""
    if reduction != "mean":
        return SOLUTIONS["cross_entropy"](logits, target, weight, ignore_index, reduction)
    total = SOLUTIONS["cross_entropy"](logits, target, weight, ignore_index, "sum")
    return total / logits.dtype.type(len(target))


def cross_entropy_grad_not_divided(logits, target, weight=None, ignore_index=-100,
                                   reduction="mean", grad_output=1.0):
    """The gradient of the sum, returned for the mean: never divided by the denominator."""
    reduction = "sum" if reduction == "mean" else reduction
    return SOLUTIONS["cross_entropy_grad"](logits, target, weight, ignore_index, reduction,
                                       grad_output=grad_output)


def cross_entropy_grad_mean_by_count(logits, target, weight=None, ignore_index=-100,
                                     reduction="mean", grad_output=1.0):
    """The weighted mean's gradient divided by the count of kept samples."""
    if reduction != "mean":
        return SOLUTIONS["cross_entropy_grad"](logits, target, weight, ignore_index, reduction,
                                           grad_output=grad_output)
    rows = SOLUTIONS["cross_entropy_grad"](logits, target, weight, ignore_index, "sum",
                                       grad_output=grad_output)
    return rows / logits.dtype.type(np.count_nonzero(target != ignore_index))


def bce_with_logits_via_sigmoid(x, y, weight=None, pos_weight=None, reduction="mean"):
    """log(sigmoid(x)) and log(1 - sigmoid(x)) taken literally."""
    p = 1 / (1 + np.exp(-x))
    pw = 1 if pos_weight is None else pos_weight
    loss = -(pw * y * np.log(p) + (1 - y) * np.log(1 - p))
    loss = loss if weight is None else loss * weight
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def log_softmax_as_log_of_softmax(x, axis=-1):
    """What exercise 2's hint warns against: the log of a rounded probability."""
    return np.log(SOLUTIONS["softmax"](x, axis))


def softmax_without_keepdims(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis)


def log_softmax_without_keepdims(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis))


def cross_entropy_sum_over_kept(logits, target, weight=None, ignore_index=-100,
                                reduction="mean"):
    """The natural `losses.sum() / kept.sum()`: a count for the weighted mean, and a
    float32 sum over an int64 count is float64."""
    if reduction != "mean" or weight is None:
        return SOLUTIONS["cross_entropy"](logits, target, weight, ignore_index, reduction)
    losses = SOLUTIONS["cross_entropy"](logits, target, weight, ignore_index, "none")
    kept = target != ignore_index
    return losses.sum() / kept.sum()


def cross_entropy_grad_ignored_rows_kept(logits, target, weight=None, ignore_index=-100,
                                         reduction="mean", grad_output=1.0):
    """p - one_hot with only the one-hot masked: ignored rows keep p."""
    grad = SOLUTIONS["cross_entropy_grad"](logits, target, weight, ignore_index, reduction,
                                           grad_output=grad_output)
    weights, kept = _kept_weights(logits, target, weight, ignore_index)
    scale = np.broadcast_to(np.asarray(grad_output, np.float64), kept.shape)
    if reduction == "mean":
        with np.errstate(all="ignore"):
            scale = scale / weights.sum()
    p = SOLUTIONS["softmax"](logits.astype(np.float64), 1)
    with np.errstate(all="ignore"):
        return (grad + np.where(kept, 0.0, scale)[:, None] * p).astype(grad.dtype)


def cross_entropy_grad_without_weight(logits, target, weight=None, ignore_index=-100,
                                      reduction="mean", grad_output=1.0):
    return SOLUTIONS["cross_entropy_grad"](logits, target, None, ignore_index, reduction,
                                           grad_output=grad_output)


def cross_entropy_grad_sign_flipped(logits, target, weight=None, ignore_index=-100,
                                    reduction="mean", grad_output=1.0):
    return -SOLUTIONS["cross_entropy_grad"](logits, target, weight, ignore_index, reduction,
                                            grad_output=grad_output)


def bce_with_logits_pos_weight_on_both(x, y, weight=None, pos_weight=None, reduction="mean"):
    losses = SOLUTIONS["binary_cross_entropy_with_logits"](x, y, weight, None, "none")
    if pos_weight is not None:
        losses = losses * pos_weight
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


WRONG = [
    ("log_softmax", log_softmax_as_log_of_softmax, "log-of-softmax"),
    ("softmax", softmax_without_keepdims, "missing-keepdims"),
    ("log_softmax", log_softmax_without_keepdims, "missing-keepdims"),
    ("cross_entropy", cross_entropy_sum_over_kept, "mean-denominator-count"),
    ("cross_entropy_grad", cross_entropy_grad_ignored_rows_kept, "grad-ignored-rows-nonzero"),
    ("cross_entropy_grad", cross_entropy_grad_without_weight, "grad-missing-weight"),
    ("cross_entropy_grad", cross_entropy_grad_sign_flipped, "grad-sign-flipped"),
    ("binary_cross_entropy_with_logits", bce_with_logits_pos_weight_on_both,
     "pos-weight-both-terms"),
    ("softmax", softmax_without_max_shift, "no-max-shift"),
    ("log_softmax", log_softmax_without_max_shift, "no-max-shift"),
    ("cross_entropy", cross_entropy_mean_by_count, "mean-denominator-count"),
    ("cross_entropy", cross_entropy_ignored_counted, "ignored-in-denominator"),
    ("cross_entropy_grad", cross_entropy_grad_mean_by_count, "mean-denominator-count"),
    ("cross_entropy_grad", cross_entropy_grad_not_divided, "grad-mean-not-divided"),
    ("binary_cross_entropy_with_logits", bce_with_logits_via_sigmoid, "bce-logits-via-sigmoid"),
]


@pytest.mark.parametrize(("name", "answer", "diagnosis"), WRONG,
                         ids=[answer.__name__ for _, answer, _ in WRONG])
def test_classic_mistake_fails_with_its_name(name, answer, diagnosis):
    with np.errstate(all="ignore"):  # the wrong answers overflow; that is the point
        report, printed = run_check(name, answer)
    assert not report.ok and report.failures
    assert "FAIL" in printed
    if diagnosis is not None:
        named = {d.id: d for d in report.diagnoses}
        assert diagnosis in named, (diagnosis, sorted(named))
        assert f"[{diagnosis}]" in printed
    # The learner's report: at most 12 lines, the cause (the named mistake) and its fix
    # first, one failing case; the rest on request (full=True).
    lines = str(report).splitlines()
    assert len(lines) <= 12 and str(report) in printed
    top = max((d for d in report.diagnoses if d.failing), key=lambda d: len(d.cases))
    assert lines[0].startswith(f"cause [{top.id}]")
    assert lines[1 + lines[1].startswith("  ")].startswith("fix: ")
    assert any(line.startswith("one failing case") for line in lines)
    assert any(line.startswith("FAILED: ") for line in lines)


def test_the_dtype_is_a_note_beside_the_real_cause():
    report, _ = run_check("cross_entropy", cross_entropy_sum_over_kept)
    (cause,) = [d for d in report.diagnoses if d.failing]
    assert cause.id == "mean-denominator-count" and "wrong-dtype" in cause.notes()[0]
    assert "note: [wrong-dtype]" in str(report)


def test_the_softmax_fix_is_the_softmax_one():
    with np.errstate(all="ignore"):
        report, _ = run_check("softmax", softmax_without_max_shift)
        text = " ".join(str(report).split())
        assert "e / e.sum(axis=axis, keepdims=True)" in text and "log-sum" not in text
        report, _ = run_check("log_softmax", log_softmax_without_max_shift)
    assert "log-sum" in " ".join(str(report).split())


def test_each_attempt_is_judged_on_fresh_inputs():
    """Two attempts see different inputs for the same case, the expected values are the
    library's on those inputs, and the seed is printed so an attempt can be replayed."""
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(SETUP, namespace)  # one notebook session, two attempts
        first = namespace["check_answer"]("softmax", SOLUTIONS["softmax"])
        second = namespace["check_answer"]("softmax", SOLUTIONS["softmax"])
    assert first.ok and second.ok and "seed=1" in printed.getvalue()
    assert "seed=2" in printed.getvalue()
    pairs = [(a.case, b.case) for a, b in zip(first.outcomes, second.outcomes)
             if a.case.id.startswith("softmax/")]
    assert pairs and all(a.id == b.id for a, b in pairs)
    assert any((a.inputs["x"] != b.inputs["x"]).any() for a, b in pairs)
    import xent_ref as xr

    for a, _ in pairs:  # the library's answer on the fresh inputs, computed now
        np.testing.assert_array_equal(a.loss, xr.softmax(a.inputs["x"], **a.kwargs))


_ENGLISH = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}\b")  # three English words running


@pytest.mark.parametrize(("name", "answer", "diagnosis"), WRONG[:8],
                         ids=[answer.__name__ for _, answer, _ in WRONG[:8]])
def test_a_chinese_report_has_no_english_sentence(name, answer, diagnosis):
    with np.errstate(all="ignore"):
        report, _ = run_check(name, answer)
    for text in (report.text(lang="zh"), report.text(full=True, lang="zh"),
                 report.text(lang="zh") and _html_zh(report)):
        # (an exception's own message, NumPy's, is quoted as it is)
        ours = " ".join(text.split())
        for outcome in report.failures:
            if outcome.check.why.startswith("raised "):
                message = outcome.check.why.split(": ", 1)[-1]
                ours = ours.replace(" ".join(message.split()), "")
        words = _ENGLISH.findall(ours)
        assert not words, words
        assert re.search("[\u4e00-\u9fff]", text)


def _html_zh(report):
    from dataclasses import replace

    return replace(report, lang="zh")._repr_html_()


def test_gradient_not_divided_fails_exactly_where_the_denominator_is_not_1():
    """Besides its name (grad-mean-not-divided), check where it fails: on every
    reduction='mean' case whose denominator (the kept targets' weight sum) is not 1,
    and nowhere else; every failure carries the name."""
    report, _ = run_check("cross_entropy_grad", cross_entropy_grad_not_divided)
    failing = {outcome.case.id for outcome in report.failures}
    named = {case for d in report.diagnoses if d.id == "grad-mean-not-divided" and d.failing
             for case in d.cases}
    assert named == failing
    expected = set()
    for outcome in report.outcomes:
        case = outcome.case
        if "/mean/" not in case.id:
            continue
        weights, _ = _kept_weights(case.inputs["input"], case.inputs["target"],
                                   case.kwargs.get("weight"), case.kwargs.get("ignore_index", -100))
        if not np.isclose(weights.sum(), 1.0):
            expected.add(case.id)
    assert failing == expected and len(expected) >= 10
