r"""Cross-entropy's targets as a *target mass*, one row per sample, for the losses built on it.

Every option of :func:`xent_ref.cross_entropy` -- class indices or probabilities, class
weights :math:`w`, ``ignore_index``, label smoothing :math:`\varepsilon` -- comes down to one
non-negative row :math:`q_i` per sample (see :mod:`xent_ref.cross_entropy`):

.. math::

    q_{ic} = (1-\varepsilon)\, w_{t_i} [c = t_i] + \tfrac{\varepsilon}{C} w_c
    \quad\text{(class index)}, \qquad
    q_{ic} = w_c\big((1-\varepsilon)\, y_{ic} + \tfrac{\varepsilon}{C}\big)
    \quad\text{(probabilities)},

zero for an ignored sample, and ``mean`` divides by cross-entropy's denominator (the kept
targets' total weight :math:`\sum_{i\,\text{kept}} w_{t_i}`, or the number of samples for
probabilities). The focal loss and poly-1 are sums over the same :math:`q` of a
different function of :math:`p_c`, so they take their targets, options and ``mean`` from
here, and reduce to cross-entropy exactly where their extra parameter is 0.

The rows are laid out ``(R, C)``, class axis last: an ``(N, C, d1..dk)`` input gives
``R = N d1 ... dk`` rows; a ``(C,)`` input, one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.reduce import per_sample_scale, reduce


@dataclass
class TargetMass:
    """A validated call, as rows: ``logits`` and ``q`` ``(R, C)``, ``kept`` ``(R,)``."""

    logits: np.ndarray
    q: np.ndarray
    kept: np.ndarray
    denominator: float  # of reduction="mean" (an int when it is a count)
    reduction: str
    input_shape: tuple
    loss_shape: tuple

    def reduced(self, row_losses: np.ndarray) -> np.ndarray:
        """Per-row losses ``(R,)`` with the call's reduction (0 rows ignored: ``q`` is 0)."""
        return reduce(row_losses.reshape(self.loss_shape), self.reduction, self.denominator)

    def row_scale(self, grad_output) -> np.ndarray:
        """``d loss / d row_loss_i`` for every row, ``(R, 1)``; 0 on ignored rows."""
        g = checks.grad_output(grad_output, self.reduction, self.loss_shape, self.logits.dtype)
        scale = np.broadcast_to(per_sample_scale(g, self.reduction, self.denominator),
                                self.loss_shape).reshape(-1)
        # (where, not a product: a mean over a zero total weight has an infinite scale)
        return np.where(self.kept, scale, 0).astype(self.logits.dtype)[:, None]

    def in_input_layout(self, rows: np.ndarray) -> np.ndarray:
        """``(R, C)`` rows (a gradient) back in the input's shape."""
        if len(self.input_shape) <= 2:
            return rows.reshape(self.input_shape)
        n, c, *rest = self.input_shape
        return np.moveaxis(rows.reshape(n, *rest, c), -1, 1)


def target_mass(input, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0) -> TargetMass:
    """Validate a cross-entropy-style call and lay it out as rows with their target mass.

    >>> tm = target_mass([[0.0, 1.0], [2.0, 0.0]], [1, -100], weight=[1.0, 3.0])
    >>> tm.q, tm.kept, float(tm.denominator)
    (array([[0., 3.],
           [0., 0.]]), array([ True, False]), 3.0)
    """
    logits = checks.as_input(input)
    reduction = checks.check_reduction(reduction)
    ignore_index = checks.check_ignore_index(ignore_index)
    eps = checks.check_label_smoothing(label_smoothing)
    c = logits.shape[0 if logits.ndim == 1 else 1]
    if c == 0:
        raise ValueError(f"input: the class axis has size 0 (input shape {logits.shape})")
    w = checks.class_weight(weight, c, logits.dtype)
    rows = _as_rows(logits)
    target = checks.as_array(target, "target")
    loss_shape = () if logits.ndim == 1 else (logits.shape[0],) + logits.shape[2:]
    ones = np.ones(c, logits.dtype) if w is None else w
    if target.shape == logits.shape:
        y = _as_rows(checks.probability_target(target, ignore_index, logits.dtype))
        q = ones * ((1 - eps) * y + eps / c)
        kept = np.ones(len(rows), bool)
        return TargetMass(rows, q, kept, len(rows), reduction, logits.shape, loss_shape)
    t = checks.index_target(target, logits.shape, ignore_index).reshape(-1)
    kept = t != ignore_index
    t = np.where(kept, t, 0)
    w_t = np.where(kept, ones[t], 0).astype(logits.dtype)
    q = (eps / c) * np.where(kept[:, None], ones, 0).astype(logits.dtype)
    q[np.arange(len(t)), t] += (1 - eps) * w_t
    denominator = int(kept.sum()) if w is None else w_t.sum(dtype=logits.dtype)
    return TargetMass(rows, q, kept, denominator, reduction, logits.shape, loss_shape)


def _as_rows(a: np.ndarray) -> np.ndarray:
    """``(C,)`` -> ``(1, C)``; ``(N, C, d1..dk)`` -> ``(N d1..dk, C)`` (class axis last)."""
    if a.ndim == 1:
        return a.reshape(1, -1)
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def one_minus_probs(probs: np.ndarray) -> np.ndarray:
    r""":math:`1 - p_c` for every class of ``(R, C)`` softmax rows, without cancellation:
    at each row's top class it is the sum of the *other* probabilities (a confident row's
    :math:`1 - p_{j^*}` is ``2e-22`` for logits ``[50, 0, 0]``, not ``1 - 1 = 0``); elsewhere
    :math:`p_c \le 1/2` and ``1 - p`` is exact to rounding.

    >>> float(one_minus_probs(np.array([[1.0 - 2e-22, 1e-22, 1e-22]]))[0, 0])
    2e-22
    """
    result = 1 - probs
    top = np.argmax(probs, axis=1)[:, None]
    others = probs.copy()
    np.put_along_axis(others, top, 0.0, axis=1)
    np.put_along_axis(result, top, others.sum(axis=1, keepdims=True), axis=1)
    return result
