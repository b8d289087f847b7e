"""Step-by-step breakdowns of a loss: every number that goes into the result.

``explain(fn, input, target, **kwargs)`` takes one of the losses of :data:`LOSSES` (by
name or the function itself) with the arguments you would pass to it, and returns an
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

With the LLM options of ``cross_entropy`` the rows are those of ``z``, the logits
the library's :func:`xent_ref.llm_options.transform` makes (``z = c tanh(s x / c)``):
the plain loss of ``z`` (the library's, on ``z``) is each row's CE part, the z-loss
term ``z_loss * lse(z)^2`` is added beside it, and the check is that the parts add up
to the library's per-row losses and result, and that
``dz/dx * (scale * (A p - q) + pull * p)`` is the library's gradient.

The relatives of cross-entropy -- ``kl_div``, ``sigmoid_focal_loss``,
``softmax_focal_loss``, ``poly1_cross_entropy`` -- have rows and gradient tables of their
own, each showing its formula's factors; :mod:`xent_ref.teach.explain_family` builds and
checks them on the same principle, and :class:`Explanation` renders them like the others.

Every header, status word and sentence comes from the catalogues of
:mod:`xent_ref.teach.i18n` (``explain(..., lang="zh")``); the tables are aligned by
display width, so Chinese columns line up. The HTML carries its own small style
block (numbers right-aligned, tables apart, summaries monospace) and loads nothing.

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
import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from xent_ref import functions as lib
from xent_ref import llm_options
from xent_ref._engine.lowprec import finfo
from xent_ref.teach.breakdown import (STYLE, WIDTH, Gradient, Note, Row, class_last,
                                      format_table, html_table, num, position, short,
                                      short_num)
from xent_ref.teach import explain_family as family
from xent_ref.teach.explain_family import FAMILY
from xent_ref.teach.i18n import languages, ljust, message, width, wrap
from xent_ref.binary import GRAD_EPSILON
from xent_ref.textbook import target_distribution

__all__ = ["Explanation", "Gradient", "Note", "Row", "explain"]

LOSSES = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
) + FAMILY  # the relatives: their rows and gradient tables are explain_family's
_MAX_ROWS = 20  # str() shows at most this many sample rows
_LLM = ("logit_scale", "softcap", "z_loss")  # cross_entropy's LLM options


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
    logits : ndarray or None
        ``cross_entropy`` with a ``logit_scale`` or a ``softcap``: ``z``, the scaled
        and capped logits the loss sees, ``(samples, C)`` (the rows are those of ``z``).
    z_numerator, z_denominator : float or None
        With a ``z_loss``: the sum of the rows' ``z_loss * lse(z)^2`` and what it is
        divided by (the number of kept rows for ``mean``, 1 for ``sum``); then
        :attr:`numerator` sums the rows' cross-entropy parts only, and the result is
        ``numerator / denominator + z_numerator / z_denominator``.
    lang : str
        The language of ``str()`` and the HTML (``explain(..., lang="zh")``).
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
    logits: np.ndarray | None = None  # LLM options: z, the logits the loss sees, (samples, C)
    z_numerator: float | None = None  # z_loss: sum of the rows' z_loss * lse(z)^2
    z_denominator: float | None = None  # z_loss, mean: the number of kept tokens (sum: 1)
    lang: str = "en"  # the language str() and the HTML are written in
    default_reduction: str = "mean"  # the function's own ("none" for sigmoid_focal_loss)

    @property
    def grad(self) -> np.ndarray:
        """The library's gradient with respect to the input (shape of the input)."""
        return self.gradient.grad

    @property
    def reduction(self) -> str:
        return self.options.get("reduction", self.default_reduction)

    @property
    def value(self) -> float | None:
        """``numerator / denominator`` (plus ``z_numerator / z_denominator`` with a
        z-loss), equal to :attr:`result`, checked."""
        if self.numerator is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.float64(self.numerator) / np.float64(self.denominator)
            if self.z_numerator is not None:
                value += np.float64(self.z_numerator) / np.float64(self.z_denominator)
        return float(value)

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask, one entry per row: was the target kept?"""
        return np.array([row.kept for row in self.rows])

    # ----- plain text -------------------------------------------------------
    def to_text(self, max_rows: int | None = _MAX_ROWS, lang: str | None = None) -> str:
        """The aligned plain-text breakdown (at most ``max_rows`` sample rows).

        ``lang`` (default: the one given to :func:`explain`) is the language of the
        sentences and the column headers; the numbers are the same in every language.
        """
        lang = lang or self.lang
        lines = [self._call_text(), ""]
        for title, columns in self._class_tables(lang):
            table = format_table(*columns, max_rows, lang)
            if max(map(width, table)) <= WIDTH:
                lines += [title, *table, ""]
        lines += format_table(*self._columns(lang), max_rows, lang)
        lines += ["", *self._notes_text(lang), *self._summary(lang)]
        if self.gradient is not None:
            lines += ["", *self._gradient_intro(lang), *self._gradient_text(max_rows, lang)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        value = "none" if self.numerator is None else num(self.value)
        return f"<Explanation {self.function} ({len(self.rows)} rows) = {value}>"

    # ----- Jupyter ----------------------------------------------------------
    def to_html(self, lang: str | None = None) -> str:
        """The breakdown as one self-contained HTML fragment (its own small style block:
        numbers right-aligned, tables apart, the summaries in a monospace ``<pre>``)."""
        lang = lang or self.lang
        esc = html.escape
        parts = [STYLE, '<div class="xent-explain">',
                 f"<p><code>{esc(self._call_text())}</code></p>"]
        for title, columns in self._class_tables(lang):
            parts += [f"<p>{esc(title)}</p>", html_table(*columns)]
        parts.append(html_table(*self._columns(lang)))
        # one <pre> block, so the "=" of the summary lines stay aligned
        summary = (*self._notes_text(lang), *self._summary(lang))
        parts.append(f"<pre>{esc(chr(10).join(summary))}</pre>")
        if self.gradient is not None:
            parts.append(f"<pre>{esc(chr(10).join(self._gradient_intro(lang)))}</pre>")
            parts.append(html_table(*self._gradient_columns(lang=lang)))
        return "\n".join(parts + ["</div>"])

    def _repr_html_(self) -> str:
        return self.to_html()

    # ----- pieces -----------------------------------------------------------
    def _call_text(self) -> str:
        args = ", ".join(f"{k}={short(v)}" for k, v in self.options.items())
        return f"{self.function}(input, target{', ' if args else ''}{args})"

    @property
    def _distribution(self) -> bool:
        """Multiclass with a probability target (no single target class per row)."""
        return not self.function.startswith("binary") and self.rows[0].target is None

    def _class_tables(self, lang: str) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
        """``(title, (headers, body))`` of the per-class tables: z (with a logit_scale or a
        softcap), then the probabilities."""
        tables = []
        if self.logits is not None:
            title = message("llm.z_title", lang, formula=_z_formula(self.options))
            tables.append((title, self._class_columns("z", self.logits, lang)))
        if self.probs is not None:
            if self.function != "cross_entropy":
                source = "exp(input)"
            else:
                source = "softmax(input)" if self.logits is None else "softmax(z)"
            title = message("probs.title", lang, source=source)
            tables.append((title, self._class_columns("p", self.probs, lang)))
        return tables

    def _notes_text(self, lang: str = "en") -> list[str]:
        texts = [note.text(lang) for note in self.notes]  # (a long one wrapped to the tables)
        return [line for text in texts
                for line in (wrap(text, WIDTH) if width(text) > WIDTH else [text])]

    def _class_columns(self, symbol: str, table: np.ndarray, lang: str = "en"):
        headers = [message("col.i", lang)] + [f"{symbol}[{c}]" for c in range(table.shape[1])]
        body = [[position(row.position)] + [f"{v:.7f}" for v in values]
                for row, values in zip(self.rows, table)]
        return headers, body

    def _columns(self, lang: str = "en") -> tuple[list[str], list[list[str]]]:
        if self.function in FAMILY:
            return family.columns(self, lang)
        col = lambda key: message("col." + key, lang)  # noqa: E731
        has = lambda name: any(getattr(row, name) is not None for row in self.rows)  # noqa: E731
        has_ignored = not all(row.kept for row in self.rows)
        z_cols = ["ce", "lse", "z_term"] if has("z_term") else []
        if self._distribution:
            # -sum_c w[c] y[c] log p[c]: the library's loss of the row without smoothing
            plain = "-sum w y log p" if self.options.get("weight") is not None else "-sum y log p"
            names = ["neg_log_prob"] + ["smooth"] * has("smooth") + z_cols
            headers = [col("i"), col("target"), plain] + [col(n) for n in names[1:]]
        else:
            binary = self.function.startswith("binary")
            names = ["prob", "neg_log_prob", "weight"] + ["pos_weight"] * has("pos_weight")
            names += ["status"] * has_ignored + ["smooth"] * has("smooth") + z_cols
            keys = ["y", "p_y", "neg_log_p_y"] if binary else ["target", "p_target", "neg_log_p"]
            headers = [col("i")] + [col(k) for k in keys] + [col(n) for n in names[2:]]
        body = []
        for row in self.rows:
            cells = [position(row.position),
                     col("dist") if row.target is None else num(row.target)]
            for name in names:
                if name == "status":
                    cells.append(col("kept" if row.kept else "ignored"))
                else:
                    cells.append(num(getattr(row, name)))
            body.append(cells + [num(row.loss)])
        return headers + [col("loss")], body

    def _summary(self, lang: str = "en") -> list[str]:
        if self.numerator is None:
            return [message("summary.none", lang)]
        if self.reduction == "sum":
            rule = "rule.sum"
        elif self.function in FAMILY:
            rule = family.rule(self)
        elif self.function.startswith("binary"):
            rule = "rule.elements"
        elif self._distribution:
            rule = "rule.samples"
        else:
            rule = "rule.weights"
        z = self.z_numerator is not None
        pairs = [
            ("summary.numerator", message("summary.sum_of_ce" if z else "summary.sum_of_loss",
                                          lang), self.numerator),
            ("summary.denominator", message(rule, lang), self.denominator),
        ]
        if z:
            rule = "rule.z_sum" if self.reduction == "sum" else "rule.z_mean"
            z_rule = message(rule, lang, total=num(self.z_numerator),
                             count=num(self.z_denominator))
            pairs.append(("summary.z_part", z_rule, self.z_numerator / self.z_denominator
                          if self.z_denominator else float("nan")))
        pairs += [
            ("summary.result", message("summary.ratio_z" if z else "summary.ratio", lang),
             self.value),
            ("summary.library", f"{self.function}(reduction={self.reduction!r})", self.result),
        ]
        labels = [message(key, lang) for key, _, _ in pairs]
        column = max(width(label) for label in labels)
        return [f"{ljust(label, column)} = {rule} = {num(value)}"
                for label, (_, rule, value) in zip(labels, pairs)]

    def _gradient_intro(self, lang: str = "en") -> list[str]:
        g = self.gradient.grad_output
        upstream = "1" if g is None else short(g)
        if self.reduction in ("mean", "batchmean"):
            scale = message("grad.scale_mean", lang, g=upstream, d=num(self.denominator))
        else:
            scale = f"grad_output = {upstream} (reduction={self.reduction!r})"
        lines = [message("grad.title", lang, scale=scale)]
        if self.function in FAMILY:
            return lines + family.gradient_intro(self, lang)
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
        if self.gradient.slope is None and self.gradient.pull is None:
            return lines + [
                "grad = scale * (A p - q), p = softmax(input), A = sum_c q[c],",
                f"q = {q}:",
                message("grad.ce_rows", lang),
            ]
        return lines + self._llm_gradient_intro(q, lang)

    def _llm_gradient_intro(self, q: str, lang: str) -> list[str]:
        """The chain rule of the LLM options: through the z-loss term and dz/dx."""
        z_loss = self.options.get("z_loss", 0.0)
        inner = "scale * (A p - q)" + (" + pull * p" if self.gradient.pull is not None else "")
        slope = _slope_formula(self.options)
        lines = [f"grad = dz/dx * ({inner})" if slope else f"grad = {inner}",
                 f"p = softmax(z), A = sum_c q[c], q = {q}"]
        if slope:
            lines.append(f"dz/dx = {slope}")
        if self.gradient.pull is not None:
            z_scale = "grad_output" if self.reduction != "mean" else \
                f"{short(1 if self.gradient.grad_output is None else self.gradient.grad_output)}" \
                f" / {num(self.z_denominator)}"
            lines += [f"pull = z_scale * 2 * {z_loss:g} * lse(z), z_scale = {z_scale}",
                      message("grad.z_pull", lang)]
        return lines + [message("grad.llm_rows", lang)]

    def _gradient_columns(self, num_classes: int | None = None, max_rows: int | None = None,
                          lang: str = "en") -> tuple[list[str], list[list[str]]]:
        g = self.gradient
        col = lambda key: message("col." + key, lang)  # noqa: E731
        labels = [position(row.position) for row in self.rows][:max_rows]
        if g.rows.ndim == 1 and self.function in FAMILY:
            return family.gradient_columns(self, max_rows, lang)
        if g.rows.ndim == 1:  # binary: one line per element
            y = [num(row.target) for row in self.rows]
            if self.function == "binary_cross_entropy":
                w = [num(row.weight) for row in self.rows]
                headers = ["i", "p", "y", col("weight"), "p(1-p)", col("scale"), col("grad")]
                cols = [g.p, y, w, g.curvature, g.scale, g.rows]
            else:
                headers = ["i", "p", "y", "A", "q", col("scale"), col("grad")]
                cols = [g.p, y, g.A, g.q, g.scale, g.rows]
            headers[0] = col("i")
            cols = [[c if isinstance(c, str) else short_num(c) for c in col_] for col_ in cols]
            return headers, [[label, *cells] for label, *cells in zip(labels, *cols)]
        shown = g.p.shape[1] if num_classes is None else num_classes
        more = ["..."] if shown < g.p.shape[1] else []
        pull = [] if g.pull is None else [col("pull")]
        headers = [col("i"), col("scale"), g.A_label, *pull, ""]
        headers += [f"[{c}]" for c in range(shown)]
        lines = [("p", g.p), *g.lines, (g.q_label, g.q)]
        lines += [] if g.slope is None else [("dz/dx", g.slope)]
        lines += [(col("grad"), g.rows)]
        body = []
        for i, label in enumerate(labels):
            lead = [label, short_num(g.scale[i]), short_num(g.A[i])]
            lead += [] if g.pull is None else [short_num(g.pull[i])]
            for name, values in lines:
                body.append(lead + [name] + [short_num(v) for v in values[i][:shown]] + more)
                lead = [""] * len(lead)
        return headers + more, body

    def _gradient_text(self, max_rows: int | None, lang: str = "en") -> list[str]:
        g = self.gradient
        cut = max_rows if max_rows is not None and len(self.rows) > max_rows else None
        shown = None if g.rows.ndim == 1 else g.p.shape[1]
        while True:
            # the same classes in every language: the table fits in English and in lang
            tables = [format_table(*self._gradient_columns(shown, cut, each), None)
                      for each in dict.fromkeys(("en", lang))]
            lines = tables[-1]
            if shown is None or shown == 1 or max(width(x) for t in tables for x in t) <= WIDTH:
                break
            shown -= 1
        if shown is not None and shown < g.p.shape[1]:
            lines.append(message("grad.cut_classes", lang, first=shown,
                                 last=g.p.shape[1] - 1, width=WIDTH))
        if cut is not None:
            lines.append(message("rows.more", lang, n=len(self.rows) - cut))
        return lines


def explain(fn: str | Callable, input: Any, target: Any, grad_output: Any = None,
            lang: str = "en", **kwargs: Any) -> Explanation:
    """Break a loss call down into per-sample rows, numerator and denominator.

    Parameters
    ----------
    fn : str or callable
        ``"cross_entropy"``, ``"nll_loss"``, ``"binary_cross_entropy"``,
        ``"binary_cross_entropy_with_logits"``, ``"kl_div"``, ``"sigmoid_focal_loss"``,
        ``"softmax_focal_loss"``, ``"poly1_cross_entropy"``, or one of those functions.
    input, target, **kwargs
        Exactly what you would pass to ``fn`` (``weight``, ``ignore_index``,
        ``reduction``, ``label_smoothing``, ``pos_weight``; for ``cross_entropy``
        also the LLM options ``logit_scale``, ``softcap`` and ``z_loss``, whose steps
        the tables show: the scaled and capped logits ``z``, each row's ``lse(z)``
        and z-loss term, and ``dz/dx`` and the z-loss's pull in the gradient; for the
        relatives their own options: ``log_target``, ``alpha``, ``gamma``, ``epsilon``).
    grad_output : scalar or array_like, optional
        The upstream gradient, as for ``fn``'s ``*_grad`` function: a scalar for
        ``mean``/``sum`` (default 1), shaped like the loss for ``"none"``.
    lang : str
        The language of the printed and HTML breakdown (a catalogue of
        :mod:`xent_ref.teach.i18n`: ``"en"``, ``"zh"``); the numbers are the same.

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
        ``scale * (A p - q)`` is not the library's gradient (for a relative: if its
        formula's factors do not give the library's losses and gradient).

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
    if lang not in languages():
        raise ValueError(f"lang: expected one of {languages()}, got {lang!r}")
    loss_fn = lib.named(name)
    default = inspect.signature(loss_fn).parameters["reduction"].default
    reduction = kwargs.get("reduction", default)
    # The library validates the arguments; its errors surface unchanged.
    result = loss_fn(input, target, **kwargs)
    grad = np.asarray(lib.named(name + "_grad")(input, target, **kwargs,
                                                  grad_output=grad_output))
    losses = np.asarray(loss_fn(input, target, **{**kwargs, "reduction": "none"}))
    if losses.size == 0:
        raise ValueError(f"input: an empty batch has no samples to explain ({name} gives "
                         f"{result} for reduction={reduction!r})")
    llm = _llm_steps(name, input, kwargs)
    rows, probs, denominator, gradient, notes = _breakdown(name, input, target, kwargs, losses,
                                                           grad, llm)
    numerator = z_numerator = z_denominator = None
    if reduction != "none":
        parts = [row.ce if row.z_term is not None else row.loss for row in rows]
        numerator = float(np.sum(parts, dtype=np.float64))
        denominator = 1.0 if reduction == "sum" else denominator
        if rows[0].z_term is not None:
            z_numerator = float(np.sum([row.z_term for row in rows], dtype=np.float64))
            z_denominator = 1.0 if reduction == "sum" else float(sum(r.kept for r in rows))
    # batchmean is a mean over the batch size (its denominator)
    gradient = _scaled(gradient, grad_output, "mean" if reduction == "batchmean" else reduction,
                       denominator, losses.shape)
    if llm is not None:
        gradient = _llm_gradient(llm, gradient, rows, grad_output, reduction, losses.shape)
    explanation = Explanation(
        function=name, options=dict(kwargs), rows=tuple(rows), losses=losses, probs=probs,
        numerator=numerator, denominator=denominator, result=result, notes=tuple(notes),
        gradient=gradient, logits=None if llm is None else llm["table"],
        z_numerator=z_numerator, z_denominator=z_denominator, lang=lang,
        default_reduction=default,
    )
    _check(explanation)
    if name in FAMILY:
        family.check(explanation)  # the relatives' own parts (poly-1's, the sigmoid focal's)
    if gradient.terms is None:  # (the sigmoid focal gradient has its own factors, checked above)
        _check_gradient(explanation)
    return explanation


