r"""The rows and gradient tables of :func:`xent_ref.teach.explain.explain` for the relatives of
cross-entropy: ``kl_div``, ``sigmoid_focal_loss``, ``softmax_focal_loss``, ``poly1_cross_entropy``.

The principle is explain's: nothing computes a loss a second time. The rows are the library's
``reduction="none"`` output, the result its reduced output, the gradient its ``*_grad``; beside
them stand the factors of each formula (derived in :mod:`xent_ref.kl`, :mod:`xent_ref.focal`
and :mod:`xent_ref.poly`), and :func:`check` verifies that they reproduce the library
(``AssertionError`` otherwise):

* ``kl_div``: one row per element, ``loss = p (log p - input)`` (``0 log 0 = 0``);
  ``grad = scale * (-p)``, ``p`` the target (``exp(target)`` with ``log_target=True``): only the
  cross term depends on the input. ``mean`` divides by every element, ``batchmean`` by
  ``input.shape[0]``.
* ``sigmoid_focal_loss``: one row per element, ``loss = alpha_t (1 - p_t)^gamma BCE`` (checked
  row by row); ``grad = scale * alpha_t (1 - p_t)^gamma * (sigmoid(x) - y + gamma (1 - 2y) r BCE)``
  with ``r = sigmoid(x) sigmoid(-x) / (1 - p_t)``: the BCE slope times the modulating factor,
  plus the factor's own derivative.
* ``softmax_focal_loss``: one row per sample; ``grad = scale * (H p - h)``, cross-entropy's shape
  with ``h = q (1 - p)^gamma (1 + gamma p (-log p) / (1 - p))`` for the target mass ``q`` and
  ``H = sum_c h[c]``.
* ``poly1_cross_entropy``: one row per sample, its CE part and its poly term
  ``sum_c q (1 - p)`` (``CE + epsilon * poly`` checked row by row); ``grad = scale * (A' p - q')``
  with ``q' = q (1 + epsilon p)``: cross-entropy's gradient plus ``epsilon p (sum_c q p - q)``,
  for a one-hot target ``epsilon p_t (p - one_hot)``.

The target mass ``q`` and the ``mean`` denominator of the two softmax relatives are
:func:`xent_ref.target_mass.target_mass`'s, the ones the library uses.

>>> import numpy as np
>>> from xent_ref.teach.explain import explain
>>> ex = explain("kl_div", np.log([[0.5, 0.5]]), [[0.9, 0.1]], reduction="batchmean")
>>> ex.denominator, round(float(ex.result), 7)
(1.0, 0.3680642)
>>> ex.gradient.rows                    # -p / 1: the target, whatever the input
array([-0.9, -0.1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref import functions as lib
from xent_ref._engine.lowprec import finfo
from xent_ref.target_mass import one_minus_probs, target_mass
from xent_ref.teach.breakdown import (WIDTH, Gradient, Note, Row, class_last, num, position,
                                      short_num)
from xent_ref.teach.i18n import message, wrap

__all__ = ["FAMILY", "Parts", "check", "columns", "gradient_columns", "gradient_intro",
           "parts", "rule"]

FAMILY = ("kl_div", "sigmoid_focal_loss", "softmax_focal_loss", "poly1_cross_entropy")

# The row table's columns, by catalogue key (``col.KEY``); a column empty in every row is left out.
_ROWS = {
    "kl_div": ("p", "log_p", "input"),
    "sigmoid_focal_loss": ("input", "y", "one_minus_p_t", "focal_factor_t", "alpha_t", "bce"),
    "softmax_focal_loss": ("target", "p_target", "focal_factor", "neg_log_p", "weight", "status"),
    "poly1_cross_entropy": ("target", "p_target", "weight", "status", "ce", "poly_term"),
}
_ROW_FIELDS = {"target": "target", "y": "target", "p_target": "prob",
               "neg_log_p": "neg_log_prob", "weight": "weight"}


@dataclass(frozen=True)
class Parts:
    """What :func:`parts` finds for one call: the rows, the ``mean`` denominator, the
    gradient (its ``scale`` filled in by explain) and the notes under the table."""

    rows: list[Row]
    denominator: float
    gradient: Gradient
    notes: list[Note]


def parts(name: str, input, target, kwargs: dict, losses: np.ndarray, grad: np.ndarray) -> Parts:
    """The rows and the gradient's factors of the library's ``losses`` and ``grad``."""
    return {"kl_div": _kl, "sigmoid_focal_loss": _sigmoid_focal,
            "softmax_focal_loss": _softmax_focal,
            "poly1_cross_entropy": _poly1}[name](input, target, kwargs, losses, grad)


def _positions(losses: np.ndarray) -> list[tuple[int, ...]]:
    return list(np.ndindex(*losses.shape)) or [()]


def _floats(terms: dict) -> dict:
    """A row's factors as Python floats (``None``: no such factor in this row)."""
    return {key: None if value is None else float(value) for key, value in terms.items()}


