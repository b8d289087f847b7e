r"""optax's classification losses (``optax.losses``), with their gradients.

Every function returns **per-example losses** -- optax never reduces: the caller
takes ``jnp.mean`` (and then the mean over a batch with masked examples counts the
masked ones, unless the caller divides by ``where.sum()``). The class axis is
``axis=-1`` by default, where PyTorch's is 1.

``where=`` (optax >= 0.2.4) is a boolean mask, either of the batch shape (one flag
per example, broadcast over the classes) or of the logits' shape (one flag per
class). A masked-out class takes no part in the softmax's normaliser (and, for
probability labels, none in the sum); an example with no class left has loss 0
and gradient 0. PyTorch has no such mask: its ``ignore_index`` drops whole
examples and then divides the mean by the kept count.

Differences from ``torch.nn.functional.cross_entropy`` in one place:

* no reduction, no class weights, no label smoothing (optax smooths the labels
  beforehand, with ``optax.smooth_labels``);
* :func:`softmax_cross_entropy` computes :math:`-\sum_c y_c \log p_c` literally, so
  a label 0 against a logit ``-inf`` gives ``0 * -inf = nan`` (as PyTorch's
  probability targets do); :func:`safe_softmax_cross_entropy` takes that term as 0;
* integer labels are not range-checked by optax (JAX's gather clamps); here an
  out-of-range label is a ``ValueError``;
* the gradient of a probability-label loss is :math:`g\,(p \sum_c y_c - y)`, exact
  for labels that do not sum to 1 (TensorFlow's is not: see
  :mod:`xent_ref.frameworks.tensorflow`).
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
from xent_ref.softmax import log_softmax, softmax


def _labels_like(labels, logits: np.ndarray) -> np.ndarray:
    """Probability labels broadcast to the logits' shape, in their dtype (optax casts)."""
    labels = checks.as_float_array(labels, "labels", logits.dtype)
    try:
        return np.broadcast_to(labels, logits.shape)
    except ValueError:
        raise ValueError(f"labels: shape {labels.shape} does not broadcast to the logits' "
                         f"shape {logits.shape}") from None


def _class_mask(where, logits: np.ndarray, axis: int) -> np.ndarray | None:
    """``where`` as a per-class mask of the logits' shape (``None``: no mask)."""
    if where is None:
        return None
    mask = checks.as_array(where, "where")
    if mask.ndim != logits.ndim:
        mask = np.expand_dims(mask, axis)  # one flag per example, as optax expands it
    try:
        return np.broadcast_to(mask.astype(bool), logits.shape)
    except ValueError:
        raise ValueError(f"where: shape {np.shape(where)} fits neither the batch shape nor "
                         f"the logits' shape {logits.shape}") from None


def _masked_softmax(logits: np.ndarray, mask: np.ndarray, axis: int):
    """``(log_probs, probs, any_kept)`` over the kept classes only (masked: -inf and 0).

    An example with no kept class would be all -inf (a nan softmax): its log-probs
    are set to -inf and its probabilities to 0, and ``any_kept`` says which those are.
    """
    with library_errstate():
        masked = np.where(mask, logits, -np.inf)
        any_kept = mask.any(axis=axis)
        safe = np.where(np.expand_dims(any_kept, axis), masked, 0.0)
        log_probs = np.where(mask, log_softmax(safe, axis), -np.inf)
        probs = np.where(mask, softmax(safe, axis), 0.0)
    return log_probs, probs, any_kept


def _upstream(grad_output, shape, dtype) -> np.ndarray:
    return checks.grad_output(grad_output, "none", shape, dtype)


def softmax_cross_entropy(logits, labels, axis=-1, where=None):
    r"""``optax.softmax_cross_entropy``: :math:`\ell = -\sum_{c \in W} y_c \log p^W_c` per example.

    :math:`p^W` is the softmax over the kept classes :math:`W` (all of them without
    ``where``). ``labels`` broadcast to the logits' shape; the loss has the logits'
    shape without ``axis`` (an int).

    >>> from xent_ref.frameworks.optax import softmax_cross_entropy
    >>> softmax_cross_entropy([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]],
    ...                       [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).round(4)
    array([0.2761, 2.9518])
    """
    logits = checks.as_input(logits, "logits")
    axis = class_axis(logits, axis)
    labels = _labels_like(labels, logits)
    mask = _class_mask(where, logits, axis)
    if mask is None:
        return per_example_cross_entropy(logits, labels, axis)[0]
    log_probs, _, _ = _masked_softmax(logits, mask, axis)
    with library_errstate():
        return -np.where(mask, labels * log_probs, 0.0).sum(axis=axis)


