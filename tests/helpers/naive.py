"""Loop-based naive twins of every xent_ref function, written straight from the formulas.

These exist only to be compared with the vectorized library (``tests/test_naive.py``).
They are the third reading of the same math, kept on purpose: ``xent_ref.textbook``
is the vectorised formula a learner reads, the production modules are exact and
blocked, and these loops share no code (and no NumPy broadcasting) with either, so
a mistake in one reading cannot hide in another.
Everything here is plain Python arithmetic on Python floats (``math.exp`` and
``math.log``), one sample and one class at a time, with no NumPy vectorization and
no numerical trick except the max shift of the log-sum-exp (without it ``math.exp``
raises ``OverflowError`` at 710). In particular there is no ``log1p``: the naive
``log(1 + tiny)`` loses the tiny part, so comparisons against these twins need a
small absolute tolerance next to the relative one.

Shapes follow PyTorch: the class axis is 1 for an ``(N, C, d1, ..., dk)`` input and 0
for a ``(C,)`` input, whose target is 0-d. A "loss index" is an index into the loss
of ``reduction="none"``: ``()`` for a ``(C,)`` input, ``(n, i1, ..., ik)`` otherwise.
Gradients are the closed forms (softmax minus target, weighted and masked; sigmoid
minus target), each written as the explicit sum over the Jacobian it comes from.
"""

from __future__ import annotations

import math

import numpy as np

LOG_CLAMP = -100.0  # PyTorch clamps each log of the binary cross-entropy here
BCE_GRAD_FLOOR = float(np.float32(1e-12))  # PyTorch's float constant, widened to double


# ---------------------------------------------------------------------------------------------
# helpers: walking the arrays one row / one element at a time
# ---------------------------------------------------------------------------------------------


def _float64(a) -> np.ndarray:
    return np.array(a, dtype=np.float64)


def _rows_along(shape: tuple, axis: int):
    """Every index of the axes other than ``axis``, as a function ``c -> full index``."""
    axis = axis % len(shape)
    others = shape[:axis] + shape[axis + 1:]
    for rest in np.ndindex(*others):
        yield lambda c, rest=rest: rest[:axis] + (c,) + rest[axis:]


def _loss_shape(input_shape: tuple) -> tuple:
    return () if len(input_shape) == 1 else (input_shape[0],) + input_shape[2:]


def _at_class(loss_index: tuple, c: int, ndim: int) -> tuple:
    """The input index of class ``c`` of the sample at ``loss_index``."""
    if ndim == 1:
        return (c,)
    return (loss_index[0], c) + loss_index[1:]


def _broadcast_index(index: tuple, shape: tuple) -> tuple:
    """The index into an array of ``shape`` that right-aligned broadcasting maps ``index`` to."""
    offset = len(index) - len(shape)
    return tuple(0 if size == 1 else index[offset + k] for k, size in enumerate(shape))


def _reduce(losses: np.ndarray, reduction: str, denominator: float):
    if reduction == "none":
        return losses
    total = 0.0
    for index in np.ndindex(*losses.shape):
        total += float(losses[index])
    if reduction == "sum":
        return total
    return total / denominator if denominator != 0 else math.nan


def _scale(grad_output, reduction: str, loss_index: tuple, denominator: float) -> float:
    """d(reduced loss) / d(loss at ``loss_index``), times the upstream gradient."""
    if reduction == "none":
        return 1.0 if grad_output is None else float(np.asarray(grad_output)[loss_index])
    g = 1.0 if grad_output is None else float(grad_output)
    if reduction == "sum":
        return g
    return g / denominator if denominator != 0 else math.inf


# ---------------------------------------------------------------------------------------------
# softmax and log-softmax of one row (a Python list)
# ---------------------------------------------------------------------------------------------


