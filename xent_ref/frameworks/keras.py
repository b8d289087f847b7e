r"""Keras 3's cross-entropies (``keras.losses``), with their reductions and gradients.

Keras names the arguments ``(y_true, y_pred)`` -- target first -- and puts the
class axis last (``axis=-1``). Its loss *functions* return one loss per example;
its loss *classes* (``keras.losses.SparseCategoricalCrossentropy(...)``) reduce
them, by default with ``"sum_over_batch_size"``. Here every function does both:
``reduction="none"`` (the default) is the function, any other reduction (with
``sample_weight``) is the class's ``__call__``.

Where Keras differs from ``torch.nn.functional.cross_entropy``:

* ``from_logits=False`` is the default: ``y_pred`` holds probabilities, which
  Keras first rescales to sum to 1 along ``axis`` and then **clips to**
  ``[1e-7, 1 - 1e-7]`` (``keras.config.epsilon()``) before the log; a clipped
  probability's gradient is 0. (PyTorch's ``cross_entropy`` takes logits only;
  its ``binary_cross_entropy`` clamps the *log* at -100 instead.)
* ``"sum_over_batch_size"`` (and its alias ``"mean"``) divides the weighted sum
  by the **number of losses**, not by the sum of the weights: PyTorch's weighted
  ``mean`` divides by the total weight (Keras's ``"mean_with_sample_weight"``).
* ``ignore_class`` masks examples; the masked ``"sum_over_batch_size"`` is the sum
  over the kept examples divided by their count -- and **0, not nan, when every
  example is ignored** (``divide_no_nan``). Weights are per example
  (``sample_weight``), not per class.
* ``label_smoothing`` of ``categorical_crossentropy`` is PyTorch's
  :math:`y(1-\varepsilon) + \varepsilon/C`; ``sparse_categorical_crossentropy``
  has none; ``binary_crossentropy`` smooths towards 1/2,
  :math:`y(1-\varepsilon) + \varepsilon/2`, and then takes the **mean over**
  ``axis``, the last one (PyTorch's ``reduction="none"`` keeps every element).
* Keras's loss classes compute in ``keras.config.floatx()`` (float32) whatever the
  input; here the input's dtype is kept. Out-of-range class indices give loss 0
  in Keras (an all-zero one-hot); here they are a ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.blocks import library_errstate
from xent_ref.binary import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
)
from xent_ref.frameworks.shared import (
    batch_shape,
    class_axis,
    integer_labels,
    per_example_cross_entropy,
)

EPSILON = 1e-7  # keras.config.epsilon()
REDUCTIONS = ("none", None, "sum", "sum_over_batch_size", "mean", "mean_with_sample_weight")


def reduction_coefficients(shape, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=np.float64) -> np.ndarray:
    r"""The coefficients :math:`c_i` of a Keras reduction: the loss is :math:`\sum_i c_i \ell_i`.

    Every Keras reduction is linear in the losses, so one array says it all, and
    it is the reduction's gradient too (:math:`\partial L / \partial \ell_i = c_i`).
    With :math:`s_i` the sample weights (ones), :math:`m_i` the mask (ones),
    :math:`n` the number of losses and :math:`k = \sum_i m_i`:

    * ``"sum"``: :math:`c_i = s_i m_i`;
    * ``"sum_over_batch_size"`` / ``"mean"``: :math:`c_i = s_i m_i (n / k) / n`, each
      division "no nan" (0 when the divisor is 0);
    * ``"mean_with_sample_weight"``: :math:`c_i = s_i m_i / \sum_j s_j m_j` (no nan);
    * ``"none"``: :math:`c_i = s_i m_i` element by element (no sum).

    >>> reduction_coefficients((4,), mask=[True, True, False, False])
    array([0.5, 0.5, 0. , 0. ])
    >>> reduction_coefficients((2,), mask=[False, False])
    array([0., 0.])
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    shape = tuple(shape)
    coefficients = np.ones(shape, dtype)
    n = int(np.prod(shape))
    if mask is not None:
        mask = np.broadcast_to(checks.as_array(mask, "mask").astype(bool), shape)
        kept = int(np.count_nonzero(mask))
        # apply_mask: a masked mean first scales the mask by n / k (0 when k = 0)
        scale = (n / kept if kept else 0.0) if reduction in ("mean", "sum_over_batch_size") \
            else 1.0
        coefficients = np.where(mask, scale, 0.0).astype(dtype)
    if sample_weight is not None:
        coefficients = coefficients * _sample_weight(sample_weight, shape, dtype)
    if reduction in ("none", None, "sum") or shape in ((), (0,)):
        return coefficients
    # reduce_values: the masked sample weights' sum, or n when there are neither
    weighted = sample_weight is not None or mask is not None
    total = coefficients.sum() if reduction == "mean_with_sample_weight" and weighted else n
    return (coefficients / total if total else np.zeros_like(coefficients)).astype(dtype)


