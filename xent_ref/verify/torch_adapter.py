"""``xent-ref verify --impl torch``: ``torch.nn.functional`` behind xent_ref's signatures.

Each function turns its NumPy arguments into tensors of the same dtype, calls the
PyTorch function, and returns NumPy arrays; the ``_grad`` twins get the gradient
from autograd (``backward(grad_output)``), not from a formula of ours. Importing
this module never fails: without torch, :data:`UNAVAILABLE` says why and ``verify``
exits with status 2.
"""

from __future__ import annotations

import numpy as np

from xent_ref.golden.jsonio import dtype_named

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # verify reports UNAVAILABLE; importing must stay safe for doctests
    torch = None

UNAVAILABLE = None if torch is not None else "PyTorch is not installed (pip install torch)"
DESCRIPTION = f"torch {torch.__version__}" if torch is not None else "torch missing"
KNOWN_INACCURACY = (
    "known torch inaccuracy: torch forms lse(x) - x_t, so a loss or gradient far below "
    "eps * |x| rounds to 0 (xent_ref keeps it with log1p)"
)

_ARRAY_KWARGS = ("weight", "pos_weight")


def _tensor(a, like=None):
    """A tensor from ``a``: integer arrays stay int64 (class indices), floating ones take
    the dtype of ``like`` when given. bfloat16 (ml_dtypes in NumPy, native in torch)
    crosses as its raw 16 bits."""
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return torch.from_numpy(a.astype(np.int64))
    if a.dtype.name == "bfloat16":
        t = torch.from_numpy(np.array(a).view(np.int16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.array(a))
    return t if like is None else t.to(like.dtype)


def _array(t) -> np.ndarray:
    """The NumPy array of a tensor (bfloat16 through its raw bits, as :func:`_tensor`)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(dtype_named("bfloat16"))
    return t.numpy()


def _evaluate(torch_fn, args, kwargs, grad_output=None, want_grad=False, leaf=0):
    """``torch_fn(*args, **kwargs)`` on tensors; the output, or the gradient of argument
    ``leaf`` (0: the input; 1: the target, ``wrt="target"``)."""
    tensors = [_tensor(args[0])]
    tensors += [_tensor(a, like=tensors[0]) for a in args[1:]]
    tensors[leaf].requires_grad_(want_grad)
    kwargs = {key: _tensor(value, like=tensors[0]) if key in _ARRAY_KWARGS and value is not None
              else value for key, value in kwargs.items()}
    output = torch_fn(*tensors, **kwargs)
    if not want_grad:
        return _array(output)
    output.backward(_upstream(output, grad_output))
    return _array(tensors[leaf].grad)


def _upstream(output, grad_output):
    """The upstream gradient of ``output``: ones, or ``grad_output`` broadcast to it."""
    return (torch.ones_like(output) if grad_output is None
            else _tensor(grad_output, like=output).expand_as(output))


def _loss_pair(name: str, torch_fn=None, target_grad=False):
    """``loss(input, target, **options)`` and ``loss_grad(..., grad_output=None)`` of
    ``torch_fn`` (default: ``torch.nn.functional``'s function ``name``); with
    ``target_grad``, ``loss_grad`` takes ``wrt="target"`` too (autograd's target.grad)."""
    def loss(input, target, **options):
        return _evaluate(torch_fn or getattr(F, name), (input, target), options)

    def loss_grad(input, target, grad_output=None, **options):
        return _evaluate(torch_fn or getattr(F, name), (input, target), options, grad_output,
                         True)

    def loss_grad_wrt(input, target, grad_output=None, *, wrt="input", **options):
        if wrt not in ("input", "target"):
            raise ValueError(f"wrt: must be 'input' or 'target', got {wrt!r}")
        return _evaluate(torch_fn or getattr(F, name), (input, target), options, grad_output,
                         True, int(wrt == "target"))

    gradient = loss_grad_wrt if target_grad else loss_grad
    loss.__name__, gradient.__name__ = name, name + "_grad"
    return loss, gradient


def _cross_entropy_with_options(input, target, weight=None, ignore_index=-100,
                                reduction="mean", label_smoothing=0.0, *, logit_scale=1.0,
                                softcap=None, z_loss=0.0):
    """``F.cross_entropy`` with the LLM options composed in PyTorch (autograd derives the
    gradient): ``z = logit_scale * x``, then ``z = softcap * tanh(z / softcap)``, then the
    cross-entropy of ``z`` plus ``z_loss * lse(z)^2`` for each kept token; its mean
    divides by the number of kept tokens (every sample with probability targets). The
    defaults call ``F.cross_entropy`` untouched."""
    z = input * logit_scale if logit_scale != 1.0 else input
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    loss = F.cross_entropy(z, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)
    if not z_loss:
        return loss
    lse = torch.logsumexp(z, dim=0 if z.dim() == 1 else 1)
    kept = (target != ignore_index) if not target.is_floating_point() else \
        torch.ones_like(lse, dtype=torch.bool)
    penalty = torch.where(kept, z_loss * lse**2, torch.zeros_like(lse))
    if reduction == "none":
        return loss + penalty
    if reduction == "sum":
        return loss + penalty.sum()
    return loss + penalty.sum() / kept.sum()


def _softmax_pair(name: str):
    """``fn(x, axis=-1)`` and ``fn_grad(x, grad_output, axis=-1)`` (torch calls it ``dim``)."""

    def fn(x, axis=-1):
        return _evaluate(getattr(F, name), (x,), {"dim": axis})

    def fn_grad(x, grad_output, axis=-1):
        return _evaluate(getattr(F, name), (x,), {"dim": axis}, grad_output, True)

    fn.__name__, fn_grad.__name__ = name, name + "_grad"
    return fn, fn_grad


softmax, softmax_grad = _softmax_pair("softmax")
log_softmax, log_softmax_grad = _softmax_pair("log_softmax")
cross_entropy, cross_entropy_grad = _loss_pair("cross_entropy", _cross_entropy_with_options,
                                               target_grad=True)
nll_loss, nll_loss_grad = _loss_pair("nll_loss")
binary_cross_entropy, binary_cross_entropy_grad = _loss_pair("binary_cross_entropy",
                                                             target_grad=True)
(
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
) = _loss_pair("binary_cross_entropy_with_logits", target_grad=True)


def _linear_cross_entropy_torch(input, linear_weight, target, linear_bias=None,
                                logit_scale=1.0, softcap=None, z_loss=0.0, **options):
    """``F.linear_cross_entropy`` (PyTorch 2.13); with an LLM option, the logits
    ``F.linear(input, linear_weight, linear_bias)`` through :func:`_cross_entropy_with_options`
    (``F.linear_cross_entropy`` has no such options)."""
    if (logit_scale, softcap, z_loss) == (1.0, None, 0.0):
        if not target.is_floating_point():  # (probability targets take no ignore_index)
            options.setdefault("ignore_index", -100)  # torch's default is None, PyTorch's -100
        return F.linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias,
                                      **options)
    logits = F.linear(input, linear_weight, linear_bias)
    return _cross_entropy_with_options(logits, target, logit_scale=logit_scale,
                                       softcap=softcap, z_loss=z_loss, **options)


def _linear_arguments(input, linear_weight, target, linear_bias, kwargs, want_grad):
    leaves = [_tensor(input).requires_grad_(want_grad)]
    leaves.append(_tensor(linear_weight, like=leaves[0]).requires_grad_(want_grad))
    bias = None
    if linear_bias is not None:
        bias = _tensor(linear_bias, like=leaves[0]).requires_grad_(want_grad)
    kwargs = {key: _tensor(value, like=leaves[0]) if key in _ARRAY_KWARGS and value is not None
              else value for key, value in kwargs.items()}
    target = _tensor(target, like=leaves[0])
    return leaves, bias, target, kwargs


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, **kwargs):
    (h, w), bias, target, kwargs = _linear_arguments(input, linear_weight, target,
                                                     linear_bias, kwargs, False)
    return _array(_linear_cross_entropy_torch(h, w, target, linear_bias=bias, **kwargs))


def linear_cross_entropy_grad(input, linear_weight, target, *, linear_bias=None,
                              grad_output=None, **kwargs):
    """``(grad_input, grad_linear_weight, grad_linear_bias or None)`` from autograd."""
    (h, w), bias, target, kwargs = _linear_arguments(input, linear_weight, target,
                                                     linear_bias, kwargs, True)
    output = _linear_cross_entropy_torch(h, w, target, linear_bias=bias, **kwargs)
    upstream = (torch.ones_like(output) if grad_output is None
                else _tensor(grad_output, like=output).expand_as(output))
    output.backward(upstream)
    return _array(h.grad), _array(w.grad), None if bias is None else _array(bias.grad)


# ---------------------------------------------------------------------------
# The rest of the family: kl_div, the focal losses, poly-1
# ---------------------------------------------------------------------------


def _family_reduced(losses, reduction, denominator):
    """``losses`` reduced: ``none`` as is, ``sum``, or ``mean`` over ``denominator``."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / denominator


def _sigmoid_focal_torch(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision's ``sigmoid_focal_loss`` composed without ``1 - sigmoid`` (its own
    ``1 - p_t`` rounds to 0 for confident logits, and the tiny loss with it): ``1 - p_t``
    as ``sigmoid(-x)`` or ``sigmoid(x)``, the cross-entropy as a softplus."""
    one_minus_p_t = target * torch.sigmoid(-input) + (1 - target) * torch.sigmoid(input)
    ce = (target * F.softplus(-input, threshold=1000)
          + (1 - target) * F.softplus(input, threshold=1000))
    loss = ce * one_minus_p_t**gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return _family_reduced(loss, reduction, loss.numel())


def target_mass(x, target, weight, ignore_index, label_smoothing):
    """``(q, denominator)``: cross-entropy's target mass (class axis 1) and its mean divisor
    (the kept weight for class indices, the sample count for probabilities)."""
    c = x.shape[1]
    w = torch.ones(c, dtype=x.dtype) if weight is None else weight
    shape = [1, c] + [1] * (x.dim() - 2)
    if target.is_floating_point():
        q = w.reshape(shape) * ((1 - label_smoothing) * target + label_smoothing / c)
        return q, x.numel() / c
    kept = target != ignore_index
    t = torch.where(kept, target, 0)
    one_hot = torch.movedim(F.one_hot(t, c).to(x.dtype), -1, 1)
    w_t = w[t] * kept
    q = ((1 - label_smoothing) * one_hot * w_t.unsqueeze(1)
         + (label_smoothing / c) * w.reshape(shape) * kept.unsqueeze(1))
    return q, w_t.sum()


def _batched(fn):
    """``fn`` on a batch of one when the input is a single sample (no batch axis)."""

    def wrapped(input, target, *args, reduction="mean", **kwargs):
        if input.dim() != 1:
            return fn(input, target, *args, reduction=reduction, **kwargs)
        loss = fn(input[None], target[None], *args, reduction=reduction, **kwargs)
        return loss[0] if reduction == "none" else loss

    return wrapped


@_batched
def _softmax_focal_torch(input, target, gamma=2.0, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0):
    """``-sum_c q_c (1 - p_c)^gamma log p_c`` over cross-entropy's target mass ``q``."""
    log_p = F.log_softmax(input, 1)
    q, denominator = target_mass(input, target, weight, ignore_index, label_smoothing)
    losses = -(q * (-torch.expm1(log_p)) ** gamma * log_p).sum(1)
    return _family_reduced(losses, reduction, denominator)


@_batched
def _poly1_torch(input, target, epsilon=1.0, weight=None, ignore_index=-100,
                 reduction="mean", label_smoothing=0.0):
    """``F.cross_entropy + epsilon * sum_c q_c (1 - p_c)``, reduced as cross-entropy is."""
    ce = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)
    q, denominator = target_mass(input, target, weight, ignore_index, label_smoothing)
    poly = (q * -torch.expm1(F.log_softmax(input, 1))).sum(1)
    return ce + epsilon * _family_reduced(poly, reduction, denominator)


