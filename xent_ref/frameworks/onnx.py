r"""ONNX's ``SoftmaxCrossEntropyLoss`` and ``NegativeLogLikelihoodLoss``, with gradients.

Named as the operators name their inputs and attributes (``scores``, ``labels``,
``weights``; ``reduction``, ``ignore_index``). The loss is PyTorch's: the class
axis is 1, ``mean`` divides the weighted sum by the total weight of the kept
targets (the count without ``weights``), and when every target is ignored the
``mean`` is 0/0 = nan. The differences:

* inputs must have at least two dimensions, ``(N, C)`` or ``(N, C, D1, ..., Dk)``
  (PyTorch also accepts ``(C,)``);
* ``ignore_index`` has no default: without it no target is ignored (PyTorch's is
  -100); there is no label smoothing and there are no probability targets;
* ``SoftmaxCrossEntropyLoss`` has an optional second output, ``log_prob``, the
  log-softmax of ``scores`` (``return_log_prob=True`` here); its gradient
  adds to the loss's (``grad_log_prob`` in :func:`softmax_cross_entropy_loss_grad`);
* ONNX's own reference evaluator (``onnx.reference``) forms the log-probabilities
  as ``log(softmax(x))``, which is ``-inf`` where a probability underflows
  (a logit 800 below the maximum in float64); the operator's definition, and this
  reference, use the log-softmax, which stays finite;
* ONNX defines no gradient (training runtimes derive it): the gradients here are
  PyTorch's, :math:`s\,w_t(p - \mathrm{onehot}(t))` for the loss.
"""

from __future__ import annotations

from xent_ref._engine import checks
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad, nll_loss, nll_loss_grad
from xent_ref.softmax import log_softmax, log_softmax_grad

# "No target is ignored": an ignore_index no class index can equal once targets are
# checked to be in [0, C).
_NOTHING_IGNORED = -(2**63)


def _checked(x, name: str, ignore_index):
    x = checks.as_input(x, name)
    if x.ndim < 2:
        raise ValueError(f"{name}: ONNX needs shape (N, C) or (N, C, D1, ..., Dk), "
                         f"got shape {x.shape}")
    return x, _NOTHING_IGNORED if ignore_index is None else checks.check_ignore_index(
        ignore_index)


def softmax_cross_entropy_loss(scores, labels, weights=None, *, reduction="mean",
                               ignore_index=None, return_log_prob=False):
    r"""``SoftmaxCrossEntropyLoss``: :math:`\ell_i = -w_{t_i} \log p_{i t_i}`, reduced.

    Returns ``output`` (0-d for ``mean``/``sum``, the labels' shape for ``none``),
    or ``(output, log_prob)`` with ``return_log_prob``.

    >>> from xent_ref.frameworks.onnx import softmax_cross_entropy_loss
    >>> loss, log_prob = softmax_cross_entropy_loss([[0.0, 0.0], [0.0, 0.0]], [0, 5],
    ...                                             ignore_index=5, return_log_prob=True)
    >>> float(loss), log_prob.round(4)
    (0.6931471805599453, array([[-0.6931, -0.6931],
           [-0.6931, -0.6931]]))
    """
    scores, ignore = _checked(scores, "scores", ignore_index)
    loss = cross_entropy(scores, labels, weights, ignore, reduction)
    if return_log_prob:
        return loss, log_softmax(scores, axis=1)
    return loss


def softmax_cross_entropy_loss_grad(scores, labels, weights=None, *, reduction="mean",
                                    ignore_index=None, grad_output=None, grad_log_prob=None):
    r"""Gradient with respect to ``scores`` of ``output`` (upstream ``grad_output``) and,
    when ``grad_log_prob`` is given, of the ``log_prob`` output too:

    .. math::

        \frac{\partial}{\partial x_j} = s\,(A p_j - q_j)
        + \Big(\gamma_j - p_j \sum_c \gamma_c\Big), \qquad \gamma = \text{grad\_log\_prob},

    the first term :func:`xent_ref.cross_entropy.cross_entropy_grad`'s, the second
    :func:`xent_ref.softmax.log_softmax_grad`'s, along axis 1.

    >>> from xent_ref.frameworks.onnx import softmax_cross_entropy_loss_grad
    >>> softmax_cross_entropy_loss_grad([[0.0, 0.0]], [0], grad_log_prob=[[1.0, 0.0]])
    array([[0., 0.]])
    """
    scores, ignore = _checked(scores, "scores", ignore_index)
    grad = cross_entropy_grad(scores, labels, weights, ignore, reduction, 0.0, grad_output)
    if grad_log_prob is not None:
        grad = grad + log_softmax_grad(scores, grad_log_prob, axis=1)
    return grad


def negative_log_likelihood_loss(input, target, weight=None, *, reduction="mean",
                                 ignore_index=None):
    r"""``NegativeLogLikelihoodLoss``: :math:`\ell_i = -w_{t_i} x_{i t_i}` for log-probabilities.

    >>> import numpy as np
    >>> from xent_ref.frameworks.onnx import negative_log_likelihood_loss
    >>> float(negative_log_likelihood_loss(np.log([[0.5, 0.5], [0.25, 0.75]]), [0, 1],
    ...                                    [1.0, 2.0]))
    0.4228...
    """
    input, ignore = _checked(input, "input", ignore_index)
    return nll_loss(input, target, weight, ignore, reduction)


def negative_log_likelihood_loss_grad(input, target, weight=None, *, reduction="mean",
                                      ignore_index=None, grad_output=None):
    r"""Gradient of :func:`negative_log_likelihood_loss`: :math:`-s\,w_{t_i}` at each kept
    target, 0 elsewhere (:math:`s` the reduction's scale).

    >>> from xent_ref.frameworks.onnx import negative_log_likelihood_loss_grad
    >>> negative_log_likelihood_loss_grad([[-0.7, -0.7], [-1.4, -0.3]], [0, 1], reduction="sum")
    array([[-1.,  0.],
           [ 0., -1.]])
    """
    input, ignore = _checked(input, "input", ignore_index)
    return nll_loss_grad(input, target, weight, ignore, reduction, grad_output)
