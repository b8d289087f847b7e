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
    # numbers are right-aligned cells, words are not
    assert '<td class="num">0.5138973</td>' in page  # the probability table
    assert '<td class="num">-0.29912</td>' in page  # weight 2 / 4 * (p - 1), row 2, class 0
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
    # pos_weight multiplies the y = 1 term only: a y = 0 row shows none ("-")
    assert [row.pos_weight for row in ex.rows] == [3.0, None, 3.0]
    table = [line.split() for line in str(ex).splitlines()
             if line.split()[:1] == ["1"] and len(line.split()) == 7]
    assert table[0][5] == "-", table
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


# ----- the LLM options: the steps shown, and their numbers the library's -------------
LLM_LOGITS = np.array([[12.0, 4.0, 0.0, -5.0, 2.0],
                       [60.0, 15.0, -3.0, 4.0, 0.0],
                       [1.0, -2.0, 0.5, 0.0, 3.0]])
LLM_LABELS = np.array([0, 3, 1])
LLM_CASES = {
    "softcap": {"softcap": 30.0},
    "z_loss": {"z_loss": 1e-2},
    "logit_scale": {"logit_scale": 1.5},
    "all": {"logit_scale": 0.5, "softcap": 20.0, "z_loss": 1e-3},
}


def _by_hand_z(options, x):
    z = x * options.get("logit_scale", 1.0)
    cap = options.get("softcap")
    return z if cap is None else cap * np.tanh(z / cap)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", list(LLM_CASES))
def test_llm_options_steps_equal_the_library(case, reduction, dtype):
    options = {**LLM_CASES[case], "reduction": reduction, "weight": [1.0, 2.0, 1.0, 3.0, 1.0],
               "ignore_index": 1}
    x = LLM_LOGITS.astype(dtype)
    ex = explain("cross_entropy", x, LLM_LABELS, **options)
    assert [row.kept for row in ex.rows] == [True, True, False]
    library = xr.cross_entropy(x, LLM_LABELS, **options)
    np.testing.assert_array_equal(np.asarray(ex.result), library)
    np.testing.assert_array_equal(ex.grad, xr.cross_entropy_grad(x, LLM_LABELS, **options))
    none = xr.cross_entropy(x, LLM_LABELS, **{**options, "reduction": "none"})
    assert [row.loss for row in ex.rows] == none.tolist()
    tol = {"rtol": 1e-12 if dtype == np.float64 else 2e-6, "atol": 0}
    if reduction != "none":
        assert ex.value == pytest.approx(float(library), rel=tol["rtol"] * 10)
    z = _by_hand_z(options, LLM_LOGITS)
    if "softcap" in options or "logit_scale" in options:
        np.testing.assert_allclose(ex.logits, z, **tol)  # the table of scaled, capped logits
    else:
        assert ex.logits is None  # z = x: nothing to show
    lse = np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)) + z.max(axis=1)
    if "z_loss" in options:
        terms = [row.z_term for row in ex.rows]
        np.testing.assert_allclose(terms[:2], options["z_loss"] * lse[:2] ** 2, **tol)
        assert terms[2] == 0.0  # an ignored row has no z-loss
        kept_ce = [row.ce for row in ex.rows[:2]]
        plain = xr.cross_entropy(z, LLM_LABELS, weight=options["weight"], ignore_index=1,
                                 reduction="none")
        np.testing.assert_allclose(kept_ce, plain[:2], **tol)
        if reduction == "mean":  # the CE part over the weights, the z-loss over kept rows
            assert ex.denominator == 1.0 + 3.0 and ex.z_denominator == 2.0
    else:
        assert all(row.z_term is None for row in ex.rows)
    for lang in ("en", "zh"):
        text = ex.to_text(lang=lang)
        # the sentences and the gradient table fit 80 columns (the call and the loss
        # table are as wide as their numbers)
        after = text.splitlines()[text.splitlines().index(ex._summary(lang)[0]) - 1:]
        assert max(i18n.width(line) for line in after) <= 80, text
        assert "<table>" in ex.to_html(lang=lang)


def test_llm_options_text_shows_each_step():
    ex = explain("cross_entropy", LLM_LOGITS, LLM_LABELS, softcap=30.0)
    text = str(ex)
    assert "z = 30 tanh(x / 30), the logits the loss sees" in text
    assert "probabilities p = softmax(z)" in text
    assert "dz/dx = (1 - tanh^2(x / 30))" in text
    # the capped logit of 60 is 30 tanh(2)
    assert f"{30 * np.tanh(2.0):.7f}" in text
    both = explain("cross_entropy", LLM_LOGITS, LLM_LABELS, logit_scale=2.0, softcap=30.0)
    assert "z = 30 tanh(2 x / 30)" in str(both) and "dz/dx = 2 (1 - tanh^2(2 x / 30))" in str(both)
    zl = explain("cross_entropy", LLM_LOGITS, LLM_LABELS, z_loss=0.01, ignore_index=1)
    text = zl.to_text()
    assert "z-loss part = " in text and "/ 2 kept rows" in text
    assert "pull = z_scale * 2 * 0.01 * lse(z), z_scale = 1 / 2" in text
    zh = zl.to_text(lang="zh")
    assert "z 损失部分" in zh and "保留的 2 行" in zh
    page = zl.to_html(lang="zh")
    assert "<th>z 损失</th>" in page and "<th>lse(z)</th>" in page


