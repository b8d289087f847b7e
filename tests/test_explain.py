"""The explain API: rows, numerator and denominator come from the library's own calls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers.torch_compare import assert_matches
from xent_ref import functions
from xent_ref.golden.jsonio import decode_array, is_encoded_array
from xent_ref.teach.explain import LOSSES, Explanation, explain

LOGITS_4X3 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]
LABELS_4X3 = [2, 1, 0, 1]
OPTIONS_4X3 = {"weight": [2.0, 1.0, 2.0], "ignore_index": 2}


@pytest.fixture
def four_by_three() -> Explanation:
    return explain("cross_entropy", LOGITS_4X3, LABELS_4X3, **OPTIONS_4X3)


def test_four_by_three_numbers(four_by_three):
    ex = four_by_three
    assert [row.target for row in ex.rows] == [2, 1, 0, 1]
    assert [row.kept for row in ex.rows] == [False, True, True, True]
    assert [row.weight for row in ex.rows] == [None, 1.0, 2.0, 1.0]
    assert ex.denominator == 4.0
    assert round(ex.numerator / ex.denominator, 7) == 1.0400556
    assert ex.value == pytest.approx(float(ex.result), rel=1e-15)
    probs = xr.softmax(np.array(LOGITS_4X3), axis=1)
    assert ex.rows[2].prob == pytest.approx(probs[2, 0], rel=1e-15)
    assert ex.rows[2].neg_log_prob == pytest.approx(-np.log(probs[2, 0]), rel=1e-14)


def test_four_by_three_text(four_by_three):
    text = str(four_by_three)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    start = lines.index(next(x for x in lines if x.startswith("i  target")))
    loss_table = lines[start:lines.index("", start)]
    rows = [line.split() for line in loss_table if line[:1] in "0123" and len(line.split()) == 7]
    assert [r[0] for r in rows] == ["0", "1", "2", "3"]
    assert rows[0][5] == "ignored" and rows[0][4] == "-"
    assert [r[4] for r in rows[1:]] == ["1", "2", "1"]
    assert "denominator = sum of weight[target] over kept rows = 4" in text
    assert "result      = numerator / denominator = 1.0400556" in text


def test_html_has_the_table(four_by_three):
    page = four_by_three._repr_html_()
    # probabilities (header + 4), rows (header + 4), gradient (header + 3 lines x 4 rows)
    assert page.count("<table>") == 3
    assert page.count("<tr>") == 5 + 5 + 13
    assert "<td>ignored</td>" in page and "1.0400556" in page
    assert "<td>0.5138973</td>" in page  # the probability table
    assert "<td>-0.29912</td>" in page  # weight 2 / 4 * (p - 1) for row 2, class 0
    # the summary is one <pre>, so its "=" signs line up
    summary = page[page.index("<pre>numerator") + 5:].split("</pre>")[0].splitlines()
    assert len({line.index("=") for line in summary[:3]}) == 1


def test_function_object_and_name_agree():
    by_name = explain("cross_entropy", LOGITS_4X3, LABELS_4X3, **OPTIONS_4X3)
    by_object = explain(xr.cross_entropy, LOGITS_4X3, LABELS_4X3, **OPTIONS_4X3)
    assert by_name.value == by_object.value
    with pytest.raises(ValueError, match="fn"):
        explain("softmax", LOGITS_4X3, LABELS_4X3)
    with pytest.raises(ValueError, match="fn"):
        explain(np.mean, LOGITS_4X3, LABELS_4X3)


def test_label_smoothing_rows_add_up():
    logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    labels = np.array([0, 1, 0])
    ex = explain("cross_entropy", logits, labels, weight=[1.0, 2.0], label_smoothing=0.1)
    log_probs = xr.log_softmax(logits, axis=1)
    for row, lp in zip(ex.rows, log_probs):
        assert row.smooth == pytest.approx(-(lp * [1.0, 2.0]).sum(), rel=1e-14)
        # loss_i = (1 - eps) * w * (-log p) + eps / C * smooth, from the library's own rows
        assert row.loss == pytest.approx(
            0.9 * row.weight * row.neg_log_prob + 0.05 * row.smooth, rel=1e-14
        )
    assert ex.denominator == 4.0
    assert "smooth" in str(ex)


def test_sum_none_and_all_ignored():
    summed = explain("cross_entropy", LOGITS_4X3, LABELS_4X3, reduction="sum")
    assert summed.denominator == 1.0
    assert summed.value == pytest.approx(float(summed.result), rel=1e-15)
    none = explain("cross_entropy", LOGITS_4X3, LABELS_4X3, reduction="none")
    assert none.numerator is None and none.value is None
    assert "reduction='none'" in str(none)
    ignored = explain("cross_entropy", LOGITS_4X3, [2, 2, 2, 2], ignore_index=2)
    assert ignored.denominator == 0.0 and np.isnan(ignored.value)
    assert np.isnan(ignored.result)


def test_segmentation_shape():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 2, 2))
    labels = np.array([[[0, 255], [1, 2]], [[2, 2], [255, 0]]])
    ex = explain("cross_entropy", logits, labels, ignore_index=255)
    assert len(ex.rows) == 8 and ex.rows[1].position == (0, 0, 1) and not ex.rows[1].kept
    assert ex.denominator == 6.0
    assert ex.probs.shape == (8, 3)


def test_probability_targets_divide_by_count():
    logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    ex = explain("cross_entropy", logits, np.eye(2)[[0, 1, 0]], weight=[1.0, 2.0])
    assert ex.denominator == 3.0 and ex.rows[0].target is None
    assert ex.value == pytest.approx(float(ex.result), rel=1e-15)


def test_nll_loss_reads_log_probabilities():
    log_probs = xr.log_softmax(np.array(LOGITS_4X3), axis=1)
    ex = explain("nll_loss", log_probs, LABELS_4X3, **OPTIONS_4X3)
    assert round(ex.value, 7) == 1.0400556
    assert "exp(input)" in str(ex)


def test_binary_with_logits_pos_weight():
    ex = explain("binary_cross_entropy_with_logits", [2.0, -1.0, 0.5], [1.0, 0.0, 1.0],
                 pos_weight=[3.0])
    assert [row.pos_weight for row in ex.rows] == [3.0, 3.0, 3.0]
    assert ex.rows[1].prob == pytest.approx(1 - 1 / (1 + np.exp(1.0)), rel=1e-15)
    assert ex.rows[0].loss == pytest.approx(3 * ex.rows[0].neg_log_prob, rel=1e-15)
    assert ex.rows[1].loss == pytest.approx(ex.rows[1].neg_log_prob, rel=1e-15)
    assert ex.denominator == 3.0
    assert ex.value == pytest.approx(float(ex.result), rel=1e-15)


def test_binary_on_probabilities_shows_clamp_and_soft_labels():
    ex = explain("binary_cross_entropy", [0.0, 0.25], [1.0, 0.5], weight=[2.0, 1.0])
    assert ex.rows[0].neg_log_prob == 100.0 and ex.rows[0].loss == 200.0
    assert ex.rows[1].prob is None  # a soft label has no single p(y)
    assert "clamped at -100" in str(ex)


def test_a_disagreeing_library_is_caught(monkeypatch):
    real = xr.cross_entropy

    def off_by_a_bit(*args, reduction="mean", **kwargs):
        value = real(*args, reduction=reduction, **kwargs)
        return value if reduction == "none" else value * (1 + 1e-9)

    monkeypatch.setitem(functions.BY_NAME, "cross_entropy", off_by_a_bit)
    with pytest.raises(AssertionError, match="numerator / denominator"):
        explain("cross_entropy", LOGITS_4X3, LABELS_4X3)


def test_library_errors_pass_through():
    with pytest.raises(ValueError):
        explain("cross_entropy", LOGITS_4X3, [0, 1, 5, 1])


def test_an_empty_batch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^input: an empty batch has no samples to explain"):
        xr.explain("cross_entropy", np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match=r"^input: an empty batch"):
        xr.explain("binary_cross_entropy", np.zeros(0), np.zeros(0))


# ----- the gradient ---------------------------------------------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "torch_golden.json"
GOLDEN_LOSS_CASES = [case for case in json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
                     if case["function"] in LOSSES]


def _decode(value):
    return decode_array(value) if is_encoded_array(value) else value


@pytest.mark.parametrize("case", GOLDEN_LOSS_CASES, ids=[c["id"] for c in GOLDEN_LOSS_CASES])
def test_gradient_equals_the_library_and_torch_on_every_fixture(case):
    """explain's scale * (A p - q) is checked inside explain; here: ex.grad is *_grad's, and
    both are PyTorch's autograd gradient."""
    args = [decode_array(a) for a in case["args"]]
    kwargs = {name: _decode(value) for name, value in case["kwargs"].items()}
    grad_output = decode_array(case["grad_output"])
    grad_fn = getattr(xr, case["function"] + "_grad")
    if np.size(args[1]) == 0 or np.size(args[0]) == 0:
        with pytest.raises(ValueError, match="empty batch"):
            explain(case["function"], *args, grad_output=grad_output, **kwargs)
        return
    ex = explain(case["function"], *args, grad_output=grad_output, **kwargs)
    np.testing.assert_array_equal(ex.grad, grad_fn(*args, **kwargs, grad_output=grad_output))
    assert_matches(ex.grad, decode_array(case["expected"]["grad"]), case["dtype"], case["id"])


