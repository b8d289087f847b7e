r"""TensorFlow's fused softmax cross-entropies (``tf.nn``), with the gradients TF returns.

Both return one loss per example, with the class axis last (or ``axis``) and
no reduction, weights, ignore index or smoothing (``tf.keras`` and
``tf.compat.v1.losses`` add those on top). Arguments are keywords in TF
(``labels=..., logits=...``), labels first.

* :func:`sparse_softmax_cross_entropy_with_logits`: integer labels of the logits'
  shape without the last axis, each in ``[0, C)`` (TF's CPU kernel raises on an
  out-of-range label, its GPU kernel returns nan; here it is a ``ValueError``).
  The same numbers as PyTorch's ``cross_entropy(reduction="none")`` on
  ``logits`` with the class axis moved to 1; no gradient into the labels.
* :func:`softmax_cross_entropy_with_logits` (TF 2's, the old ``_v2``): probability
  labels of the logits' shape. Gradients flow into **both** arguments:
  :math:`\partial\ell/\partial y = -\log p`. TF's kernel writes the logits
  gradient as :math:`p - y` -- the true derivative :math:`p \sum_c y_c - y` only
  when every row of ``labels`` sums to 1, as TF's documentation requires ("If they
  are not, the computation of the gradient will be incorrect"). The reference
  reproduces TF's :math:`p - y`; PyTorch's autograd (and optax) give the true one.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref.frameworks.shared import (
    batch_shape,
    class_axis,
    integer_labels,
    per_example_cross_entropy,
)
from xent_ref.softmax import log_softmax, softmax


def _sparse_call(labels, logits):
    logits = checks.as_input(logits, "logits")
    return integer_labels(labels, logits.shape[:-1], logits.shape[-1]), logits


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    r"""``tf.nn.sparse_softmax_cross_entropy_with_logits``: :math:`\operatorname{lse}(x) - x_t`.

    >>> from xent_ref.frameworks.tensorflow import sparse_softmax_cross_entropy_with_logits
    >>> sparse_softmax_cross_entropy_with_logits([3], [[1.0, 1.0, 1.0, 1.0]]).round(4)
    array([1.3863])
    """
    labels, logits = _sparse_call(labels, logits)
    # (no label equals the int64 minimum, so none is ignored: out of range is an error)
    return per_example_cross_entropy(logits, labels, -1, ignore_index=-(2**63))[0]


def sparse_softmax_cross_entropy_with_logits_grad(labels, logits, grad_output=None):
    r"""Gradient with respect to ``logits``: :math:`g\,(p - \mathrm{onehot}(t))`, TF's
    ``backprop`` output times the upstream gradient (the loss's shape).

    >>> from xent_ref.frameworks.tensorflow import sparse_softmax_cross_entropy_with_logits_grad
    >>> sparse_softmax_cross_entropy_with_logits_grad([3], [[1.0, 1.0, 1.0, 1.0]])
    array([[ 0.25,  0.25,  0.25, -0.75]])
    """
    labels, logits = _sparse_call(labels, logits)
    return per_example_cross_entropy(logits, labels, -1, ignore_index=-(2**63),
                                     grad_output=grad_output, with_grad=True)[1]


def _dense_call(labels, logits, axis):
    logits = checks.as_input(logits, "logits")
    labels = checks.as_float_array(labels, "labels", logits.dtype)
    if labels.shape != logits.shape:
        raise ValueError(f"labels: expected the logits' shape {logits.shape}, "
                         f"got shape {labels.shape}")
    return labels, logits, class_axis(logits, axis)


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    r"""``tf.nn.softmax_cross_entropy_with_logits``: :math:`-\sum_c y_c \log p_c` along ``axis``.

    The second example of TF's kernel test (which rounds it to 1.9401): logits
    ``[1, 2, 3, 4]``, labels ``[0, .5, .5, 0]``:

    >>> from xent_ref.frameworks.tensorflow import softmax_cross_entropy_with_logits
    >>> softmax_cross_entropy_with_logits([[0.0, 0.5, 0.5, 0.0]], [[1.0, 2.0, 3.0, 4.0]]).round(4)
    array([1.9402])
    """
    labels, logits, axis = _dense_call(labels, logits, axis)
    return per_example_cross_entropy(logits, labels, axis)[0]


def softmax_cross_entropy_with_logits_grad(labels, logits, axis=-1, grad_output=None):
    r"""``(grad_logits, grad_labels)`` as TF's registered gradient returns them.

    .. math::

        \frac{\partial \ell}{\partial x} \;(\text{TF}) = g\,(p - y), \qquad
        \frac{\partial \ell}{\partial y} = -g \log p,

    the second exact (:math:`\ell` is linear in :math:`y`), the first exact only for
    rows of ``labels`` that sum to 1 (the exact one is :math:`g(p\sum_c y_c - y)`).

    >>> from xent_ref.frameworks.tensorflow import softmax_cross_entropy_with_logits_grad
    >>> dx, dy = softmax_cross_entropy_with_logits_grad([[0.0, 1.0]], [[0.0, 0.0]])
    >>> dx, dy.round(4)
    (array([[ 0.5, -0.5]]), array([[0.6931, 0.6931]]))
    """
    labels, logits, axis = _dense_call(labels, logits, axis)
    g = checks.grad_output(grad_output, "none", batch_shape(logits.shape, axis),
                           logits.dtype)
    g = np.expand_dims(g, axis)
    grad_logits = (softmax(logits, axis) - labels) * g
    grad_labels = -log_softmax(logits, axis) * g
    return (grad_logits.astype(logits.dtype, copy=False),
            grad_labels.astype(logits.dtype, copy=False))
