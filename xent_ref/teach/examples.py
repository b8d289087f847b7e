"""``xent-ref examples``: replay the source documents' worked examples exactly.

Every number printed here is computed by the library when the example runs;
the only numbers written into this file are the documents' own figures, quoted
as the documents print them, so that the exact value can stand beside each one
with the reason they differ.

Run ``xent-ref examples --list`` for the names, ``xent-ref examples NAME`` for one,
``--lang zh`` for Chinese. After its loss, each example derives its gradient in
words and numbers, read from :func:`xent_ref.explain`'s gradient table. Every
sentence lives in the catalogues of :mod:`xent_ref.teach.i18n`, one file per language,
keyed by one id; the numbers are formatted here, once, for every language.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from xent_ref import functions as lib
from xent_ref.teach.i18n import languages, ljust, message, width, wrap
from xent_ref.teach.explain import Explanation, explain

__all__ = ["EXAMPLES", "DOCUMENTS", "main", "run"]

WIDTH = 80

# The source documents' titles; the catalogues gloss them ("doc.gloss.NNN") in the
# languages the titles are not written in (an empty gloss: none needed).
TITLES = {
    "000": "pytorch交叉熵损失详细计算步骤",
    "001": "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数",
    "002": "Softmax损失函数计算详解",
    "003": "PyTorch实现CrossEntropyLoss示例",
    "004": "交叉熵损失函数",
}
DOCUMENTS = {doc: (title, message(f"doc.gloss.{doc}")) for doc, title in TITLES.items()}

# The documents' worked inputs.
LOGITS_3X2 = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
LABELS_3X2 = [0, 1, 0]
LOGITS_4X3 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]
LABELS_4X3 = [2, 1, 0, 1]
BINARY_LOGITS = [2.0, -1.0, 0.5]
BINARY_TARGETS = [1.0, 0.0, 1.0]


@dataclass(frozen=True)
class Example:
    name: str
    document: str
    replay: Callable[[str], list]

    @property
    def title(self) -> str:
        return message(f"title.{self.name}")


@dataclass(frozen=True)
class Prose:
    """A paragraph: the message ``key`` with ``values``, wrapped when printed."""

    key: str
    values: dict

    def lines(self, lang: str) -> list[str]:
        return wrap(message(self.key, lang, **self.values), WIDTH)


EXAMPLES: dict[str, Example] = {}


def _example(name: str, document: str):
    def register(replay: Callable[[str], list]) -> Callable[[str], list]:
        EXAMPLES[name] = Example(name, document, replay)
        return replay

    return register


# ----- helpers: every line goes through these, so the layout is one place ---


def _figures(rows: list[tuple[str, str]]) -> list[str]:
    """Label/value pairs, the values aligned in one column (display columns: CJK is 2)."""
    column = max(width(label) for label, _ in rows)
    return [f"  {ljust(label, column)}  {value}" for label, value in rows]


def _exact(value) -> str:
    return f"{float(value):.10g}"


def _g(value) -> str:
    """A gradient entry as the gradient table prints it (6 significant digits)."""
    return f"{float(value) + 0.0:.6g}"


def _float32(fn: Callable, input, target, **kwargs) -> str:
    """The same call on float32 input, as PyTorch's default tensors would be."""
    value = fn(np.asarray(input, dtype=np.float32), target, **kwargs)
    return f"{float(value):.8g}"


def _hand(ex: Explanation, decimals: int) -> float:
    """The documents' hand method: round each p(target) first, then average -ln p."""
    kept = [row for row in ex.rows if row.kept]
    total = sum(row.weight * -np.log(round(row.prob, decimals)) for row in kept)
    return total / sum(row.weight for row in kept)


def _header(example: Example, lang: str) -> list[str]:
    title = TITLES[example.document]
    rule = "=" * WIDTH
    gloss = message(f"doc.gloss.{example.document}", lang)
    gloss = [f'  ("{gloss}")'] if gloss else []
    return [
        rule,
        f"{example.name}: {message('title.' + example.name, lang)}",
        message("doc.line", lang, doc=example.document, title=title),
        *gloss,
        rule,
    ]