def test_gradient_rows_four_by_three(four_by_three):
    g = four_by_three.gradient
    p = xr.softmax(np.array(LOGITS_4X3), axis=1)
    assert (g.rows[0] == 0).all() and g.A[0] == 0 and (g.q[0] == 0).all()  # ignored
    np.testing.assert_allclose(g.rows[2], 2 / 4 * (p[2] - [1, 0, 0]), rtol=1e-15)  # weight 2
    np.testing.assert_allclose(g.rows[1], 1 / 4 * (p[1] - [0, 1, 0]), rtol=1e-15)
    np.testing.assert_allclose(g.rows.sum(axis=1), 0, atol=1e-16)
    assert list(g.scale) == [0.25] * 4 and list(g.A) == [0, 1, 2, 1]
    text = str(four_by_three)
    assert "scale = grad_output / denominator = 1 / 4" in text
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_grad_output_scales_each_row(reduction):
    g = [0.5, -2.0, 3.0, 1.0] if reduction == "none" else 0.5
    ex = explain("cross_entropy", LOGITS_4X3, LABELS_4X3, grad_output=g, reduction=reduction,
                 label_smoothing=0.2, **OPTIONS_4X3)
    expected = xr.cross_entropy_grad(LOGITS_4X3, LABELS_4X3, grad_output=g,
                                     reduction=reduction, label_smoothing=0.2, **OPTIONS_4X3)
    np.testing.assert_array_equal(ex.grad, expected)
    want = {"mean": [0.5 / 4] * 4, "sum": [0.5] * 4, "none": g}[reduction]
    np.testing.assert_allclose(ex.gradient.scale, want, rtol=1e-15)
    # smoothing spreads q = weight * (0.8 * one_hot + 0.2 / 3) over the classes
    assert (ex.gradient.q[0] == 0).all()  # an ignored row has no target mass at all
    np.testing.assert_allclose(ex.gradient.q[2], [2 * (0.8 + 0.2 / 3), 0.2 / 3, 2 * 0.2 / 3])


