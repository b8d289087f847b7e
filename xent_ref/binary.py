r"""Binary cross-entropy, on probabilities and on logits, with hand-derived gradients.

Every element is its own yes/no problem: a predicted probability :math:`p` (or a
logit :math:`x` with :math:`p = \sigma(x)`) against a target :math:`y \in [0, 1]`:

.. math::

    \ell = -w\,\big[\,y \log p + (1 - y) \log(1 - p)\,\big].

``reduction="mean"`` divides the sum by the number of elements (not by the
weights). The input and target have the same shape; ``weight`` (and
``pos_weight``) broadcast against it, right-aligned, as in PyTorch.

The losses work through the leading axis a block of rows at a time, so their
temporaries stay block-sized even for a ``(65536, 1000)`` input.

float16 and bfloat16 inputs are computed in float64 and the result rounded once
to the input's dtype (:func:`xent_ref._engine.lowprec.computed_wide`): no sum or count
overflows float16's 65504, and the one final rounding is the only error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from xent_ref import target_grad
from xent_ref._engine import checks
from xent_ref._engine.lowprec import computed_wide
from xent_ref._engine.blocks import row_blocks, run_blocks
from xent_ref._engine.reduce import per_sample_scale, reduce_blocks

# PyTorch clamps each log at -100 so that p = 0 (or 1) gives a loss of 100, not inf.
LOG_CLAMP = -100.0
# PyTorch's gradient denominator max(p (1 - p), EPSILON) uses a C++ `float` 1e-12,
# which is 9.9999999600e-13 once widened to double: we use that same constant.
GRAD_EPSILON = float(np.float32(1e-12))


@dataclass(frozen=True)
class _Call:
    """One checked binary call: every block function and both gradients read from it."""

    input: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None  # broadcast (read-only view) to the input's shape
    pos_weight: np.ndarray | None
    reduction: str
    shape: tuple  # the caller's input shape: () for a 0-d input, held here as (1,)

    @property
    def infinite_pos_weight(self) -> bool:
        if self.pos_weight is None:
            return False
        # the caller's values, without the broadcast's repeats (their strides are 0)
        values = self.pos_weight[tuple(slice(0, 1) if stride == 0 else slice(None)
                                       for stride in self.pos_weight.strides)]
        return bool(np.isinf(values).any())

    def blocks(self):
        return row_blocks(self.input.shape[0], int(np.prod(self.input.shape[1:])))

    @functools.cached_property
    def _zeros(self) -> np.ndarray:
        largest = max((rows.stop - rows.start for rows in self.blocks()), default=0)
        zeros = np.zeros(largest * int(np.prod(self.input.shape[1:])), self.input.dtype)
        zeros.flags.writeable = False
        return zeros

    def zeros(self, rows: slice) -> np.ndarray:
        """Zeros shaped like the block ``rows`` (read-only: every block shares them).

        ``np.maximum(x, 0)`` against the scalar 0 runs NumPy's scalar loop, several
        times slower than its loop over two arrays, and the logits' losses take a
        maximum and a minimum against 0 per element."""
        block = self.input[rows]
        return self._zeros[:block.size].reshape(block.shape)

    def loss(self, losses_fn) -> np.ndarray:
        """The loss with this call's reduction, from the block function ``losses_fn``."""
        loss = reduce_blocks(lambda rows: losses_fn(self, rows), self.blocks(), self.reduction,
                             self.input.size, self.input.dtype, self.input.shape)
        return loss.reshape(self.shape) if self.reduction == "none" else loss

    def grad(self, grad_fn, scale: np.ndarray) -> np.ndarray:
        """The gradient, filled block by block with ``grad_fn(call, rows, scale[rows])``."""
        grad = np.empty_like(self.input)

        def work(rows):
            grad[rows] = grad_fn(self, rows, scale[rows])

        run_blocks(work, self.blocks())
        return grad.reshape(self.shape)


def _prepare(input, target, *, weight, reduction, pos_weight=None, probabilities=False) -> _Call:
    """The arguments checked once, into a :class:`_Call`."""
    # A 0-d input is one element (PyTorch accepts it): checked as it is, computed as (1,).
    x, y, weight, pos_weight, reduction = checks.binary_arguments(
        input, target, weight, pos_weight, reduction, probabilities)
    shape = x.shape
    if x.ndim == 0:
        x, y = x.reshape(1), y.reshape(1)
        weight = None if weight is None else weight.reshape(1)
        pos_weight = None if pos_weight is None else pos_weight.reshape(1)
    return _Call(x, y, weight, pos_weight, reduction, shape)


