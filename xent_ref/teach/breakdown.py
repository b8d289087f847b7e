"""The pieces an explanation is made of: its rows, its gradient, its notes, and the tables
they are shown in (plain text aligned by display width, and HTML).

:mod:`xent_ref.teach.explain` builds them for cross-entropy and its binary and LLM
variants, :mod:`xent_ref.teach.explain_family` for the relatives (KL divergence, the
focal losses, poly-1); both render through the functions here.

>>> format_table(["i", "loss"], [["0", num(0.25)], ["1", num(1 / 3)]], None)
['i        loss', '0        0.25', '1  0.33333333']
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xent_ref.teach.i18n import message, rjust, width

__all__ = ["Gradient", "Note", "Row", "STYLE", "WIDTH", "format_table", "html_table", "num",
           "class_last", "position", "short", "short_num"]

WIDTH = 80  # the plain-text table must fit an 80-column terminal


@dataclass(frozen=True)
class Row:
    """One sample (one target element) of a loss.

    ``None`` marks a column that has no meaning for this row: an ignored row
    has no weight, a probability target has no single "probability of the
    target", a loss without label smoothing has no smoothing term.
    """

    position: tuple[int, ...]  # index of the element in the target array
    target: Any  # class index (int), binary label (float) or None for a distribution
    prob: float | None  # probability the model gives the target
    neg_log_prob: float | None  # -log prob (binary: the unweighted loss)
    weight: float | None  # weight[target] (multiclass) or weight[i] (binary)
    kept: bool  # False when target == ignore_index
    smooth: float | None  # -sum_c weight[c] * log p[c], the label-smoothing term
    loss: float  # the library's reduction="none" value for this element
    pos_weight: float | None = None  # binary_cross_entropy_with_logits, rows with y > 0
    ce: float | None = None  # LLM options with z_loss: the cross-entropy part of ``loss``
    lse: float | None = None  # with z_loss: lse(z) of the row's (scaled, capped) logits
    z_term: float | None = None  # with z_loss: z_loss * lse(z)^2 (0 on an ignored row)
    terms: dict | None = None  # a relative (explain_family): its formula's factors, by column


@dataclass(frozen=True)
class Gradient:
    """d loss / d input, row by row: ``rows[i] = scale[i] * (A[i] * p[i] - q[i])``.

    Every loss here has a gradient of that one shape: "what the model predicts,
    minus what the target asks for", scaled by the reduction. One row per
    :attr:`Explanation.rows` entry; multiclass arrays have a class axis last.

    Attributes
    ----------
    grad : ndarray
        The library's ``*_grad`` output, shaped like the input.
    rows : ndarray
        ``grad`` laid out one row per sample: ``(samples, C)`` or ``(elements,)``.
    p : ndarray
        ``softmax(input)`` (cross_entropy), ``exp(input)`` (nll_loss), the input
        (binary_cross_entropy) or ``sigmoid(input)`` (with logits).
    q : ndarray
        The target distribution: ``weight * ((1 - eps) * one_hot + eps / C)``
        (zero for an ignored row); binary: ``weight * pos_weight * y``.
    A : ndarray
        ``sum_c q[c]`` (multiclass; 0 for nll_loss, whose input is already
        ``log p``); binary: ``weight * (1 + (pos_weight - 1) * y)``.
    scale : ndarray
        ``grad_output / denominator`` (``mean``), ``grad_output`` (``sum``,
        ``none``), one per row.
    curvature : ndarray or None
        binary_cross_entropy only: ``max(p (1 - p), 1e-12)``, which ``A`` and
        ``q`` are divided by (the chain rule through ``log p`` and ``log(1 - p)``).
    slope, pull : ndarray or None
        cross_entropy with LLM options: ``slope = dz/dx`` per class (a ``logit_scale``
        or a ``softcap``) and, with a ``z_loss``, ``pull = z_scale * 2 z_loss lse(z)``
        per row; then ``rows = slope * (scale * (A p - q) + pull * p)``, ``p = softmax(z)``.
    """

    grad: np.ndarray
    rows: np.ndarray
    p: np.ndarray
    q: np.ndarray
    A: np.ndarray
    scale: np.ndarray
    curvature: np.ndarray | None = None
    grad_output: Any = None  # as given to explain (None: 1, or ones for "none")
    slope: np.ndarray | None = None  # LLM options: dz/dx, (samples, C), the chain rule's factor
    pull: np.ndarray | None = None  # z_loss: z_scale * 2 z_loss lse(z) per row, times p
    lines: tuple = ()  # more (label, (samples, C) array) lines of the table, between p and q
    q_label: str = "q"  # what q is called: "h" (softmax focal), "q'" (poly-1)
    A_label: str = "A"
    terms: dict | None = None  # sigmoid focal: the factors of its gradient, one per element


@dataclass(frozen=True)
class Note:
    """A line under the table: a catalogue key and the values it is filled with."""

    key: str
    values: dict = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return message(self.key, lang, **self.values)



# Inline, so a page shows the tables the same offline and in any notebook front end.
STYLE = """<style>
.xent-explain table { border-collapse: collapse; margin: 0.4em 0 1.2em 0; }
.xent-explain th, .xent-explain td { padding: 0.15em 0.7em; border-bottom: 1px solid #ddd; }
.xent-explain th { text-align: right; border-bottom: 2px solid #888; }
.xent-explain td { text-align: left; }
.xent-explain td.num, .xent-explain th.num { text-align: right;
  font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-variant-numeric: tabular-nums; }
.xent-explain pre { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono",
  monospace; background: #f7f7f7; padding: 0.5em; margin: 0.4em 0 1.2em 0; }
</style>"""
NUMBER = re.compile(r"^[-+]?(?:\d[\d.,]*(?:e[-+]?\d+)?|inf|nan|-)$")  # "-": a missing number


def html_table(headers: list[str], body: list[list[str]]) -> str:
    esc = html.escape
    cell = lambda tag, c: (f'<{tag} class="num">' if NUMBER.match(c) else f"<{tag}>") \
        + f"{esc(c)}</{tag}>"  # noqa: E731
    parts = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"]
    parts += ["<tr>" + "".join(cell("td", c) for c in cells) + "</tr>" for cells in body]
    return "\n".join(parts + ["</table>"])


def short_num(value: Any) -> str:
    """A gradient-table number: 6 significant digits, so a row of classes fits."""
    return f"{float(value) + 0.0:.6g}"


def num(value: Any) -> str:
    """A number with 8 significant digits ('-' for a missing one)."""
    if value is None:
        return "-"
    value = np.asarray(value)
    if value.ndim:
        return np.array2string(value, precision=8, separator=", ")
    return f"{float(value) + 0.0:.8g}"  # (+ 0.0 turns -0.0 into 0.0: no "-0" in a table)


def short(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.array2string(np.asarray(value), separator=", ", threshold=8)
    return repr(value)


def format_table(headers: list[str], body: list[list[str]], max_rows: int | None,
                  lang: str = "en") -> list[str]:
    shown = body if max_rows is None or len(body) <= max_rows else body[:max_rows]
    # display columns, not characters: a CJK header or cell takes two per character
    widths = [max(width(h), *(width(r[j]) for r in shown)) for j, h in enumerate(headers)]
    lines = ["  ".join(rjust(c, w) for c, w in zip(headers, widths))]
    lines += ["  ".join(rjust(c, w) for c, w in zip(cells, widths)) for cells in shown]
    if len(shown) < len(body):
        lines.append(message("rows.more", lang, n=len(body) - len(shown)))
    return lines


def class_last(a: np.ndarray, class_axis: int) -> np.ndarray:
    """``(N, C, d1..dk)`` or ``(C,)`` -> ``(samples, C)``, samples in target order."""
    return np.moveaxis(a, class_axis, -1).reshape(-1, a.shape[class_axis])


def position(position: tuple[int, ...]) -> str:
    return ",".join(map(str, position)) or "0"
