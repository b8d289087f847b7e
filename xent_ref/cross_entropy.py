r"""Cross-entropy and negative log-likelihood, with hand-derived gradients.

Shapes (PyTorch's): ``input`` is ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``;
the class axis is 1 (0 for a 1-D input). Targets are either

* **class indices**, shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``, integers in
  ``[0, C)`` or equal to ``ignore_index``; or
* **class probabilities**, the input's own shape, floating point.

One sample's loss, with class weights :math:`w` (all 1 by default), label
smoothing :math:`\varepsilon` and :math:`\log p = \text{log\_softmax}(x)`:

.. math::

    \ell_i = (1-\varepsilon)\, w_{t_i}\,(-\log p_{i t_i})
             + \frac{\varepsilon}{C} \sum_c w_c\,(-\log p_{ic})
    \qquad \text{(class index } t_i\text{)}

    \ell_i = -\sum_c w_c\, y'_{ic} \log p_{ic}, \quad
    y' = (1-\varepsilon)\, y + \frac{\varepsilon}{C}
    \qquad \text{(probabilities } y\text{)}

Both are :math:`\ell_i = \sum_c q_{ic}(-\log p_{ic})` for a non-negative
"target mass" :math:`q_i` (for class indices
:math:`q_{ic} = (1-\varepsilon) w_{t_i} [c = t_i] + \tfrac{\varepsilon}{C} w_c`), and
with :math:`A_i = \sum_c q_{ic}` the gradient is the famous softmax minus target:

.. math::

    \frac{\partial \ell_i}{\partial x_{ij}}
    = \sum_c q_{ic}(p_{ij} - \delta_{cj}) = A_i\, p_{ij} - q_{ij}.

Reductions: ``sum`` adds the :math:`\ell_i`; ``mean`` divides by the total weight
of the kept targets :math:`\sum_{i\,\text{kept}} w_{t_i}` for class indices (the
count of kept targets without weights), and by the number of samples
:math:`N d_1 \cdots d_k` for probabilities. Ignored samples have zero loss and
zero gradient; when every target is ignored, ``mean`` is 0/0 = nan and the
gradient is all zeros, as in PyTorch.

Accuracy: :math:`-\log p_{it} = (m_i - x_{it}) + \operatorname{log1p}(\text{others}_i)`
(see :mod:`xent_ref.softmax`), and at the maximum :math:`j^*` the gradient is
formed as :math:`-A\,\text{others}/S + \sum_{c \ne j^*} q_c` instead of
:math:`A/S - q_{j^*}`, which would round a confident prediction's gradient to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref import _checks
from xent_ref._reduce import per_sample_scale, reduce, row_blocks
from xent_ref.softmax import exp_shifted_inplace, shifted_logits


@dataclass
class _Call:
    """A validated call, reshaped so that the class axis is always axis 1."""

    input_shape: tuple  # the caller's input shape (the gradient's shape)
    logits: np.ndarray  # (N, C, d1..dk); a 1-D input is viewed as (1, C)
    target: np.ndarray  # (N, d1..dk) int64 indices, or (N, C, d1..dk) probabilities
    weight: np.ndarray | None  # (C,)
    reduction: str
    loss_shape: tuple  # the shape of reduction="none"
    probabilities: bool = False
    kept: np.ndarray | None = None  # (N, d1..dk) bool, index targets only
    safe_target: np.ndarray | None = None  # target with ignored entries replaced by 0
    target_weight: np.ndarray | None = None  # w[t_i] (1 without weights), 0 where ignored
    denominator: float = 1.0

    @property
    def n_classes(self) -> int:
        return self.logits.shape[1]

    def class_column(self, values: np.ndarray) -> np.ndarray:
        """Reshape a per-class vector ``(C,)`` to broadcast against ``(n, C, d1..dk)``."""
        return values.reshape((1, -1) + (1,) * (self.logits.ndim - 2))


def _prepare(input, target, weight, ignore_index, reduction, label_smoothing=0.0,
             allow_probabilities=True) -> _Call:
    logits = _checks.as_input(input)
    reduction = _checks.check_reduction(reduction)
    ignore_index = _checks.check_ignore_index(ignore_index)
    _checks.check_label_smoothing(label_smoothing)
    n_classes = logits.shape[0 if logits.ndim == 1 else 1]
    if n_classes == 0:
        raise ValueError(f"input: the class axis has size 0 (input shape {logits.shape})")
    weight = _checks.class_weight(weight, n_classes, logits.dtype)
    target = np.asarray(target)
    one_d = logits.ndim == 1
    input_shape = logits.shape
    if allow_probabilities and target.shape == logits.shape:
        target = _checks.probability_target(target, ignore_index, logits.dtype)
        loss_shape = () if one_d else (logits.shape[0],) + logits.shape[2:]
        if one_d:
            logits, target = logits[None], target[None]
        return _Call(input_shape, logits, target, weight, reduction, loss_shape, probabilities=True,
                     denominator=float(np.prod(loss_shape)))

    target = _checks.index_target(target, logits.shape, ignore_index)
    loss_shape = target.shape
    if one_d:
        logits, target = logits[None], target[None]
    kept = target != ignore_index
    safe_target = np.where(kept, target, 0)
    if weight is None:
        target_weight = kept.astype(logits.dtype)
    else:
        target_weight = np.where(kept, weight[safe_target], 0).astype(logits.dtype, copy=False)
    denominator = target_weight.sum(dtype=logits.dtype)
    return _Call(input_shape, logits, target, weight, reduction, loss_shape, kept=kept,
                 safe_target=safe_target, target_weight=target_weight,
                 denominator=denominator)


def _upstream(call: _Call, grad_output) -> np.ndarray:
    """Per-sample scale ``dL/d loss_i`` of shape ``(N, d1..dk)`` (0 on ignored samples)."""
    g = _checks.grad_output(grad_output, call.reduction, call.loss_shape, call.logits.dtype)
    scale = per_sample_scale(g, call.reduction, call.denominator)
    scale = np.broadcast_to(scale, (call.logits.shape[0],) + call.logits.shape[2:])
    if call.kept is not None:
        scale = np.where(call.kept, scale, 0)
    return scale


def _rows(call: _Call):
    return row_blocks(call.logits.shape[0], int(np.prod(call.logits.shape[1:])))


# ---------------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------------


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    r"""Cross-entropy between the softmax of ``input`` (logits) and ``target``.

    Exactly ``torch.nn.functional.cross_entropy``; the formulas, reductions and
    accuracy notes are in the module docstring.

    Parameters
    ----------
    input : array_like, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``
        Logits (unnormalised scores). ``-inf`` is allowed; off the target it gives
        a finite loss (without label smoothing), on the target an infinite one.
    target : array_like
        Class indices, shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``; or class
        probabilities, the input's shape (floating point).
    weight : array_like, shape ``(C,)``, optional
        Per-class weights.
    ignore_index : int
        Class-index targets equal to it contribute nothing. Must be negative with
        probability targets (as in PyTorch).
    reduction : {"mean", "sum", "none"}
    label_smoothing : float in [0, 1]
        Stricter than PyTorch, which silently treats a negative value as 0: here it
        is a ``ValueError``.

    Returns
    -------
    loss : ndarray
        0-d for ``mean``/``sum``; the target's shape (without the class axis) for
        ``none``. Same floating dtype as ``input``.

    Examples
    --------
    The first worked example of "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数"
    (the document rounds it to 0.6406):

    >>> import xent_ref as xr
    >>> logits = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
    >>> float(xr.cross_entropy(logits, [0, 1, 0]))
    0.6405346...
    """
    call = _prepare(input, target, weight, ignore_index, reduction, label_smoothing)
    eps = float(label_smoothing)
    losses = np.empty((call.logits.shape[0],) + call.logits.shape[2:], dtype=call.logits.dtype)
    for rows in _rows(call):
        if call.probabilities:
            losses[rows] = _probability_losses(call, rows, eps)
        else:
            losses[rows] = _index_losses(call, rows, eps)
    return reduce(losses.reshape(call.loss_shape), call.reduction, call.denominator)


def _index_losses(call: _Call, rows: slice, eps: float) -> np.ndarray:
    r""":math:`\ell_i` for class-index targets, for the samples in ``rows``."""
    t = call.safe_target[rows][:, None]  # (n, 1, d1..dk)
    shifted = shifted_logits(call.logits[rows], axis=1)  # x - m, a block-sized temporary
    shifted_t = np.take_along_axis(shifted, t, axis=1)[:, 0]  # x_t - m  (<= 0)
    if eps:
        # sum_c w_c (x_c - m), taken before `shifted` is exponentiated in place
        w = np.ones(call.n_classes, shifted.dtype) if call.weight is None else call.weight
        weighted_shifted = np.einsum("nc...,c->n...", shifted, w)
    others, _ = exp_shifted_inplace(shifted, axis=1)
    log_s = np.log1p(others[:, 0])  # lse - m
    # -log p_t = lse - x_t = (m - x_t) + log S: two non-negative terms, no cancellation.
    losses = (1.0 - eps) * call.target_weight[rows] * (log_s - shifted_t)
    if eps:
        # sum_c w_c (-log p_c) = W log S - sum_c w_c (x_c - m), again two non-negative terms
        losses += (eps / call.n_classes) * (w.sum() * log_s - weighted_shifted)
    # `where`, not a product: an ignored sample may have an infinite loss (inf * 0 = nan).
    return np.where(call.kept[rows], losses, 0)


def _target_mass(call: _Call, rows: slice, eps: float) -> np.ndarray:
    r"""The probability targets' :math:`q = w\,((1-\varepsilon)\,y + \varepsilon/C)`, a new array."""
    q = call.target[rows] * (1.0 - eps)
    if eps:
        q += eps / call.n_classes
    if call.weight is not None:
        q *= call.class_column(call.weight)
    return q