def _softmax_row(row: list) -> list:
    m = max(row)
    exps = [math.exp(v - m) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _log_softmax_row(row: list) -> list:
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def _row_by_row(x, axis: int, row_function) -> np.ndarray:
    """Apply ``row_function`` (list of logits -> list) to every slice of ``x`` along ``axis``."""
    x = _float64(x)
    out = np.empty_like(x)
    for at in _rows_along(x.shape, axis):
        row = [float(x[at(c)]) for c in range(x.shape[axis])]
        for c, value in enumerate(row_function(row)):
            out[at(c)] = value
    return out


def naive_softmax(x, axis=-1) -> np.ndarray:
    return _row_by_row(x, axis, _softmax_row)


def naive_log_softmax(x, axis=-1) -> np.ndarray:
    return _row_by_row(x, axis, _log_softmax_row)


def _vector_jacobian_product(x, grad_output, axis: int, jacobian) -> np.ndarray:
    """``dL/dx_j = sum_c g_c J_cj`` along ``axis``, with ``J_cj = jacobian(p, c, j)``."""
    x, g = _float64(x), _float64(grad_output)
    out = np.empty_like(x)
    n = x.shape[axis]
    for at in _rows_along(x.shape, axis):
        p = _softmax_row([float(x[at(c)]) for c in range(n)])
        for j in range(n):
            out[at(j)] = sum(float(g[at(c)]) * jacobian(p, c, j) for c in range(n))
    return out


def naive_softmax_grad(x, grad_output, axis=-1) -> np.ndarray:
    """The Jacobian of softmax: ``dp_c/dx_j = p_c (delta_cj - p_j)``."""
    return _vector_jacobian_product(x, grad_output, axis,
                                    lambda p, c, j: p[c] * ((c == j) - p[j]))


def naive_log_softmax_grad(x, grad_output, axis=-1) -> np.ndarray:
    """The Jacobian of log-softmax: ``d log p_c/dx_j = delta_cj - p_j``."""
    return _vector_jacobian_product(x, grad_output, axis, lambda p, c, j: (c == j) - p[j])


# ---------------------------------------------------------------------------------------------
# cross-entropy and NLL: every sample's "target mass" q (loss = sum_c q_c (-log p_c))
# ---------------------------------------------------------------------------------------------


def _samples(input, target, weight, ignore_index, label_smoothing):
    """Walk the samples of a cross-entropy call.

    Yields ``(loss_index, row, q, w_t)``: the sample's logits as a list, its target
    mass ``q`` (a list over classes; ``None`` when the target is ignored) and its
    contribution to the ``mean`` denominator ``w_t`` (the target's class weight for
    class indices, 1 for probability targets).
    """
    x, target = _float64(input), np.asarray(target)
    n_classes = x.shape[0 if x.ndim == 1 else 1]
    w = [1.0] * n_classes if weight is None else [float(v) for v in weight]
    eps = float(label_smoothing)
    probabilities = target.shape == x.shape
    for loss_index in np.ndindex(*_loss_shape(x.shape)):
        row = [float(x[_at_class(loss_index, c, x.ndim)]) for c in range(n_classes)]
        if probabilities:
            y = [float(target[_at_class(loss_index, c, x.ndim)]) for c in range(n_classes)]
            q = [w[c] * ((1 - eps) * y[c] + eps / n_classes) for c in range(n_classes)]
            yield loss_index, row, q, 1.0
            continue
        t = int(target[loss_index])
        if t == ignore_index:
            yield loss_index, row, None, 0.0
            continue
        q = [(1 - eps) * w[c] * (c == t) + eps / n_classes * w[c] for c in range(n_classes)]
        yield loss_index, row, q, w[t]


def naive_cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                        label_smoothing=0.0):
    """``l_i = sum_c q_ic (-log p_ic)``; ``mean`` divides by the summed ``w_t`` of kept targets
    (class indices) or by the number of samples (probabilities)."""
    losses = np.zeros(_loss_shape(np.shape(input)))
    denominator = 0.0
    for loss_index, row, q, w_t in _samples(input, target, weight, ignore_index, label_smoothing):
        denominator += w_t
        if q is None:
            continue
        log_p = _log_softmax_row(row)
        losses[loss_index] = sum(-q_c * lp for q_c, lp in zip(q, log_p))
    return _reduce(losses, reduction, denominator)


def naive_cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                             label_smoothing=0.0, grad_output=None):
    """``dl_i/dx_ij = sum_c q_ic (p_ij - delta_cj)`` (from ``d(-log p_c)/dx_j = p_j - delta_cj``),
    times the reduction's scale; ignored samples get a zero row."""
    x = _float64(input)
    samples = list(_samples(input, target, weight, ignore_index, label_smoothing))
    denominator = sum(w_t for *_, w_t in samples)
    grad = np.zeros_like(x)
    for loss_index, row, q, _ in samples:
        if q is None:
            continue
        s = _scale(grad_output, reduction, loss_index, denominator)
        p = _softmax_row(row)
        for j in range(len(row)):
            d = sum(q_c * (p[j] - (c == j)) for c, q_c in enumerate(q))
            grad[_at_class(loss_index, j, x.ndim)] = s * d
    return grad