def _sample_weight(sample_weight, shape, dtype) -> np.ndarray:
    """Keras's ``squeeze_or_expand_to_same_rank``, then a broadcast to the losses' shape."""
    weight = checks.as_float_array(sample_weight, "sample_weight", dtype)
    if weight.ndim == len(shape) + 1 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    try:
        return np.broadcast_to(weight, shape)
    except ValueError:
        raise ValueError(f"sample_weight: shape {weight.shape} does not broadcast to the "
                         f"losses' shape {shape}") from None


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size") -> np.ndarray:
    """Keras's ``reduce_weighted_values``: :math:`\\sum_i c_i \\ell_i` (see
    :func:`reduction_coefficients`), or :math:`c_i \\ell_i` for ``"none"``.

    >>> float(reduce_weighted_values([1.0, 3.0], sample_weight=[1.0, 0.0]))
    0.5
    >>> float(reduce_weighted_values([1.0, 3.0], sample_weight=[1.0, 0.0],
    ...                              reduction="mean_with_sample_weight"))
    1.0
    """
    values = checks.as_float_array(values, "values")
    c = reduction_coefficients(values.shape, sample_weight, mask, reduction, values.dtype)
    with library_errstate():
        weighted = values * c
        if reduction in ("none", None) or values.shape in ((), (0,)):
            return weighted
        return np.asarray(weighted.sum(), values.dtype)


def _upstream(values_shape, sample_weight, mask, reduction, grad_output, dtype):
    """:math:`\\partial L / \\partial \\ell_i`: the coefficients times ``grad_output``."""
    c = reduction_coefficients(values_shape, sample_weight, mask, reduction, dtype)
    unreduced = reduction in ("none", None) or tuple(values_shape) in ((), (0,))
    g = checks.grad_output(grad_output, "none" if unreduced else "sum", tuple(values_shape),
                           dtype)
    return (c * g).astype(dtype, copy=False)


def _clipped(probs: np.ndarray):
    """``(clip(p, eps, 1 - eps), inside)``: the clipped probabilities and where the clip is the
    identity (elsewhere its derivative is 0)."""
    eps = probs.dtype.type(EPSILON)
    one = probs.dtype.type(1)
    clipped = np.clip(probs, eps, one - eps)
    return clipped, (probs > eps) & (probs < one - eps)


def _categorical_from_probs(y_pred: np.ndarray, y_true: np.ndarray, axis: int, g=None):
    r"""Keras's probability branch: :math:`u = o / \sum o`, :math:`\ell = -\sum_c y_c \log
    \operatorname{clip}(u_c)`; with ``g`` (per example) also the gradient

    .. math::

        G_c = -\frac{y_c}{u_c}[\epsilon < u_c < 1 - \epsilon], \qquad
        \frac{\partial \ell}{\partial o_j} = \frac{G_j - \sum_c G_c u_c}{\sum_c o_c},

    from :math:`\partial u_c / \partial o_j = (\delta_{cj} - u_c) / \sum_k o_k`.
    """
    with library_errstate():
        total = y_pred.sum(axis=axis, keepdims=True)
        u = y_pred / total
        clipped, inside = _clipped(u)
        loss = -(y_true * np.log(clipped)).sum(axis=axis)
        if g is None:
            return loss
        big_g = np.where(inside, -y_true / clipped, 0.0)
        grad = (big_g - (big_g * u).sum(axis=axis, keepdims=True)) / total
        return grad * np.expand_dims(g, axis)


def _sparse_targets(y_true, y_pred: np.ndarray, axis: int) -> np.ndarray:
    """Integer class indices of the shape ``y_pred`` without ``axis`` (a trailing 1 squeezed,
    integral floats accepted: Keras casts its labels to int32)."""
    y_true = checks.as_array(y_true, "y_true")
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = np.squeeze(y_true, axis=axis)
    if y_true.dtype.kind == "f":
        if not np.all(np.isfinite(y_true) & (y_true == np.round(y_true))):
            raise TypeError("y_true: class indices must be whole numbers")
        y_true = y_true.astype(np.int64)
    return y_true