def _probability_losses(call: _Call, rows: slice, eps: float) -> np.ndarray:
    r""":math:`\ell_i = A_i \log S_i - \sum_c q_{ic}(x_{ic} - m_i)` for probability targets."""
    q = _target_mass(call, rows, eps)
    shifted = shifted_logits(call.logits[rows], axis=1)
    # (a 0 target against a -inf logit gives 0 * inf = nan here, as in PyTorch)
    with np.errstate(invalid="ignore"):
        q_dot_shifted = np.einsum("nc...,nc...->n...", q, shifted)
    others, _ = exp_shifted_inplace(shifted, axis=1)
    return q.sum(axis=1) * np.log1p(others[:, 0]) - q_dot_shifted


def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None):
    r"""Gradient of :func:`cross_entropy` with respect to ``input`` (the logits).

    Derivation (for one sample; :math:`\log p_c = x_c - \operatorname{lse}(x)` so
    :math:`\partial(-\log p_c)/\partial x_j = p_j - \delta_{cj}`):

    .. math::

        \frac{\partial \ell}{\partial x_j}
        = \sum_c q_c\,(p_j - \delta_{cj}) = A\,p_j - q_j,
        \qquad A = \sum_c q_c.

    Without weights or smoothing, :math:`q` is the one-hot target, :math:`A = 1` and
    this is ``softmax - one_hot``; rows then sum to 0. The reduction multiplies
    each sample's row by ``grad_output`` (``mean``: divided by the same denominator
    as the loss); ignored samples get zero rows.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction, label_smoothing
        As for :func:`cross_entropy`.
    grad_output : scalar or array_like, optional
        Upstream gradient: a scalar for ``mean``/``sum`` (default 1), the loss's
        shape for ``none`` (default ones).

    Returns
    -------
    grad : ndarray, the shape and dtype of ``input``.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.cross_entropy_grad([[0.0, 0.0]], [0])
    array([[-0.5,  0.5]])
    """
    call = _prepare(input, target, weight, ignore_index, reduction, label_smoothing)
    eps = float(label_smoothing)
    scale = _upstream(call, grad_output)
    grad = np.empty_like(call.logits)
    for rows in _rows(call):
        s = scale[rows][:, None]  # (n, 1, d1..dk)
        if call.probabilities:
            _probability_grad(call, rows, eps, s, out=grad[rows])
        else:
            _index_grad(call, rows, eps, s, out=grad[rows])
    return grad.reshape(call.input_shape)


