"""The explain API: rows, numerator and denominator come from the library's own calls."""

from __future__ import annotations

import numpy as np
import pytest

import xent_ref as xr
from xent_ref.explain import Explanation, explain

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
    rows = [line.split() for line in lines if line[:1] in "0123" and len(line.split()) == 7]
    assert [r[0] for r in rows] == ["0", "1", "2", "3"]
    assert rows[0][5] == "ignored" and rows[0][4] == "-"
    assert [r[4] for r in rows[1:]] == ["1", "2", "1"]
    assert "denominator = sum of weight[target] over kept rows = 4" in text
    assert "result      = numerator / denominator = 1.0400556" in text


def test_html_has_the_table(four_by_three):
    page = four_by_three._repr_html_()
    assert page.count("<tr>") == 5  # header + 4 rows
    assert "<td>ignored</td>" in page and "1.0400556" in page


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

    monkeypatch.setattr(xr, "cross_entropy", off_by_a_bit)
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