def _explained(lang: str, fn_name: str, logits, labels, **kwargs) -> tuple[Explanation, list]:
    ex = explain(fn_name, logits, labels, **kwargs)
    return ex, [ex.to_text(lang=lang), ""]


def _why(name: str, **values) -> list:
    return ["", Prose(f"why.{name}", values)]


def _gradient(name: str, **values) -> list:
    return ["", Prose(f"grad.{name}", values)]


# ----- the examples ---------------------------------------------------------


@_example("plain", "001")
def _plain(lang: str) -> list:
    ex, lines = _explained(lang, "cross_entropy", LOGITS_3X2, LABELS_3X2)
    hand = _hand(ex, 4)
    lines += _figures(
        [
            (message("fig.by_hand", lang, doc="001", sum="-(ln0.69+ln0.3543+ln0.5987)/3"),
             "0.6406"),
            (message("fig.replay", lang), _exact(hand)),
            (message("fig.float32", lang),
             _float32(lib.cross_entropy, LOGITS_3X2, LABELS_3X2)),
            (message("fig.exact", lang), _exact(ex.result)),
        ]
    )
    lines += _why("plain", shift=f"{hand - ex.value:+.1e}", exact5=f"{ex.value:.5f}",
                  hand5=f"{hand:.5f}", exact4=f"{ex.value:.4f}")
    g = ex.gradient
    worst = min(range(len(ex.rows)), key=lambda i: ex.rows[i].prob)
    lines += _gradient("plain", p00=_g(g.p[0, 0]), p01=_g(g.p[0, 1]), g00=_g(g.rows[0, 0]),
                       g01=_g(g.rows[0, 1]), worst=worst)
    return lines


@_example("ignore-index", "001")
def _ignore_index(lang: str) -> list:
    ex, lines = _explained(lang, "cross_entropy", LOGITS_3X2, LABELS_3X2, ignore_index=1)
    hand = _hand(ex, 4)
    lines += _figures(
        [
            (message("fig.printout", lang, doc="001", printed="tensor(0.4421)"), "0.4421"),
            (message("fig.by_hand", lang, doc="001", sum="(-ln0.69-ln0.5987)/2"), "0.4421"),
            (message("fig.replay", lang), _exact(hand)),
            (message("fig.exact", lang), _exact(ex.result)),
        ]
    )
    lines += _why("ignore-index", hand5=f"{hand:.5f}", hand4=f"{hand:.4f}")
    rows = ex.gradient.rows
    plain = lib.cross_entropy_grad(LOGITS_3X2, LABELS_3X2)
    lines += _gradient("ignore-index", g10=_g(rows[1, 0]), g11=_g(rows[1, 1]),
                       g00=_g(rows[0, 0]), g01=_g(rows[0, 1]),
                       ratio=f"{rows[0, 0] / plain[0, 0]:.6g}")
    return lines


@_example("weight-1-2", "001")
def _weight_1_2(lang: str) -> list:
    ex, lines = _explained(lang, "cross_entropy", LOGITS_3X2, LABELS_3X2, weight=[1.0, 2.0])
    middle = 2 * -np.log(round(ex.rows[1].prob, 4))
    lines += _figures(
        [
            (message("fig.printout", lang, doc="001", printed="tensor(0.7398)"), "0.7398"),
            (message("fig.by_hand", lang, doc="001", sum="(0.3711+2.0741+0.5130)/4"), "0.7396"),
            (message("fig.replay", lang), _exact(_hand(ex, 4))),
            (message("fig.exact", lang), _exact(ex.result)),
        ]
    )
    lines += _why("weight-1-2", hand4=f"{_hand(ex, 4):.4f}", middle=f"{middle:.4f}",
                  den=f"{ex.denominator:g}")
    rows = ex.gradient.rows
    # the same rows unweighted, over the same denominator: sum-reduced, divided by 4
    unweighted = lib.cross_entropy_grad(LOGITS_3X2, LABELS_3X2, reduction="sum") / ex.denominator
    lines += _gradient("weight-1-2", g10=_g(rows[1, 0]), g11=_g(rows[1, 1]),
                       h10=_g(unweighted[1, 0]), h11=_g(unweighted[1, 1]),
                       ratio=f"{rows[1, 1] / unweighted[1, 1]:.6g}")
    return lines