def _softmax_into(logits: np.ndarray, out: np.ndarray):
    """Write softmax(logits) along axis 1 into ``out``; return ``(others, S, j_max)``."""
    shifted_logits(logits, axis=1, out=out)
    others, j_max = exp_shifted_inplace(out, axis=1)
    s = 1.0 + others
    out /= s
    return others, s, j_max


def _index_grad(call: _Call, rows: slice, eps: float, s: np.ndarray, out: np.ndarray) -> None:
    r"""``out = s * (A p - q)`` for class-index targets, built in place in ``out``."""
    n_classes = call.n_classes
    t = call.safe_target[rows][:, None]
    w_t = call.target_weight[rows][:, None]  # 0 for ignored samples; s is 0 there too
    weight = np.ones(n_classes, out.dtype) if call.weight is None else call.weight
    others, total, j_max = _softmax_into(call.logits[rows], out)  # out = p
    a = (1.0 - eps) * w_t + (eps / n_classes) * weight.sum()  # A = sum_c q_c
    out *= s * a  # s A p
    # minus s q: (1 - eps) w_t at the target ...
    out_t = np.take_along_axis(out, t, axis=1)
    np.put_along_axis(out, t, out_t - s * ((1.0 - eps) * w_t), axis=1)
    if eps:
        # ... and (eps / C) w_c everywhere (a block-sized temporary for the product)
        out -= (s * (eps / n_classes)) * call.class_column(weight)
    # At the maximum j*, A p - q = -A others / S + sum_{c != j*} q_c: exact when p ~ 1.
    rest = (1.0 - eps) * w_t * (t != j_max) + (eps / n_classes) * (weight.sum() - weight[j_max])
    np.put_along_axis(out, j_max, s * (rest - a * others / total), axis=1)