kl_div, kl_div_grad = _loss_pair("kl_div")
sigmoid_focal_loss, sigmoid_focal_loss_grad = _loss_pair("sigmoid_focal_loss",
                                                         _sigmoid_focal_torch)
softmax_focal_loss, softmax_focal_loss_grad = _loss_pair("softmax_focal_loss",
                                                         _softmax_focal_torch)
poly1_cross_entropy, poly1_cross_entropy_grad = _loss_pair("poly1_cross_entropy", _poly1_torch)


# ---------------------------------------------------------------------------
# Second order: double backward, and the statistics from torch's own operations
# ---------------------------------------------------------------------------


def _double_backward(output, leaves, grad_output, directions):
    """``d/d leaves <grad(output, leaves, grad_output), directions>``: PyTorch's double
    backward (``create_graph``); a leaf the gradient does not depend on gets zeros."""
    grads = torch.autograd.grad(output, leaves, _upstream(output, grad_output),
                                create_graph=True)
    used = [(g, leaf, d) for g, leaf, d in zip(grads, leaves, directions) if g.requires_grad]
    found = {}
    if used:
        hv = torch.autograd.grad([g for g, _, _ in used], leaves, [d for _, _, d in used],
                                 allow_unused=True)
        found = {id(leaf): h for leaf, h in zip(leaves, hv) if h is not None}
    return [_array(found[id(leaf)]) if id(leaf) in found else _array(torch.zeros_like(leaf))
            for leaf in leaves]


