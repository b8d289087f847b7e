"""``xent-ref examples``: replay the source documents' worked examples exactly.

Every number printed here is computed by the library when the example runs;
the only numbers written into this file are the documents' own figures, quoted
as the documents print them, so that the exact value can stand beside each one
with the reason they differ.

Run ``xent-ref examples --list`` for the names, ``xent-ref examples NAME`` for one.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from typing import Callable

import numpy as np

import xent_ref as xr
from xent_ref.explain import Explanation, explain

__all__ = ["EXAMPLES", "DOCUMENTS", "main", "run"]

WIDTH = 80

DOCUMENTS = {
    "000": ("pytorch交叉熵损失详细计算步骤", "Detailed steps of the PyTorch cross-entropy loss"),
    "001": (
        "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数",
        "On the weight and ignore_index parameters of nn.CrossEntropyLoss",
    ),
    "002": ("Softmax损失函数计算详解", "The softmax loss, computed in detail"),
    "003": ("PyTorch实现CrossEntropyLoss示例", "A PyTorch CrossEntropyLoss example"),
    "004": ("交叉熵损失函数", "The cross-entropy loss function"),
}

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
    title: str
    document: str
    replay: Callable[[], list[str]]


EXAMPLES: dict[str, Example] = {}


def _example(name: str, title: str, document: str):
    def register(replay: Callable[[], list[str]]) -> Callable[[], list[str]]:
        EXAMPLES[name] = Example(name, title, document, replay)
        return replay

    return register


# ----- helpers: every line goes through these, so the layout is one place ---


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def _figures(rows: list[tuple[str, str]]) -> list[str]:
    """Label/value pairs, the values aligned in one column."""
    width = max(len(label) for label, _ in rows)
    return [f"  {label.ljust(width)}  {value}" for label, value in rows]


def _exact(value) -> str:
    return f"{float(value):.10g}"


def _float32(fn: Callable, input, target, **kwargs) -> str:
    """The same call on float32 input, as PyTorch's default tensors would be."""
    value = fn(np.asarray(input, dtype=np.float32), target, **kwargs)
    return f"{float(value):.8g}"


def _hand(ex: Explanation, decimals: int) -> float:
    """The documents' hand method: round each p(target) first, then average -ln p."""
    kept = [row for row in ex.rows if row.kept]
    total = sum(row.weight * -np.log(round(row.prob, decimals)) for row in kept)
    return total / sum(row.weight for row in kept)


def _header(example: Example) -> list[str]:
    title, english = DOCUMENTS[example.document]
    rule = "=" * WIDTH
    return [
        rule,
        f"{example.name}: {example.title}",
        f"document {example.document}: {title}",
        f'  ("{english}")',
        rule,
    ]


def _explained(fn_name: str, logits, labels, **kwargs) -> tuple[Explanation, list[str]]:
    ex = explain(fn_name, logits, labels, **kwargs)
    return ex, [str(ex), ""]


# ----- the examples ---------------------------------------------------------


@_example("plain", "3x2 logits, labels [0, 1, 0], the plain mean", "001")
def _plain() -> list[str]:
    ex, lines = _explained("cross_entropy", LOGITS_3X2, LABELS_3X2)
    hand = _hand(ex, 4)
    lines += _figures(
        [
            ("document 001, by hand: -(ln0.69+ln0.3543+ln0.5987)/3", "0.6406"),
            ("the same hand method replayed (p rounded to 4 places)", _exact(hand)),
            ("xent_ref in float32 (PyTorch's default dtype)", _float32(xr.cross_entropy, LOGITS_3X2, LABELS_3X2)),
            ("exact (float64)", _exact(ex.result)),
        ]
    )
    lines += [""] + _wrap(
        "Why they differ: the document rounded each softmax probability to 4 places "
        f"before taking the log. Rounding moves the mean by {hand - ex.value:+.1e}, enough "
        f"to turn the exact {ex.value:.5f} into {hand:.5f}, which rounds to 0.6406; the "
        f"exact value rounds to {ex.value:.4f}."
    )
    return lines


@_example("ignore-index", "the same, with ignore_index=1", "001")
def _ignore_index() -> list[str]:
    ex, lines = _explained("cross_entropy", LOGITS_3X2, LABELS_3X2, ignore_index=1)
    hand = _hand(ex, 4)
    lines += _figures(
        [
            ("document 001, PyTorch printout: tensor(0.4421)", "0.4421"),
            ("document 001, by hand: (-ln0.69-ln0.5987)/2", "0.4421"),
            ("the same hand method replayed (p rounded to 4 places)", _exact(hand)),
            ("exact (float64)", _exact(ex.result)),
        ]
    )
    lines += [""] + _wrap(
        "Why: the row whose label is 1 leaves both the numerator and the denominator "
        "(2 kept rows, not 3). PyTorch's 0.4421 is the exact value rounded to the 4 "
        f"places it prints. The hand line, with its rounded probabilities, gives "
        f"{hand:.5f}, which rounds to {hand:.4f}: the document's '= 0.4421' copies "
        "PyTorch's figure rather than its own arithmetic."
    )
    return lines