def _wide(a) -> np.ndarray:
    """An argument as float64 (exactly: float16 and bfloat16 widen without rounding)."""
    return np.asarray(a).astype(np.float64)


# ----- kl_div ---------------------------------------------------------------------------------


def _kl(input, target, kwargs, losses, grad) -> Parts:
    x, t = _wide(input), _wide(target)
    log_target = bool(kwargs.get("log_target", False))
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = -inf: the 0 log 0 = 0 rows
        p, log_p = (np.exp(t), t) if log_target else (t, np.log(t))
    flat = losses.reshape(-1)
    rows = [Row(pos, None, None, None, None, True, None, float(flat[i]),
                terms=_floats({"p": p.flat[i], "log_p": log_p.flat[i], "input": x.flat[i]}))
            for i, pos in enumerate(_positions(losses))]
    reduction = kwargs.get("reduction", "mean")
    batch = reduction == "batchmean" and x.ndim  # (a 0-d batchmean is the sum, as in PyTorch)
    denominator = float(x.shape[0]) if batch else float(x.size if reduction != "batchmean" else 1)
    p = p.reshape(-1)
    # -p is "A p - q" with A = 0 and q = p: nll_loss's shape, the input being log q already
    gradient = Gradient(grad, grad.reshape(-1), p, p, np.zeros(p.size), scale=None)
    notes = [Note("note.kl")] + [Note("note.kl_mean")] * (reduction == "mean")
    return Parts(rows, denominator, gradient, notes)


# ----- sigmoid_focal_loss ---------------------------------------------------------------------