@_example("weight-2-1", "001")
def _weight_2_1(lang: str) -> list:
    ex, lines = _explained(lang, "cross_entropy", LOGITS_3X2, LABELS_3X2, weight=[2.0, 1.0])
    plain = lib.cross_entropy(LOGITS_3X2, LABELS_3X2)
    heavy = lib.cross_entropy(LOGITS_3X2, LABELS_3X2, weight=[1.0, 2.0])
    lines += _figures(
        [
            (message("fig.lower", lang), "-"),
            (message("fig.weighted", lang, w="[2, 1]"), _exact(ex.result)),
            (message("fig.no_weight", lang), _exact(plain)),
            (message("fig.weighted", lang, w="[1, 2]"), _exact(heavy)),
        ]
    )
    lines += _why("weight-2-1", nlp=f"{ex.rows[1].neg_log_prob:.4f}")
    rows = ex.gradient.rows
    plain_grad = lib.cross_entropy_grad(LOGITS_3X2, LABELS_3X2)
    lines += _gradient("weight-2-1", den=f"{ex.denominator:g}", g10=_g(rows[1, 0]),
                       g11=_g(rows[1, 1]), plain11=_g(plain_grad[1, 1]))
    return lines


@_example("four-by-three", "001")
def _four_by_three(lang: str) -> list:
    kwargs = {"weight": [2.0, 1.0, 2.0], "ignore_index": 2}
    ex, lines = _explained(lang, "cross_entropy", LOGITS_4X3, LABELS_4X3, **kwargs)
    lines += _figures(
        [
            (message("fig.printout", lang, doc="001", printed="tensor(1.0401)"), "1.0401"),
            (message("fig.by_hand", lang, doc="001", sum="4.16007/4"), "1.0400175"),
            (message("fig.replay", lang), _exact(_hand(ex, 4))),
            (message("fig.float32", lang),
             _float32(lib.cross_entropy, LOGITS_4X3, LABELS_4X3, **kwargs)),
            (message("fig.exact", lang), _exact(ex.result)),
        ]
    )
    lines += _why("four-by-three", den=f"{ex.denominator:g}")
    g = ex.gradient
    lines += _gradient("four-by-three", p20=_g(g.p[2, 0]), g20=_g(g.rows[2, 0]),
                       p11=_g(g.p[1, 1]), g11=_g(g.rows[1, 1]))
    return lines


@_example("label-smoothing", "003")
def _label_smoothing(lang: str) -> list:
    eps, num_classes = 0.1, 10
    labels = np.array([2, 5])  # the document's example targets
    logits = np.random.default_rng(3).normal(size=(2, num_classes)).round(2)
    one_hot = np.eye(num_classes)[labels]
    smoothed = (1 - eps) * one_hot + eps / num_classes  # document 003's formula
    log_probs = lib.log_softmax(logits, axis=1)
    by_class = (-smoothed * log_probs).mean(0).sum()  # document 003's loss, line for line
    ex, table = _explained(lang, "cross_entropy", logits, labels, label_smoothing=eps)
    lines = [message("ls.logits", lang)]
    lines += ["  " + np.array2string(row, precision=2, max_line_width=WIDTH - 4) for row in logits]
    lines += [""] + _figures(
        [
            (message("fig.doc_true", lang), "0.91"),
            (message("fig.true", lang), f"{smoothed[0, 2]:.10g}"),
            (message("fig.doc_other", lang), "0.01"),
            (message("fig.other", lang), f"{smoothed[0, 0]:.10g}"),
        ]
    )
    lines += ["", *table]
    lines += _figures(
        [
            (message("fig.by_class", lang), _exact(by_class)),
            ("cross_entropy(label_smoothing=0.1)", _exact(ex.result)),
            (message("fig.as_probs", lang), _exact(lib.cross_entropy(logits, smoothed))),
            (message("fig.class_minus", lang), f"{by_class - ex.result:.1e}"),
        ]
    )
    lines += _why("label-smoothing")
    g = ex.gradient
    lines += _gradient("label-smoothing", p02=_g(g.p[0, 2]), g02=_g(g.rows[0, 2]),
                       p00=_g(g.p[0, 0]), g00=_g(g.rows[0, 0]))
    return lines


