"""What the framework references share: PyTorch's class axis, per-example losses.

Most frameworks put the class axis last (``axis=-1``) and return one loss per
example; PyTorch puts it at 1 and reduces. :func:`per_example_cross_entropy`
moves the axis, calls :func:`xent_ref.cross_entropy.cross_entropy_with_grad`
with ``reduction="none"`` and moves the gradient back, so every framework's
softmax cross-entropy is the library's one computation.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref.cross_entropy import cross_entropy, cross_entropy_with_grad


def class_axis(logits: np.ndarray, axis) -> int:
    """``axis`` checked against ``logits`` and made non-negative."""
    return checks.check_axis(axis, logits.ndim)


def batch_shape(shape: tuple, axis: int) -> tuple:
    """``shape`` without its class axis: the shape of one loss per example."""
    return tuple(shape[:axis]) + tuple(shape[axis + 1:])


def to_torch_layout(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` with its class axis moved to PyTorch's place (1; a 1-D input stays as it is).

    The other axes keep their order, so a loss of ``reduction="none"`` comes back
    with the shape of ``x`` without its class axis.
    """
    return x if x.ndim == 1 else np.moveaxis(x, axis, 1)


def from_torch_layout(x: np.ndarray, axis: int) -> np.ndarray:
    """The inverse of :func:`to_torch_layout`."""
    return x if x.ndim == 1 else np.moveaxis(x, 1, axis)


def per_example_cross_entropy(logits, target, axis=-1, *, label_smoothing=0.0,
                              ignore_index=-100, weight=None, grad_output=None,
                              with_grad=False):
    r"""``(losses, grad or None)``: the softmax cross-entropy of every example.

    ``logits`` has its classes along ``axis``; ``target`` is either class indices
    (the shape of ``logits`` without ``axis``) or probabilities (the shape of
    ``logits``). The losses are :math:`\ell = \sum_c q_c(-\log p_c)` of
    :mod:`xent_ref.cross_entropy` (``reduction="none"``), shape ``logits`` without
    ``axis``; the gradient, with the per-example upstream ``grad_output`` (that
    shape; ones by default), is :math:`g\,(A p - q)`, the shape of ``logits``.

    >>> losses, grad = per_example_cross_entropy([[0.0, 0.0], [0.0, 0.0]], [0, 1],
    ...                                          with_grad=True)
    >>> losses, grad
    (array([0.69314718, 0.69314718]), array([[-0.5,  0.5],
           [ 0.5, -0.5]]))
    """
    logits = checks.as_input(logits, "logits")
    axis = class_axis(logits, axis)
    target = checks.as_array(target, "target")
    if target.shape == logits.shape and target.dtype.kind == "f":
        target = to_torch_layout(target, axis)
    x = to_torch_layout(logits, axis)
    if not with_grad:
        return cross_entropy(x, target, weight, ignore_index, "none", label_smoothing), None
    loss, grad = cross_entropy_with_grad(x, target, weight, ignore_index, "none",
                                         label_smoothing, grad_output)
    return loss, from_torch_layout(grad, axis)


def integer_labels(labels, batch_shape: tuple, n_classes: int, name: str = "labels",
                   ignore_index=None) -> np.ndarray:
    """Class indices of shape ``batch_shape``, each in ``[0, n_classes)`` or ``ignore_index``.

    Where a framework does not check (its gather or one-hot takes whatever index it
    is given), an out-of-range label is a ``ValueError`` here.
    """
    labels = checks.as_array(labels, name)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices, got dtype {labels.dtype}")
    if labels.shape != tuple(batch_shape):
        raise ValueError(f"{name}: expected shape {tuple(batch_shape)} (the predictions "
                         f"without their class axis), got shape {labels.shape}")
    bad = (labels < 0) | (labels >= n_classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        allowed = "" if ignore_index is None else f", or {ignore_index}"
        raise ValueError(f"{name}: class index {int(labels[bad].flat[0])} is out of range "
                         f"for {n_classes} classes (valid: 0..{n_classes - 1}{allowed})")
    return labels.astype(np.int64, copy=False)