def naive_nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """``l_i = -w_t x_it``; ``mean`` divides by the summed ``w_t`` of kept targets."""
    x, target = _float64(input), np.asarray(target)
    losses = np.zeros(_loss_shape(x.shape))
    denominator = 0.0
    for loss_index in np.ndindex(*losses.shape):
        t = int(target[loss_index])
        if t == ignore_index:
            continue
        w_t = 1.0 if weight is None else float(weight[t])
        losses[loss_index] = -w_t * float(x[_at_class(loss_index, t, x.ndim)])
        denominator += w_t
    return _reduce(losses, reduction, denominator)


def naive_nll_loss_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                        grad_output=None):
    """``dl_i/dx_ij = -w_t [j = t]`` times the reduction's scale."""
    x, target = _float64(input), np.asarray(target)
    kept = [index for index in np.ndindex(*_loss_shape(x.shape))
            if int(target[index]) != ignore_index]

    def w_of(index):
        return 1.0 if weight is None else float(weight[int(target[index])])

    denominator = sum(w_of(index) for index in kept)
    grad = np.zeros_like(x)
    for loss_index in kept:
        s = _scale(grad_output, reduction, loss_index, denominator)
        grad[_at_class(loss_index, int(target[loss_index]), x.ndim)] = -w_of(loss_index) * s
    return grad


# ---------------------------------------------------------------------------------------------
# binary cross-entropy
# ---------------------------------------------------------------------------------------------


def _clamped_log(v: float) -> float:
    """``max(log v, -100)``, with ``log 0 = -inf`` clamped too."""
    return LOG_CLAMP if v == 0 else max(math.log(v), LOG_CLAMP)


def _element_weight(weight, index: tuple) -> float:
    if weight is None:
        return 1.0
    weight = np.asarray(weight)
    return float(weight[_broadcast_index(index, weight.shape)])


def naive_binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``l = -w [y max(log p, -100) + (1 - y) max(log(1 - p), -100)]``; ``mean`` over elements."""
    p, y = _float64(input), _float64(target)
    losses = np.zeros_like(p)
    for index in np.ndindex(*p.shape):
        pi, yi = float(p[index]), float(y[index])
        losses[index] = -_element_weight(weight, index) * (
            yi * _clamped_log(pi) + (1 - yi) * _clamped_log(1 - pi))
    return _reduce(losses, reduction, p.size)


def naive_binary_cross_entropy_grad(input, target, weight=None, reduction="mean",
                                    grad_output=None):
    """``dl/dp = w (p - y) / max(p (1 - p), 1e-12f)``, times the reduction's scale."""
    p, y = _float64(input), _float64(target)
    grad = np.zeros_like(p)
    for index in np.ndindex(*p.shape):
        pi, yi = float(p[index]), float(y[index])
        s = _scale(grad_output, reduction, index, p.size)
        grad[index] = s * _element_weight(weight, index) * (pi - yi) / max(pi * (1 - pi),
                                                                            BCE_GRAD_FLOOR)
    return grad


def _softplus(z: float) -> float:
    """``log(1 + e^z) = log(e^0 + e^z)``: a two-term log-sum-exp, max-shifted."""
    m = max(0.0, z)
    return m + math.log(math.exp(-m) + math.exp(z - m))


def _sigmoid(z: float) -> float:
    """``e^z / (e^0 + e^z)``: the softmax of ``(0, z)``, second entry."""
    return _softmax_row([0.0, z])[1]


def naive_binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                           reduction="mean"):
    """``l = w [pw y softplus(-x) + (1 - y) softplus(x)]``; ``mean`` over elements."""
    x, y = _float64(input), _float64(target)
    losses = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        xi, yi = float(x[index]), float(y[index])
        pw = _element_weight(pos_weight, index)
        losses[index] = _element_weight(weight, index) * (
            pw * yi * _softplus(-xi) + (1 - yi) * _softplus(xi))
    return _reduce(losses, reduction, x.size)


def naive_binary_cross_entropy_with_logits_grad(input, target, weight=None, pos_weight=None,
                                                reduction="mean", grad_output=None):
    """``dl/dx = w [(1 - y) sigmoid(x) - pw y sigmoid(-x)]`` (``softplus' = sigmoid``)."""
    x, y = _float64(input), _float64(target)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        xi, yi = float(x[index]), float(y[index])
        pw = _element_weight(pos_weight, index)
        s = _scale(grad_output, reduction, index, x.size)
        grad[index] = s * _element_weight(weight, index) * (
            (1 - yi) * _sigmoid(xi) - pw * yi * _sigmoid(-xi))
    return grad
