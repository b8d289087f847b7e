"""explain() for the relatives: kl_div, sigmoid_focal_loss, softmax_focal_loss and
poly1_cross_entropy (xent_ref/teach/explain_family.py). Their tables reproduce the library
(rows, result, gradient, and the formulas' factors), a library that disagrees is caught, the
torch fixtures agree, and the text and HTML read in English and Chinese."""

from __future__ import annotations

import re

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers import family as fh
from tests.helpers.torch_compare import assert_matches
from xent_ref import functions
from xent_ref.golden.jsonio import decode_array, is_encoded_array
from xent_ref.teach import i18n
from xent_ref.teach.explain import LOSSES, explain
from xent_ref.teach.explain_family import FAMILY

RNG = np.random.default_rng(17)
LOGITS = RNG.normal(size=(4, 3)) * 2
LOG_Q = xr.log_softmax(LOGITS, axis=1)
P = RNG.dirichlet(np.ones(3), 4)
P[1, 0] = 0.0  # a zero in the target: 0 log 0 = 0
P /= P.sum(axis=1, keepdims=True)
LABELS = np.array([2, -100, 0, 1])
BINARY_X = np.array([[0.0, 2.0, 100.0], [-3.0, 40.0, -1.5]])
BINARY_Y = np.array([[1.0, 0.0, 1.0], [0.25, 0.0, 1.0]])

CALLS = {
    "kl-batchmean": ("kl_div", LOG_Q, P, {"reduction": "batchmean"}),
    "kl-mean": ("kl_div", LOG_Q, P, {"reduction": "mean"}),
    "kl-log-target-sum": ("kl_div", LOG_Q, np.log(RNG.dirichlet(np.ones(3), 4)),
                          {"reduction": "sum", "log_target": True}),
    "kl-none": ("kl_div", LOG_Q, P, {"reduction": "none"}),
    "sigmoid-default": ("sigmoid_focal_loss", BINARY_X, BINARY_Y, {}),
    "sigmoid-mean-g0.5": ("sigmoid_focal_loss", BINARY_X, BINARY_Y,
                          {"gamma": 0.5, "reduction": "mean"}),
    "sigmoid-no-alpha-sum": ("sigmoid_focal_loss", BINARY_X, BINARY_Y,
                             {"alpha": -1.0, "gamma": 5.0, "reduction": "sum"}),
    "sigmoid-g0": ("sigmoid_focal_loss", BINARY_X, BINARY_Y, {"gamma": 0.0, "reduction": "mean"}),
    "focal-weights-ignored": ("softmax_focal_loss", LOGITS, LABELS,
                              {"weight": [1.0, 2.0, 0.5], "gamma": 2.0}),
    "focal-probs-smoothing": ("softmax_focal_loss", LOGITS, P,
                              {"gamma": 0.5, "label_smoothing": 0.1, "reduction": "sum"}),
    "focal-g0": ("softmax_focal_loss", LOGITS, LABELS, {"gamma": 0.0}),
    "focal-image-none": ("softmax_focal_loss", RNG.normal(size=(2, 3, 2)), [[0, 2], [1, -100]],
                         {"reduction": "none"}),
    "poly-smoothing": ("poly1_cross_entropy", LOGITS, LABELS,
                       {"epsilon": 1.0, "label_smoothing": 0.1}),
    "poly-probs-weights": ("poly1_cross_entropy", LOGITS, P,
                           {"epsilon": -0.5, "weight": [1.0, 2.0, 0.5], "reduction": "sum"}),
    "poly-eps0": ("poly1_cross_entropy", LOGITS, LABELS, {"epsilon": 0.0}),
}


def _explained(key, **extra):
    name, x, t, kwargs = CALLS[key]
    return name, x, t, kwargs, explain(name, x, t, **kwargs, **extra)


def test_the_family_is_explained():
    assert set(FAMILY) <= set(LOSSES)
    assert {CALLS[key][0] for key in CALLS} == set(FAMILY)