def _sparse_call(y_true, y_pred, ignore_class, axis):
    """``(y_pred, axis, t, ignore_index, mask)`` of a sparse call (``mask`` None without
    ``ignore_class``)."""
    y_pred = checks.as_input(y_pred, "y_pred")
    axis = class_axis(y_pred, axis)
    ignore = None if ignore_class is None else checks.check_ignore_index(ignore_class)
    # (in range, or ignore_class: Keras's one-hot would silently give 0 for the rest)
    t = integer_labels(_sparse_targets(y_true, y_pred, axis), batch_shape(y_pred.shape, axis),
                       y_pred.shape[axis], "y_true", ignore)
    ignore = -(2**63) if ignore is None else ignore  # (no label equals it: all in range)
    return y_pred, axis, t, ignore, None if ignore_class is None else t != ignore


def _sparse(call, from_logits, grad_values=None):
    """The per-example losses, or with ``grad_values`` (per example) the gradient."""
    y_pred, axis, t, ignore, mask = call
    with_grad = grad_values is not None
    if from_logits:
        loss, grad = per_example_cross_entropy(y_pred, t, axis, ignore_index=ignore,
                                               grad_output=grad_values, with_grad=with_grad)
        return grad if with_grad else loss
    n_classes = y_pred.shape[axis]
    kept = np.ones(t.shape, bool) if mask is None else mask
    one_hot = np.moveaxis(np.eye(n_classes, dtype=y_pred.dtype)[np.where(kept, t, 0)], -1,
                          axis) * np.expand_dims(kept, axis)
    g = np.where(kept, grad_values, 0.0) if with_grad else None
    out = _categorical_from_probs(y_pred, one_hot, axis, g)
    keep = np.expand_dims(kept, axis) if with_grad else kept
    return np.where(keep, out, 0.0).astype(y_pred.dtype)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1, *, reduction="none", sample_weight=None):
    r"""``keras.losses.sparse_categorical_crossentropy``: :math:`-\log p_{t}` per example.

    ``reduction`` other than ``"none"`` (with ``sample_weight``) gives
    ``keras.losses.SparseCategoricalCrossentropy(from_logits, ignore_class,
    reduction, axis)(y_true, y_pred, sample_weight)``. ``ignore_class`` examples
    have loss 0 and are left out of a mean's count:

    >>> from xent_ref.frameworks.keras import sparse_categorical_crossentropy
    >>> sparse_categorical_crossentropy([0, 1], [[0.9, 0.1], [0.4, 0.6]]).round(4)
    array([0.1054, 0.5108])
    >>> float(sparse_categorical_crossentropy([-1, -1], [[0.0, 0.0], [0.0, 0.0]], True,
    ...                                       ignore_class=-1, reduction="sum_over_batch_size"))
    0.0
    """
    call = _sparse_call(y_true, y_pred, ignore_class, axis)
    return reduce_weighted_values(_sparse(call, from_logits), sample_weight, call[-1], reduction)


def sparse_categorical_crossentropy_grad(y_true, y_pred, from_logits=False, ignore_class=None,
                                         axis=-1, *, reduction="none", sample_weight=None,
                                         grad_output=None):
    r"""Gradient of :func:`sparse_categorical_crossentropy` with respect to ``y_pred``.

    The reduction's coefficients :math:`c_i` (:func:`reduction_coefficients`) times
    the per-example gradient: ``softmax - one_hot`` for logits; for probabilities
    the clipped-log gradient of :func:`_categorical_from_probs` with a one-hot
    :math:`y`. Ignored examples get 0.

    >>> from xent_ref.frameworks.keras import sparse_categorical_crossentropy_grad
    >>> sparse_categorical_crossentropy_grad([0, 1], [[0.0, 0.0], [0.0, 0.0]], True,
    ...                                      reduction="sum_over_batch_size")
    array([[-0.25,  0.25],
           [ 0.25, -0.25]])
    """
    call = _sparse_call(y_true, y_pred, ignore_class, axis)
    y_pred, _, t, _, mask = call
    g = _upstream(t.shape, sample_weight, mask, reduction, grad_output, y_pred.dtype)
    return _sparse(call, from_logits, g)