def _upstream(call: _Call, grad_output) -> np.ndarray:
    """``dL/d loss`` for every element, broadcast to the input's shape."""
    g = checks.grad_output(grad_output, call.reduction, call.shape, call.input.dtype)
    scale = per_sample_scale(g, call.reduction, call.input.size)
    return np.broadcast_to(np.reshape(scale, call.input.shape) if scale.ndim else scale,
                           call.input.shape)


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy (probabilities)
# ---------------------------------------------------------------------------------------------


@computed_wide("target", "weight", "grad_output")
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    r"""Binary cross-entropy of probabilities ``input`` against ``target``.

    Textbook twin: :func:`xent_ref.textbook.binary_cross_entropy`; this one clamps each
    log at -100, as PyTorch does, and uses ``log1p(-p)``.

    .. math::

        \ell = -w\,\big[\,y \max(\log p, -100) + (1 - y) \max(\operatorname{log1p}(-p), -100)\,\big]

    Each log is clamped at -100, exactly as PyTorch does, so a certain but wrong
    prediction (``p = 0, y = 1``) costs 100 instead of ``inf``. ``log1p(-p)``
    keeps :math:`\log(1-p)` accurate for tiny ``p``.

    Parameters
    ----------
    input : array_like, any shape (0-d too)
        Probabilities in [0, 1] (anything else, NaN included, is a ``ValueError``).
    target : array_like, the input's shape
        Targets in [0, 1] (soft targets allowed).
    weight : array_like, optional
        Broadcasts (right-aligned) to the input's shape.
    reduction : {"mean", "sum", "none"}
        ``mean`` divides by the number of elements.

    Examples
    --------
    >>> import xent_ref as xr
    >>> float(xr.binary_cross_entropy([0.8, 0.4], [1.0, 0.0]))
    0.3669845...
    >>> xr.binary_cross_entropy([0.0], [1.0], reduction="none")
    array([100.])
    """
    call = _prepare(input, target, weight=weight, reduction=reduction, probabilities=True)
    return call.loss(_bce_losses)


def _bce_losses(call: _Call, rows: slice) -> np.ndarray:
    p, y = call.input[rows], call.target[rows]
    log_p = np.maximum(np.log(p), LOG_CLAMP)  # (log(0) = -inf, clamped)
    log_1mp = np.maximum(np.log1p(-p), LOG_CLAMP)
    losses = (y - 1) * log_1mp - y * log_p  # PyTorch's arrangement of the same formula
    if call.weight is not None:
        losses *= call.weight[rows]
    return losses


@computed_wide("target", "weight", "grad_output")
def binary_cross_entropy_grad(input, target, weight=None, reduction="mean", grad_output=None,
                              *, wrt="input"):
    r"""Gradient of :func:`binary_cross_entropy` with respect to ``input`` (or, with
    ``wrt="target"``, to ``target``: :mod:`xent_ref.target_grad`).

    Textbook twin: :func:`xent_ref.textbook.binary_cross_entropy_grad`; this one floors
    the denominator at PyTorch's float 1e-12.

    .. math::

        \frac{\partial \ell}{\partial p} = -w\Big[\frac{y}{p} - \frac{1-y}{1-p}\Big]
        = w\,\frac{p - y}{p\,(1 - p)},

    computed, as PyTorch does, with the denominator :math:`\max(p(1-p), 10^{-12})`
    (the float32 constant) so that ``p = 0`` or ``1`` gives a large finite slope.
    Like PyTorch, this ignores the -100 clamp of the forward pass. For float16 and
    bfloat16 the floor is applied in float64 and the slope then rounded: ``-1e12`` is
    ``-inf`` in float16 and the nearest bfloat16 to ``-1e12`` in bfloat16.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.binary_cross_entropy_grad([0.8, 0.4], [1.0, 0.0], reduction="sum")
    array([-1.25      ,  1.66666667])
    """
    call = _prepare(input, target, weight=weight, reduction=reduction, probabilities=True)
    block = target_grad.binary_cross_entropy_target_block if target_grad.wrt_target(wrt) \
        else _bce_grad
    return call.grad(block, _upstream(call, grad_output))


