"""Loss objects for the relatives of cross-entropy, named like PyTorch's modules (and
torchvision's functions): thin wrappers that store the options and call the function of
the same name and its ``_grad`` twin, as the classes of :mod:`xent_ref.modules` do.
"""

from __future__ import annotations

from xent_ref.focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    softmax_focal_loss,
    softmax_focal_loss_grad,
)
from xent_ref.kl import kl_div, kl_div_grad
from xent_ref.modules import CrossEntropyLoss
from xent_ref.poly import poly1_cross_entropy, poly1_cross_entropy_grad


class _Loss:
    """Stores the options; subclasses name the function and its gradient."""

    def __init__(self, **options):
        self.options = options

    def __call__(self, input, target):
        """The loss, as ``forward(input, target)`` would be in PyTorch."""
        return type(self)._forward(input, target, **self.options)

    def grad(self, input, target, grad_output=None):
        """The gradient of the loss with respect to ``input``."""
        return type(self)._backward(input, target, grad_output=grad_output, **self.options)

    __repr__ = CrossEntropyLoss.__repr__


class KLDivLoss(_Loss):
    """``KLDivLoss(reduction="mean", log_target=False)``: input is log-probabilities.

    >>> import numpy as np, xent_ref as xr
    >>> loss = xr.KLDivLoss(reduction="batchmean")
    >>> round(float(loss(np.log([[0.5, 0.5]]), [[0.9, 0.1]])), 6)
    0.368064
    """

    _forward = staticmethod(kl_div)
    _backward = staticmethod(kl_div_grad)

    def __init__(self, reduction="mean", log_target=False):
        super().__init__(reduction=reduction, log_target=log_target)


class SigmoidFocalLoss(_Loss):
    """``SigmoidFocalLoss(alpha=0.25, gamma=2.0, reduction="none")``: torchvision's
    ``sigmoid_focal_loss`` as an object (input is logits).

    >>> import xent_ref as xr
    >>> float(xr.SigmoidFocalLoss(alpha=-1, gamma=0.0, reduction="sum")([0.0], [1.0]))
    0.6931471805599453
    """

    _forward = staticmethod(sigmoid_focal_loss)
    _backward = staticmethod(sigmoid_focal_loss_grad)

    def __init__(self, alpha=0.25, gamma=2.0, reduction="none"):
        super().__init__(alpha=alpha, gamma=gamma, reduction=reduction)


class Poly1CrossEntropyLoss(_Loss):
    """``Poly1CrossEntropyLoss(epsilon=1.0, weight=None, ignore_index=-100, reduction="mean",
    label_smoothing=0.0)``: input is logits, targets as for ``CrossEntropyLoss``.

    >>> import xent_ref as xr
    >>> float(xr.Poly1CrossEntropyLoss(epsilon=0.0)([[0.0, 0.0]], [1]))  # cross-entropy
    0.6931471805599453
    """

    _forward = staticmethod(poly1_cross_entropy)
    _backward = staticmethod(poly1_cross_entropy_grad)

    def __init__(self, epsilon=1.0, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(epsilon=epsilon, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)


class SoftmaxFocalLoss(_Loss):
    """``SoftmaxFocalLoss(gamma=2.0, weight=None, ignore_index=-100, reduction="mean",
    label_smoothing=0.0)``: the multi-class focal loss on logits, targets as for
    ``CrossEntropyLoss``.

    >>> import xent_ref as xr
    >>> float(xr.SoftmaxFocalLoss(gamma=0.0)([[0.0, 0.0]], [1]))  # cross-entropy
    0.6931471805599453
    """

    _forward = staticmethod(softmax_focal_loss)
    _backward = staticmethod(softmax_focal_loss_grad)

    def __init__(self, gamma=2.0, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(gamma=gamma, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)