@_example("weight-1-2", "the same, with weight=[1, 2]", "001")
def _weight_1_2() -> list[str]:
    ex, lines = _explained("cross_entropy", LOGITS_3X2, LABELS_3X2, weight=[1.0, 2.0])
    middle = 2 * -np.log(round(ex.rows[1].prob, 4))
    lines += _figures(
        [
            ("document 001, PyTorch printout: tensor(0.7398)", "0.7398"),
            ("document 001, by hand: (0.3711+2.0741+0.5130)/4", "0.7396"),
            ("the same hand method replayed (p rounded to 4 places)", _exact(_hand(ex, 4))),
            ("exact (float64)", _exact(ex.result)),
        ]
    )
    lines += [""] + _wrap(
        "Why they differ: the document blames its 4-place rounding, but rounding alone "
        f"gives {_hand(ex, 4):.4f}. The hand sum has a slip in its middle term: "
        f"2 * -ln0.3543 = {middle:.4f}, not 2.0741. With that term the hand "
        "calculation matches PyTorch. The denominator is the sum of the kept "
        f"targets' weights, 1 + 2 + 1 = {ex.denominator:g}, not the number of rows."
    )
    return lines


@_example("weight-2-1", "the same, with weight=[2, 1]: a smaller loss", "001")
def _weight_2_1() -> list[str]:
    ex, lines = _explained("cross_entropy", LOGITS_3X2, LABELS_3X2, weight=[2.0, 1.0])
    plain = xr.cross_entropy(LOGITS_3X2, LABELS_3X2)
    heavy = xr.cross_entropy(LOGITS_3X2, LABELS_3X2, weight=[1.0, 2.0])
    lines += _figures(
        [
            ("document 001: 'the loss will be lower' (no figure)", "-"),
            ("weight=[2, 1], exact", _exact(ex.result)),
            ("no weight, exact", _exact(plain)),
            ("weight=[1, 2], exact", _exact(heavy)),
        ]
    )
    lines += [""] + _wrap(
        "Why: the weighted mean pulls toward the losses of the heavier class. Class 1's "
        f"only sample has the worst fit (-log p = {ex.rows[1].neg_log_prob:.4f}); "
        "weighting class 0 instead makes the two well-fitted rows count double, so "
        "the mean falls. The document reads this as 'bad for training'; the weights "
        "change which samples the gradient listens to, not only the size of the loss."
    )
    return lines


@_example("four-by-three", "4x3 logits, weight=[2, 1, 2], ignore_index=2", "001")
def _four_by_three() -> list[str]:
    kwargs = {"weight": [2.0, 1.0, 2.0], "ignore_index": 2}
    ex, lines = _explained("cross_entropy", LOGITS_4X3, LABELS_4X3, **kwargs)
    lines += _figures(
        [
            ("document 001, PyTorch printout: tensor(1.0401)", "1.0401"),
            ("document 001, by hand: 4.16007/4", "1.0400175"),
            ("the same hand method replayed (p rounded to 4 places)", _exact(_hand(ex, 4))),
            ("xent_ref in float32 (PyTorch's default dtype)",
             _float32(xr.cross_entropy, LOGITS_4X3, LABELS_4X3, **kwargs)),
            ("exact (float64)", _exact(ex.result)),
        ]
    )
    lines += [""] + _wrap(
        "Why they differ: the hand calculation uses probabilities rounded to 4 places "
        "(0.4018, 0.2683, 0.3603) and logs rounded to 6; the replay above rounds "
        "the probabilities the same way and lands on the document's figure to within "
        "its last digit. The exact value needs the unrounded probabilities. The row whose label is 2 is ignored, "
        "so its weight 2 is in neither the numerator nor the denominator: "
        f"2 + 1 + 1 = {ex.denominator:g}."
    )
    return lines