def _categorical(y_true, y_pred, from_logits, label_smoothing, axis, g=None):
    y_pred = checks.as_input(y_pred, "y_pred")
    axis = class_axis(y_pred, axis)
    y = checks.same_shape_target(y_true, y_pred, "y_true")
    checks.check_label_smoothing(label_smoothing)
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[axis]
    if from_logits:
        loss, grad = per_example_cross_entropy(y_pred, y, axis, grad_output=g,
                                               with_grad=g is not None)
        return loss if g is None else grad
    return _categorical_from_probs(y_pred, y, axis, g).astype(y_pred.dtype, copy=False)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                             *, reduction="none", sample_weight=None):
    r"""``keras.losses.categorical_crossentropy``: :math:`-\sum_c y_c \log p_c` per example.

    With ``label_smoothing`` :math:`\varepsilon` the target is
    :math:`y(1-\varepsilon) + \varepsilon / C`; probabilities are rescaled and
    clipped as the module docstring says.

    >>> from xent_ref.frameworks.keras import categorical_crossentropy
    >>> categorical_crossentropy([[0, 1, 0], [0, 0, 1]],
    ...                          [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]).round(4)
    array([0.0513, 2.3026])
    """
    losses = _categorical(y_true, y_pred, from_logits, label_smoothing, axis)
    return reduce_weighted_values(losses, sample_weight, None, reduction)


def categorical_crossentropy_grad(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                                  axis=-1, *, reduction="none", sample_weight=None,
                                  grad_output=None):
    r"""Gradient of :func:`categorical_crossentropy` with respect to ``y_pred``:
    :math:`c_i (A p - y')` for logits (:math:`A = \sum_c y'_c`), the clipped-log
    gradient for probabilities, :math:`c_i` the reduction's coefficients.

    >>> from xent_ref.frameworks.keras import categorical_crossentropy_grad
    >>> categorical_crossentropy_grad([[1.0, 0.0]], [[0.0, 0.0]], from_logits=True)
    array([[-0.5,  0.5]])
    """
    y_pred = checks.as_input(y_pred, "y_pred")
    shape = batch_shape(y_pred.shape, class_axis(y_pred, axis))
    g = _upstream(shape, sample_weight, None, reduction, grad_output, y_pred.dtype)
    return _categorical(y_true, y_pred, from_logits, label_smoothing, axis, g)


def _binary(y_true, y_pred, from_logits, label_smoothing, axis, g=None):
    """Element-wise binary cross-entropy (or its gradient, ``g`` per element)."""
    y_pred = checks.as_input(y_pred, "y_pred")
    y = checks.same_shape_target(y_true, y_pred, "y_true")
    checks.check_label_smoothing(label_smoothing)
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        if g is None:
            return binary_cross_entropy_with_logits(y_pred, y, reduction="none")
        return binary_cross_entropy_with_logits_grad(y_pred, y, reduction="none",
                                                     grad_output=g)
    p, inside = _clipped(y_pred)
    with library_errstate():
        if g is None:
            return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
        # d/dp [-(y log p + (1 - y) log(1 - p))] = (1 - y)/(1 - p) - y/p, inside the clip
        return np.where(inside, (1.0 - y) / (1.0 - p) - y / p, 0.0) * g


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, *,
                        reduction="none", sample_weight=None):
    r"""``keras.losses.binary_crossentropy``: the mean over ``axis`` of
    :math:`-[y \log p + (1-y)\log(1-p)]`, :math:`p` clipped to ``[1e-7, 1 - 1e-7]``
    (or :math:`p = \sigma(x)` with ``from_logits``).

    >>> from xent_ref.frameworks.keras import binary_crossentropy
    >>> binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]).round(4)
    array([0.9163, 0.7136])
    """
    elements = _binary(y_true, y_pred, from_logits, label_smoothing, axis)
    axis = class_axis(elements, axis)
    losses = np.asarray(elements.mean(axis=axis), elements.dtype)
    return reduce_weighted_values(losses, sample_weight, None, reduction)


def binary_crossentropy_grad(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                             *, reduction="none", sample_weight=None, grad_output=None):
    r"""Gradient of :func:`binary_crossentropy`: each element's derivative
    (:math:`\sigma(x) - y` for logits; :math:`(1-y)/(1-p) - y/p` inside the clip, 0
    outside, for probabilities) divided by the size of ``axis`` (the mean) and
    times the reduction's coefficient of its example.

    >>> from xent_ref.frameworks.keras import binary_crossentropy_grad
    >>> binary_crossentropy_grad([[1.0, 0.0]], [[0.0, 0.0]], from_logits=True)
    array([[-0.25,  0.25]])
    """
    y_pred = checks.as_input(y_pred, "y_pred")
    axis = class_axis(y_pred, axis)
    shape = batch_shape(y_pred.shape, axis)
    g = _upstream(shape, sample_weight, None, reduction, grad_output, y_pred.dtype)
    g = np.broadcast_to(np.expand_dims(g, axis) / y_pred.shape[axis], y_pred.shape)
    return _binary(y_true, y_pred, from_logits, label_smoothing, axis,
                   np.ascontiguousarray(g)).astype(y_pred.dtype, copy=False)