def test_llm_options_with_probability_targets():
    targets = xr.softmax(np.array([[0.0, 1.0, 2.0, 0.0, 0.0]] * 3), axis=1)
    ex = explain("cross_entropy", LLM_LOGITS, targets, z_loss=0.1, softcap=10.0)
    assert ex.denominator == ex.z_denominator == 3.0
    assert float(ex.result) == pytest.approx(ex.value, rel=1e-13)


def test_llm_options_on_nll_loss_are_the_library_s_error():
    with pytest.raises(TypeError):
        explain("nll_loss", np.log(xr.softmax(LLM_LOGITS, axis=1)), LLM_LABELS, softcap=30.0)


# ----- languages: headers, words in cells, CJK alignment --------------------------
import re  # noqa: E402

from xent_ref.teach import i18n  # noqa: E402

# formulas and symbols, the same in every language
_FORMULA_WORDS = {"log", "lse", "sum", "softmax", "exp", "dz", "dx"}


def _english_words(cells):
    return {word for cell in cells for word in re.findall(r"[A-Za-z]{2,}", cell)
            if word not in _FORMULA_WORDS}


@pytest.mark.parametrize("call", [
    ("cross_entropy", LOGITS_4X3, LABELS_4X3, OPTIONS_4X3),
    ("cross_entropy", LOGITS_4X3, LABELS_4X3, {"label_smoothing": 0.1}),
    ("cross_entropy", LLM_LOGITS, LLM_LABELS, {"softcap": 30.0, "z_loss": 0.01, "ignore_index": 1}),
    ("nll_loss", np.log(xr.softmax(np.array(LOGITS_4X3), axis=1)), LABELS_4X3, {}),
    ("binary_cross_entropy", [0.2, 0.7], [1.0, 0.0], {"weight": [2.0, 1.0]}),
    ("binary_cross_entropy_with_logits", [2.0, -1.0], [1.0, 0.0], {"pos_weight": [3.0]}),
], ids=["weights", "smoothing", "llm", "nll", "bce", "bce-logits"])
def test_chinese_html_has_no_english_header_or_word_cell(call):
    name, x, t, options = call
    page = explain(name, x, t, lang="zh", **options)._repr_html_()
    headers = re.findall(r"<th[^>]*>(.*?)</th>", page)
    assert headers and not _english_words(headers), _english_words(headers)
    cells = re.findall(r"<td>(.*?)</td>", page)  # the word cells (numbers have class="num")
    assert not _english_words(cells), _english_words(cells)
    english = explain(name, x, t, **options)._repr_html_()
    assert _english_words(re.findall(r"<th[^>]*>(.*?)</th>", english))  # the test can fail
    # the numbers are the same
    number = re.compile(r'<td class="num">(.*?)</td>')
    assert number.findall(page) == number.findall(english)


def test_chinese_text_tables_translate_status_and_align_by_display_width():
    ex = explain("cross_entropy", LOGITS_4X3, LABELS_4X3, **OPTIONS_4X3)
    text = ex.to_text(lang="zh")
    assert "ignored" not in text and "kept" not in text and "忽略" in text and "保留" in text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("i  目标"))
    table = lines[start:lines.index("", start)]
    # right-aligned columns: every line of the table ends at the same display column
    assert len({i18n.width(line) for line in table}) == 1, table
    assert len({len(line) for line in table}) > 1  # (counted in characters they differ)


def test_html_is_styled_without_external_resources():
    page = explain("cross_entropy", LOGITS_4X3, LABELS_4X3, **OPTIONS_4X3).to_html()
    assert "<style>" in page and "text-align: right" in page and "monospace" in page
    assert "http" not in page and "<link" not in page and "<script" not in page
    assert page.count('class="num"') > 30


def test_explain_rejects_an_unknown_language():
    with pytest.raises(ValueError, match="lang"):
        explain("cross_entropy", LOGITS_4X3, LABELS_4X3, lang="xx")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_llm_options_on_4d_low_precision_input(dtype):
    """(N, C, d) input, an ignored position, smoothing and weights with every option; the
    low-precision library computes wide, and the breakdown still adds up to it."""
    from xent_ref._engine.dtypes import dtype_named

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2, 4, 3)) * 5).astype(dtype_named(dtype))
    t = rng.integers(0, 4, size=(2, 3))
    t[0, 0] = -100
    options = {"logit_scale": 2.0, "softcap": 4.0, "z_loss": 0.01, "label_smoothing": 0.1,
               "weight": [1.0, 2.0, 3.0, 4.0]}
    ex = explain("cross_entropy", x, t, **options)
    assert len(ex.rows) == 6 and ex.rows[0].z_term == 0.0 and not ex.rows[0].kept
    np.testing.assert_array_equal(ex.grad, xr.cross_entropy_grad(x, t, **options))
    assert ex.logits.shape == (6, 4)