@_example("binary", "004")
def _binary(lang: str) -> list:
    logits = np.array(BINARY_LOGITS)
    # sigmoid(x) is a two-class softmax over the logits (0, x).
    probs = lib.softmax(np.stack([np.zeros_like(logits), logits], axis=-1))[:, 1]
    bce = lib.binary_cross_entropy(probs, BINARY_TARGETS)
    with_logits = lib.binary_cross_entropy_with_logits(logits, BINARY_TARGETS)
    lines = _figures(
        [
            (message("fig.doc_sigmoid", lang), "[0.8808, 0.2689, 0.6225]"),
            (message("fig.sigmoid", lang), np.array2string(probs, precision=8, separator=", ")),
        ]
    )
    on_probs = explain("binary_cross_entropy", probs, BINARY_TARGETS)
    weighted = explain("binary_cross_entropy_with_logits", logits, BINARY_TARGETS,
                       pos_weight=[3.0])
    lines += ["", on_probs.to_text(lang=lang), "", weighted.to_text(lang=lang), ""]
    lines += _figures(
        [
            (message("fig.doc_losses", lang), "-"),
            (message("fig.bce", lang), _exact(bce)),
            (message("fig.bce_logits", lang), _exact(with_logits)),
            (message("fig.difference", lang), f"{bce - with_logits:.1e}"),
            (message("fig.pos_weight", lang), _exact(
                lib.binary_cross_entropy_with_logits(logits, BINARY_TARGETS, pos_weight=[3.0])
            )),
        ]
    )
    lines += _why("binary")
    g, b = weighted.gradient.rows, on_probs.gradient
    # through the sigmoid: d loss / dx = d loss / dp * dp/dx, and dp/dx = p (1 - p)
    chained = b.rows * probs * (1 - probs)
    lines += _gradient("binary", g0=_g(g[0]), g1=_g(g[1]), g2=_g(g[2]),
                       **{f"b{i}": _g(v) for i, v in enumerate(b.rows)},
                       **{f"c{i}": _g(v) for i, v in enumerate(chained)})
    return lines


# ----- the command ----------------------------------------------------------


def _render(items: list, lang: str) -> list[str]:
    lines = []
    for item in items:
        lines += item.lines(lang) if isinstance(item, Prose) else [item]
    return lines


def run(name: str, lang: str = "en") -> str:
    """The text of one example (raises KeyError for an unknown name)."""
    if lang not in languages():
        raise ValueError(f"lang: expected one of {languages()}, got {lang!r}")
    example = EXAMPLES[name]
    return "\n".join(_header(example, lang) + _render(example.replay(lang), lang)) + "\n"


def main(names: list[str] | tuple[str, ...] = (), list_only: bool = False,
         lang: str = "en") -> int:
    """Print the examples named (all when none); return the exit status."""
    if list_only:
        column = max(len(name) for name in EXAMPLES)
        for example in EXAMPLES.values():
            title = message(f"title.{example.name}", lang)
            doc = message("list.doc", lang, doc=example.document)
            print(f"{example.name.ljust(column)}  {title}{doc}")
        return 0
    unknown = [name for name in names if name not in EXAMPLES]
    if unknown:
        print(f"unknown example {', '.join(unknown)}; choose from: {', '.join(EXAMPLES)}",
              file=sys.stderr)
        return 2
    print("\n".join(run(name, lang) for name in (names or list(EXAMPLES))), end="")
    return 0