def _sigmoid_focal(input, target, kwargs, losses, grad) -> Parts:
    x, y = _wide(input), _wide(target)
    alpha, gamma = float(kwargs.get("alpha", 0.25)), float(kwargs.get("gamma", 2.0))

    def bce(label):  # the library's BCE with logits, per element
        return _wide(lib.binary_cross_entropy_with_logits(x, label, reduction="none"))

    ce = bce(y)
    # sigmoid(x) = exp(-softplus(-x)) and sigmoid(-x) = exp(-softplus(x)): the library's BCE at
    # y = 1 and y = 0; so 1 - p_t = y sigmoid(-x) + (1 - y) sigmoid(x) needs no subtraction
    sigma_x, sigma_neg_x = np.exp(-bce(np.ones_like(x))), np.exp(-bce(np.zeros_like(x)))
    one_minus_p_t = y * sigma_neg_x + (1 - y) * sigma_x
    factor = one_minus_p_t**gamma
    alpha_t = None if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
    weight = factor if alpha_t is None else alpha_t * factor
    slope = _wide(lib.binary_cross_entropy_with_logits_grad(x, y, reduction="none"))
    hard = (y == 0) | (y == 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # (0/0 only where `hard` replaces it)
        r = np.where(hard, y * sigma_x + (1 - y) * sigma_neg_x,
                     sigma_x * sigma_neg_x / one_minus_p_t)
    factor_term = gamma * (1 - 2 * y) * r * ce  # the derivative of (1 - p_t)^gamma, over it
    flat = losses.reshape(-1)
    rows = []
    for i, pos in enumerate(_positions(losses)):
        terms = {"input": x.flat[i], "one_minus_p_t": one_minus_p_t.flat[i],
                 "focal_factor_t": factor.flat[i], "bce": ce.flat[i],
                 "alpha_t": None if alpha_t is None else alpha_t.flat[i]}
        rows.append(Row(pos, float(y.flat[i]), None, None, None, True, None, float(flat[i]),
                        terms=_floats(terms)))
    gradient = Gradient(grad, grad.reshape(-1), sigma_x.reshape(-1), y.reshape(-1),
                        weight.reshape(-1), scale=None,
                        terms={"focal_weight": weight.reshape(-1), "bce_slope": slope.reshape(-1),
                               "factor_term": factor_term.reshape(-1)})
    key = "note.focal_no_alpha" if alpha_t is None else "note.focal_sigmoid"
    return Parts(rows, float(x.size), gradient,
                 [Note(key, {"gamma": f"{gamma:g}", "alpha": f"{alpha:g}"})])


# ----- softmax_focal_loss and poly1_cross_entropy ---------------------------------------------


def _mass(input, target, kwargs):
    """``(target mass, p, log p)``, rows ``(samples, C)``, from the library's ``target_mass``."""
    target = np.asarray(target)
    widen = lambda a: None if a is None else _wide(a)  # noqa: E731
    tm = target_mass(_wide(input), _wide(target) if target.dtype.kind not in "iub" else target,
                     widen(kwargs.get("weight")), kwargs.get("ignore_index", -100),
                     kwargs.get("reduction", "mean"), kwargs.get("label_smoothing", 0.0))
    p = np.asarray(lib.softmax(tm.logits, axis=1))
    return tm, p, np.asarray(lib.log_softmax(tm.logits, axis=1))


def _class_rows(tm, target, p, log_p, losses, kwargs, terms: dict) -> list[Row]:
    """One row per sample: the target's class, its probability, weight and the ``terms``
    (``(samples, C)`` arrays read at the target, or ``(samples,)`` ones)."""
    target, flat = np.asarray(target), losses.reshape(-1)
    weight = kwargs.get("weight")
    weight = np.ones(p.shape[1]) if weight is None else _wide(weight)
    distribution = target.shape == tuple(tm.input_shape)  # probabilities, no target class
    rows = []
    for i, pos in enumerate(_positions(losses)):
        if distribution:
            row_terms = {k: v[i] for k, v in terms.items() if v.ndim == 1}
            rows.append(Row(pos, None, None, None, None, True, None, float(flat[i]),
                            terms=_floats(row_terms)))
            continue
        t, kept = int(target.reshape(-1)[i]), bool(tm.kept[i])
        row_terms = {k: (v[i] if v.ndim == 1 else v[i, t]) if kept else None
                     for k, v in terms.items()}
        rows.append(Row(pos, t, float(p[i, t]) if kept else None,
                        float(-log_p[i, t]) if kept else None,
                        float(weight[t]) if kept else None, kept, None, float(flat[i]),
                        terms=_floats(row_terms)))
    return rows


def _softmax_focal(input, target, kwargs, losses, grad) -> Parts:
    gamma = float(kwargs.get("gamma", 2.0))
    tm, p, log_p = _mass(input, target, kwargs)
    u = one_minus_probs(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        # p (-log p) / (1 - p), with its limit 1 at p = 1 and 0 where p underflows to 0
        ratio = np.where(u > 0, p * -log_p / u, 1.0)
        ratio = np.where(p > 0, ratio, 0.0)
    factor = u**gamma
    h = tm.q * factor * (1 + gamma * ratio)
    rows = _class_rows(tm, target, p, log_p, losses, kwargs, {"focal_factor": factor})
    gradient = Gradient(grad, class_last(grad, 1 if grad.ndim >= 2 else 0), p, h, h.sum(axis=1),
                        scale=None, lines=(("q", tm.q), ("(1-p)^γ", factor)), q_label="h",
                        A_label="H")
    return Parts(rows, float(tm.denominator), gradient,
                 [Note("note.focal_softmax", {"gamma": f"{gamma:g}"})])


def _poly1(input, target, kwargs, losses, grad) -> Parts:
    epsilon = float(kwargs.get("epsilon", 1.0))
    tm, p, log_p = _mass(input, target, kwargs)
    options = {k: v for k, v in kwargs.items() if k not in ("epsilon", "reduction")}
    ce = _wide(lib.cross_entropy(input, target, **options, reduction="none")).reshape(-1)
    poly = (tm.q * one_minus_probs(p)).sum(axis=1)
    rows = _class_rows(tm, target, p, log_p, losses, kwargs, {"ce": ce, "poly_term": poly})
    q_poly = tm.q * (1 + epsilon * p)  # poly-1 is cross-entropy with this target mass
    gradient = Gradient(grad, class_last(grad, 1 if grad.ndim >= 2 else 0), p, q_poly,
                        q_poly.sum(axis=1), scale=None, lines=(("q", tm.q),), q_label="q'",
                        A_label="A'")
    return Parts(rows, float(tm.denominator), gradient,
                 [Note("note.poly", {"eps": f"{epsilon:g}"})])


# ----- rendering (explain's Explanation calls these for the relatives) -------------------------


def rule(ex) -> str:
    """The catalogue key of what ``mean`` divides by."""
    if ex.function == "kl_div":
        return "rule.batch" if ex.reduction == "batchmean" else "rule.elements"
    if ex.function == "sigmoid_focal_loss":
        return "rule.elements"
    return "rule.samples" if ex.rows[0].target is None else "rule.weights"


def _cell(row: Row, key: str, lang: str):
    if key == "status":
        return message("col.kept" if row.kept else "col.ignored", lang)
    if key == "target" and row.target is None:
        return message("col.dist", lang)
    if key in _ROW_FIELDS:
        value = getattr(row, _ROW_FIELDS[key])
        return None if value is None else num(value)
    value = row.terms.get(key)  # a factor: 6 digits, so that a row of them fits 80 columns
    return None if value is None else short_num(value)


def columns(ex, lang: str) -> tuple[list[str], list[list[str]]]:
    """The row table: the formula's factors, then the library's loss."""
    keys = [key for key in _ROWS[ex.function]
            if (key != "status" or not all(row.kept for row in ex.rows))
            and any(_cell(row, key, lang) is not None for row in ex.rows)]
    headers = [message("col.i", lang)] + [message("col." + key, lang) for key in keys]
    body = [[position(row.position)] + [_cell(row, key, lang) or "-" for key in keys]
            + [num(row.loss)] for row in ex.rows]
    return headers + [message("col.loss", lang)], body


def gradient_intro(ex, lang: str) -> list[str]:
    """The gradient's formula (the same in every language) and what it says."""
    options = ex.options
    if ex.function == "kl_div":
        p = "exp(target)" if options.get("log_target") else "target"
        return [f"grad = scale * (-p), p = {p}", *_said("grad.kl", lang)]
    if ex.function == "sigmoid_focal_loss":
        return ["grad = scale * alpha_t (1 - p_t)^gamma * (BCE' + gamma (1 - 2y) r BCE),",
                "BCE' = sigmoid(x) - y, r = sigmoid(x) sigmoid(-x) / (1 - p_t)",
                *_said("grad.focal_sigmoid", lang)]
    if ex.function == "softmax_focal_loss":
        gamma = f"{float(options.get('gamma', 2.0)):g}"
        return ["grad = scale * (H p - h), p = softmax(input), H = sum_c h[c],",
                f"h = q (1 - p)^{gamma} (1 + {gamma} p (-log p) / (1 - p)):",
                *_said("grad.focal_softmax", lang)]
    eps = f"{float(options.get('epsilon', 1.0)):g}"
    return ["grad = scale * (A' p - q'), p = softmax(input), A' = sum_c q'[c],",
            f"q' = q (1 + {eps} p):", *_said("grad.poly", lang, eps=eps)]


def _said(key: str, lang: str, **values) -> list[str]:
    """A catalogue sentence, wrapped to the width of the plain-text tables."""
    return wrap(message(key, lang, **values), WIDTH)


def gradient_columns(ex, max_rows: int | None, lang: str) -> tuple[list[str], list[list[str]]]:
    """The element-wise gradient tables (kl_div, sigmoid_focal_loss), one line per element."""
    g = ex.gradient
    col = lambda key: message("col." + key, lang)  # noqa: E731
    labels = [position(row.position) for row in ex.rows][:max_rows]
    if ex.function == "kl_div":
        headers, cols = [col("i"), "p", col("scale"), col("grad")], [g.p, g.scale, g.rows]
    else:
        names = ("focal_weight", "bce_slope", "factor_term")
        headers = [col("i"), "y", *map(col, names), col("scale"), col("grad")]
        cols = [g.q, *(g.terms[n] for n in names), g.scale, g.rows]
    return headers, [[label, *map(short_num, cells)] for label, *cells in zip(labels, *cols)]


# ----- checks -----------------------------------------------------------------------------------


def check(ex) -> None:
    """The parts against the library: poly-1's ``CE + epsilon * poly`` and the sigmoid focal
    loss's ``alpha_t (1 - p_t)^gamma BCE`` against each row's loss, and the sigmoid focal
    gradient's factors against the library's gradient (``AssertionError`` if not)."""
    info = finfo(ex.losses.dtype)
    if ex.function == "poly1_cross_entropy":
        eps = float(ex.options.get("epsilon", 1.0))
        parts = [(row.terms["ce"], eps * row.terms["poly_term"], row.loss)
                 for row in ex.rows if row.terms["ce"] is not None]
        _agree(ex.function, "CE + epsilon * poly", [a + b for a, b, _ in parts],
               [c for _, _, c in parts], [abs(a) + abs(b) for a, b, _ in parts], info)
    if ex.function == "sigmoid_focal_loss":
        t = [row.terms for row in ex.rows]
        product = [(1.0 if r["alpha_t"] is None else r["alpha_t"]) * r["focal_factor_t"]
                   * r["bce"] for r in t]
        _agree(ex.function, "alpha_t (1 - p_t)^gamma BCE", product,
               [row.loss for row in ex.rows], np.abs(product), info)
        g = ex.gradient
        bracket = g.terms["bce_slope"] + g.terms["factor_term"]
        size = np.abs(g.scale * g.terms["focal_weight"]) * (np.abs(g.terms["bce_slope"])
                                                              + np.abs(g.terms["factor_term"]))
        _agree(ex.function, "the gradient's factors", g.scale * g.terms["focal_weight"] * bracket,
               g.rows, size, finfo(g.grad.dtype))


def _agree(function: str, what: str, expected, library, size, info) -> None:
    """``expected`` is ``library`` to a few ulps of the terms it is made of (``size``)."""
    expected, library = np.asarray(expected, np.float64), np.asarray(library, np.float64)
    atol = 16 * float(info.eps) * np.asarray(size, np.float64) + 16 * float(info.smallest_subnormal)
    same = np.isclose(expected, library, rtol=16 * float(info.eps), atol=0.0, equal_nan=True)
    same |= np.abs(expected - library) <= atol
    if not same.all():
        i = int(np.argwhere(~same.reshape(-1))[0, 0])
        raise AssertionError(f"{function}: {what} = {expected.reshape(-1)[i]!r} at {i} but the "
                             f"library gives {library.reshape(-1)[i]!r}")
