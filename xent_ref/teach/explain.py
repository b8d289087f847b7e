"""Step-by-step breakdowns of a loss: every number that goes into the result.

``explain(fn, input, target, **kwargs)`` takes one of the four losses (by name or
the function itself) with the arguments you would pass to it, and returns an
:class:`Explanation`: one row per sample (the target, the probability the model
gives it, ``-log p``, the weight, kept or ignored, the label-smoothing term and
the sample's loss), then the numerator, the denominator and the result, and
the gradient: for every row the model's probabilities ``p``, the target
distribution ``q`` (one-hot, smoothed, weighted), their total ``A`` and the
``scale`` (``grad_output`` over the denominator), with
``grad = scale * (A p - q)``.

Nothing here computes a loss a second time. The per-sample losses are the
library's own ``reduction="none"`` output, the probability table is the
library's ``softmax``/``log_softmax``, and the reduced result is the library's
``reduction="mean"``/``"sum"`` output, the gradient is the library's ``*_grad``
output. The explanation only adds the losses up, counts the denominator, and
checks that ``numerator / denominator`` is the library's result and that
``scale * (A p - q)`` is the library's gradient; if either were not,
:func:`explain` raises ``AssertionError`` instead of showing a table that
disagrees with the library. (``q`` is :func:`xent_ref.textbook.target_distribution`,
the one place the target distribution is written down.)

>>> from xent_ref.teach.explain import explain
>>> ex = explain("cross_entropy", [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], [0, 1, 0],
...              weight=[1.0, 2.0])
>>> float(ex.denominator)
4.0
>>> round(float(ex.result), 7)
0.739773
>>> ex.grad[1].round(6)        # weight 2 doubles the row; / 4, the summed weights
array([ 0.322828, -0.322828])
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from xent_ref import functions as lib
from xent_ref._engine.lowprec import finfo
from xent_ref.teach.i18n import ljust, message, width
from xent_ref.binary import GRAD_EPSILON
from xent_ref.textbook import target_distribution

__all__ = ["Explanation", "Gradient", "Note", "Row", "explain"]

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
    """

    grad: np.ndarray
    rows: np.ndarray
    p: np.ndarray
    q: np.ndarray
    A: np.ndarray
    scale: np.ndarray
    curvature: np.ndarray | None = None
    grad_output: Any = None  # as given to explain (None: 1, or ones for "none")