def _softmax_hvp(name: str):
    def hvp(x, grad_output, v, axis=-1):
        leaf = _tensor(x).requires_grad_(True)
        output = getattr(F, name)(leaf, dim=axis)
        return _double_backward(output, [leaf], grad_output, [_tensor(v, like=leaf)])[0]

    hvp.__name__ = name + "_hvp"
    return hvp


def _loss_hvp(name: str, torch_fn=None):
    def hvp(input, target, v, grad_output=None, **options):
        leaf = _tensor(input).requires_grad_(True)
        options = {key: _tensor(value, like=leaf) if key in _ARRAY_KWARGS and value is not None
                   else value for key, value in options.items()}
        output = (torch_fn or getattr(F, name))(leaf, _tensor(target, like=leaf), **options)
        return _double_backward(output, [leaf], grad_output, [_tensor(v, like=leaf)])[0]

    hvp.__name__ = name + "_hvp"
    return hvp


softmax_hvp, log_softmax_hvp = _softmax_hvp("softmax"), _softmax_hvp("log_softmax")
cross_entropy_hvp = _loss_hvp("cross_entropy", _cross_entropy_with_options)
nll_loss_hvp = _loss_hvp("nll_loss")
binary_cross_entropy_hvp = _loss_hvp("binary_cross_entropy")
binary_cross_entropy_with_logits_hvp = _loss_hvp("binary_cross_entropy_with_logits")