def _breakdown(name, input, target, kwargs, losses, grad, llm):
    """``(rows, probs, denominator, gradient, notes)`` of the call (the gradient's scale
    not yet filled in)."""
    if name in FAMILY:
        parts = family.parts(name, input, target, kwargs, losses, grad)
        return parts.rows, None, parts.denominator, parts.gradient, parts.notes
    if name.startswith("binary"):
        rows, probs, denominator = _binary_rows(name, input, target, kwargs, losses)
        gradient = _binary_gradient(name, input, target, kwargs, grad, losses)
    elif llm is None:
        rows, probs, denominator = _multiclass_rows(name, input, target, kwargs, losses)
        gradient = _multiclass_gradient(name, input, target, kwargs, grad, probs)
    else:
        # the rows of the plain loss of z, the logits the loss sees; then the z-loss
        base = {k: v for k, v in kwargs.items() if k not in _LLM}
        ce = np.asarray(lib.cross_entropy(llm["z"], target, **{**base, "reduction": "none"}))
        rows, probs, denominator = _multiclass_rows(name, llm["z"], target, base, ce)
        gradient = _multiclass_gradient(name, llm["z"], target, base, grad, probs)
        rows = _llm_rows(llm, rows, losses)
    notes = _notes(name, kwargs, distribution=rows[0].target is None
                   and not name.startswith("binary"))
    return rows, probs, denominator, gradient, notes