def softmax_cross_entropy_grad(logits, labels, axis=-1, where=None, grad_output=None):
    r"""Gradient of :func:`softmax_cross_entropy` with respect to ``logits``.

    With :math:`\log p^W_c = x_c - \log\sum_{k \in W} e^{x_k}` on the kept classes,
    :math:`\partial(-\log p^W_c)/\partial x_j = [j \in W]\,p^W_j - \delta_{cj}`, so

    .. math::

        \frac{\partial \ell}{\partial x_j} = [j \in W]\Big(p^W_j \sum_{c \in W} y_c - y_j\Big),

    times the example's upstream ``grad_output`` (the loss's shape, ones by default).

    >>> from xent_ref.frameworks.optax import softmax_cross_entropy_grad
    >>> softmax_cross_entropy_grad([[0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]],
    ...                            where=[[True, True, False]])
    array([[-0.5,  0.5,  0. ]])
    """
    logits = checks.as_input(logits, "logits")
    axis = class_axis(logits, axis)
    labels = _labels_like(labels, logits)
    mask = _class_mask(where, logits, axis)
    g = _upstream(grad_output, batch_shape(logits.shape, axis), logits.dtype)
    if mask is None:
        return per_example_cross_entropy(logits, labels, axis, grad_output=g,
                                         with_grad=True)[1]
    _, probs, _ = _masked_softmax(logits, mask, axis)
    kept_labels = np.where(mask, labels, 0.0)
    grad = probs * kept_labels.sum(axis=axis, keepdims=True) - kept_labels
    return (grad * np.expand_dims(g, axis)).astype(logits.dtype, copy=False)


def safe_softmax_cross_entropy(logits, labels):
    r"""``optax.safe_softmax_cross_entropy``: :math:`-\sum_c [y_c \ne 0]\, y_c \log p_c`
    (classes last).

    The term of a zero label is 0 even where :math:`\log p_c = -\infty` (the
    convention :math:`0 \log 0 = 0`), so ``-inf`` logits off the target are fine:

    >>> import numpy as np
    >>> from xent_ref.frameworks.optax import safe_softmax_cross_entropy, softmax_cross_entropy
    >>> x, y = [[0.0, -np.inf]], [[1.0, 0.0]]
    >>> safe_softmax_cross_entropy(x, y), softmax_cross_entropy(x, y)
    (array([-0.]), array([nan]))
    """
    logits = checks.as_input(logits, "logits")
    labels = _labels_like(labels, logits)
    with library_errstate():
        terms = np.where(labels != 0, labels * log_softmax(logits, -1), 0.0)
        return -terms.sum(axis=-1)


def safe_softmax_cross_entropy_grad(logits, labels, grad_output=None):
    r"""Gradient of :func:`safe_softmax_cross_entropy`: :math:`g\,(p \sum_c y_c - y)`.

    optax defines it by a custom JVP of the weighted log-softmax,
    :math:`\dot\ell = -\sum_c y_c(\dot x_c - \sum_k \dot x_k p_k)`; reading off the
    coefficient of :math:`\dot x_j` gives :math:`p_j \sum_c y_c - y_j` (0 where
    :math:`p_j = 0` and :math:`y_j = 0`: no nan from the ``-inf`` logits).

    >>> from xent_ref.frameworks.optax import safe_softmax_cross_entropy_grad
    >>> safe_softmax_cross_entropy_grad([[0.0, 0.0]], [[1.0, 0.0]])
    array([[-0.5,  0.5]])
    """
    logits = checks.as_input(logits, "logits")
    labels = _labels_like(labels, logits)
    g = _upstream(grad_output, logits.shape[:-1], logits.dtype)
    grad = softmax(logits, -1) * labels.sum(axis=-1, keepdims=True) - labels
    return (grad * g[..., None]).astype(logits.dtype, copy=False)


def _integer_layout(logits: np.ndarray, axis, where):
    """``(logits, where, undo)`` with the class axes flattened into the last one.

    optax accepts a tuple of axes: the label is then a flat index into a slice of
    their shape. ``undo`` puts a gradient of the flattened layout back.
    """
    axes = (axis,) if not isinstance(axis, tuple) else axis
    if not axes or not all(isinstance(a, (int, np.integer)) for a in axes):
        raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
    class_axes = tuple(class_axis(logits, a) for a in axes)
    batch_axes = tuple(a for a in range(logits.ndim) if a not in class_axes)
    order = batch_axes + class_axes
    moved = logits.transpose(order)
    batch_shape = moved.shape[:len(batch_axes)]
    flat = moved.reshape(batch_shape + (-1,))
    mask = None
    if where is not None:
        mask = checks.as_array(where, "where")
        if mask.ndim == logits.ndim:
            mask = mask.transpose(order).reshape(flat.shape)
        mask = _class_mask(mask, flat, flat.ndim - 1)

    def undo(grad):
        return grad.reshape(moved.shape).transpose(np.argsort(order))

    return flat, mask, undo


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None):
    r"""``optax.softmax_cross_entropy_with_integer_labels``:
    :math:`\log\sum_{k \in W} e^{x_k} - x_t` per example.

    The normaliser runs over the kept classes :math:`W`; the label's own logit is
    taken whether or not its class is kept (as optax does). ``axis`` may be a tuple
    of axes, the label then a flat index into their slice. Examples with no kept
    class have loss 0.

    >>> from xent_ref.frameworks.optax import softmax_cross_entropy_with_integer_labels
    >>> softmax_cross_entropy_with_integer_labels([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]],
    ...                                           [0, 1]).round(4)
    array([0.2761, 2.9518])
    """
    return _integer_labels_pass(logits, labels, axis, where, None, False)