def test_probability_targets_have_a_breakdown():
    logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    y = np.array([[0.7, 0.3], [0.2, 0.8], [1.0, 0.0]])
    ex = explain("cross_entropy", logits, y, weight=[1.0, 2.0], label_smoothing=0.1)
    log_p = xr.log_softmax(logits, axis=1)
    for row, lp, yi in zip(ex.rows, log_p, y):
        assert row.neg_log_prob == pytest.approx(-(yi * [1.0, 2.0] * lp).sum(), rel=1e-14)
        assert row.loss == pytest.approx(0.9 * row.neg_log_prob + 0.05 * row.smooth, rel=1e-14)
    text = str(ex)
    assert "-sum w y log p" in text
    assert "denominator = number of samples (probability targets) = 3" in text
    np.testing.assert_allclose(ex.gradient.q, [1.0, 2.0] * (0.9 * y + 0.05))


def test_nll_loss_of_a_huge_input_is_quiet():
    """exp(1000) once overflowed with a RuntimeWarning (an error under pytest)."""
    ex = explain("nll_loss", [[1000.0, 0.0]], [0])
    assert ex.rows[0].prob == np.inf and float(ex.result) == -1000.0
    np.testing.assert_array_equal(ex.grad, [[-1.0, 0.0]])


def test_binary_gradients():
    ex = explain("binary_cross_entropy_with_logits", [2.0, -1.0, 0.5], [1.0, 0.0, 1.0],
                 pos_weight=[3.0])
    g = ex.gradient
    sig = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.5])))
    np.testing.assert_allclose(g.p, sig, rtol=1e-15)
    np.testing.assert_allclose(g.rows, [(3 * sig[0] - 3) / 3, sig[1] / 3, (3 * sig[2] - 3) / 3],
                               rtol=1e-14)
    assert "A = weight * (1 + (pos_weight - 1) * y)" in str(ex)
    bce = explain("binary_cross_entropy", [0.0, 0.25], [1.0, 0.5], weight=[2.0, 1.0])
    assert bce.gradient.curvature[0] == np.float32(1e-12)  # PyTorch's floor for p = 0
    assert bce.grad[0] == pytest.approx(2 / 2 * -1 / float(np.float32(1e-12)), rel=1e-15)
    assert "p(1-p)" in str(bce) and "max(p (1 - p), 1e-12)" in str(bce)


def test_a_disagreeing_gradient_is_caught(monkeypatch):
    real = xr.cross_entropy_grad
    monkeypatch.setitem(functions.BY_NAME, "cross_entropy_grad", lambda *a, **k: real(*a, **k) * (1 + 1e-9))
    with pytest.raises(AssertionError, match=r"scale \* \(A p - q\)"):
        explain("cross_entropy", LOGITS_4X3, LABELS_4X3)


def test_wide_classes_are_cut_to_80_columns():
    logits = np.linspace(-1, 1, 20).reshape(2, 10)
    text = str(explain("cross_entropy", logits, [2, 5], label_smoothing=0.1))
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "left out to fit 80 columns" in text


def test_the_readme_excerpt_is_current():
    """docs/learning.md "Explain any call" quotes the end of print(ex): it must be what explain prints."""
    readme = (Path(__file__).parent.parent / "docs" / "learning.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Explain any call"):readme.index("## The textbook")]
    excerpt = section.split("```\n")[2]  # after the python block and the prose: the output
    logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    ex = explain("cross_entropy", logits, np.array([0, 1, 0]), weight=[1.0, 2.0])
    assert excerpt.strip() and excerpt in str(ex) + "\n"