def _llm_steps(name: str, input, kwargs: dict) -> dict | None:
    """cross_entropy with LLM options: the checked options, ``z`` (scaled and capped
    logits, the library's :func:`xent_ref.llm_options.transform`) and ``dz/dx``."""
    options = llm_options.Options.checked(**{k: kwargs[k] for k in _LLM if k in kwargs})
    if name != "cross_entropy" or options.is_default:
        return None
    x = np.asarray(input)
    if x.dtype.kind != "f" or x.dtype.itemsize < 4:  # the library computes these wide
        x = x.astype(np.float64)
    z, slope = llm_options.transform(x, options, with_slope=True)
    axis = 1 if x.ndim >= 2 else 0
    lse = np.asarray(llm_options.lse_and_probs(z, axis)[0]).reshape(-1)
    plain = options.softcap is None and options.logit_scale == 1.0  # z = x: no z table
    return {"options": options, "z": z, "lse": lse,
            "table": None if plain else class_last(z, axis),
            "slope": None if plain else class_last(np.broadcast_to(slope, z.shape), axis)}


def _llm_rows(llm: dict, rows: list[Row], losses: np.ndarray) -> list[Row]:
    """The rows of the capped logits with the library's own losses (options included),
    and with a z-loss, each row's lse(z) and z_loss * lse(z)^2 beside its CE part."""
    z_loss = llm["options"].z_loss
    flat = losses.reshape(-1)
    if not z_loss:
        return [replace(row, loss=float(flat[i])) for i, row in enumerate(rows)]
    return [replace(row, ce=row.loss, loss=float(flat[i]), lse=float(llm["lse"][i]),
                    z_term=float(z_loss * llm["lse"][i] ** 2) if row.kept else 0.0)
            for i, row in enumerate(rows)]