def _probability_grad(call: _Call, rows: slice, eps: float, s: np.ndarray,
                      out: np.ndarray) -> None:
    r"""``out = s * (A p - q)`` for probability targets, built in place in ``out``."""
    q = _target_mass(call, rows, eps)
    a = q.sum(axis=1, keepdims=True)
    others, total, j_max = _softmax_into(call.logits[rows], out)  # out = p
    q_max = np.take_along_axis(q, j_max, axis=1)
    np.put_along_axis(q, j_max, 0.0, axis=1)
    rest = q.sum(axis=1, keepdims=True)  # sum_{c != j*} q_c, summed without q_{j*}
    np.put_along_axis(q, j_max, q_max, axis=1)
    out *= a
    out -= q
    np.put_along_axis(out, j_max, rest - a * others / total, axis=1)
    out *= s


# ---------------------------------------------------------------------------------------------
# nll_loss
# ---------------------------------------------------------------------------------------------


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood: :math:`\ell_i = -w_{t_i}\, x_{i t_i}` for log-probabilities ``input``.

    ``cross_entropy(x, t)`` equals ``nll_loss(log_softmax(x, axis=1), t)`` (without
    label smoothing). Only class-index targets (as in PyTorch); ``mean`` divides by
    :math:`\sum_{i\,\text{kept}} w_{t_i}`.

    Parameters
    ----------
    input : array_like, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``
        Log-probabilities (any real numbers are accepted, as in PyTorch).
    target : array_like of int, shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``
    weight, ignore_index, reduction
        As for :func:`cross_entropy`.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> float(xr.nll_loss(np.log([[0.5, 0.5], [0.25, 0.75]]), [0, 1], weight=[1.0, 2.0]))
    0.4228...
    """
    call = _prepare(input, target, weight, ignore_index, reduction, allow_probabilities=False)
    picked = np.take_along_axis(call.logits, call.safe_target[:, None], axis=1)[:, 0]
    # `where`, not a product: an ignored sample's picked value may be -inf.
    losses = np.where(call.kept, -call.target_weight * picked, 0).astype(call.logits.dtype,
                                                                         copy=False)
    return reduce(losses.reshape(call.loss_shape), call.reduction, call.denominator)


def nll_loss_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                  grad_output=None):
    r"""Gradient of :func:`nll_loss` with respect to ``input``.

    :math:`\ell_i = -w_{t_i} x_{i t_i}` depends on one entry per sample, so

    .. math::

        \frac{\partial \ell_i}{\partial x_{ij}} = -w_{t_i}\,[j = t_i],

    times the reduction's scale (``grad_output``, divided by the total kept weight
    for ``mean``); zero everywhere else and on ignored samples.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.nll_loss_grad([[-0.7, -0.7], [-1.4, -0.3]], [0, 1], weight=[1.0, 2.0])
    array([[-0.33333333,  0.        ],
           [ 0.        , -0.66666667]])
    """
    call = _prepare(input, target, weight, ignore_index, reduction, allow_probabilities=False)
    scale = _upstream(call, grad_output)
    grad = np.zeros_like(call.logits)
    np.put_along_axis(grad, call.safe_target[:, None], (-call.target_weight * scale)[:, None], axis=1)
    return grad.reshape(call.input_shape)