def _linear_logits(input, linear_weight, target, linear_bias, kwargs):
    """``(leaves, logits, target, kwargs)``: ``F.linear`` of leaves that take gradients."""
    (h, w), bias, target, kwargs = _linear_arguments(input, linear_weight, target,
                                                     linear_bias, kwargs, True)
    leaves = [h, w] + ([] if bias is None else [bias])
    return leaves, F.linear(h, w, bias), target, kwargs


def linear_cross_entropy_hvp(input, linear_weight, target, v, *, linear_bias=None,
                             grad_output=None, ignore_index=None, **kwargs):
    """The joint double backward over ``(input, linear_weight[, linear_bias])`` of
    ``F.linear`` then :func:`_cross_entropy_with_options`; ``v`` one direction per
    parameter (``None``: zeros)."""
    leaves, logits, target, kwargs = _linear_logits(input, linear_weight, target, linear_bias,
                                                    kwargs)
    output = _cross_entropy_with_options(
        logits, target, ignore_index=-100 if ignore_index is None else ignore_index, **kwargs)
    directions = [torch.zeros_like(leaf) if part is None else _tensor(part, like=leaf)
                  for leaf, part in zip(leaves, v)]
    hv = _double_backward(output, leaves, grad_output, directions)
    return tuple(hv) + (() if linear_bias is not None else (None,))


def _statistics(z_from, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, logit_scale=1.0, softcap=None, z_loss=0.0) -> dict:
    """Every statistic of xent_ref.stats from torch's operations on the transformed logits
    ``z`` (``torch.logsumexp``, ``torch.argmax``: the first maximal index)."""
    z = z_from * logit_scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    axis = 0 if z.dim() == 1 else 1
    ce = F.cross_entropy(z, target, weight=weight, ignore_index=ignore_index,
                         reduction="none", label_smoothing=label_smoothing)
    lse, logp = torch.logsumexp(z, dim=axis), torch.log_softmax(z, axis)
    probabilities = target.is_floating_point()
    kept = torch.ones_like(lse, dtype=torch.bool) if probabilities else target != ignore_index
    zl = torch.where(kept, z_loss * lse * lse, torch.zeros_like(lse))
    argmax = torch.argmax(z, dim=axis)
    if probabilities:
        target_logprob = (target * logp).sum(axis)
        correct = argmax == torch.argmax(target, dim=axis)
    else:
        picked = logp.gather(axis, torch.where(kept, target, 0).unsqueeze(axis)).squeeze(axis)
        target_logprob = torch.where(kept, picked, torch.zeros_like(picked))
        correct = (argmax == target) & kept
    p = torch.softmax(z, axis)
    count = {"none": 1, "sum": 1, "mean": kept.sum()}[reduction]
    stats = {"lse": lse, "loss": ce + zl, "z_loss": zl, "target_logprob": target_logprob,
             "entropy": -torch.where(p == 0, torch.zeros_like(p), p * logp).sum(axis),
             "argmax": argmax, "correct": correct, "kept": kept,
             "reduced_loss": _cross_entropy_with_options(
                 z_from, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                 label_smoothing=label_smoothing, logit_scale=logit_scale, softcap=softcap,
                 z_loss=z_loss),
             "reduced_z_loss": zl if reduction == "none" else zl.sum() / count}
    return {name: _array(value) for name, value in stats.items()}


def cross_entropy_stats(input, target, weight=None, **kwargs):
    logits = _tensor(input)
    weight = None if weight is None else _tensor(weight, like=logits)
    return _statistics(logits, _tensor(target, like=logits), weight, **kwargs)


def linear_cross_entropy_stats(input, linear_weight, target, *, linear_bias=None, weight=None,
                               ignore_index=None, **kwargs):
    with torch.no_grad():
        _, logits, target, _ = _linear_logits(input, linear_weight, target, linear_bias, {})
        weight = None if weight is None else _tensor(weight, like=logits)
        return _statistics(logits, target, weight,
                           -100 if ignore_index is None else ignore_index, **kwargs)