def _llm_gradient(llm, gradient: Gradient, rows, grad_output, reduction, shape) -> Gradient:
    """The z-loss's pull (``z_scale * 2 z_loss lse``, the coefficient of ``p`` it adds)
    and the slope ``dz/dx`` the chain rule multiplies by."""
    z_loss = llm["options"].z_loss
    pull = None
    if z_loss:
        kept = np.array([row.kept for row in rows])
        z_scale = _row_scale(grad_output, reduction, float(kept.sum()), shape)
        pull = np.where(kept, z_scale * (2.0 * z_loss) * llm["lse"], 0.0)
    return replace(gradient, slope=llm["slope"], pull=pull)


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
    log_probs = class_last(log_probs, class_axis)
    probs = class_last(probs, class_axis)
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


def _multiclass_gradient(name, input, target, kwargs, grad, probs) -> Gradient:
    scores, target = np.asarray(input), np.asarray(target)
    class_axis = 1 if scores.ndim >= 2 else 0
    if target.shape == scores.shape and target.dtype.kind == "f":
        target = class_last(target, class_axis)  # one distribution per row
    else:
        target = target.reshape(-1)  # one class index per row
    eps = float(kwargs.get("label_smoothing", 0.0))
    q, _, _ = target_distribution(probs, target, kwargs.get("weight"),
                                  kwargs.get("ignore_index", -100), eps)
    # nll_loss's input is log p already: its gradient has no "A p" part.
    A = q.sum(axis=1) if name == "cross_entropy" else np.zeros(len(q))
    return Gradient(grad, class_last(grad, class_axis), probs, q, A, scale=None)


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
    scale = _row_scale(grad_output, reduction, denominator, shape)
    return replace(gradient, scale=scale, grad_output=grad_output)


