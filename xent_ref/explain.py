"""Step-by-step breakdowns of a loss: every number that goes into the result.

``explain(fn, input, target, **kwargs)`` takes one of the four losses (by name or
the function itself) with the arguments you would pass to it, and returns an
:class:`Explanation`: one row per sample (the target, the probability the model
gives it, ``-log p``, the weight, kept or ignored, the label-smoothing term and
the sample's loss), then the numerator, the denominator and the result.

Nothing here computes a loss a second time. The per-sample losses are the
library's own ``reduction="none"`` output, the probability table is the
library's ``softmax``/``log_softmax``, and the reduced result is the library's
``reduction="mean"``/``"sum"`` output. The explanation only adds the losses up,
counts the denominator, and checks that ``numerator / denominator`` is the
library's result; if it were not, :func:`explain` raises ``AssertionError``
instead of showing a table that disagrees with the library.

>>> from xent_ref.explain import explain
>>> ex = explain("cross_entropy", [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], [0, 1, 0],
...              weight=[1.0, 2.0])
>>> float(ex.denominator)
4.0
>>> round(float(ex.result), 7)
0.739773
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import xent_ref as xr

__all__ = ["Explanation", "Row", "explain"]

LOSSES = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
)
_WIDTH = 80  # the plain-text table must fit an 80-column terminal
_MAX_ROWS = 20  # str() shows at most this many sample rows


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
    pos_weight: float | None = None  # binary_cross_entropy_with_logits only


@dataclass(frozen=True)
class Explanation:
    """The breakdown returned by :func:`explain`.

    Attributes
    ----------
    function : str
        Name of the loss, e.g. ``"cross_entropy"``.
    options : dict
        The keyword arguments the loss was called with.
    rows : tuple of Row
        One row per target element, in row-major order of the target.
    losses : ndarray
        The library's ``reduction="none"`` output (shape of the target).
    probs : ndarray or None
        Multiclass losses: the probability table, shape ``(samples, C)``, one
        row per :attr:`rows` entry. Binary losses: ``None``.
    numerator : float or None
        Sum of the per-sample losses (``None`` for ``reduction="none"``).
    denominator : float or None
        What the numerator is divided by: 1 for ``"sum"``; for ``"mean"`` the
        sum of the kept targets' class weights (index targets) or the number
        of elements (probability targets, binary losses).
    result : float or ndarray
        The library's own output for the requested reduction.
    """

    function: str
    options: dict
    rows: tuple[Row, ...]
    losses: np.ndarray
    probs: np.ndarray | None
    numerator: float | None
    denominator: float | None
    result: Any
    notes: tuple[str, ...] = field(default=())

    @property
    def reduction(self) -> str:
        return self.options.get("reduction", "mean")

    @property
    def value(self) -> float | None:
        """``numerator / denominator`` (equal to :attr:`result`, checked)."""
        if self.numerator is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.float64(self.numerator) / np.float64(self.denominator))

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask, one entry per row: was the target kept?"""
        return np.array([row.kept for row in self.rows])

    # ----- plain text -------------------------------------------------------
    def to_text(self, max_rows: int | None = _MAX_ROWS) -> str:
        """The aligned plain-text breakdown (at most ``max_rows`` sample rows)."""
        lines = [self._call_text(), ""]
        if self.probs is not None:
            labels = [_position(row.position) for row in self.rows]
            table = _probs_table(self.probs, labels, max_rows)
            if max(len(line) for line in table) <= _WIDTH:
                source = "softmax(input)" if self.function == "cross_entropy" else "exp(input)"
                lines += [f"probabilities p = {source} along the class axis:", *table, ""]
        headers, body = self._columns()
        lines += _format_table(headers, body, max_rows)
        lines += ["", *self.notes, *self._summary()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        value = "none" if self.numerator is None else _num(self.value)
        return f"<Explanation {self.function} ({len(self.rows)} rows) = {value}>"

    # ----- Jupyter ----------------------------------------------------------
    def _repr_html_(self) -> str:
        headers, body = self._columns()
        esc = html.escape
        parts = [f"<p><code>{esc(self._call_text())}</code></p>", "<table>"]
        parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
        for cells in body:
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
        for line in (*self.notes, *self._summary()):
            parts.append(f"<pre>{esc(line)}</pre>")
        return "\n".join(parts)

    # ----- pieces -----------------------------------------------------------
    def _call_text(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.options.items())
        return f"{self.function}(input, target{', ' if args else ''}{args})"

    def _columns(self) -> tuple[list[str], list[list[str]]]:
        binary = self.function.startswith("binary")
        has_smooth = any(row.smooth is not None for row in self.rows)
        has_pw = any(row.pos_weight is not None for row in self.rows)
        has_ignored = not all(row.kept for row in self.rows)
        if binary:
            headers = ["i", "y", "p(y)", "-log p(y)", "weight"]
        else:
            headers = ["i", "target", "p(target)", "-log p", "weight"]
        headers += ["pos_weight"] * has_pw + ["status"] * has_ignored
        headers += ["smooth"] * has_smooth + ["loss"]
        body = []
        for row in self.rows:
            cells = [
                _position(row.position),
                "dist" if row.target is None else _num(row.target),
                _num(row.prob),
                _num(row.neg_log_prob),
                _num(row.weight),
            ]
            cells += [_num(row.pos_weight)] * has_pw
            cells += ["kept" if row.kept else "ignored"] * has_ignored
            cells += [_num(row.smooth)] * has_smooth
            body.append(cells + [_num(row.loss)])
        return headers, body

    def _summary(self) -> list[str]:
        if self.numerator is None:
            return ["reduction='none': the per-sample losses above are the result."]
        if self.reduction == "sum":
            rule = "reduction='sum' does not divide"
        elif self.function.startswith("binary") or self.rows[0].target is None:
            rule = "number of elements"
        else:
            rule = "sum of weight[target] over kept rows"
        return [
            f"numerator   = sum of loss = {_num(self.numerator)}",
            f"denominator = {rule} = {_num(self.denominator)}",
            f"result      = numerator / denominator = {_num(self.value)}",
            f"library     = {self.function}(reduction={self.reduction!r}) = {_num(self.result)}",
        ]


def explain(fn: str | Callable, input: Any, target: Any, **kwargs: Any) -> Explanation:
    """Break a loss call down into per-sample rows, numerator and denominator.

    Parameters
    ----------
    fn : str or callable
        ``"cross_entropy"``, ``"nll_loss"``, ``"binary_cross_entropy"``,
        ``"binary_cross_entropy_with_logits"``, or one of those functions.
    input, target, **kwargs
        Exactly what you would pass to ``fn`` (``weight``, ``ignore_index``,
        ``reduction``, ``label_smoothing``, ``pos_weight``).

    Returns
    -------
    Explanation
        Prints as an aligned table, renders as HTML in Jupyter.

    Raises
    ------
    ValueError, TypeError
        The library's own errors for bad arguments; ``ValueError`` for an empty batch.
    AssertionError
        If ``numerator / denominator`` is not the library's reduced result.

    Examples
    --------
    >>> import xent_ref as xr
    >>> ex = xr.explain("nll_loss", [[-0.5, -1.0], [-2.0, -0.1]], [0, 1], weight=[1.0, 3.0])
    >>> ex.numerator, ex.denominator, round(ex.value, 6)
    (0.8, 4.0, 0.2)
    """
    name = _loss_name(fn)
    loss_fn = getattr(xr, name)
    reduction = kwargs.get("reduction", "mean")
    # The library validates the arguments; its errors surface unchanged.
    result = loss_fn(input, target, **kwargs)
    losses = np.asarray(loss_fn(input, target, **{**kwargs, "reduction": "none"}))
    if losses.size == 0:
        raise ValueError(f"input: an empty batch has no samples to explain ({name} gives "
                         f"{result} for reduction={reduction!r})")
    if name.startswith("binary"):
        rows, probs, denominator = _binary_rows(name, input, target, kwargs, losses)
    else:
        rows, probs, denominator = _multiclass_rows(name, input, target, kwargs, losses)
    numerator = None
    if reduction != "none":
        numerator = float(np.sum(losses, dtype=np.float64))
        denominator = 1.0 if reduction == "sum" else denominator
    explanation = Explanation(
        function=name,
        options=dict(kwargs),
        rows=tuple(rows),
        losses=losses,
        probs=probs,
        numerator=numerator,
        denominator=denominator,
        result=result,
        notes=tuple(_notes(name, kwargs)),
    )
    if numerator is not None:
        _check(explanation)
    return explanation


def _loss_name(fn: str | Callable) -> str:
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", "")
    if name not in LOSSES or (not isinstance(fn, str) and fn is not getattr(xr, name)):
        raise ValueError(f"fn: expected one of {LOSSES} (name or xent_ref function), got {fn!r}")
    return name


def _multiclass_rows(name, input, target, kwargs, losses):
    scores = np.asarray(input)  # logits (cross_entropy) or log-probabilities (nll_loss)
    target = np.asarray(target)
    class_axis = 1 if scores.ndim >= 2 else 0
    num_classes = scores.shape[class_axis]
    if name == "cross_entropy":
        log_probs = np.asarray(xr.log_softmax(scores, axis=class_axis))
    else:
        log_probs = scores.astype(losses.dtype)
    # (N, C, d1..dk) -> (N*d1*..*dk, C): one row per target element, in the
    # same row-major order as target.reshape(-1) and losses.reshape(-1).
    log_probs = np.moveaxis(log_probs, class_axis, -1).reshape(-1, num_classes)
    probs = np.exp(log_probs)
    positions = list(np.ndindex(*losses.shape)) or [()]
    flat_losses = losses.reshape(-1)
    weight = kwargs.get("weight")
    weight = np.ones(num_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(kwargs.get("label_smoothing", 0.0))
    # smooth_i = -sum_c weight[c] * log p[i, c]: what label smoothing spreads out.
    smooth = -(log_probs * weight).sum(axis=1) if eps > 0 else None

    if target.shape == scores.shape and target.dtype.kind == "f":
        rows = [
            Row(pos, None, None, None, None, True, None, float(flat_losses[i]))
            for i, pos in enumerate(positions)
        ]
        return rows, probs, float(len(rows))

    ignore_index = kwargs.get("ignore_index", -100)
    rows, denominator = [], 0.0
    for i, (pos, t) in enumerate(zip(positions, target.reshape(-1).tolist())):
        kept = t != ignore_index
        row_smooth = None if smooth is None else (float(smooth[i]) if kept else 0.0)
        if kept:
            denominator += float(weight[t])
            row = Row(
                pos, t, float(probs[i, t]), float(-log_probs[i, t]), float(weight[t]),
                True, row_smooth, float(flat_losses[i]),
            )
        else:
            row = Row(pos, t, None, None, None, False, row_smooth, float(flat_losses[i]))
        rows.append(row)
    return rows, probs, denominator


def _binary_rows(name, input, target, kwargs, losses):
    loss_fn = getattr(xr, name)
    x = np.asarray(input)
    y = np.asarray(target, dtype=losses.dtype)
    # -log p(y) without weights is the same call with the weights left out.
    plain = np.asarray(loss_fn(x, y, reduction="none")).reshape(-1)
    flat_x = x.reshape(-1)
    weight = kwargs.get("weight")
    weight = np.broadcast_to(1.0 if weight is None else np.asarray(weight), y.shape).reshape(-1)
    pos_weight = kwargs.get("pos_weight")
    if pos_weight is not None:
        pos_weight = np.broadcast_to(np.asarray(pos_weight), y.shape).reshape(-1)
    flat_y = y.reshape(-1)
    rows = []
    for i, pos in enumerate(list(np.ndindex(*y.shape)) or [()]):
        label = float(flat_y[i])
        prob = None  # a soft label has no single "probability of the target"
        if label in (0.0, 1.0) and name == "binary_cross_entropy":
            prob = float(flat_x[i]) if label == 1.0 else 1.0 - float(flat_x[i])
        elif label in (0.0, 1.0):
            # p(y) = exp(-softplus(-x)) or exp(-softplus(x)): the library's softplus,
            # which gives 1 - sigmoid(x) without cancellation.
            prob = float(np.exp(-plain[i]))
        rows.append(
            Row(
                pos, label, prob, float(plain[i]), float(weight[i]), True, None,
                float(losses.reshape(-1)[i]),
                None if pos_weight is None else float(pos_weight[i]),
            )
        )
    return rows, None, float(len(rows))


def _notes(name: str, kwargs: dict) -> list[str]:
    eps = float(kwargs.get("label_smoothing", 0.0))
    if name == "cross_entropy" and eps > 0:
        return [
            f"loss   = (1 - {eps:g}) * weight * (-log p) + ({eps:g} / C) * smooth",
            "smooth = -sum_c weight[c] * log p[c]",
        ]
    if name == "binary_cross_entropy":
        return ["loss = weight * -log p(y); each log is clamped at -100"]
    if name == "binary_cross_entropy_with_logits" and kwargs.get("pos_weight") is not None:
        return ["loss = weight * (pos_weight * y * -log p + (1 - y) * -log(1 - p))"]
    return []


def _check(ex: Explanation) -> None:
    result = np.asarray(ex.result)
    value = ex.value
    # The library may add the terms in another order: allow a few ulps per term.
    tiny = np.finfo(result.dtype).eps if result.dtype.kind == "f" else np.finfo(float).eps
    rtol = 4 * tiny * max(1, len(ex.rows))
    if not np.allclose(value, result.astype(np.float64), rtol=rtol, atol=0.0, equal_nan=True):
        raise AssertionError(
            f"{ex.function}: numerator / denominator = {value!r} but the library "
            f"returns {result!r}"
        )


def _num(value: Any) -> str:
    """A number with 8 significant digits ('-' for a missing one)."""
    if value is None:
        return "-"
    value = np.asarray(value)
    if value.ndim:
        return np.array2string(value, precision=8, separator=", ")
    return f"{float(value) + 0.0:.8g}"  # (+ 0.0 turns -0.0 into 0.0: no "-0" in a table)


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.array2string(np.asarray(value), separator=", ", threshold=8)
    return repr(value)


def _format_table(headers: list[str], body: list[list[str]], max_rows: int | None) -> list[str]:
    shown = body if max_rows is None or len(body) <= max_rows else body[:max_rows]
    widths = [max(len(h), *(len(r[j]) for r in shown)) for j, h in enumerate(headers)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(headers, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in shown]
    if len(shown) < len(body):
        lines.append(f"... {len(body) - len(shown)} more rows (to_text(max_rows=None) shows all)")
    return lines


def _position(position: tuple[int, ...]) -> str:
    return ",".join(map(str, position)) or "0"


def _probs_table(probs: np.ndarray, labels: list[str], max_rows: int | None) -> list[str]:
    headers = ["i"] + [f"p[{c}]" for c in range(probs.shape[1])]
    body = [[label] + [f"{p:.7f}" for p in row] for label, row in zip(labels, probs)]
    return _format_table(headers, body, max_rows)
