"""Callable loss objects named like PyTorch's modules, so that code such as
``nn.CrossEntropyLoss(weight=w, ignore_index=2)(pred, label)`` ports line for line.

Each is a thin wrapper: it stores the options and calls the function (and its
``_grad`` twin) of the same name; it holds no logic of its own (so float16 and
bfloat16 inputs are computed wide and rounded once, as by the functions).
"""

from __future__ import annotations

import math

import numpy as np

from xent_ref._engine import checks
from xent_ref.binary import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
)
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad, nll_loss, nll_loss_grad
from xent_ref.focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    softmax_focal_loss,
    softmax_focal_loss_grad,
)
from xent_ref.kl import kl_div, kl_div_grad
from xent_ref.linear import linear_cross_entropy, linear_cross_entropy_grad
from xent_ref.poly import poly1_cross_entropy, poly1_cross_entropy_grad


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


class LinearCrossEntropyLoss(_Loss):
    r"""``LinearCrossEntropyLoss(in_features, num_classes, *, out_features=(), bias=False,
    dtype=None, reduction="mean", weight=None, ignore_index=None, label_smoothing=0.0)``.

    PyTorch 2.13's module owns its linear layer; so does this one, as two arrays:
    ``linear_weight`` ``(num_classes, *out_features, in_features)`` and ``linear_bias``
    ``(num_classes, *out_features)`` or ``None``, drawn as ``nn.Linear`` draws them
    (uniform in :math:`\pm 1/\sqrt{\text{in\_features}}`) from ``seed``. PyTorch's
    random values cannot be reproduced: to compare with a torch module, copy its
    parameters in (``loss.linear_weight = m.linear.weight.detach().numpy().reshape(
    loss.linear_weight.shape)``; PyTorch stores them flat). ``dtype`` defaults to
    float32, as PyTorch's. ``grad`` returns the three gradients of
    :func:`xent_ref.linear_cross_entropy_grad`. The LLM options and ``chunk_size`` are
    accepted as keywords too.

    >>> import numpy as np, xent_ref as xr
    >>> loss = xr.LinearCrossEntropyLoss(3, 5, bias=True)
    >>> loss.linear_weight.shape, loss.linear_bias.shape, loss.linear_weight.dtype
    ((5, 3), (5,), dtype('float32'))
    >>> h = np.ones((2, 3), np.float32)
    >>> bool(loss(h, [0, 4]) == xr.linear_cross_entropy(h, loss.linear_weight, [0, 4],
    ...                                                  linear_bias=loss.linear_bias))
    True
    """

    def __init__(self, in_features, num_classes, *, out_features=(), bias=False, dtype=None,
                 reduction="mean", weight=None, ignore_index=None, label_smoothing=0.0,
                 logit_scale=1.0, softcap=None, z_loss=0.0, chunk_size=None, seed=0):
        super().__init__(weight=weight, reduction=reduction, ignore_index=ignore_index,
                         label_smoothing=label_smoothing, logit_scale=logit_scale,
                         softcap=softcap, z_loss=z_loss, chunk_size=chunk_size)
        in_features = checks.check_count(in_features, "in_features")
        num_classes = checks.check_count(num_classes, "num_classes")
        if not isinstance(out_features, (tuple, list)):
            raise TypeError(f"out_features: expected a tuple of sizes (d1, ..., dK), got "
                            f"{out_features!r}")
        shape = (num_classes, *(checks.check_count(d, "out_features") for d in out_features))
        dtype = checks.floating_dtype(np.float32 if dtype is None else dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.in_features = in_features
        self.linear_weight = rng.uniform(-bound, bound, shape + (in_features,)).astype(dtype)
        self.linear_bias = rng.uniform(-bound, bound, shape).astype(dtype) if bias else None

    def __call__(self, input, target):
        """The loss, as ``forward(input, target)`` would be in PyTorch."""
        return linear_cross_entropy(input, self.linear_weight, target,
                                    linear_bias=self.linear_bias, **self.options)

    def grad(self, input, target, grad_output=None):
        """``(grad_input, grad_linear_weight, grad_linear_bias or None)``."""
        return linear_cross_entropy_grad(input, self.linear_weight, target,
                                         linear_bias=self.linear_bias,
                                         grad_output=grad_output, **self.options)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (f"{type(self).__name__}(in_features={self.in_features}, "
                f"linear_weight shape {self.linear_weight.shape}, "
                f"bias={self.linear_bias is not None}, {args})")


# The relatives of cross-entropy: KL divergence, the focal losses, poly-1 (torchvision has
# sigmoid_focal_loss as a function only; its object here follows the same pattern).


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