@_example("label-smoothing", "label smoothing, eps = 0.1 over 10 classes", "003")
def _label_smoothing() -> list[str]:
    eps, num_classes = 0.1, 10
    labels = np.array([2, 5])  # the document's example targets
    logits = np.random.default_rng(3).normal(size=(2, num_classes)).round(2)
    one_hot = np.eye(num_classes)[labels]
    smoothed = (1 - eps) * one_hot + eps / num_classes  # document 003's formula
    log_probs = xr.log_softmax(logits, axis=1)
    by_class = (-smoothed * log_probs).mean(0).sum()  # document 003's loss, line for line
    ex, table = _explained("cross_entropy", logits, labels, label_smoothing=eps)
    lines = ["logits (2 samples x 10 classes, fixed seed; the document draws them at random):"]
    lines += ["  " + np.array2string(row, precision=2, max_line_width=WIDTH - 4) for row in logits]
    lines += [""] + _figures(
        [
            ("document 003: smoothed true class", "0.91"),
            ("smoothed true class, (1 - eps) * 1 + eps / K", f"{smoothed[0, 2]:.10g}"),
            ("document 003: every other class", "0.01"),
            ("every other class, eps / K", f"{smoothed[0, 0]:.10g}"),
        ]
    )
    lines += ["", *table]
    lines += _figures(
        [
            ("document 003's class: (-targets*log_probs).mean(0).sum()", _exact(by_class)),
            ("cross_entropy(label_smoothing=0.1)", _exact(ex.result)),
            ("cross_entropy(smoothed targets as probabilities)",
             _exact(xr.cross_entropy(logits, smoothed))),
            ("difference, class minus library", f"{by_class - ex.result:.1e}"),
        ]
    )
    lines += [""] + _wrap(
        "Why they are equal: for one sample, sum_c y_c * -log p_c with the smoothed y "
        "is (1 - eps) * -log p_true + (eps / K) * sum_c -log p_c, which is the "
        "library's loss row by row; .mean(0).sum() averages the rows. They part ways "
        "with class weights: PyTorch then divides by the sum of the targets' weights."
    )
    return lines


@_example("binary", "BCE and BCE with logits, pos_weight=3", "004")
def _binary() -> list[str]:
    logits = np.array(BINARY_LOGITS)
    # sigmoid(x) is a two-class softmax over the logits (0, x).
    probs = xr.softmax(np.stack([np.zeros_like(logits), logits], axis=-1))[:, 1]
    bce = xr.binary_cross_entropy(probs, BINARY_TARGETS)
    with_logits = xr.binary_cross_entropy_with_logits(logits, BINARY_TARGETS)
    lines = _figures(
        [
            ("document 004: sigmoid(logits)", "[0.8808, 0.2689, 0.6225]"),
            ("sigmoid(logits), exact", np.array2string(probs, precision=8, separator=", ")),
        ]
    )
    lines += ["", str(explain("binary_cross_entropy", probs, BINARY_TARGETS)), ""]
    lines += [str(explain("binary_cross_entropy_with_logits", logits, BINARY_TARGETS,
                          pos_weight=[3.0])), ""]
    lines += _figures(
        [
            ("document 004: losses printed, values not shown", "-"),
            ("BCELoss(sigmoid(logits)), exact", _exact(bce)),
            ("BCEWithLogitsLoss(logits), exact", _exact(with_logits)),
            ("difference", f"{bce - with_logits:.1e}"),
            ("BCEWithLogitsLoss(pos_weight=3), exact", _exact(
                xr.binary_cross_entropy_with_logits(logits, BINARY_TARGETS, pos_weight=[3.0])
            )),
        ]
    )
    lines += [""] + _wrap(
        "Why: both forms give the same number here. Only the logits form stays exact "
        "for large |x|: it never computes 1 - p, while the probability form rounds "
        "p to 1 and clamps the log at -100. pos_weight=3 triples the "
        "positive rows' -log p (samples 0 and 2) and leaves the negative row alone; "
        "the mean still divides by 3 elements."
    )
    return lines


# ----- the command ----------------------------------------------------------


def run(name: str) -> str:
    """The text of one example (raises KeyError for an unknown name)."""
    example = EXAMPLES[name]
    return "\n".join(_header(example) + example.replay()) + "\n"


def main(names: list[str] | tuple[str, ...] = (), list_only: bool = False) -> int:
    """Print the examples named (all when none); return the exit status."""
    if list_only:
        width = max(len(name) for name in EXAMPLES)
        for example in EXAMPLES.values():
            print(f"{example.name.ljust(width)}  {example.title} (document {example.document})")
        return 0
    unknown = [name for name in names if name not in EXAMPLES]
    if unknown:
        print(f"unknown example {', '.join(unknown)}; choose from: {', '.join(EXAMPLES)}",
              file=sys.stderr)
        return 2
    print("\n".join(run(name) for name in (names or list(EXAMPLES))), end="")
    return 0