def _bce_grad(call: _Call, rows: slice, scale: np.ndarray) -> np.ndarray:
    # grad = s w (p - y) / max(p (1 - p), eps): the textbook's s w (p - y) / (p (1 - p)),
    # with PyTorch's floor. (A float16 call runs in float64 with this same floor: p = 0
    # gives -1e12, which the final rounding makes -inf, PyTorch's float16 answer too.)
    p, y = call.input[rows], call.target[rows]
    denominator = np.maximum((1 - p) * p, p.dtype.type(GRAD_EPSILON))
    grad = scale * (p - y) / denominator
    if call.weight is not None:
        grad *= call.weight[rows]
    return grad


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits
# ---------------------------------------------------------------------------------------------


@computed_wide("target", "weight", "grad_output", "pos_weight")
def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    r"""Binary cross-entropy on logits: the sigmoid and the loss in one stable formula.

    Textbook twin: :func:`xent_ref.textbook.binary_cross_entropy_with_logits`; this one
    uses the softplus form (no overflow, no cancellation).

    With :math:`\log \sigma(x) = -\operatorname{softplus}(-x)` and
    :math:`\log(1 - \sigma(x)) = -\operatorname{softplus}(x)`,

    .. math::

        \ell = w\,\big[\,p_w\, y\, \operatorname{softplus}(-x) + (1 - y)\operatorname{softplus}(x)\,\big],
        \qquad \operatorname{softplus}(z) = \max(z, 0) + \operatorname{log1p}(e^{-|z|}).

    This form never exponentiates a positive number (no overflow for any finite
    ``x``) and never computes ``1 - sigma(x)`` (no cancellation): ``x = 30, y = 1``
    gives ``log1p(e^-30) = 9.36e-14``, where ``-log(sigmoid(30))`` gives 0.
    ``pos_weight`` :math:`p_w` multiplies the positive (``y``) term, trading recall
    for precision.

    Parameters
    ----------
    input : array_like
        Logits, any shape (0-d too).
    target : array_like, the input's shape
        Targets, usually in [0, 1] (not checked, as in PyTorch).
    weight, pos_weight : array_like, optional
        Broadcast right-aligned against the target: a ``pos_weight`` of shape
        ``(C,)`` applies along the *last* axis (images need ``(C, 1, 1)``).
    reduction : {"mean", "sum", "none"}
        ``mean`` divides by the number of elements.

    Examples
    --------
    Document "交叉熵损失函数": logits ``[2, -1, 0.5]``, targets ``[1, 0, 1]``:

    >>> import xent_ref as xr
    >>> float(xr.binary_cross_entropy_with_logits([2.0, -1.0, 0.5], [1.0, 0.0, 1.0]))
    0.30475556...
    """
    call = _prepare(input, target, weight=weight, reduction=reduction, pos_weight=pos_weight)
    return call.loss(_logits_losses)