def softmax_cross_entropy_with_integer_labels_grad(logits, labels, axis=-1, where=None,
                                                   grad_output=None):
    r"""Gradient of :func:`softmax_cross_entropy_with_integer_labels`.

    .. math::

        \frac{\partial \ell}{\partial x_j} = [j \in W]\, p^W_j - [j = t],

    times the upstream ``grad_output``; zero for an example with no kept class.

    >>> from xent_ref.frameworks.optax import softmax_cross_entropy_with_integer_labels_grad
    >>> softmax_cross_entropy_with_integer_labels_grad([[0.0, 0.0]], [1])
    array([[ 0.5, -0.5]])
    """
    return _integer_labels_pass(logits, labels, axis, where, grad_output, True)


def _integer_labels_pass(logits, labels, axis, where, grad_output, with_grad):
    logits = checks.as_input(logits, "logits")
    flat, mask, undo = _integer_layout(logits, axis, where)
    labels = integer_labels(labels, flat.shape[:-1], flat.shape[-1])
    g = _upstream(grad_output, flat.shape[:-1], logits.dtype) if with_grad else None
    if mask is None:
        # (no label equals the ignore_index int64's minimum: they were checked in range)
        loss, grad = per_example_cross_entropy(flat, labels, -1, ignore_index=-(2**63),
                                               grad_output=g, with_grad=with_grad)
        return undo(grad) if with_grad else loss
    _, probs, any_kept = _masked_softmax(flat, mask, flat.ndim - 1)
    if not with_grad:
        picked = np.take_along_axis(flat, labels[..., None], axis=-1)[..., 0]
        with library_errstate():
            loss = _masked_lse(flat, mask) - picked
        return np.where(any_kept, loss, 0.0).astype(logits.dtype, copy=False)
    grad = probs.copy()
    np.put_along_axis(grad, labels[..., None],
                      np.take_along_axis(grad, labels[..., None], -1) - 1.0, axis=-1)
    grad *= np.where(any_kept, g, 0.0)[..., None]
    return undo(grad.astype(logits.dtype, copy=False))


def _masked_lse(flat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log-sum-exp over the kept classes (``-inf`` where none is kept)."""
    m = np.where(mask, flat, -np.inf).max(axis=-1, keepdims=True)
    # (shifted by the kept maximum, so nothing overflows; 0 where nothing is kept)
    finite_m = np.where(np.isfinite(m), m, 0.0)
    with library_errstate():
        total = np.exp(np.where(mask, flat - finite_m, -np.inf)).sum(axis=-1)
        return np.log(total) + finite_m[..., 0]


def sigmoid_binary_cross_entropy(logits, labels):
    r"""``optax.sigmoid_binary_cross_entropy``: element-wise
    :math:`-y \log\sigma(x) - (1 - y)\log\sigma(-x)`, no reduction.

    PyTorch's ``binary_cross_entropy_with_logits(reduction="none")`` without
    weights; the labels broadcast to the logits' shape (PyTorch wants equal shapes).

    >>> from xent_ref.frameworks.optax import sigmoid_binary_cross_entropy
    >>> sigmoid_binary_cross_entropy([0.0, 2.0], [1.0, 0.0]).round(4)
    array([0.6931, 2.1269])
    """
    logits = checks.as_float_array(logits, "logits")
    labels = np.ascontiguousarray(_labels_like(labels, logits))
    return binary_cross_entropy_with_logits(logits, labels, reduction="none")


def sigmoid_binary_cross_entropy_grad(logits, labels, grad_output=None):
    r"""Gradient of :func:`sigmoid_binary_cross_entropy`: :math:`g\,(\sigma(x) - y)`
    (from :math:`\log\sigma(x)' = \sigma(-x)` and :math:`\log\sigma(-x)' = -\sigma(x)`).

    >>> from xent_ref.frameworks.optax import sigmoid_binary_cross_entropy_grad
    >>> sigmoid_binary_cross_entropy_grad([0.0, 0.0], [1.0, 0.0])
    array([-0.5,  0.5])
    """
    logits = checks.as_float_array(logits, "logits")
    labels = np.ascontiguousarray(_labels_like(labels, logits))
    return binary_cross_entropy_with_logits_grad(logits, labels, reduction="none",
                                                 grad_output=grad_output)