@dataclass(frozen=True)
class Note:
    """A line under the table: a catalogue key and the values it is filled with."""

    key: str
    values: dict = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return message(self.key, lang, **self.values)


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
        of samples (probability targets) or of elements (binary losses).
    result : float or ndarray
        The library's own output for the requested reduction.
    gradient : Gradient
        The gradient with respect to the input, row by row (:attr:`grad` is
        the library's ``*_grad`` output).
    """

    function: str
    options: dict
    rows: tuple[Row, ...]
    losses: np.ndarray
    probs: np.ndarray | None
    numerator: float | None
    denominator: float | None
    result: Any
    notes: tuple[Note, ...] = field(default=())
    gradient: Gradient | None = None

    @property
    def grad(self) -> np.ndarray:
        """The library's gradient with respect to the input (shape of the input)."""
        return self.gradient.grad

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
    def to_text(self, max_rows: int | None = _MAX_ROWS, lang: str = "en") -> str:
        """The aligned plain-text breakdown (at most ``max_rows`` sample rows).

        ``lang="zh"`` writes the sentences in Chinese; tables and numbers are the same.
        """
        lines = [self._call_text(), ""]
        if self.probs is not None:
            table = _format_table(*self._probs_columns(), max_rows, lang)
            if max(len(line) for line in table) <= _WIDTH:
                lines += [self._probs_title(lang), *table, ""]
        lines += _format_table(*self._columns(), max_rows, lang)
        lines += ["", *self._notes_text(lang), *self._summary(lang)]
        if self.gradient is not None:
            lines += ["", *self._gradient_intro(lang), *self._gradient_text(max_rows, lang)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        value = "none" if self.numerator is None else _num(self.value)
        return f"<Explanation {self.function} ({len(self.rows)} rows) = {value}>"

    # ----- Jupyter ----------------------------------------------------------
    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<p><code>{esc(self._call_text())}</code></p>"]
        if self.probs is not None:
            parts += [f"<p>{esc(self._probs_title())}</p>", _html_table(*self._probs_columns())]
        parts.append(_html_table(*self._columns()))
        # one <pre> block, so the "=" of the summary lines stay aligned
        parts.append(f"<pre>{esc(chr(10).join((*self._notes_text(), *self._summary())))}</pre>")
        if self.gradient is not None:
            parts.append(f"<pre>{esc(chr(10).join(self._gradient_intro()))}</pre>")
            parts.append(_html_table(*self._gradient_columns()))
        return "\n".join(parts)

    # ----- pieces -----------------------------------------------------------
    def _call_text(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.options.items())
        return f"{self.function}(input, target{', ' if args else ''}{args})"

    @property
    def _distribution(self) -> bool:
        """Multiclass with a probability target (no single target class per row)."""
        return not self.function.startswith("binary") and self.rows[0].target is None

    def _probs_title(self, lang: str = "en") -> str:
        source = "softmax(input)" if self.function == "cross_entropy" else "exp(input)"
        return message("probs.title", lang, source=source)

    def _notes_text(self, lang: str = "en") -> list[str]:
        return [note.text(lang) for note in self.notes]

    def _probs_columns(self) -> tuple[list[str], list[list[str]]]:
        headers = ["i"] + [f"p[{c}]" for c in range(self.probs.shape[1])]
        body = [[_position(row.position)] + [f"{p:.7f}" for p in probs]
                for row, probs in zip(self.rows, self.probs)]
        return headers, body

    def _columns(self) -> tuple[list[str], list[list[str]]]:
        binary = self.function.startswith("binary")
        has_smooth = any(row.smooth is not None for row in self.rows)
        has_pw = any(row.pos_weight is not None for row in self.rows)
        has_ignored = not all(row.kept for row in self.rows)
        if self._distribution:
            # -sum_c w[c] y[c] log p[c]: the library's loss of the row without smoothing
            plain = "-sum w y log p" if self.options.get("weight") is not None else "-sum y log p"
            headers = ["i", "target", plain] + ["smooth"] * has_smooth + ["loss"]
            body = [[_position(row.position), "dist", _num(row.neg_log_prob)]
                    + [_num(row.smooth)] * has_smooth + [_num(row.loss)] for row in self.rows]
            return headers, body
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

    def _summary(self, lang: str = "en") -> list[str]:
        if self.numerator is None:
            return [message("summary.none", lang)]
        if self.reduction == "sum":
            rule = "rule.sum"
        elif self.function.startswith("binary"):
            rule = "rule.elements"
        elif self._distribution:
            rule = "rule.samples"
        else:
            rule = "rule.weights"
        pairs = [
            ("summary.numerator", message("summary.sum_of_loss", lang), self.numerator),
            ("summary.denominator", message(rule, lang), self.denominator),
            ("summary.result", message("summary.ratio", lang), self.value),
            ("summary.library", f"{self.function}(reduction={self.reduction!r})", self.result),
        ]
        labels = [message(key, lang) for key, _, _ in pairs]
        column = max(width(label) for label in labels)
        return [f"{ljust(label, column)} = {rule} = {_num(value)}"
                for label, (_, rule, value) in zip(labels, pairs)]

    def _gradient_intro(self, lang: str = "en") -> list[str]:
        g = self.gradient.grad_output
        upstream = "1" if g is None else _short(g)
        if self.reduction == "mean":
            scale = message("grad.scale_mean", lang, g=upstream, d=_num(self.denominator))
        else:
            scale = f"grad_output = {upstream} (reduction={self.reduction!r})"
        lines = [message("grad.title", lang, scale=scale)]
        if self.function == "binary_cross_entropy":
            return lines + [
                "grad = scale * weight * (p - y) / max(p (1 - p), 1e-12)",
                message("grad.bce_chain", lang),
            ]
        if self.function == "binary_cross_entropy_with_logits":
            return lines + [
                "grad = scale * (A p - q), p = sigmoid(input), q = weight * pos_weight * y,",
                "A = weight * (1 + (pos_weight - 1) * y)",
                message("grad.logits_plain", lang),
            ]
        if self.function == "nll_loss":
            return lines + [message("grad.nll_q", lang), message("grad.nll_rest", lang)]
        eps = float(self.options.get("label_smoothing", 0.0))
        y = "y" if self._distribution else "one_hot(target)"
        q = f"weight * ((1 - {eps:g}) * {y} + {eps:g} / C)" if eps else f"weight * {y}"
        return lines + [
            "grad = scale * (A p - q), p = softmax(input), A = sum_c q[c],",
            f"q = {q}:",
            message("grad.ce_rows", lang),
        ]

    def _gradient_columns(self, num_classes: int | None = None,
                          max_rows: int | None = None) -> tuple[list[str], list[list[str]]]:
        g = self.gradient
        labels = [_position(row.position) for row in self.rows][:max_rows]
        if g.rows.ndim == 1:  # binary: one line per element
            y = [_num(row.target) for row in self.rows]
            if self.function == "binary_cross_entropy":
                w = [_num(row.weight) for row in self.rows]
                headers = ["i", "p", "y", "weight", "p(1-p)", "scale", "grad"]
                cols = [g.p, y, w, g.curvature, g.scale, g.rows]
            else:
                headers = ["i", "p", "y", "A", "q", "scale", "grad"]
                cols = [g.p, y, g.A, g.q, g.scale, g.rows]
            cols = [[c if isinstance(c, str) else _short_num(c) for c in col] for col in cols]
            return headers, [[label, *cells] for label, *cells in zip(labels, *cols)]
        shown = g.p.shape[1] if num_classes is None else num_classes
        more = ["..."] if shown < g.p.shape[1] else []
        headers = ["i", "scale", "A", ""] + [f"[{c}]" for c in range(shown)] + more
        body = []
        for i, label in enumerate(labels):
            lead = [label, _short_num(g.scale[i]), _short_num(g.A[i])]
            for name, values in (("p", g.p[i]), ("q", g.q[i]), ("grad", g.rows[i])):
                body.append(lead + [name] + [_short_num(v) for v in values[:shown]] + more)
                lead = ["", "", ""]
        return headers, body

    def _gradient_text(self, max_rows: int | None, lang: str = "en") -> list[str]:
        g = self.gradient
        cut = max_rows if max_rows is not None and len(self.rows) > max_rows else None
        shown = None if g.rows.ndim == 1 else g.p.shape[1]
        while True:
            lines = _format_table(*self._gradient_columns(shown, cut), None)
            if shown is None or shown == 1 or max(map(len, lines)) <= _WIDTH:
                break
            shown -= 1
        if shown is not None and shown < g.p.shape[1]:
            lines.append(message("grad.cut_classes", lang, first=shown,
                                 last=g.p.shape[1] - 1, width=_WIDTH))
        if cut is not None:
            lines.append(message("rows.more", lang, n=len(self.rows) - cut))
        return lines


def explain(fn: str | Callable, input: Any, target: Any, grad_output: Any = None,
            **kwargs: Any) -> Explanation:
    """Break a loss call down into per-sample rows, numerator and denominator.

    Parameters
    ----------
    fn : str or callable
        ``"cross_entropy"``, ``"nll_loss"``, ``"binary_cross_entropy"``,
        ``"binary_cross_entropy_with_logits"``, or one of those functions.
    input, target, **kwargs
        Exactly what you would pass to ``fn`` (``weight``, ``ignore_index``,
        ``reduction``, ``label_smoothing``, ``pos_weight``).
    grad_output : scalar or array_like, optional
        The upstream gradient, as for ``fn``'s ``*_grad`` function: a scalar for
        ``mean``/``sum`` (default 1), shaped like the loss for ``"none"``.

    Returns
    -------
    Explanation
        Prints as an aligned table, renders as HTML in Jupyter.

    Raises
    ------
    ValueError, TypeError
        The library's own errors for bad arguments; ``ValueError`` for an empty batch.
    AssertionError
        If ``numerator / denominator`` is not the library's reduced result, or
        ``scale * (A p - q)`` is not the library's gradient.

    Examples
    --------
    >>> import xent_ref as xr
    >>> ex = xr.explain("nll_loss", [[-0.5, -1.0], [-2.0, -0.1]], [0, 1], weight=[1.0, 3.0])
    >>> ex.numerator, ex.denominator, round(ex.value, 6)
    (0.8, 4.0, 0.2)
    >>> ex.grad                  # -weight[target] / denominator at each target
    array([[-0.25,  0.  ],
           [ 0.  , -0.75]])
    """
    name = _loss_name(fn)
    loss_fn = lib.named(name)
    reduction = kwargs.get("reduction", "mean")
    # The library validates the arguments; its errors surface unchanged.
    result = loss_fn(input, target, **kwargs)
    grad = np.asarray(lib.named(name + "_grad")(input, target, **kwargs,
                                                  grad_output=grad_output))
    losses = np.asarray(loss_fn(input, target, **{**kwargs, "reduction": "none"}))
    if losses.size == 0:
        raise ValueError(f"input: an empty batch has no samples to explain ({name} gives "
                         f"{result} for reduction={reduction!r})")
    if name.startswith("binary"):
        rows, probs, denominator = _binary_rows(name, input, target, kwargs, losses)
        gradient = _binary_gradient(name, input, target, kwargs, grad, losses)
    else:
        rows, probs, denominator = _multiclass_rows(name, input, target, kwargs, losses)
        gradient = _multiclass_gradient(name, input, target, kwargs, grad, probs)
    numerator = None
    if reduction != "none":
        numerator = float(np.sum(losses, dtype=np.float64))
        denominator = 1.0 if reduction == "sum" else denominator
    gradient = _scaled(gradient, grad_output, reduction, denominator, losses.shape)
    explanation = Explanation(
        function=name,
        options=dict(kwargs),
        rows=tuple(rows),
        losses=losses,
        probs=probs,
        numerator=numerator,
        denominator=denominator,
        result=result,
        notes=tuple(_notes(name, kwargs, distribution=rows[0].target is None
                           and not name.startswith("binary"))),
        gradient=gradient,
    )
    if numerator is not None:
        _check(explanation)
    _check_gradient(explanation)
    return explanation


def _loss_name(fn: str | Callable) -> str:
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", "")
    if name not in LOSSES or (not isinstance(fn, str) and fn is not lib.named(name)):
        raise ValueError(f"fn: expected one of {LOSSES} (name or xent_ref function), got {fn!r}")
    return name


def _multiclass_rows(name, input, target, kwargs, losses):
    scores = np.asarray(input)  # logits (cross_entropy) or log-probabilities (nll_loss)
    target = np.asarray(target)
    class_axis = 1 if scores.ndim >= 2 else 0
    num_classes = scores.shape[class_axis]
    if name == "cross_entropy":
        log_probs = np.asarray(lib.log_softmax(scores, axis=class_axis))
        probs = np.asarray(lib.softmax(scores, axis=class_axis))
    else:
        log_probs = scores.astype(losses.dtype)
        with np.errstate(over="ignore"):  # nll_loss takes any input: exp(1000) is inf, shown so
            probs = np.exp(log_probs)
    # (N, C, d1..dk) -> (N*d1*..*dk, C): one row per target element, in the
    # same row-major order as target.reshape(-1) and losses.reshape(-1).
    log_probs = _class_last(log_probs, class_axis)
    probs = _class_last(probs, class_axis)
    positions = list(np.ndindex(*losses.shape)) or [()]
    flat_losses = losses.reshape(-1)
    weight = kwargs.get("weight")
    weight = np.ones(num_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(kwargs.get("label_smoothing", 0.0))
    # smooth_i = -sum_c weight[c] * log p[i, c]: what label smoothing spreads out.
    smooth = -(log_probs * weight).sum(axis=1) if eps > 0 else None

    if target.shape == scores.shape and target.dtype.kind == "f":
        # -sum_c w[c] y[c] log p[c]: the library's own loss of the row, minus the smoothing
        plain = np.asarray(lib.cross_entropy(scores, target, weight=kwargs.get("weight"),
                                            reduction="none")).reshape(-1)
        rows = [
            Row(pos, None, None, float(plain[i]), None, True,
                None if smooth is None else float(smooth[i]), float(flat_losses[i]))
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


def _class_last(a: np.ndarray, class_axis: int) -> np.ndarray:
    """``(N, C, d1..dk)`` or ``(C,)`` -> ``(samples, C)``, samples in target order."""
    return np.moveaxis(a, class_axis, -1).reshape(-1, a.shape[class_axis])


def _multiclass_gradient(name, input, target, kwargs, grad, probs) -> Gradient:
    scores, target = np.asarray(input), np.asarray(target)
    class_axis = 1 if scores.ndim >= 2 else 0
    if target.shape == scores.shape and target.dtype.kind == "f":
        target = _class_last(target, class_axis)  # one distribution per row
    else:
        target = target.reshape(-1)  # one class index per row
    eps = float(kwargs.get("label_smoothing", 0.0))
    q, _, _ = target_distribution(probs, target, kwargs.get("weight"),
                                  kwargs.get("ignore_index", -100), eps)
    # nll_loss's input is log p already: its gradient has no "A p" part.
    A = q.sum(axis=1) if name == "cross_entropy" else np.zeros(len(q))
    return Gradient(grad, _class_last(grad, class_axis), probs, q, A, scale=None)


def _binary_gradient(name, input, target, kwargs, grad, losses) -> Gradient:
    x = np.asarray(input)
    y = np.asarray(target, dtype=np.float64).reshape(-1)

    def flat(option):  # weight / pos_weight broadcast to the input, one per element
        value = kwargs.get(option)
        return np.broadcast_to(1.0 if value is None else np.asarray(value, dtype=np.float64),
                               x.shape).reshape(-1)

    w = flat("weight")
    if name == "binary_cross_entropy":
        p = x.reshape(-1).astype(np.float64)
        # d/dp of -(y log p + (1 - y) log(1 - p)) is (p - y) / (p (1 - p)); PyTorch floors
        # the denominator so that p = 0 or 1 gives a large finite number.
        curvature = np.maximum(p * (1 - p), GRAD_EPSILON)
        return Gradient(grad, grad.reshape(-1), p, w * y / curvature, w / curvature,
                        scale=None, curvature=curvature)
    r = flat("pos_weight")
    # sigmoid(x) = exp(-softplus(-x)), and softplus(-x) is the library's loss at y = 1
    at_one = lib.binary_cross_entropy_with_logits(x, np.ones(x.shape, losses.dtype),
                                                 reduction="none")
    p = np.exp(-np.asarray(at_one, dtype=np.float64)).reshape(-1)
    return Gradient(grad, grad.reshape(-1), p, w * r * y, w * (1 + (r - 1) * y), scale=None)


def _scaled(gradient: Gradient, grad_output, reduction: str, denominator, shape) -> Gradient:
    """Fill in each row's scale: d(reduced loss) / d(row's loss) times the upstream gradient."""
    g = 1.0 if grad_output is None else grad_output
    n = len(gradient.rows)
    if reduction == "none":
        scale = np.broadcast_to(np.asarray(g, dtype=np.float64), shape).reshape(-1)
    else:
        g = np.float64(np.asarray(g, dtype=np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):  # mean of nothing: 1/0, as PyTorch
            scale = np.full(n, g / np.float64(denominator) if reduction == "mean" else g)
    return replace(gradient, scale=scale, grad_output=grad_output)


def _binary_rows(name, input, target, kwargs, losses):
    loss_fn = lib.named(name)
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


def _notes(name: str, kwargs: dict, distribution: bool = False) -> list[Note]:
    eps = float(kwargs.get("label_smoothing", 0.0))
    if name == "cross_entropy" and eps > 0:
        # probability targets: the first term is the row's -sum_c w[c] y[c] log p[c]
        first = "(-sum w y log p)" if distribution else "weight * (-log p)"
        return [Note("note.smoothing_loss", {"eps": f"{eps:g}", "first": first}),
                Note("note.smoothing_term")]
    if name == "binary_cross_entropy":
        return [Note("note.bce_clamp")]
    if name == "binary_cross_entropy_with_logits" and kwargs.get("pos_weight") is not None:
        return [Note("note.pos_weight")]
    return []


def _check(ex: Explanation) -> None:
    result = np.asarray(ex.result)
    value = ex.value
    # The library may add the terms in another order: allow a few ulps per term.
    tiny = finfo(result.dtype).eps
    rtol = 4 * tiny * max(1, len(ex.rows))
    if not np.allclose(value, result.astype(np.float64), rtol=rtol, atol=0.0, equal_nan=True):
        raise AssertionError(
            f"{ex.function}: numerator / denominator = {value!r} but the library "
            f"returns {result!r}"
        )


def _check_gradient(ex: Explanation) -> None:
    g = ex.gradient
    rows = g.rows.astype(np.float64)
    wide = rows.ndim == 2  # multiclass: one scale and one A per row, broadcast over classes
    scale, A = (g.scale[:, None], g.A[:, None]) if wide else (g.scale, g.A)
    with np.errstate(all="ignore"):  # inf and nan rows are compared as they are
        Ap = np.where(A == 0, 0.0, A * g.p)  # 0 * p is 0 even where p = exp(input) is inf
        expected = scale * (Ap - g.q)
        info = finfo(g.grad.dtype)
        tiny = info.eps
        # the library writes the same number in a form that rounds less: a few ulps of
        # the terms it is made of, not of the (possibly tiny) result; and a subnormal
        # result keeps only the ulps it has
        atol = 16 * tiny * np.abs(scale) * (np.abs(Ap) + np.abs(g.q))
        atol += 16 * info.smallest_subnormal
        same = np.isclose(expected, rows, rtol=16 * tiny, atol=0.0, equal_nan=True)
        same |= np.abs(expected - rows) <= atol
        # mean over zero total weight: scale = 1/0. A term that is 0 becomes 0 * inf: the
        # library (as PyTorch) writes 0 where the term is absent (an ignored row, a class
        # nll_loss does not read) and nan where it is present with weight 0.
        same |= ~np.isfinite(scale) & (Ap - g.q == 0) & ((rows == 0) | np.isnan(rows))
    if not same.all():
        i = np.argwhere(~same)[0]
        raise AssertionError(
            f"{ex.function}: scale * (A p - q) = {expected[tuple(i)]!r} at {tuple(i)} but "
            f"the library's gradient is {rows[tuple(i)]!r}"
        )


def _html_table(headers: list[str], body: list[list[str]]) -> str:
    esc = html.escape
    parts = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>" for cells in body]
    return "\n".join(parts + ["</table>"])


def _short_num(value: Any) -> str:
    """A gradient-table number: 6 significant digits, so a row of classes fits."""
    return f"{float(value) + 0.0:.6g}"


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


def _format_table(headers: list[str], body: list[list[str]], max_rows: int | None,
                  lang: str = "en") -> list[str]:
    shown = body if max_rows is None or len(body) <= max_rows else body[:max_rows]
    widths = [max(len(h), *(len(r[j]) for r in shown)) for j, h in enumerate(headers)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(headers, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in shown]
    if len(shown) < len(body):
        lines.append(message("rows.more", lang, n=len(body) - len(shown)))
    return lines


def _position(position: tuple[int, ...]) -> str:
    return ",".join(map(str, position)) or "0"