@pytest.mark.parametrize("key", list(CALLS))
def test_rows_result_and_gradient_are_the_library_s(key):
    name, x, t, kwargs = CALLS[key]
    reduction = kwargs.get("reduction", "none" if name == "sigmoid_focal_loss" else "mean")
    losses = getattr(xr, name)(x, t, **{**kwargs, "reduction": "none"})
    g = RNG.uniform(0.5, 2.0, losses.shape) if reduction == "none" else 1.5
    ex = explain(name, x, t, grad_output=g, **kwargs)
    np.testing.assert_array_equal([row.loss for row in ex.rows], losses.reshape(-1))
    np.testing.assert_array_equal(ex.result, getattr(xr, name)(x, t, **kwargs))
    np.testing.assert_array_equal(ex.grad, getattr(xr, name + "_grad")(x, t, **kwargs,
                                                                       grad_output=g))
    assert ex.reduction == reduction
    if reduction != "none":
        assert ex.value == pytest.approx(float(ex.result), rel=1e-14)


def test_kl_denominators_and_gradient_factors():
    *_, batch = _explained("kl-batchmean")
    *_, mean = _explained("kl-mean")
    assert batch.denominator == 4.0 and mean.denominator == 12.0  # N, and N * C: the trap
    assert batch.numerator == mean.numerator
    np.testing.assert_array_equal(batch.gradient.p, P.reshape(-1))
    np.testing.assert_allclose(batch.gradient.rows, -P.reshape(-1) / 4, rtol=1e-15)
    assert [n.key for n in mean.notes] == ["note.kl", "note.kl_mean"]
    assert [n.key for n in batch.notes] == ["note.kl"]
    assert batch.rows[3].terms["log_p"] == -np.inf and batch.rows[3].loss == 0.0  # 0 log 0
    name, x, t, kwargs, logs = _explained("kl-log-target-sum")
    np.testing.assert_allclose(logs.gradient.p, np.exp(t).reshape(-1), rtol=1e-15)
    assert "p = exp(target)" in str(logs)


def test_kl_of_a_0d_input_batchmean_is_the_sum():
    ex = explain("kl_div", np.array(-1.2), np.array(0.4), reduction="batchmean")
    assert ex.denominator == 1.0 and len(ex.rows) == 1
    assert float(ex.grad) == -0.4


def test_sigmoid_focal_factors():
    name, x, y, kwargs, ex = _explained("sigmoid-mean-g0.5")
    terms = ex.rows[2].terms  # x = 100, y = 1: the tiny, exact loss
    assert terms["one_minus_p_t"] == pytest.approx(np.exp(-100.0), rel=1e-14)
    assert 0 < ex.rows[2].loss < 1e-40
    assert terms["alpha_t"] == 0.25 and ex.rows[1].terms["alpha_t"] == 0.75
    bce = xr.binary_cross_entropy_with_logits(x, y, reduction="none").reshape(-1)
    np.testing.assert_array_equal([row.terms["bce"] for row in ex.rows], bce)
    # gamma < 1 at p_t = 1: the factor's derivative term is finite (a naive one is nan)
    assert np.isfinite(ex.gradient.terms["factor_term"]).all()
    *_, plain = _explained("sigmoid-g0")  # gamma = 0: BCE with logits, no factor term
    assert not plain.gradient.terms["factor_term"].any()
    assert all(row.terms["focal_factor_t"] == 1.0 for row in plain.rows)
    *_, unweighted = _explained("sigmoid-no-alpha-sum")
    assert all(row.terms["alpha_t"] is None for row in unweighted.rows)
    assert "α_t" not in unweighted._columns()[0]
    assert unweighted.notes[0].key == "note.focal_no_alpha"


