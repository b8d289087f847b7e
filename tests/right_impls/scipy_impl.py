"""PyTorch's cross-entropy semantics built on SciPy's primitives (``scipy.special``'s
softmax, log_softmax, expit and log_expit), written independently of xent_ref: a right
implementation from another framework, which ``xent-ref verify`` must pass.

Everything is computed in float64 and returned in the input's dtype. cross_entropy takes
the LLM options too (logit_scale, softcap, z_loss), composed around the plain loss. Class-index losses
move the class axis (1, or 0 for a single sample) to the end, gather the target's
log-probability, and divide a mean by the kept targets' total weight.
"""

import numpy as np
from scipy.special import expit, log_expit, logsumexp, log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax

DESCRIPTION = "PyTorch semantics on scipy.special (tests/right_impls/scipy_impl.py)"
KNOWN_INACCURACY = "forms log-probabilities as x - max - log(sum), so tiny losses round to 0"
_BCE_EPS = float(np.float32(1e-12))  # PyTorch's C++ float constant


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def softmax(x, axis=-1):
    return sp_softmax(_f64(x), axis=axis).astype(np.asarray(x).dtype)


def log_softmax(x, axis=-1):
    return sp_log_softmax(_f64(x), axis=axis).astype(np.asarray(x).dtype)


def softmax_grad(x, grad_output, axis=-1):
    s, g = sp_softmax(_f64(x), axis=axis), _f64(grad_output)
    return (s * (g - (g * s).sum(axis=axis, keepdims=True))).astype(np.asarray(x).dtype)


def log_softmax_grad(x, grad_output, axis=-1):
    s, g = sp_softmax(_f64(x), axis=axis), _f64(grad_output)
    return (g - s * g.sum(axis=axis, keepdims=True)).astype(np.asarray(x).dtype)


def _classes_last(a):
    a = _f64(a)
    return a[None, :] if a.ndim == 1 else np.moveaxis(a, 1, -1)


def _classes_back(a, ndim):
    return a[0] if ndim == 1 else np.moveaxis(a, -1, 1)


def _reduce(losses, reduction, denominator):
    if reduction == "none":
        return losses
    with np.errstate(invalid="ignore", divide="ignore"):
        return losses.sum() / (denominator if reduction == "mean" else 1.0)


def _upstream(grad_output, reduction, denominator, shape):
    """The upstream gradient per sample: grad_output, divided by the mean's denominator."""
    g = np.float64(1.0) if grad_output is None else _f64(grad_output)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = g / denominator if reduction == "mean" else g
    return np.broadcast_to(g, shape)


def _class_loss(x, target, weight, ignore_index, label_smoothing, with_logits):
    """Per-sample losses, their weights (0 where ignored) and d loss / d logits per unit."""
    x = _classes_last(x)
    n_classes = x.shape[-1]
    log_p = sp_log_softmax(x, axis=-1) if with_logits else x
    w = np.ones(n_classes) if weight is None else _f64(weight)
    target = np.asarray(target)
    if target.dtype.kind not in "iu":  # class probabilities (bfloat16 is kind "V")
        y = _classes_last(target)
        y = (1 - label_smoothing) * y + label_smoothing / n_classes
        with np.errstate(invalid="ignore"):
            losses = -(w * y * log_p).sum(axis=-1)
        p = np.exp(log_p)
        grad = p * (w * y).sum(axis=-1, keepdims=True) - w * y
        return losses, np.ones(losses.shape), grad, np.float64(losses.size)
    t = target.reshape(x.shape[:-1])
    kept = t != ignore_index
    t_safe = np.where(kept, t, 0)
    w_t = np.where(kept, w[t_safe], 0.0)
    picked = np.take_along_axis(log_p, t_safe[..., None], axis=-1)[..., 0]
    one_hot = np.arange(n_classes) == t_safe[..., None]
    losses = np.where(kept, -w_t * picked, 0.0)
    if with_logits:
        p = np.exp(log_p)
        grad = w_t[..., None] * (p - one_hot)
    else:
        grad = -w_t[..., None] * one_hot
    if label_smoothing:
        with np.errstate(invalid="ignore"):
            smooth = np.where(kept, -(w * log_p).sum(axis=-1), 0.0)
        losses = (1 - label_smoothing) * losses + label_smoothing / n_classes * smooth
        smooth_grad = np.where(kept[..., None], p * w.sum() - w, 0.0)
        grad = (1 - label_smoothing) * grad + label_smoothing / n_classes * smooth_grad
    return losses, w_t, grad, w_t.sum()


def _class_pair(with_logits):
    def loss(input, target, weight=None, ignore_index=-100, reduction="mean",
             label_smoothing=0.0):
        losses, _, _, denominator = _class_loss(input, target, weight, ignore_index,
                                                label_smoothing, with_logits)
        if np.ndim(input) == 1:
            losses = losses[0]  # one sample: no batch axis
        return np.asarray(_reduce(losses, reduction, denominator)).astype(
            np.asarray(input).dtype)

    def loss_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, grad_output=None):
        losses, w_t, grad, denominator = _class_loss(input, target, weight, ignore_index,
                                                     label_smoothing, with_logits)
        g = _upstream(grad_output, reduction, denominator, losses.shape)
        if np.asarray(target).dtype.kind == "i":
            # 0 * (g / 0) is nan for a kept target of weight 0 under a zero total weight,
            # as in PyTorch; ignored targets contribute exactly 0.
            kept = np.asarray(target).reshape(losses.shape) != ignore_index
            g = np.where(kept, g, 0.0)
        with np.errstate(invalid="ignore"):
            result = grad * g[..., None]
        return _classes_back(result, np.ndim(input)).astype(np.asarray(input).dtype)

    return loss, loss_grad


