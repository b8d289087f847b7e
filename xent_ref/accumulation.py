r"""Gradient accumulation: one step's cross-entropy over several micro-batches.

A batch too large for memory is cut into micro-batches, each run forward and
backward on its own, and their gradients are added before the optimizer steps.
The step means to minimise the batch's ``mean`` loss,

.. math::

    L = \frac{x_1 + x_2 + \dots + x_K}{n_1 + n_2 + \dots + n_K},

with :math:`x_k` micro-batch k's summed loss and :math:`n_k` its ``mean``
denominator (its kept tokens, or their total class weight). That needs the
**global divisor** :math:`N = \sum_k n_k` before any micro-batch runs: each one
then backpropagates :math:`x_k / N` (``reduction="sum"`` scaled by :math:`1/N`).

The common shortcut takes each micro-batch's own mean and averages those,

.. math::

    L' = \frac{1}{K}\Big(\frac{x_1}{n_1} + \dots + \frac{x_K}{n_K}\Big),

which equals :math:`L` only when every :math:`n_k` is the same. With padding or
ignored tokens the counts differ, a short micro-batch's tokens weigh more than a
long one's, and the accumulated gradient is not the full batch's (the bug of
several trainers' accumulation, fixed by passing the global count down).
:func:`accumulated_cross_entropy` computes both; its result's ``explain()`` shows
the two numbers side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref._engine import checks
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad

DIVISORS = ("global", "per_micro_batch")


@dataclass(frozen=True)
class Accumulation:
    """Both ways of accumulating, for one list of micro-batches."""

    divisor: str  # the one ``loss`` and ``grads`` follow
    sums: tuple  # x_k, each micro-batch's reduction="sum" loss
    counts: tuple  # n_k, each micro-batch's mean denominator
    loss: np.ndarray
    grads: tuple | None  # one gradient per micro-batch, for ``divisor``
    global_mean: float  # (x_1 + ... + x_K) / (n_1 + ... + n_K)
    per_micro_batch_mean: float  # (x_1 / n_1 + ... + x_K / n_K) / K

    def explain(self) -> str:
        """The two formulas with this step's numbers."""
        lines = [f"micro-batch {k + 1}: x{k + 1} = {x:.6g}, n{k + 1} = {n:g}, mean = "
                 f"{_ratio(x, n):.6g}" for k, (x, n) in enumerate(zip(self.sums, self.counts))]
        xs = " + ".join(f"x{k + 1}" for k in range(len(self.sums)))
        ns = " + ".join(f"n{k + 1}" for k in range(len(self.sums)))
        means = " + ".join(f"x{k + 1}/n{k + 1}" for k in range(len(self.sums)))
        lines.append(f"global divisor:       ({xs}) / ({ns}) = {self.global_mean:.6g}")
        lines.append(f"per-micro-batch mean: ({means}) / {len(self.sums)} = "
                     f"{self.per_micro_batch_mean:.6g}")
        same = np.isclose(self.global_mean, self.per_micro_batch_mean, rtol=1e-12, atol=0)
        lines.append("equal: every n_k is the same" if same else
                     "they differ: the micro-batches hold different numbers of tokens")
        return "\n".join(lines)

    __str__ = explain


def _ratio(x: float, n: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(x) / np.float64(n))


def mean_denominator(input, target, weight=None, ignore_index=-100) -> float:
    r"""The denominator of ``cross_entropy(input, target, weight, ignore_index, "mean")``.

    :math:`\sum_{i\,\text{kept}} w_{t_i}` for class indices (the kept count without
    weights); the number of samples for probability targets.

    >>> mean_denominator([[0.0, 0.0]] * 3, [0, -100, 1], weight=[1.0, 3.0])
    4.0
    """
    logits = checks.as_input(input)
    target = checks.as_array(target, "target")
    n_classes = logits.shape[0 if logits.ndim == 1 else 1]
    if target.shape == logits.shape and target.dtype.kind == "f":
        return float(logits.size // max(n_classes, 1))
    target = checks.index_target(target, logits.shape, checks.check_ignore_index(ignore_index))
    kept = target != ignore_index
    if weight is None:
        return float(np.count_nonzero(kept))
    w = checks.class_weight(weight, n_classes, np.float64)
    return float(w[target[kept]].sum())


def accumulated_cross_entropy(micro_batches, *, divisor="global", weight=None,
                              ignore_index=-100, label_smoothing=0.0, grad_output=None,
                              with_grad=True) -> Accumulation:
    r"""Cross-entropy accumulated over ``micro_batches``, a list of ``(input, target)`` pairs.

    ``divisor="global"`` gives the full batch's ``mean`` (:math:`\sum x_k / \sum n_k`) and
    per micro-batch gradients :math:`\partial(x_k / N)/\partial \text{input}_k`;
    ``"per_micro_batch"`` gives :math:`\frac{1}{K}\sum_k x_k / n_k` and the gradients of
    ``mean / K``. Both numbers are in the result either way.

    >>> step = accumulated_cross_entropy([([[0.0, 0.0], [0.0, 0.0]], [0, 1]),
    ...                                   ([[2.0, 0.0], [0.0, 0.0]], [1, -100])])
    >>> round(step.global_mean, 4), round(step.per_micro_batch_mean, 4)
    (1.1711, 1.41)
    >>> print(step.explain())
    micro-batch 1: x1 = 1.38629, n1 = 2, mean = 0.693147
    micro-batch 2: x2 = 2.12693, n2 = 1, mean = 2.12693
    global divisor:       (x1 + x2) / (n1 + n2) = 1.17107
    per-micro-batch mean: (x1/n1 + x2/n2) / 2 = 1.41004
    they differ: the micro-batches hold different numbers of tokens
    """
    if divisor not in DIVISORS:
        raise ValueError(f"divisor: expected one of {DIVISORS}, got {divisor!r}")
    if isinstance(micro_batches, np.ndarray) or not len(micro_batches):
        raise TypeError("micro_batches: expected a non-empty list of (input, target) pairs")
    common = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)
    sums = tuple(float(cross_entropy(x, t, reduction="sum", **common)) for x, t in micro_batches)
    counts = tuple(mean_denominator(x, t, weight, ignore_index) for x, t in micro_batches)
    k = len(micro_batches)
    global_mean = _ratio(sum(sums), sum(counts))
    per_micro = float(np.mean([_ratio(x, n) for x, n in zip(sums, counts)]))
    dtype = checks.as_input(micro_batches[0][0]).dtype
    g = float(checks.grad_output(grad_output, "sum", (), np.float64))
    loss = np.asarray(global_mean if divisor == "global" else per_micro, dtype)
    grads = None
    if with_grad:
        if divisor == "global":
            total = sum(counts)
            grads = tuple(cross_entropy_grad(x, t, reduction="sum", grad_output=_ratio(g, total),
                                             **common) for x, t in micro_batches)
        else:
            grads = tuple(cross_entropy_grad(x, t, reduction="mean", grad_output=g / k, **common)
                          for x, t in micro_batches)
    return Accumulation(divisor, sums, counts, loss, grads, global_mean, per_micro)