def _row_scale(grad_output, reduction: str, denominator, shape) -> np.ndarray:
    """``grad_output`` per row, over ``denominator`` for ``mean``."""
    g = 1.0 if grad_output is None else grad_output
    if reduction == "none":
        return np.broadcast_to(np.asarray(g, dtype=np.float64), shape).reshape(-1)
    g = np.float64(np.asarray(g, dtype=np.float64))
    n = int(np.prod(shape))
    with np.errstate(divide="ignore", invalid="ignore"):  # mean of nothing: 1/0, as PyTorch
        return np.full(n, g / np.float64(denominator) if reduction == "mean" else g)


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
        # pos_weight multiplies the y log p term only: a y = 0 row has none
        applies = pos_weight is not None and label != 0.0
        rows.append(
            Row(
                pos, label, prob, float(plain[i]), float(weight[i]), True, None,
                float(losses.reshape(-1)[i]), float(pos_weight[i]) if applies else None,
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
    if name == "cross_entropy" and float(kwargs.get("z_loss", 0.0)):
        return [Note("note.z_loss", {"z_loss": f"{float(kwargs['z_loss']):g}"})]
    return []


def _check(ex: Explanation) -> None:
    tiny = finfo(ex.losses.dtype).eps
    if ex.rows[0].z_term is not None:  # each row's loss is its CE part plus its z-loss term
        parts = np.array([[row.ce, row.z_term, row.loss] for row in ex.rows], dtype=np.float64)
        if not np.allclose(parts[:, 0] + parts[:, 1], parts[:, 2], rtol=16 * tiny,
                           atol=16 * tiny * np.abs(parts[:, 1]).max(), equal_nan=True):
            raise AssertionError(f"{ex.function}: CE part + z-loss term is not the "
                                 f"library's per-row loss")
    if ex.numerator is None:
        return
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
    slope = 1.0 if g.slope is None else g.slope
    with np.errstate(all="ignore"):  # inf and nan rows are compared as they are
        Ap = np.where(A == 0, 0.0, A * g.p)  # 0 * p is 0 even where p = exp(input) is inf
        # z_loss adds pull * p, the gradient of z_loss * lse(z)^2
        pull_p = 0.0 if g.pull is None else g.pull[:, None] * g.p
        expected = slope * (scale * (Ap - g.q) + pull_p)
        info = finfo(g.grad.dtype)
        tiny = info.eps
        # the library writes the same number in a form that rounds less: a few ulps of
        # the terms it is made of, not of the (possibly tiny) result; and a subnormal
        # result keeps only the ulps it has
        atol = 16 * tiny * np.abs(slope) * (np.abs(scale) * (np.abs(Ap) + np.abs(g.q))
                                            + np.abs(pull_p))
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


def _z_formula(options: dict) -> str:
    """``z`` from the input ``x``, as the call's options make it."""
    s, c = float(options.get("logit_scale", 1.0)), options.get("softcap")
    scaled = "x" if s == 1.0 else f"{s:g} x"
    return scaled if c is None else f"{float(c):g} tanh({scaled} / {float(c):g})"


def _slope_formula(options: dict) -> str | None:
    """``dz/dx`` of :func:`_z_formula` (``None`` where ``z = x``)."""
    s, c = float(options.get("logit_scale", 1.0)), options.get("softcap")
    if c is None:
        return None if s == 1.0 else f"{s:g}"
    scaled = "x" if s == 1.0 else f"{s:g} x"
    return ("" if s == 1.0 else f"{s:g} ") + f"(1 - tanh^2({scaled} / {float(c):g}))"