_plain_cross_entropy, _plain_cross_entropy_grad = _class_pair(with_logits=True)
nll_loss, nll_loss_grad = _class_pair(with_logits=False)


def _llm_logits(input, logit_scale, softcap):
    """The LLM options' logits z = c tanh(s x / c) (z = s x without a cap), and dz/dx."""
    z = _f64(input) * logit_scale
    if softcap is None:
        return z, np.full(z.shape, float(logit_scale))
    t = np.tanh(z / softcap)
    return softcap * t, logit_scale * (1 - t * t)


def _z_loss_terms(z, target, ignore_index, reduction):
    """lse(z) per sample, the kept mask and the z-loss mean's denominator (kept count)."""
    axis = 0 if z.ndim == 1 else 1
    lse = logsumexp(z, axis=axis)
    target = np.asarray(target)
    kept = np.ones(lse.shape, bool) if target.dtype.kind not in "iu" else target != ignore_index
    return lse, kept, (kept.sum() if reduction == "mean" else 1.0), axis


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, logit_scale=1.0, softcap=None, z_loss=0.0):
    z, _ = _llm_logits(input, logit_scale, softcap)
    loss = _plain_cross_entropy(z, target, weight, ignore_index, reduction, label_smoothing)
    if z_loss:
        lse, kept, denominator, _ = _z_loss_terms(z, target, ignore_index, reduction)
        penalty = np.where(kept, z_loss * lse**2, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = loss + (penalty if reduction == "none" else penalty.sum() / denominator)
    return np.asarray(loss).astype(np.asarray(input).dtype)


def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None, logit_scale=1.0, softcap=None,
                       z_loss=0.0):
    z, dz_dx = _llm_logits(input, logit_scale, softcap)
    grad = _plain_cross_entropy_grad(z, target, weight, ignore_index, reduction,
                                     label_smoothing, grad_output)
    if z_loss:  # d(lambda lse^2)/dz = 2 lambda lse p, per kept sample
        lse, kept, denominator, axis = _z_loss_terms(z, target, ignore_index, reduction)
        g = np.float64(1.0) if grad_output is None else _f64(grad_output)
        scale = np.where(kept, 2 * z_loss * lse * g / denominator, 0.0)
        grad = grad + sp_softmax(z, axis=axis) * np.expand_dims(scale, axis)
    return (grad * dz_dx).astype(np.asarray(input).dtype)


def _binary(input, target, weight):
    x, y = _f64(input), _f64(target)
    w = np.ones(()) if weight is None else _f64(weight)
    return x, y, np.broadcast_to(w, x.shape)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    p, y, w = _binary(input, target, weight)
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(p), -100), np.maximum(np.log1p(-p), -100)
    losses = -w * (y * log_p + (1 - y) * log_q)
    return np.asarray(_reduce(losses, reduction, p.size)).astype(np.asarray(input).dtype)


def binary_cross_entropy_grad(input, target, weight=None, reduction="mean", grad_output=None):
    p, y, w = _binary(input, target, weight)
    g = _upstream(grad_output, reduction, p.size, p.shape)
    grad = w * (p - y) / np.maximum(p * (1 - p), _BCE_EPS) * g
    return grad.astype(np.asarray(input).dtype)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    x, y, w = _binary(input, target, weight)
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    log_weight = 1 + (pw - 1) * y
    losses = w * ((1 - y) * x - log_weight * log_expit(x))  # softplus(-x) = -log_expit(x)
    return np.asarray(_reduce(losses, reduction, x.size)).astype(np.asarray(input).dtype)


def binary_cross_entropy_with_logits_grad(input, target, weight=None, pos_weight=None,
                                          reduction="mean", grad_output=None):
    x, y, w = _binary(input, target, weight)
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    g = _upstream(grad_output, reduction, x.size, x.shape)
    grad = w * ((1 + (pw - 1) * y) * expit(x) - pw * y) * g
    return grad.astype(np.asarray(input).dtype)


def _linear_logits(input, linear_weight, linear_bias):
    """``h W^T + b``; a weight ``(V, d1, ..., dK, H)`` gives logits ``(N, V, d1, ..., dK)``."""
    h, w = _f64(input), _f64(linear_weight)
    logits = np.tensordot(h, w, axes=([-1], [-1]))
    return logits if linear_bias is None else logits + _f64(linear_bias)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, **options):
    logits = _linear_logits(input, linear_weight, linear_bias)
    return cross_entropy(logits, target, **options).astype(np.asarray(input).dtype)


def linear_cross_entropy_grad(input, linear_weight, target, *, linear_bias=None,
                              grad_output=None, **options):
    """dh = G W, dW = G^T h, db = the sums of G over the tokens (G: the logits' gradient)."""
    h, w = _f64(input), _f64(linear_weight)
    logits = _linear_logits(input, linear_weight, linear_bias)
    g = cross_entropy_grad(logits, target, grad_output=grad_output, **options)
    dtype = np.asarray(input).dtype
    out_axes = list(range(g.ndim - w.ndim + 1, g.ndim))  # V, d1, ..., dK
    grad_h = np.tensordot(g, w, axes=(out_axes, list(range(w.ndim - 1))))
    grad_w = np.tensordot(g, h, axes=([0], [0])) if h.ndim == 2 else np.multiply.outer(g, h)
    grad_bias = None if linear_bias is None else (g.sum(axis=0) if h.ndim == 2 else g)
    return (grad_h.astype(dtype), grad_w.astype(dtype),
            None if grad_bias is None else grad_bias.astype(dtype))
