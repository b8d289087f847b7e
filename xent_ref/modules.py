"""Callable loss objects named like PyTorch's modules, so that code such as
``nn.CrossEntropyLoss(weight=w, ignore_index=2)(pred, label)`` ports line for line.

Each is a thin wrapper: it stores the options and calls the function (and its
``_grad`` twin) of the same name; it holds no logic of its own (so float16 and
bfloat16 inputs are computed wide and rounded once, as by the functions).
"""

from __future__ import annotations

from xent_ref.binary import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
)
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad, nll_loss, nll_loss_grad


class _Loss:
    """Stores the options; subclasses name the function (``_forward``) and its gradient
    (``_backward``) as static methods."""

    def __init__(self, **options):
        self.options = options

    def __call__(self, input, target):
        """The loss, as ``forward(input, target)`` would be in PyTorch."""
        return type(self)._forward(input, target, **self.options)

    def grad(self, input, target, grad_output=None):
        """The gradient of the loss with respect to ``input``."""
        return type(self)._backward(input, target, grad_output=grad_output, **self.options)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({args})"


class CrossEntropyLoss(_Loss):
    """``CrossEntropyLoss(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0)``.

    The LLM options of :func:`xent_ref.cross_entropy` (``logit_scale``, ``softcap``,
    ``z_loss``) are accepted as keywords too.

    >>> import xent_ref as xr
    >>> loss = xr.CrossEntropyLoss(ignore_index=1)
    >>> round(float(loss([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], [0, 1, 0])), 4)
    0.4421
    """

    _forward = staticmethod(cross_entropy)
    _backward = staticmethod(cross_entropy_grad)

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                 *, logit_scale=1.0, softcap=None, z_loss=0.0):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction,
                         label_smoothing=label_smoothing, logit_scale=logit_scale,
                         softcap=softcap, z_loss=z_loss)


class NLLLoss(_Loss):
    """``NLLLoss(weight=None, ignore_index=-100, reduction="mean")``: input is log-probabilities.

    >>> import xent_ref as xr
    >>> float(xr.NLLLoss(reduction="sum")([[-0.5, -1.0], [-2.0, -0.25]], [0, 1]))
    0.75
    """

    _forward = staticmethod(nll_loss)
    _backward = staticmethod(nll_loss_grad)

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction)


class BCELoss(_Loss):
    """``BCELoss(weight=None, reduction="mean")``: input is probabilities.

    >>> import xent_ref as xr
    >>> xr.BCELoss(reduction="none")([0.0, 0.5], [1.0, 1.0]).round(6)  # 0 costs 100: the clamp
    array([100.      ,   0.693147])
    """

    _forward = staticmethod(binary_cross_entropy)
    _backward = staticmethod(binary_cross_entropy_grad)

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(weight=weight, reduction=reduction)


class BCEWithLogitsLoss(_Loss):
    """``BCEWithLogitsLoss(weight=None, pos_weight=None, reduction="mean")``: input is logits.

    >>> import xent_ref as xr
    >>> xr.BCEWithLogitsLoss(pos_weight=3.0).grad([0.0, 0.0], [1.0, 0.0])
    array([-0.75,  0.25])
    """

    _forward = staticmethod(binary_cross_entropy_with_logits)
    _backward = staticmethod(binary_cross_entropy_with_logits_grad)

    def __init__(self, weight=None, pos_weight=None, reduction="mean"):
        super().__init__(weight=weight, pos_weight=pos_weight, reduction=reduction)