def test_softmax_focal_weights_of_p_and_the_target():
    name, x, t, kwargs, ex = _explained("focal-weights-ignored")
    g = ex.gradient
    assert g.q_label == "h" and g.A_label == "H"
    assert ex.denominator == 0.5 + 1.0 + 2.0  # cross-entropy's: the kept targets' weights
    assert not ex.rows[1].kept and not g.q[1].any()
    p_t = xr.softmax(x, axis=1)[[0, 2, 3], [2, 0, 1]]
    np.testing.assert_allclose([ex.rows[i].terms["focal_factor"] for i in (0, 2, 3)],
                               (1 - p_t) ** 2, rtol=1e-12)
    *_, ce_like = _explained("focal-g0")  # gamma = 0: h is the target mass, cross-entropy's
    np.testing.assert_array_equal(ce_like.gradient.q, ce_like.gradient.lines[0][1])


def test_poly1_parts_and_its_target_mass():
    name, x, t, kwargs, ex = _explained("poly-smoothing")
    ce = xr.cross_entropy(x, t, label_smoothing=0.1, reduction="none")
    kept = [row for row in ex.rows if row.kept]
    np.testing.assert_array_equal([row.terms["ce"] for row in kept], ce[LABELS != -100])
    q = ex.gradient.lines[0][1]
    np.testing.assert_allclose(ex.gradient.q, q * (1 + ex.gradient.p), rtol=1e-15)
    # CE's gradient plus epsilon p (sum_c q p - q): the library's, to rounding
    p, scale = ex.gradient.p, 1 / ex.denominator
    poly = p * ((q * p).sum(axis=1, keepdims=True) - q)
    np.testing.assert_allclose(ex.grad, xr.cross_entropy_grad(x, t, label_smoothing=0.1)
                               + scale * poly, rtol=1e-12, atol=1e-15)
    *_, zero = _explained("poly-eps0")
    np.testing.assert_array_equal(zero.gradient.q, zero.gradient.lines[0][1])


@pytest.mark.parametrize("name, wrong, match", [
    ("kl_div_grad", lambda g: g * (1 + 1e-9), r"scale \* \(A p - q\)"),
    ("sigmoid_focal_loss_grad", lambda g: g * (1 + 1e-9), "the gradient's factors"),
    ("softmax_focal_loss_grad", lambda g: g * (1 + 1e-9), r"scale \* \(A p - q\)"),
    ("poly1_cross_entropy_grad", lambda g: g * (1 + 1e-9), r"scale \* \(A p - q\)"),
    ("sigmoid_focal_loss", None, r"alpha_t \(1 - p_t\)\^gamma BCE"),
    ("poly1_cross_entropy", None, r"CE \+ epsilon \* poly"),
])
def test_a_disagreeing_library_is_caught(monkeypatch, name, wrong, match):
    real = functions.BY_NAME[name]
    if wrong is None:  # the per-row losses off by a bit
        def patched(*args, reduction="mean", **kwargs):
            value = real(*args, reduction=reduction, **kwargs)
            return value * (1 + 1e-9) if reduction == "none" else value
    else:
        def patched(*args, **kwargs):
            return wrong(real(*args, **kwargs))
    monkeypatch.setitem(functions.BY_NAME, name, patched)
    base = name.removesuffix("_grad")
    key = {"kl_div": "kl-batchmean", "sigmoid_focal_loss": "sigmoid-default",
           "softmax_focal_loss": "focal-weights-ignored",
           "poly1_cross_entropy": "poly-smoothing"}[base]
    _, x, t, kwargs = CALLS[key]
    kwargs = {**kwargs, "reduction": "none"} if wrong is None else kwargs
    with pytest.raises(AssertionError, match=match):
        explain(base, x, t, **kwargs)


def _decode(value):
    return decode_array(value) if is_encoded_array(value) else value


FIXTURE_CASES = [case for name in FAMILY for case in fh.fixture_cases(name)][::7]