def _exp_minus_abs(x: np.ndarray) -> np.ndarray:
    """``e^-|x|``, in (0, 1] for any x: the one exponential both the loss and the gradient
    need (it never overflows)."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    return e


def _logit_parts(call: _Call, rows: slice) -> tuple:
    """``(min(x, 0), max(x, 0), e^-|x|)`` of a block, new arrays: the loss's two halves
    of softplus and the one exponential. (``-|x|`` is ``min(x, 0) - max(x, 0)``
    exactly, one of the two being 0: the same ``e`` as :func:`_exp_minus_abs`.)"""
    x, zeros = call.input[rows], call.zeros(rows)
    lo, hi = np.minimum(x, zeros), np.maximum(x, zeros)
    e = np.subtract(lo, hi)
    return lo, hi, np.exp(e, out=e)


def _logits_losses(call: _Call, rows: slice, parts: tuple | None = None,
                   one_minus_y: np.ndarray | None = None) -> np.ndarray:
    """The element losses of a block (its :func:`_logit_parts`, consumed, and ``1 - y``
    may be given, by the fused pass)."""
    y = call.target[rows]
    lo, hi, e = _logit_parts(call, rows) if parts is None else parts
    # tail = log1p(e^-|x|), the part of softplus(+-x) that is never large
    tail = np.log1p(e, out=e)
    # softplus(-x) = max(-x, 0) + tail = tail - min(x, 0); kept apart from softplus(x)
    # so that neither is recovered from the other by a subtraction that would cancel.
    softplus_neg = np.subtract(tail, lo, out=lo)
    softplus_pos = np.add(hi, tail, out=hi)  # max(x, 0) + tail
    # (an infinite logit makes a 0 * inf below: nan, as in PyTorch)
    losses = softplus_neg
    losses *= y  # y softplus(-x)
    if call.pos_weight is not None:
        losses *= call.pos_weight[rows]
    softplus_pos *= 1 - y if one_minus_y is None else one_minus_y  # (1 - y) softplus(x)
    losses += softplus_pos
    if call.weight is not None:
        losses *= call.weight[rows]
    return losses


@computed_wide("target", "weight", "grad_output", "pos_weight")
def binary_cross_entropy_with_logits_grad(input, target, weight=None, pos_weight=None,
                                          reduction="mean", grad_output=None, *, wrt="input"):
    r"""Gradient of :func:`binary_cross_entropy_with_logits` with respect to ``input`` (or,
    with ``wrt="target"``, to ``target``: :mod:`xent_ref.target_grad`).

    Textbook twin: :func:`xent_ref.textbook.binary_cross_entropy_with_logits_grad`; this
    one forms both sigmoids from :math:`e^{-|x|}` and gives PyTorch's nan for an
    infinite ``pos_weight``.

    From :math:`\operatorname{softplus}'(z) = \sigma(z)`:

    .. math::

        \frac{\partial \ell}{\partial x} = w\,\big[(1 - y)\,\sigma(x) - p_w\, y\,\sigma(-x)\big],

    which without ``pos_weight`` is the familiar :math:`w(\sigma(x) - y)`. Both
    :math:`\sigma(x)` and :math:`\sigma(-x) = 1 - \sigma(x)` are formed from
    :math:`e^{-|x|}` directly, so neither overflows nor cancels (``x = 30, y = 1``
    gives ``-9.36e-14``, not 0).

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.binary_cross_entropy_with_logits_grad([0.0, 0.0], [1.0, 0.0], pos_weight=3.0,
    ...                                          reduction="sum")
    array([-1.5,  0.5])
    """
    call = _prepare(input, target, weight=weight, reduction=reduction, pos_weight=pos_weight)
    block = target_grad.binary_cross_entropy_with_logits_target_block \
        if target_grad.wrt_target(wrt) else _logits_grad
    return call.grad(block, _upstream(call, grad_output))


def _logits_grad(call: _Call, rows: slice, scale: np.ndarray, e: np.ndarray | None = None,
                 out: np.ndarray | None = None, one_minus_y: np.ndarray | None = None):
    r"""The gradient :math:`s\,w\,[(1 - y)\,\sigma(x) - p_w\, y\,\sigma(-x)]` of a block
    (``e = e^{-|x|}`` and ``1 - y`` may be given, by the fused pass; ``out``, the block of
    the gradient's own array, saves a copy).

    Textbook twin: :func:`xent_ref.textbook.binary_cross_entropy_with_logits_grad`
    (``scale * weight * (sigma(x) - y)`` with the ``pos_weight`` term); the two sigmoids
    come from :func:`_sigmoids`, which neither overflows nor cancels.
    """
    # grad = s w [(1 - y) sigma(x) - p_w y sigma(-x)]
    x, y = call.input[rows], call.target[rows]
    sigma_x, sigma_neg_x = _sigmoids(x, e)
    sigma_neg_x *= y  # y sigma(-x), the pull towards a positive
    if call.pos_weight is not None:
        sigma_neg_x *= call.pos_weight[rows]  # p_w y sigma(-x)
    sigma_x *= 1 - y if one_minus_y is None else one_minus_y  # the pull towards a negative
    grad = sigma_x
    grad -= sigma_neg_x  # (1 - y) sigma(x) - p_w y sigma(-x)
    if call.infinite_pos_weight:
        _nan_where_pos_weight_is_infinite(grad, y, call.pos_weight[rows])
    if call.weight is not None:
        grad *= call.weight[rows]  # w [...]
    return np.multiply(grad, scale, out=out)  # s w [...]


def _sigmoids(x: np.ndarray, e: np.ndarray | None = None):
    r"""``(sigma(x), sigma(-x))``, new arrays, from ``e = e^{-|x|}`` (computed if not given).

    :math:`\sigma(x) = e^{\min(x, 0)} / (1 + e^{-|x|})` and
    :math:`\sigma(-x) = e^{-\max(x, 0)} / (1 + e^{-|x|})`: no exponent is ever positive
    (no overflow), neither is 1 minus the other (no cancellation). Both numerators are
    ``e`` itself or exactly 1, so no second exponential is needed:
    :math:`e^{\min(x, 0)} = \max(e, \operatorname{sign} x)` (``e`` where
    :math:`x \le 0`, 1 where :math:`x > 0`, nan for nan) and
    :math:`e^{-\max(x, 0)} = \max(e, -\operatorname{sign} x)`, the very numbers the two
    exponentials gave, without an ``np.where`` per element (slow on logits of random sign).
    """
    e = _exp_minus_abs(x) if e is None else e
    sigma_abs = 1 + e
    # sigma(|x|) = 1 / (1 + e^-|x|): the quotient np.reciprocal gives, by NumPy's faster loop
    np.divide(1, sigma_abs, out=sigma_abs)
    sign = np.sign(x)
    sigma_x = np.maximum(e, sign)  # e^min(x, 0)
    sigma_x *= sigma_abs
    np.negative(sign, out=sign)
    sigma_neg_x = np.maximum(e, sign, out=sign)  # e^-max(x, 0)
    sigma_neg_x *= sigma_abs
    return sigma_x, sigma_neg_x


def _nan_where_pos_weight_is_infinite(grad, y, pos_weight) -> None:
    """PyTorch forms sigma(x) (p_w y + 1 - y) - p_w y: nan wherever p_w y is infinite
    (where the limit would be -inf), and that is its answer we give."""
    grad[np.isinf(y * pos_weight)] = np.nan


@computed_wide("target", "weight", "grad_output", "pos_weight")
def binary_cross_entropy_with_logits_with_grad(input, target, weight=None, pos_weight=None,
                                               reduction="mean", grad_output=None):
    """``(binary_cross_entropy_with_logits(...), binary_cross_entropy_with_logits_grad(...))``
    in one pass: each block's :math:`e^{-|x|}` serves both.

    Textbook twins: :func:`xent_ref.textbook.binary_cross_entropy_with_logits` and its
    ``_grad``; this one shares one exponential between them.

    Examples
    --------
    >>> import xent_ref as xr
    >>> loss, grad = xr.binary_cross_entropy_with_logits_with_grad([0.0, 0.0], [1.0, 0.0])
    >>> round(float(loss), 6), grad
    (0.693147, array([-0.25,  0.25]))
    """
    call = _prepare(input, target, weight=weight, reduction=reduction, pos_weight=pos_weight)
    scale = _upstream(call, grad_output)
    grad = np.empty_like(call.input)

    def block_losses(rows):
        parts, one_minus_y = _logit_parts(call, rows), 1 - call.target[rows]
        _logits_grad(call, rows, scale[rows], parts[2], grad[rows], one_minus_y)
        return _logits_losses(call, rows, parts, one_minus_y)  # (parts consumed)

    loss = reduce_blocks(block_losses, call.blocks(), call.reduction, call.input.size,
                         call.input.dtype, call.input.shape)
    if call.reduction == "none":
        loss = loss.reshape(call.shape)
    return loss, grad.reshape(call.shape)


# ---------------------------------------------------------------------------------------------
# For the modules built on these losses (xent_ref.hvp): the checked call and its scale
# ---------------------------------------------------------------------------------------------


def prepare(input, target, *, weight=None, reduction="mean", pos_weight=None,
            probabilities=False):
    """A binary loss's arguments checked once (the losses' own checks, messages and layout:
    a 0-d input is held as ``(1,)``, the caller's shape in ``.shape``)."""
    return _prepare(input, target, weight=weight, reduction=reduction, pos_weight=pos_weight,
                    probabilities=probabilities)


def upstream(call, grad_output) -> np.ndarray:
    """``dL/d loss`` of every element of a :func:`prepare`\\ d call, the input's shape."""
    return _upstream(call, grad_output)