@pytest.mark.parametrize("case", FIXTURE_CASES, ids=[c["id"] for c in FIXTURE_CASES])
def test_torch_fixtures_explained(case):
    """Every seventh float32/float64 family fixture: the explanation (checked inside) holds,
    and its gradient is PyTorch's autograd gradient."""
    args = [decode_array(a) for a in case["args"]]
    kwargs = {name: _decode(value) for name, value in case["kwargs"].items()}
    g = decode_array(case["grad_output"])
    ex = explain(case["function"], *args, grad_output=g, **kwargs)
    expected = decode_array(case["expected"]["grad"])
    if np.isnan(expected).any():  # torch's naive focal derivative at p_t = 1: ours is finite
        assert np.isfinite(ex.grad[np.isnan(expected)]).all()
        ex_grad, expected = ex.grad[~np.isnan(expected)], expected[~np.isnan(expected)]
    else:
        ex_grad = ex.grad
    assert_matches(np.asarray(ex_grad), expected, case["dtype"], case["id"])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("key", ["kl-batchmean", "sigmoid-mean-g0.5", "focal-weights-ignored",
                                 "poly-probs-weights"])
def test_low_precision_input_adds_up(key, dtype):
    from xent_ref._engine.dtypes import dtype_named

    name, x, t, kwargs = CALLS[key]
    low = dtype_named(dtype)
    t = np.asarray(t).astype(low) if np.asarray(t).dtype.kind == "f" else t
    ex = explain(name, np.asarray(x).astype(low), t, **kwargs)
    assert ex.grad.dtype == low and ex.losses.dtype == low


# ----- text and HTML, English and Chinese ---------------------------------------------------

_FORMULA_WORDS = {"log", "lse", "sum", "softmax", "exp", "dz", "dx"}


def _english_words(cells):
    return {word for cell in cells for word in re.findall(r"[A-Za-z]{2,}", cell)
            if word not in _FORMULA_WORDS}


@pytest.mark.parametrize("key", list(CALLS))
def test_text_fits_80_columns_in_both_languages(key):
    *_, ex = _explained(key)
    for lang in ("en", "zh"):
        text = ex.to_text(lang=lang)
        # (the first line is the call, as it was made)
        assert all(i18n.width(line) <= 80 for line in text.splitlines()[1:]), lang
        assert i18n.message("grad.title", lang, scale="").split("=")[0].strip() in text


@pytest.mark.parametrize("key", ["kl-mean", "sigmoid-mean-g0.5", "focal-weights-ignored",
                                 "focal-probs-smoothing", "poly-smoothing"])
def test_chinese_html_has_no_english_header_or_word_cell(key):
    name, x, t, kwargs, english = _explained(key)
    page = explain(name, x, t, lang="zh", **kwargs)._repr_html_()
    headers = re.findall(r"<th[^>]*>(.*?)</th>", page)
    assert headers and not _english_words(headers), _english_words(headers)
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert not _english_words(cells), _english_words(cells)
    english_page = english._repr_html_()
    assert _english_words(re.findall(r"<th[^>]*>(.*?)</th>", english_page))  # it can fail
    number = re.compile(r'<td class="num">(.*?)</td>')
    assert number.findall(page) == number.findall(english_page)
    assert page.count("<table>") == english_page.count("<table>") == 2


@pytest.mark.parametrize("key", list(CALLS))
def test_every_note_and_sentence_is_in_the_catalogue(key):
    *_, ex = _explained(key)
    zh = ex.to_text(lang="zh")
    for note in ex.notes:
        assert note.key in i18n.catalogue("zh")
        assert note.text("en") not in zh
    assert i18n.message("col.loss", "zh") in zh and "loss  " not in zh


def test_chinese_rendering_of_the_sigmoid_focal_loss():
    name, x, t, kwargs = CALLS["sigmoid-mean-g0.5"]
    text = explain(name, x, t, lang="zh", **kwargs).to_text()
    assert "二元交叉熵" in text and "元素个数" in text and "导数" in text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("i  输入"))
    table = lines[start:lines.index("", start)]
    assert len({i18n.width(line) for line in table}) == 1, table  # aligned by display width
    english = explain(name, x, t, **kwargs).to_text()
    digits = re.compile(r"-?\d+\.\d+(?:e[-+]\d+)?")
    assert digits.findall(text.split("\n", 1)[1]) == digits.findall(english.split("\n", 1)[1])
