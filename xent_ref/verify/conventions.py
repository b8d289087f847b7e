"""The catalogue of known alternative conventions, for diagnosing a failing implementation.

Each :class:`Convention` says, for a golden case, what an implementation following it
would return instead of PyTorch's answer: ``predict(case, function, got)`` computes that
value, or returns ``None`` where the convention does not apply. Conventions that differ in
semantics (a denominator, a dropped argument, a smoothing rule, an axis) are computed
with xent_ref's own public functions: ``cross_entropy(..., reduction="sum") / count``,
``cross_entropy_grad`` without ``pos_weight``, and so on, so they inherit its exactness.
Conventions that differ in arithmetic (no max shift, no clamp at -100, a clipped or
rounded intermediate) cannot come from xent_ref's careful code: they write the naive
formula out in NumPy, in the input's dtype, as such an implementation would.
:func:`xent_ref.verify.diagnose` names the convention whose prediction matches the
implementation's output within the case's tolerance. Every entry is one row of
:data:`CATALOGUE`; ``docs/golden-format.md`` lists them with their ids, which are stable
(reports and CI logs quote them).

A prediction that is a linear combination of calls (``(C S - N) / (C - 1)``, ``sum /
count``) also gives the gradient: the same combination of the ``_grad`` twins
(:func:`_combine`). A variation xent_ref refuses (``ignore_index`` dropped, so a target
of -1 is out of range) predicts :data:`RAISES`, which explains an implementation that
raised there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from xent_ref import functions as lib
from xent_ref import golden
from xent_ref.golden.jsonio import is_float
from xent_ref.verify import second_order_conventions as _second_order
from xent_ref.verify.compare import expected_of

LOSSES = ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits")
BINARY = ("binary_cross_entropy", "binary_cross_entropy_with_logits")


@dataclass(frozen=True)
class Convention:
    id: str
    functions: tuple[str, ...]  # the checked names it applies to ("cross_entropy_grad"...)
    explanation: str  # one line: what the implementation does instead
    fix: str  # one line: what PyTorch does
    predict: Callable  # (case, function, got) -> np.ndarray | None
    fixes: tuple[tuple[str, str], ...] = ()  # (function, fix) where it differs per function

    def fix_for(self, function: str) -> str:
        """The fix for ``function`` (its ``_grad`` twin shares it)."""
        return dict(self.fixes).get(function.removesuffix("_grad"), self.fix)


# ---------------------------------------------------------------------------
# Calling xent_ref with variations
# ---------------------------------------------------------------------------


class _Raises:
    """The prediction "this call raises" (xent_ref refuses the variation's arguments):
    it explains an implementation that raised on the case."""

    def __repr__(self):
        return "RAISES"


RAISES = _Raises()


def _call(case, function, inputs=None, kwargs=None, grad_output=None):
    """xent_ref's ``function`` (a loss or its ``_grad``) on ``case`` with some arguments
    replaced; :data:`RAISES` when xent_ref refuses them."""
    fn = lib.named(function)
    try:
        with np.errstate(all="ignore"):
            if function.endswith("_grad"):
                return golden.call_grad(fn, case, inputs, kwargs, grad_output)
            return golden.call_function(fn, case, inputs, kwargs)
    except (ValueError, TypeError, IndexError):
        return RAISES


def _combine(case, function, terms):
    """``sum(coef * F(variation))``, for the loss or (``F_grad``, by linearity, as every
    ``coef`` is a scalar) its gradient, in the case's dtype; ``terms`` are
    ``(coef, inputs, kwargs)``. A coefficient ``1/0`` is ``inf``: 0/0 stays nan."""
    if not terms:
        return None
    total = 0.0
    for coef, inputs, kwargs in terms:
        value = _call(case, function, inputs, kwargs)
        if value is RAISES:
            return RAISES
        with np.errstate(all="ignore"):
            total = total + coef * np.asarray(value, dtype=np.float64)
    return np.asarray(total).astype(case.loss.dtype)


def _combine_wide(case, function, terms):
    """:func:`_combine` computed on float64 copies of the case's arrays and rounded once
    to its dtype: the exact value of the variation, whatever the dtype (a low-precision
    implementation of the variation cannot be asked for more). Several gradients
    (``linear_cross_entropy``) are combined part by part."""
    wide = golden.widened
    total = None
    for coef, inputs, kwargs in terms:
        value = _call(case, function, wide(case.inputs if inputs is None else inputs),
                      wide(case.kwargs if kwargs is None else kwargs),
                      case.grad_output.astype(np.float64))
        if value is RAISES:
            return RAISES
        with np.errstate(all="ignore"):
            total = _per_part(lambda part, old: coef * part + (0.0 if old is None else old),
                              value, total)
    return _per_part(lambda part, _: golden.round_once(part, case.loss.dtype)
                     if case.loss.dtype.name in golden.LOW_PRECISION_DTYPES
                     else part.astype(case.loss.dtype), total, None)


def _per_part(fn, value, other):
    """``fn(part, other_part)`` on one array or on each of several (``None`` kept)."""
    if isinstance(value, tuple):
        others = other if isinstance(other, tuple) else (None,) * len(value)
        return tuple(None if part is None else fn(np.asarray(part, np.float64), o)
                     for part, o in zip(value, others))
    return fn(np.asarray(value, np.float64), other)


def _base(function: str) -> str:
    return function.removesuffix("_grad")


def _index_target(case) -> bool:
    target = case.inputs.get("target")
    return case.function in ("cross_entropy", "nll_loss", "linear_cross_entropy") \
        and target.dtype.kind == "i"


def _probability_target(case) -> bool:
    return case.function == "cross_entropy" and is_float(case.inputs["target"].dtype)


def _reduction(case) -> str:
    return case.kwargs.get("reduction", "mean")


def _class_axis(case) -> int:
    return 0 if case.inputs["input"].ndim == 1 else 1


def _kept(case) -> np.ndarray:
    ignore_index = case.kwargs.get("ignore_index")  # (None: linear_cross_entropy's -100)
    return case.inputs["target"] != (-100 if ignore_index is None else ignore_index)


def _without(mapping, *keys):
    return {k: v for k, v in mapping.items() if k not in keys}


def _summed_over(case, denominator):
    """The loss summed, then divided by ``denominator`` (a reduction="mean" variant)."""
    if _reduction(case) != "mean":
        return None
    coef = np.inf if denominator == 0 else 1.0 / denominator
    return [(coef, None, dict(case.kwargs, reduction="sum"))]


# ---------------------------------------------------------------------------
# The conventions
# ---------------------------------------------------------------------------


def _mean_by_count(case, function, got):
    if not (_index_target(case) and "weight" in case.kwargs):
        return None
    return _combine(case, function, _summed_over(case, int(_kept(case).sum())))


def _mean_by_n(case, function, got):
    if not (_index_target(case) and "weight" in case.kwargs):
        return None
    return _combine(case, function, _summed_over(case, case.inputs["target"].size))


def _ignored_in_denominator(case, function, got):
    if not _index_target(case) or "weight" in case.kwargs or _kept(case).all():
        return None
    return _combine(case, function, _summed_over(case, case.inputs["target"].size))


def _probs_mean_by_weight(case, function, got):
    if not (_probability_target(case) and "weight" in case.kwargs):
        return None
    weight = case.kwargs["weight"].astype(np.float64)
    axis = _class_axis(case)
    shape = [1] * case.inputs["input"].ndim
    shape[axis] = -1
    mass = float((weight.reshape(shape) * case.inputs["target"]).sum())
    return _combine(case, function, _summed_over(case, mass))


def _smoothing_c_minus_1(case, function, got):
    eps = case.kwargs.get("label_smoothing", 0.0)
    n_classes = case.inputs["input"].shape[_class_axis(case)]
    if not (_index_target(case) and eps and n_classes > 1):
        return None
    # (1 - eps) N + eps/(C-1) (S - N), with S from xent_ref's smoothed loss
    # L = (1 - eps) N + (eps/C) S, is (C L - N) / (C - 1).
    unsmoothed = _without(case.kwargs, "label_smoothing")
    return _combine(case, function, [(n_classes / (n_classes - 1), None, None),
                                     (-1.0 / (n_classes - 1), None, unsmoothed)])


def _smoothing_unweighted(case, function, got):
    eps = case.kwargs.get("label_smoothing", 0.0)
    if not (_index_target(case) and eps and "weight" in case.kwargs):
        return None
    x, target = case.inputs["input"], case.inputs["target"]
    axis = _class_axis(case)
    n_classes = x.shape[axis]
    kept = _kept(case)
    # The smoothing term as a probability target of 1/C on every kept row, no weights.
    uniform = np.broadcast_to(np.expand_dims(kept, axis) / n_classes, x.shape).astype(x.dtype)
    reduction = _reduction(case)
    coef = eps
    if reduction == "mean":
        kept_weight = float(case.kwargs["weight"].astype(np.float64)[target[kept]].sum())
        if not kept_weight:
            return None
        reduction, coef = "sum", eps / kept_weight
    smoothing = {"input": x, "target": uniform}
    return _combine(case, function, [
        (1 - eps, None, _without(case.kwargs, "label_smoothing")),
        (coef, smoothing, {"reduction": reduction})])


def _elementwise(case, losses):
    """Weight and reduce elementwise binary losses as the case asks."""
    weight = case.kwargs.get("weight")
    if weight is not None:
        losses = losses * weight
    reduction = _reduction(case)
    if reduction != "none":
        with np.errstate(all="ignore"):  # (an empty mean is 0/0 = nan)
            losses = losses.sum() / (1 if reduction == "sum" else losses.size)
    return np.asarray(losses).astype(case.loss.dtype)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _bce_clip(case, function, got):
    if function not in BINARY:
        return None
    x, y = case.inputs["input"], case.inputs["target"]
    p = x if function == "binary_cross_entropy" else _sigmoid(x)
    clipped = np.clip(p, 1e-7, 1 - 1e-7).astype(x.dtype)
    if (clipped == p).all() or (x.size == 0):
        return None
    if function == "binary_cross_entropy":
        return _call(case, function, {"input": clipped, "target": y})
    # -(pw y log p + (1 - y) log(1 - p)): xent_ref's BCE at targets 1 and 0 gives the logs.
    ones, zeros = np.ones_like(y), np.zeros_like(y)
    log_p = lib.binary_cross_entropy(clipped, ones, reduction="none")
    log_q = lib.binary_cross_entropy(clipped, zeros, reduction="none")
    pos_weight = case.kwargs.get("pos_weight", 1.0)
    return _elementwise(case, pos_weight * y * log_p + (1 - y) * log_q)


def _bce_no_clamp(case, function, got):
    p, y = case.inputs["input"], case.inputs["target"]
    if not ((p == 0) | (p == 1)).any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return _elementwise(case, -(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _bce_logits_via_sigmoid(case, function, got):
    x, y = case.inputs["input"], case.inputs["target"]
    p = _sigmoid(x)
    pos_weight = case.kwargs.get("pos_weight", 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _elementwise(case, -(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p)))


def _bce_grad_clamp_double(case, function, got):
    p = case.inputs["input"].astype(np.float64)
    clamped = p * (1 - p) < 1e-12
    if not clamped.any():
        return None
    ratio = float(np.float32(1e-12)) / 1e-12  # C++ float 1e-12 vs a double 1e-12
    return np.where(clamped, case.grad * ratio, case.grad).astype(case.grad.dtype)


def _weight_on_axis_1(case, function, got):
    x = case.inputs["input"]
    changes = {}
    for key in ("weight", "pos_weight"):
        w = case.kwargs.get(key)
        if x.ndim >= 3 and w is not None and w.ndim == 1 and len(w) == x.shape[1]:
            changes[key] = w.reshape((-1,) + (1,) * (x.ndim - 2))
    if not changes:
        return None
    return _call(case, function, kwargs=dict(case.kwargs, **changes))


def _grad_ignores_grad_output(case, function, got):
    return _call(case, function, grad_output=np.ones_like(case.grad_output))


def _grad_missing_pos_weight(case, function, got):
    if "pos_weight" not in case.kwargs:
        return None
    return _call(case, function, kwargs=_without(case.kwargs, "pos_weight"))


def _soft_target_p_minus_y(case, function, got):
    if not _probability_target(case):
        return None
    x, y = case.inputs["input"], case.inputs["target"].astype(np.float64)
    axis = _class_axis(case)
    n_classes = x.shape[axis]
    eps = case.kwargs.get("label_smoothing", 0.0)
    shape = [1] * x.ndim
    shape[axis] = -1
    weight = case.kwargs.get("weight", np.ones(n_classes)).astype(np.float64).reshape(shape)
    mass = (weight * ((1 - eps) * y + eps / n_classes)).sum(axis=axis, keepdims=True)
    if np.allclose(mass, 1.0, rtol=0, atol=1e-6):
        return None
    # The true gradient is p * sum_c w_c y_c - w y per row; "p - w y" drops the sum.
    g = case.grad_output.astype(np.float64)
    reduction = _reduction(case)
    scale = (np.expand_dims(g, axis) if reduction == "none"
             else g / (y.size // n_classes if reduction == "mean" else 1))
    p = lib.softmax(x.astype(np.float64), axis=axis)
    return (case.grad + (1 - mass) * p * scale).astype(case.grad.dtype)


def _lse_first(case, function, got):
    """lse(x) formed first, then lse - x_t for the loss and exp(x - lse) - y for the
    gradient: what most implementations do, exact only while no term is far smaller
    than eps * |x|."""
    if not _index_target(case) or case.kwargs.get("label_smoothing"):
        return None
    x = case.inputs["input"]  # in its own dtype: the rounding is the point
    axis = _class_axis(case)
    with np.errstate(all="ignore"):
        top = np.max(x, axis=axis, keepdims=True)
        lse = top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))
        log_probs = x - lse
    if not function.endswith("_grad"):
        return _call(case, "nll_loss", {"input": log_probs, "target": case.inputs["target"]})
    # (exp(x - lse) - 1 at the target rounds to 0 when p_t rounds to 1)
    return _nll_of(case, function, log_probs, axis)


def _true_class_rounded(case, function, got):
    """p = softmax(x) rounded to the dtype first, then p - one_hot(t): at p_t = 0.999 in
    bfloat16 (or 1 - 1e-6 in float16) p_t rounds to 1 and the target's gradient to 0."""
    if not _index_target(case) or case.kwargs.get("label_smoothing"):
        return None
    x = case.inputs["input"].astype(np.float64)
    axis = _class_axis(case)
    rounded = lib.softmax(x, axis=axis).astype(case.grad.dtype).astype(np.float64)
    inputs = {"input": lib.log_softmax(x, axis=axis), "target": case.inputs["target"]}
    # As in _lse_first: the nll_loss gradient is -w_t g / denominator at the target,
    # and p times minus its row sum is the softmax part.
    nll_grad = _call(case, "nll_loss_grad", inputs, golden.widened(case.kwargs),
                     case.grad_output.astype(np.float64))
    if nll_grad is RAISES:
        return None
    row = -np.sum(nll_grad, axis=axis, keepdims=True)
    return (nll_grad + rounded * row).astype(case.grad.dtype)


LOW_PRECISION = ("float16", "bfloat16")


def _low_precision_arithmetic(case, function, got):
    """The textbook formulas with NumPy's arithmetic in float16/bfloat16: sums, exps and
    logs rounded to the dtype, and the mean's count too (65536 is inf in float16)."""
    x = case.inputs["input"]
    if x.dtype.name not in LOW_PRECISION:
        return None
    reduction = _reduction(case)
    with np.errstate(all="ignore"):
        if function == "cross_entropy" and _index_target(case) \
                and not case.kwargs.get("label_smoothing"):
            return _naive_cross_entropy(case, x)
        elif function == "binary_cross_entropy_with_logits":
            y, one = case.inputs["target"], np.ones((), x.dtype)
            pos_weight = case.kwargs.get("pos_weight", one)
            softplus = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
            losses = (one - y) * x + (one + (pos_weight - one) * y) * softplus
            if "weight" in case.kwargs:
                losses = losses * case.kwargs["weight"]
            denominator = np.array(losses.size).astype(x.dtype)
        else:
            return None
        if reduction == "none":
            return losses
        total = losses.sum()
        return total if reduction == "sum" else total / denominator


def _naive_cross_entropy(case, x):
    """cross_entropy (class indices, the LLM options) with every operation in ``x``'s
    dtype: z = c tanh(s x / c), log p = (z - max) - log(sum exp(z - max)), the sums of the
    losses, of the weights and of the z-loss terms, and the two means' divisions."""
    axis, dtype = _class_axis(case), x.dtype.type
    z = x * dtype(case.kwargs.get("logit_scale", 1.0))
    if case.kwargs.get("softcap") is not None:
        cap = dtype(case.kwargs["softcap"])
        z = cap * np.tanh(z / cap)
    top = z.max(axis=axis, keepdims=True)
    shifted = z - top
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    lse = top + log_sum
    kept = _kept(case)
    safe = np.where(kept, case.inputs["target"], 0)
    picked = np.take_along_axis(shifted - log_sum, np.expand_dims(safe, axis), axis)
    picked = picked.squeeze(axis)
    weight = case.kwargs.get("weight", np.ones(x.shape[axis], x.dtype))
    weight = np.where(kept, weight[safe], 0).astype(x.dtype)
    losses = -picked * weight
    reduction = _reduction(case)
    total = losses if reduction == "none" else losses.sum()
    if reduction == "mean":
        total = total / weight.sum()
    if not case.kwargs.get("z_loss"):
        return total
    z_losses = np.where(kept, dtype(case.kwargs["z_loss"]) * lse.squeeze(axis) ** 2,
                        0).astype(x.dtype)
    if reduction == "none":
        return total + z_losses
    return total + z_losses.sum() / (kept.sum().astype(x.dtype) if reduction == "mean" else 1)


def _tiny_loss_rounded(case, function, got):
    return _lse_first(case, function, got) if case.exact_only else None


def _softmax_via_rounded_lse(case, function, got):
    return None if case.exact_only else _lse_first(case, function, got)


def _no_max_shift(case, function, got):
    x = case.inputs["x"]
    axis = case.kwargs.get("axis", -1)
    with np.errstate(all="ignore"):
        e = np.exp(x)
        if function == "softmax":
            return e / e.sum(axis=axis, keepdims=True)
        return x - np.log(e.sum(axis=axis, keepdims=True))


def _wrong_dtype(case, function, got):
    expected = case.grad if function.endswith("_grad") else case.loss
    if got is None or got.dtype == expected.dtype:
        return None
    return expected.astype(got.dtype)


def _class_axis_last(case, function, got):
    axis = case.kwargs.get("axis", -1)
    if axis in (-1, case.inputs["x"].ndim - 1):
        return None
    return _call(case, function, kwargs=_without(case.kwargs, "axis"))


def _zero_weight_mean_not_nan(case, function, got):
    expected = case.grad if function.endswith("_grad") else case.loss
    if _reduction(case) != "mean" or not np.isnan(expected).any():
        return None
    if not all(np.isfinite(a).all() for a in case.inputs.values() if is_float(a.dtype)):
        return None  # a nan from the inputs, not from 0 / 0
    return np.where(np.isnan(expected), 0, expected).astype(expected.dtype)


def _ignore_index_not_applied(case, function, got):
    if not (_index_target(case) and "ignore_index" in case.kwargs):
        return None
    return _call(case, function, kwargs=_without(case.kwargs, "ignore_index"))


# The LLM losses: the options and linear_cross_entropy's three gradients


def _z_loss_case(case) -> bool:
    return bool(case.kwargs.get("z_loss")) and _index_target(case)


def _z_loss_mean_by_weight(case, function, got):
    """z-loss mean divided by the cross-entropy's weighted denominator: L_ce + zsum / W."""
    if not (_z_loss_case(case) and "weight" in case.kwargs and _reduction(case) == "mean"):
        return None
    target = case.inputs["target"]
    kept = _kept(case)
    total_weight = float(case.kwargs["weight"].astype(np.float64)[target[kept]].sum())
    if not total_weight:
        return None
    no_z = dict(case.kwargs, z_loss=0.0)
    return _combine_wide(case, function, [
        (1.0, None, no_z),
        (1.0 / total_weight, None, dict(case.kwargs, reduction="sum")),
        (-1.0 / total_weight, None, dict(no_z, reduction="sum"))])


def _z_loss_on_ignored(case, function, got):
    """lambda lse^2 added for ignored tokens too (their cross-entropy stays out); the mean
    of the z-loss divides by the kept count still."""
    if not _z_loss_case(case) or _kept(case).all():
        return None
    kept = _kept(case)
    every = dict(case.inputs, target=np.where(kept, case.inputs["target"], 0))
    reduction = _reduction(case)
    coef = 1.0
    if reduction == "mean":
        if not kept.any():
            return None
        coef = 1.0 / int(kept.sum())
    z_only = {"reduction": "sum" if reduction == "mean" else reduction}
    no_z = dict(case.kwargs, z_loss=0.0)
    return _combine_wide(case, function, [
        (1.0, None, no_z),
        (coef, every, dict(case.kwargs, **z_only)),
        (-coef, every, dict(no_z, **z_only))])


def _softcap_before_scale(case, function, got):
    """z = s * c tanh(x / c) (cap, then scale) = the right order with a cap of s * c."""
    scale, cap = case.kwargs.get("logit_scale", 1.0), case.kwargs.get("softcap")
    if cap is None or scale == 1.0:
        return None
    return _combine_wide(case, function, [(1.0, None, dict(case.kwargs, softcap=scale * cap))])


def _softcap_grad_without_slope(case, function, got):
    """The backward pass treats the softcap as the identity: dL/dz times s, without the
    sech^2(s x / c) of the cap."""
    cap = case.kwargs.get("softcap")
    if cap is None:
        return None
    scale = float(case.kwargs.get("logit_scale", 1.0))
    options = _without(case.kwargs, "logit_scale", "softcap")
    wide = golden.widened(case.inputs)
    if case.function == "linear_cross_entropy":
        h, w = wide["input"], wide["linear_weight"]
        if h.ndim != 2 or w.ndim != 2:
            return None
        bias = options.pop("linear_bias", None)
        logits = h @ w.T + (0.0 if bias is None else bias.astype(np.float64))
    else:
        logits = wide["input"]
    z = cap * np.tanh(scale * logits / cap)
    g_z = lib.cross_entropy_grad(z, wide["target"], grad_output=case.grad_output.astype(
        np.float64), **golden.widened(_without(options, "chunk_size")))
    g = scale * g_z
    if case.function == "linear_cross_entropy":
        value = (g @ w, g.T @ h, None if bias is None else g.sum(axis=0))
    else:
        value = g
    return _per_part(lambda part, _: golden.round_once(part, case.loss.dtype)
                     if case.loss.dtype.name in golden.LOW_PRECISION_DTYPES
                     else part.astype(case.loss.dtype), value, None)


def _z_loss_grad_missing(case, function, got):
    if not case.kwargs.get("z_loss"):
        return None
    return _combine_wide(case, function, [(1.0, None, dict(case.kwargs, z_loss=0.0))])


def _grad_mean_not_divided(case, function, got):
    """The gradient of reduction='mean' is the sum's: never divided by the denominator."""
    if _reduction(case) != "mean":
        return None
    return _call(case, function, kwargs=dict(case.kwargs, reduction="sum"))


def _bias_grad_averaged(case, function, got):
    """d linear_bias = the mean of the logits gradient's rows, not their sum."""
    if "linear_bias" not in case.kwargs or case.inputs["input"].ndim != 2:
        return None
    dh, dw, db = case.grad
    n = case.inputs["input"].shape[0]
    return dh, dw, (db.astype(np.float64) / n).astype(db.dtype)


# The learner's mistakes: a log of a rounded softmax, the gradient's masks, weights and
# sign, pos_weight on both terms, a forgotten keepdims


class _RaisesWith(_Raises):
    """The prediction "this call raises with ``words`` in its message": NumPy's own error
    for the arithmetic the convention describes (a broadcast that cannot happen)."""

    def __init__(self, words: str):
        self.words = words

    def __repr__(self):
        return f"RAISES({self.words!r})"


BROADCAST_ERROR = _RaisesWith("could not be broadcast")


def _logits_and_axis(case, function):
    """``(logits, class axis)`` of a softmax/log_softmax case or of an index-target
    cross_entropy case without smoothing (what a hand-written log-softmax sees), else
    ``None``."""
    if function in ("softmax", "log_softmax"):
        return case.inputs["x"], case.kwargs.get("axis", -1)
    if _base(function) == "cross_entropy" and _index_target(case) \
            and not case.kwargs.get("label_smoothing"):
        return case.inputs["input"], _class_axis(case)
    return None


def _log_of_softmax(case, function, got):
    """log(softmax(x)) with softmax rounded to the dtype first: a probability that
    underflows to 0 gives -inf where log_softmax is finite (and -inf * 0 = nan)."""
    found = _logits_and_axis(case, function)
    if found is None or function not in ("log_softmax", "cross_entropy"):
        return None
    x, axis = found
    with np.errstate(all="ignore"):
        log_probs = np.log(lib.softmax(x, axis=axis))
        return log_probs if function == "log_softmax" else \
            _nll_of(case, function, log_probs, axis)


def _grad_ignored_rows_nonzero(case, function, got):
    """Ignored rows keep the softmax part p * scale of p - one_hot (only the one-hot is
    masked): scale is grad_output, over the mean's denominator."""
    if not _index_target(case) or _kept(case).all() or case.inputs["input"].ndim < 2:
        return None
    kept = _kept(case)
    x, axis = case.inputs["input"], _class_axis(case)
    scale = np.broadcast_to(case.grad_output.astype(np.float64), kept.shape)
    if _reduction(case) == "mean":
        weight = case.kwargs.get("weight")
        safe = np.where(kept, case.inputs["target"], 0)
        total = float(np.where(kept, 1.0 if weight is None
                               else weight.astype(np.float64)[safe], 0.0).sum())
        with np.errstate(all="ignore"):  # all ignored: p / 0 = inf (PyTorch gives 0)
            scale = scale / total
    p = lib.softmax(x.astype(np.float64), axis=axis)
    with np.errstate(all="ignore"):
        extra = np.expand_dims(np.where(kept, 0.0, scale), axis) * p
        return (case.grad.astype(np.float64) + extra).astype(case.grad.dtype)


def _grad_missing_weight(case, function, got):
    """The gradient computed as if there were no class weights (the loss has them)."""
    if "weight" not in case.kwargs:
        return None
    return _call(case, function, kwargs=_without(case.kwargs, "weight"))


def _grad_sign_flipped(case, function, got):
    """d loss / d input with the opposite sign (y - p instead of p - y)."""
    if isinstance(case.grad, tuple) or not np.any(case.grad):
        return None
    return -case.grad


def _pos_weight_both_terms(case, function, got):
    """pos_weight multiplies the whole loss, pw (y softplus(-x) + (1 - y) softplus(x)),
    not only its positive term; the gradient is pos_weight times the unweighted one."""
    pos_weight = case.kwargs.get("pos_weight")
    if pos_weight is None:
        return None
    plain = _without(case.kwargs, "pos_weight")
    pw = pos_weight.astype(np.float64)
    if function.endswith("_grad"):
        value = _call(case, function, kwargs=plain)
        if value is RAISES:
            return None
        return (pw * value.astype(np.float64)).astype(case.grad.dtype)
    losses = _call(case, function, kwargs=dict(plain, reduction="none"))
    if losses is RAISES:
        return None
    losses = pw * losses.astype(np.float64)
    reduction = _reduction(case)
    if reduction != "none":
        with np.errstate(all="ignore"):  # (an empty mean is 0/0 = nan)
            losses = losses.sum() / (1 if reduction == "sum" else losses.size)
    return np.asarray(losses).astype(case.loss.dtype)


def _without_keepdims(x, axis, keep_max: bool, log: bool):
    """softmax (or log_softmax) with the class axis's sum reduced without keepdims (and
    its max too unless ``keep_max``): NumPy aligns (N, C) with (N,) from the right, and
    raises where it cannot (:data:`BROADCAST_ERROR`)."""
    try:
        shifted = x - np.max(x, axis=axis, keepdims=keep_max)
        total = np.exp(shifted).sum(axis=axis)
        return shifted - np.log(total) if log else np.exp(shifted) / total
    except ValueError:
        return BROADCAST_ERROR


def _missing_keepdims(case, function, got):
    """The class axis's max or sum taken without keepdims=True: a ValueError where the
    shapes cannot broadcast, a wrong broadcast where they can (N = C, or C = 1)."""
    base = _base(function)
    found = _logits_and_axis(case, function)
    if found is None or found[0].ndim < 2:
        return None
    x, axis = found
    with np.errstate(all="ignore"):
        predictions = [_without_keepdims(x, axis, keep, base != "softmax")
                       for keep in (True, False)]
    values = [v.astype(x.dtype) for v in predictions if v is not BROADCAST_ERROR]
    if got is None:
        return BROADCAST_ERROR if len(values) < len(predictions) else None
    if not values or isinstance(got, tuple):
        return None
    if base != "cross_entropy":
        candidates = values
    else:
        candidates = [_nll_of(case, function, value, axis) for value in values]
        candidates = [c for c in candidates if c is not None]

    def distance(v):  # the variant (max kept or not) nearest what was returned
        if np.shape(v) != np.shape(got):
            return np.inf
        return float(np.nanmax(np.abs(v.astype(np.float64) - np.asarray(got, np.float64)),
                               initial=0.0))
    return min(candidates, key=distance) if candidates else None


def _nll_of(case, function, log_probs, axis):
    """cross_entropy (or its gradient) of the case from these log-probabilities: the
    nll_loss gradient is -w_t g / denominator at the target, and the softmax part is
    p = exp(log_probs) times minus its row sum."""
    inputs = {"input": log_probs, "target": case.inputs["target"]}
    if not function.endswith("_grad"):
        loss = _call(case, "nll_loss", inputs)  # (a wrong broadcast's shape may raise)
        return None if loss is RAISES else loss
    if log_probs.shape != case.inputs["input"].shape:
        return None
    nll_grad = _call(case, "nll_loss_grad", inputs)
    if nll_grad is RAISES:
        return None
    p = np.exp(log_probs.astype(np.float64))
    row = -np.sum(nll_grad.astype(np.float64), axis=axis, keepdims=True)
    return (nll_grad + p * row).astype(case.grad.dtype)


def _mean_is_sum(case, function, got):
    """reduction='mean' returns the sum: never divided by the denominator."""
    if _reduction(case) != "mean":
        return None
    return _call(case, function, kwargs=dict(case.kwargs, reduction="sum"))


def _grad_output_squared(case, function, got):
    """grad_output applied twice (once in the chain rule, once more by hand)."""
    g = case.grad_output.astype(np.float64)
    if np.all((g == 1) | (g == 0)):
        return None
    return _call(case, function, grad_output=(g * g).astype(case.grad_output.dtype))


# The mistakes of LLM loss kernels (fused, chunked, sharded), each from a bug report


def _quiet(predict):
    """``predict`` without floating-point warnings: a variation may overflow the dtype
    (a z-loss of lse^2 = 1e60 in float32 is inf), which is its prediction."""
    def quiet(case, function, got):
        with np.errstate(all="ignore"):
            return predict(case, function, got)
    quiet.__doc__ = predict.__doc__
    return quiet


def _is_linear(case) -> bool:
    return case.function == "linear_cross_entropy"


def _n_classes(case) -> int:
    if _is_linear(case):
        return case.inputs["linear_weight"].shape[0]
    return case.inputs["input"].shape[_class_axis(case)]


def _kept_denominator(case, weighted: bool) -> float:
    """The mean's denominator: the kept targets' weight total, or their count."""
    kept = _kept(case)
    if weighted and "weight" in case.kwargs:
        return float(case.kwargs["weight"].astype(np.float64)[case.inputs["target"][kept]].sum())
    return float(kept.sum())


def _spread_target(case, rows, classes=slice(None)):
    """A probability target putting mass 1/K on each of ``classes`` (K of them) at the
    positions ``rows`` (a mask shaped like the index target), 0 elsewhere: a smoothing
    term written as a target."""
    target = case.inputs["target"]
    axis = 0 if target.ndim == 0 else 1
    spread = np.zeros(_n_classes(case))
    spread[classes] = 1.0
    spread /= spread.sum()
    spread = spread.reshape((-1,) + (1,) * max(target.ndim - 1, 0))
    mask = np.expand_dims(rows, axis).astype(np.float64)
    return mask * spread if target.ndim else spread * float(rows)


def _summed_term(case, coef, rows, denominator, classes=slice(None), drop=("weight",)):
    """``(coef, inputs, kwargs)``: ``coef`` times the smoothing term ``mean over classes
    of -log p`` at the positions ``rows``, as a call with a probability target (the
    kwargs ``drop``-ped, and no z-loss), reduced as the case asks: summed and divided by
    ``denominator`` for reduction='mean'; ``None`` when that is 0."""
    reduction = _reduction(case)
    if reduction == "mean":
        if not denominator:
            return None
        coef, reduction = coef / denominator, "sum"
    kwargs = _without(case.kwargs, "ignore_index", "label_smoothing", "z_loss", *drop)
    inputs = dict(case.inputs, target=_spread_target(case, rows, classes))
    return coef, inputs, dict(kwargs, reduction=reduction)


@_quiet
def _smoothing_on_ignored(case, function, got):
    """The smoothing term eps/C sum_c w_c -log p_c counted on ignored tokens too."""
    eps = case.kwargs.get("label_smoothing", 0.0)
    if not (eps and _index_target(case)) or _kept(case).all():
        return None
    term = _summed_term(case, eps, ~_kept(case), _kept_denominator(case, True), drop=())
    return None if term is None else _combine_wide(case, function, [(1.0, None, None), term])


@_quiet
def _smoothing_weights_missing(case, function, got):
    """linear_cross_entropy's smoothing term without the class weights (the mean still
    divides by the kept weight total)."""
    eps = case.kwargs.get("label_smoothing", 0.0)
    if not (_is_linear(case) and eps and "weight" in case.kwargs and _index_target(case)):
        return None
    term = _summed_term(case, eps, _kept(case), _kept_denominator(case, True))
    if term is None:
        return None
    return _combine_wide(case, function, [*_unsmoothed(case, eps), term])


@_quiet
def _smoothing_local_vocab(case, function, got):
    """Megatron's vocab-parallel smoothing, seen from the first of two ranks: alpha =
    eps K / (K - 1) with K = C/2 the local vocabulary, and the mean of -log p over that
    shard only: (1 - alpha) (-log p_t) + alpha mean_{c < K} -log p_c. A vocabulary two
    ranks cannot split evenly runs on one (K = C: eps/(C-1) to each other class)."""
    eps = case.kwargs.get("label_smoothing", 0.0)
    n_classes = _n_classes(case)
    if not (eps and _index_target(case)) or "weight" in case.kwargs or n_classes < 2:
        return None
    local = n_classes // 2 if n_classes % 2 == 0 and n_classes >= 4 else n_classes
    alpha = eps * local / (local - 1)
    term = _summed_term(case, alpha, _kept(case), _kept_denominator(case, False),
                        classes=slice(0, local))
    if term is None:
        return None
    return _combine_wide(case, function, [*_unsmoothed(case, alpha), term])


def _unsmoothed(case, eps):
    """``(1 - eps) * (-log p_t)`` plus the whole z-loss, as terms: the unsmoothed loss
    less ``eps`` times its cross-entropy part."""
    unsmoothed = _without(case.kwargs, "label_smoothing")
    return [(1.0, None, unsmoothed), (-eps, None, dict(unsmoothed, z_loss=0.0))]


def _logits_and_linear(case):
    """The logits in float64 (``linear_cross_entropy``: ``h W^T + b``) and ``(h, W)``
    (``None`` for cross_entropy)."""
    wide = golden.widened(case.inputs)
    if not _is_linear(case):
        return wide["input"], None
    h, w = wide["input"], wide["linear_weight"]
    bias = case.kwargs.get("linear_bias")
    logits = np.einsum("nh,v...h->nv...", np.atleast_2d(h), w)
    if bias is not None:
        logits = logits + bias.astype(np.float64)
    return (logits[0] if h.ndim == 1 else logits), (h, w)


def _rounded_like(case, value):
    return _per_part(lambda part, _: golden.round_once(part, case.loss.dtype)
                     if case.loss.dtype.name in golden.LOW_PRECISION_DTYPES
                     else part.astype(case.loss.dtype), value, None)


def _through(case, function, z, slope):
    """cross_entropy of transformed logits ``z`` (slope ``dz/dlogits``) with the case's
    other options; for linear_cross_entropy, its three gradients by the chain rule."""
    logits, linear = _logits_and_linear(case)
    options = golden.widened(_without(case.kwargs, "logit_scale", "softcap", "linear_bias"))
    target = case.inputs["target"]
    if not function.endswith("_grad"):
        return _rounded_like(case, lib.cross_entropy(z, target, **options))
    g = slope * lib.cross_entropy_grad(z, target, grad_output=case.grad_output.astype(
        np.float64), **options)
    if linear is None:
        return _rounded_like(case, g)
    h, w = linear
    g2 = np.atleast_2d(g) if h.ndim == 1 else g
    dh = np.einsum("nv...,v...h->nh", g2, w)
    value = (dh[0] if h.ndim == 1 else dh, np.einsum("nv...,nh->v...h", g2, np.atleast_2d(h)),
             None if "linear_bias" not in case.kwargs else g2.sum(axis=0))
    return _rounded_like(case, value)


@_quiet
def _softcap_multiplies_logit(case, function, got):
    """The softcap written y tanh(y / c) (y = s x) instead of c tanh(y / c)."""
    cap = case.kwargs.get("softcap")
    if cap is None:
        return None
    scale = float(case.kwargs.get("logit_scale", 1.0))
    y = scale * _logits_and_linear(case)[0]
    t = np.tanh(y / cap)
    return _through(case, function, y * t, scale * (t + y / cap * (1 - t * t)))


@_quiet
def _softcap_not_applied(case, function, got):
    if case.kwargs.get("softcap") is None:
        return None
    return _combine_wide(case, function, [(1.0, None, _without(case.kwargs, "softcap"))])


@_quiet
def _grad_output_first_element(case, function, got):
    """reduction='none': every position's gradient scaled by grad_output's first element."""
    g = case.grad_output
    if _reduction(case) != "none" or g.size < 2 or (g == g.reshape(-1)[0]).all():
        return None
    return _call(case, function, grad_output=np.full_like(g, g.reshape(-1)[0]))


@_quiet
def _per_microbatch_mean(case, function, got):
    """reduction='mean' per sample (a sequence, a micro-batch: the leading axis of the
    targets), and the samples' means averaged."""
    target = case.inputs["target"]
    if _reduction(case) != "mean" or not _index_target(case) or target.ndim < 2 \
            or len(target) < 2:
        return None
    wide, kwargs = golden.widened(case.inputs), golden.widened(case.kwargs)
    n = len(target)
    g = case.grad_output.astype(np.float64) / n
    parts = [_call(case, function, {key: value[i:i + 1] if key in ("input", "target") else value
                                    for key, value in wide.items()}, kwargs, g)
             for i in range(n)]
    if any(part is RAISES for part in parts):
        return None
    if not function.endswith("_grad"):
        value = sum(np.asarray(part, np.float64) for part in parts) / n
    elif _is_linear(case):
        value = (np.concatenate([part[0] for part in parts]), sum(part[1] for part in parts),
                 None if parts[0][2] is None else sum(part[2] for part in parts))
    else:
        value = np.concatenate(parts)
    return _rounded_like(case, value)


# The z-loss coefficient a kernel adds when it is off: PaLM's 1e-4, the common default.
DEFAULT_Z_LOSS = 1e-4


@_quiet
def _z_loss_when_off(case, function, got):
    if case.kwargs.get("z_loss") or not (_index_target(case) or is_float(
            case.inputs["target"].dtype)):
        return None
    return _combine_wide(case, function, [(1.0, None, dict(case.kwargs, z_loss=DEFAULT_Z_LOSS))])


@_quiet
def _z_loss_mean_all_tokens(case, function, got):
    """The z-loss mean over every token, ignored ones included: sum_all lse^2 / N."""
    if not _z_loss_case(case) or _reduction(case) != "mean" or _kept(case).all():
        return None
    kept, target = _kept(case), case.inputs["target"]
    every = dict(case.inputs, target=np.where(kept, target, 0))
    no_z = dict(case.kwargs, z_loss=0.0)
    coef = 1.0 / target.size
    return _combine_wide(case, function, [
        (1.0, None, no_z), (coef, every, dict(case.kwargs, reduction="sum")),
        (-coef, every, dict(no_z, reduction="sum"))])


@_quiet
def _dw_low_precision_accumulation(case, function, got):
    """dW = sum over chunks of tokens of G_c^T h_c (db: of G_c^T 1), each chunk's share
    rounded to the dtype and added to an accumulator in the dtype. The chunk size is
    the kernel's: the power of two (1 to N/2 tokens) that comes closest to ``got``."""
    h, w = case.inputs["input"], case.inputs["linear_weight"]
    if not (_is_linear(case) and case.dtype in golden.LOW_PRECISION_DTYPES and h.ndim == 2
            and w.ndim == 2 and len(h) >= 2 and isinstance(got, tuple) and got[1] is not None):
        return None
    logits, _ = _logits_and_linear(case)
    options = golden.widened(_without(case.kwargs, "linear_bias"))
    g = lib.cross_entropy_grad(logits, case.inputs["target"],
                               grad_output=case.grad_output.astype(np.float64), **options)
    h64, dtype = h.astype(np.float64), case.loss.dtype
    best = None
    for rows in (2**k for k in range(int(np.log2(len(h))))):
        dw, db = _accumulated(g, h64, rows, dtype)
        miss = np.abs(dw.astype(np.float64) - np.asarray(got[1], np.float64)).max()
        if best is None or miss < best[0]:
            best = (miss, dw, db)
    dh = golden.round_once(g @ w.astype(np.float64), dtype)
    return dh, best[1], best[2] if "linear_bias" in case.kwargs else None


def _accumulated(g, h, rows: int, dtype):
    """``(dW, db)`` summed a chunk of ``rows`` tokens at a time in ``dtype``: each
    chunk's share ``G_c^T h_c`` (``G_c^T 1``) formed exactly and rounded, then added to
    the running sum and rounded again."""
    dw, db = np.zeros((g.shape[1], h.shape[1]), dtype), np.zeros(g.shape[1], dtype)
    for start in range(0, len(h), rows):
        chunk = slice(start, start + rows)
        dw = golden.round_once(dw.astype(np.float64)
                               + golden.round_once(g[chunk].T @ h[chunk], dtype), dtype)
        db = golden.round_once(db.astype(np.float64)
                               + golden.round_once(g[chunk].sum(axis=0), dtype), dtype)
    return dw, db


@_quiet
def _linear_ignore_index_dropped(case, function, got):
    if not (_is_linear(case) and "ignore_index" in case.kwargs and _index_target(case)):
        return None
    return _call(case, function, kwargs=_without(case.kwargs, "ignore_index"))


@_quiet
def _probability_targets_refused(case, function, got):
    return RAISES if is_float(case.inputs["target"].dtype) else None


# The rest of the family: kl_div and sigmoid_focal_loss.


def _kl_mean_not_batchmean(case, function, got):
    """``batchmean`` divided by every element, as ``mean`` is."""
    x = case.inputs["input"]
    if _reduction(case) != "batchmean" or x.ndim == 0 or x.size == x.shape[0]:
        return None
    return _call(case, function, kwargs=dict(case.kwargs, reduction="mean"))


def _kl_log_target_ignored(case, function, got):
    """A log-probability target read as probabilities."""
    if not case.kwargs.get("log_target", False):
        return None
    return _call(case, function, kwargs=dict(case.kwargs, log_target=False))


def _kl_input_not_log(case, function, got):
    """The input taken for probabilities: ``kl_div(log(input))``, its gradient through the log."""
    x = case.inputs["input"].astype(np.float64)
    with np.errstate(all="ignore"):
        log_x = np.log(x)
        value = _call(case, function, {"input": log_x, "target": case.inputs["target"]
                                       .astype(np.float64)}, golden.widened(case.kwargs),
                      case.grad_output.astype(np.float64))
        if value is RAISES:
            return RAISES
        if function.endswith("_grad"):
            value = value / x
    return np.asarray(value).astype(case.loss.dtype)


def _kl_scale(case) -> float:
    """What the case's reduction divides the sum by (1 for ``none`` and ``sum``)."""
    x, reduction = case.inputs["input"], _reduction(case)
    if reduction == "mean":
        return x.size
    return x.shape[0] if reduction == "batchmean" and x.ndim else 1


def _kl_args_swapped(case, function, got):
    """KL(q || p): ``q (log q - log p)`` with ``q = exp(input)``, the target's log ``log p``;
    its gradient ``q (log q - log p) + q``."""
    log_q = case.inputs["input"].astype(np.float64)
    target = case.inputs["target"].astype(np.float64)
    with np.errstate(all="ignore"):
        log_p = target if case.kwargs.get("log_target", False) else np.log(target)
        q = np.exp(log_q)
        losses = q * (log_q - log_p)
        if function.endswith("_grad"):
            value = (losses + q) * case.grad_output.astype(np.float64) / _kl_scale(case)
        elif _reduction(case) == "none":
            value = losses
        else:
            value = losses.sum() / _kl_scale(case)
    return np.asarray(value).astype(case.loss.dtype)


def _focal_alpha_on_negatives(case, function, got):
    """``alpha`` times the unweighted focal loss: negatives weighted by alpha, not 1 - alpha."""
    alpha = case.kwargs.get("alpha", 0.25)
    if alpha < 0:
        return None
    return _combine(case, function, [(alpha, None, dict(case.kwargs, alpha=-1.0))])


def _focal_factor_constant(case, function, got):
    """``alpha_t (1 - p_t)^gamma (sigma(x) - y)``: the factor's derivative left out."""
    gamma = case.kwargs.get("gamma", 2.0)
    if gamma == 0:
        return None
    x, y = case.inputs["input"].astype(np.float64), case.inputs["target"].astype(np.float64)
    p, p_minus = _sigmoid(x), _sigmoid(-x)  # sigma(x), and 1 - sigma(x) without rounding
    alpha = case.kwargs.get("alpha", 0.25)
    alpha_t = 1.0 if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
    factor = (y * p_minus + (1 - y) * p) ** gamma
    scale = x.size if _reduction(case) == "mean" else 1
    grad = alpha_t * factor * (p - y) * case.grad_output.astype(np.float64) / scale
    return grad.astype(case.loss.dtype)


def _focal_via_sigmoid(case, function, got):
    """``-log(p_t) (1 - p_t)^gamma`` from ``p = sigmoid(x)`` (in float64: it rounds to 1
    from x = 37 on, so a float32 version differs only below the case's tolerance)."""
    x, y = case.inputs["input"].astype(np.float64), case.inputs["target"].astype(np.float64)
    p = _sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    with np.errstate(all="ignore"):
        losses = -np.log(p_t) * (1 - p_t) ** case.kwargs.get("gamma", 2.0)
    alpha = case.kwargs.get("alpha", 0.25)
    if alpha >= 0:
        losses = losses * (alpha * y + (1 - alpha) * (1 - y))
    reduction = _reduction(case)
    if reduction != "none":
        losses = losses.sum() if reduction == "sum" else losses.mean()
    return np.asarray(losses).astype(case.loss.dtype)


def _pair(*functions):
    return tuple(name for f in functions for name in (f, f + "_grad"))


CLASS_LOSSES = _pair("cross_entropy", "nll_loss")
LLM_LOSSES = _pair("cross_entropy", "linear_cross_entropy")
CATALOGUE: tuple[Convention, ...] = (
    Convention("wrong-dtype", _pair("softmax", "log_softmax", *LOSSES),
               "returns another dtype than its input's (e.g. float64 for float32 inputs)",
               "return the input's floating dtype", _wrong_dtype),
    Convention("zero-weight-mean-not-nan", _pair(*LOSSES),
               "a mean over zero total weight (all ignored, zero weights, empty) returns 0",
               "return 0/0 = nan (and nan gradients), as PyTorch does",
               _zero_weight_mean_not_nan),
    Convention("mean-denominator-count", CLASS_LOSSES,
               "reduction='mean' with class weights divides by the count of kept targets",
               "divide by the kept targets' total weight sum_i w[t_i]", _mean_by_count),
    Convention("mean-denominator-n", CLASS_LOSSES,
               "reduction='mean' with class weights divides by all N targets "
               "(sample-weight style, ignored ones included)",
               "divide by the kept targets' total weight sum_i w[t_i]", _mean_by_n),
    Convention("ignored-in-denominator", CLASS_LOSSES,
               "reduction='mean' counts ignored targets in the denominator",
               "divide by the number of targets != ignore_index", _ignored_in_denominator),
    Convention("probs-mean-by-weight", _pair("cross_entropy"),
               "probability targets with weights: the mean divides by sum_i sum_c w_c y_ic",
               "divide by the number of samples N*d1*...*dk (weights do not enter it)",
               _probs_mean_by_weight),
    Convention("smoothing-c-minus-1", _pair("cross_entropy"),
               "label smoothing gives eps/(C-1) to each other class instead of eps/C to all",
               "mix (1 - eps) * one-hot with eps/C on every class, the target included",
               _smoothing_c_minus_1),
    Convention("smoothing-unweighted", _pair("cross_entropy"),
               "the label-smoothing term ignores the class weights",
               "weight the smoothing term: eps/C * sum_c w_c * -log p_c", _smoothing_unweighted),
    Convention("ignore-index-not-applied", CLASS_LOSSES,
               "ignore_index is not applied (only the default -100 is ignored)",
               "drop every target equal to ignore_index from the loss and the mean",
               _ignore_index_not_applied),
    Convention("bce-clip-1e-7", ("binary_cross_entropy", "binary_cross_entropy_with_logits"),
               "clips p to [1e-7, 1 - 1e-7] (a loss of at most 16.1) instead of clamping "
               "each log at -100", "BCE: clamp log(p) and log(1-p) at -100; with logits: "
               "use softplus, never a clipped sigmoid", _bce_clip),
    Convention("bce-no-clamp", ("binary_cross_entropy",),
               "no clamp of log(p) and log(1-p) at -100: p = 0 or 1 gives inf or nan",
               "clamp each log at -100 as PyTorch does", _bce_no_clamp),
    Convention("bce-logits-via-sigmoid", ("binary_cross_entropy_with_logits",),
               "log(sigmoid(x)) through a sigmoid that rounds to 0 or 1 at large |x|",
               "use softplus: y*softplus(-x)*pw + (1-y)*softplus(x)",
               _bce_logits_via_sigmoid),
    Convention("bce-grad-clamp-double", ("binary_cross_entropy_grad",),
               "the gradient clamps p(1-p) at the double 1e-12",
               "clamp at the C++ float 1e-12 = 9.99999996e-13, as PyTorch", _bce_grad_clamp_double),
    Convention("weight-on-axis-1", _pair(*BINARY),
               "a 1-D weight/pos_weight is aligned with axis 1 (like a class weight)",
               "broadcast it right-aligned, against the last axis", _weight_on_axis_1),
    Convention("grad-ignores-grad-output", tuple(f + "_grad" for f in
                                                 ("softmax", "log_softmax", *LOSSES)),
               "the gradient ignores grad_output (computes it as if it were 1)",
               "multiply by grad_output (per element for reduction='none')",
               _grad_ignores_grad_output),
    Convention("grad-missing-pos-weight", ("binary_cross_entropy_with_logits_grad",),
               "the gradient forgets pos_weight", "use (pw y + 1 - y) sigmoid(x) - pw y",
               _grad_missing_pos_weight),
    Convention("soft-target-grad-p-minus-y", ("cross_entropy_grad",),
               "probability targets: the gradient is p - w y, right only when sum_c w_c y_c = 1",
               "use p * sum_c w_c y_c - w y (targets need not sum to 1)", _soft_target_p_minus_y),
    Convention("tiny-loss-rounded", _pair("cross_entropy"),
               "lse(x) - x_t and p_t - 1 round a confident row's tiny loss/gradient to 0",
               "keep it: log1p of the non-top terms (xent_ref; PyTorch rounds too)",
               _tiny_loss_rounded),
    Convention("low-precision-arithmetic", ("cross_entropy", "binary_cross_entropy_with_logits"),
               "computes in float16/bfloat16 throughout: sums, exps, logs and the mean's "
               "count rounded to the dtype (65536 is inf in float16)",
               "accumulate in float32 or wider and round the result once to the dtype",
               _low_precision_arithmetic),
    Convention("grad-true-class-rounded", ("cross_entropy_grad",),
               "p = softmax(x) is rounded to the input's dtype before p - one_hot: a peaked "
               "row's p_t rounds to 1 (bfloat16 at p_t = 0.999) and its gradient to 0",
               "form p_t - 1 in float32 or wider (as -(sum of the other p_c)) and round once",
               _true_class_rounded),
    Convention("softmax-via-rounded-lse", ("cross_entropy_grad",),
               "p = exp(x - lse) with lse formed first: at large |x| lse swallows "
               "log(sum), so tied maxima each get p = 1",
               "subtract the max first: p = exp(x - max) / sum exp(x - max)",
               _softmax_via_rounded_lse),
    Convention("no-max-shift", ("softmax", "log_softmax"),
               "exp(x) without subtracting max(x) first: overflow (inf/inf = nan) or 0/0",
               "compute exp(x - max(x)), then normalize", _no_max_shift,
               (("softmax", "compute e = exp(x - max(x)) (the max over `axis`, "
                 "keepdims=True), then e / e.sum(axis=axis, keepdims=True)"),
                ("log_softmax", "compute (x - max(x)) - log(sum(exp(x - max(x)))): add "
                 "max(x) back to the log-sum"))),
    Convention("class-axis-last", _pair("softmax", "log_softmax"),
               "works along the last axis whatever `axis` says",
               "reduce along the `axis` argument", _class_axis_last),
    Convention("grad-mean-not-divided", tuple(f + "_grad" for f in
                                              (*LOSSES, "linear_cross_entropy")),
               "the gradient of reduction='mean' is the sum's gradient: it is never "
               "divided by the mean's denominator", "divide the gradient by the same "
               "denominator as the loss (kept count, or kept weight total)",
               _grad_mean_not_divided),
    Convention("z-loss-mean-by-weight", LLM_LOSSES,
               "the z-loss mean divides by the cross-entropy's weighted denominator "
               "sum_i w[t_i]", "divide the z-loss sum by the number of kept tokens "
               "(Liger, flash-attention): the z-loss is not class-weighted",
               _z_loss_mean_by_weight),
    Convention("z-loss-on-ignored", LLM_LOSSES,
               "z_loss * lse^2 is added for ignored tokens too",
               "mask the z-loss like the cross-entropy: ignored tokens add nothing",
               _z_loss_on_ignored),
    Convention("softcap-before-scale", LLM_LOSSES,
               "soft-caps the logits before scaling them: s * c tanh(x / c)",
               "scale first, then cap: c tanh(s x / c)", _softcap_before_scale),
    Convention("softcap-grad-without-slope", ("cross_entropy_grad", "linear_cross_entropy_grad"),
               "the backward pass skips the softcap's slope sech^2(s x / c)",
               "multiply dL/dz by s (1 - tanh^2(s x / c)) (formed without cancellation)",
               _softcap_grad_without_slope),
    Convention("z-loss-grad-missing", ("cross_entropy_grad", "linear_cross_entropy_grad"),
               "the gradient leaves out the z-loss term (the loss has it)",
               "add 2 z_loss lse(z) softmax(z), times the z-loss part's scale",
               _z_loss_grad_missing),
    Convention("bias-grad-averaged", ("linear_cross_entropy_grad",),
               "d linear_bias is the mean of the logits gradient's rows, not their sum",
               "sum the rows: d b = G^T 1 (the reduction is already inside G)",
               _bias_grad_averaged),
    # The learner's mistakes
    Convention("log-of-softmax", ("log_softmax", "cross_entropy"),
               "takes np.log(softmax(x)): a probability that underflows to 0 gives -inf "
               "(or nan) where log_softmax is finite",
               "compute log_softmax directly: (x - max(x)) - log(sum(exp(x - max(x))))",
               _log_of_softmax),
    Convention("grad-ignored-rows-nonzero", ("cross_entropy_grad",),
               "ignored targets' rows keep the softmax part p of p - one_hot: their "
               "gradient is not 0", "zero the whole row of every target == ignore_index "
               "(multiply p - one_hot by the kept mask, or by w[t] set to 0 there)",
               _grad_ignored_rows_nonzero),
    Convention("grad-missing-weight", tuple(f + "_grad" for f in LOSSES),
               "the gradient leaves out the class weights (the loss has them)",
               "multiply each row of the gradient by its weight w[t_i] (and divide a mean "
               "by the kept weight total, as the loss does)", _grad_missing_weight),
    Convention("grad-sign-flipped", tuple(f + "_grad" for f in
                                          ("softmax", "log_softmax", *LOSSES)),
               "the gradient has the opposite sign (y - p instead of p - y)",
               "flip the sign: the gradient points uphill (for cross-entropy d loss / "
               "d logits = p - y)",
               _grad_sign_flipped),
    Convention("pos-weight-both-terms", _pair("binary_cross_entropy_with_logits"),
               "pos_weight multiplies both terms of the loss, the y = 0 term too",
               "weight only the positive term: pw y softplus(-x) + (1 - y) softplus(x)",
               _pos_weight_both_terms),
    Convention("missing-keepdims", _pair("softmax", "log_softmax", "cross_entropy"),
               "a max or sum over the class axis without keepdims=True: (N, C) minus (N,) "
               "raises a broadcast ValueError, or broadcasts along the wrong axis",
               "keep the reduced axis: x.max(axis=axis, keepdims=True), "
               "e.sum(axis=axis, keepdims=True)", _missing_keepdims),
    Convention("mean-is-sum", LOSSES,
               "reduction='mean' returns the sum of the losses, never divided",
               "divide the sum by the mean's denominator (the kept count, the kept weight "
               "total, or the number of elements for the binary losses)", _mean_is_sum),
    Convention("grad-output-squared", tuple(f + "_grad" for f in
                                            ("softmax", "log_softmax", *LOSSES)),
               "the gradient is multiplied by grad_output twice",
               "multiply by grad_output once: d loss / d input = grad_output * d loss_i / d x",
               _grad_output_squared),
    # The mistakes of LLM loss kernels
    Convention("smoothing-on-ignored", LLM_LOSSES,
               "the label-smoothing term eps/C sum_c w_c (-log p_c) is counted on ignored "
               "tokens too (their -log p_t is dropped)",
               "mask the smoothing term like the rest: ignored tokens add nothing",
               _smoothing_on_ignored),
    Convention("softcap-multiplies-logit", LLM_LOSSES,
               "the softcap is written z = x tanh(x / c), not c tanh(x / c)",
               "cap with c tanh(s x / c): bounded by c, the identity near 0",
               _softcap_multiplies_logit),
    Convention("softcap-not-applied", LLM_LOSSES,
               "the softcap is not applied (the logits are only scaled)",
               "apply z = c tanh(s x / c) before the softmax, and its slope in the gradient",
               _softcap_not_applied),
    Convention("grad-output-first-element", tuple(f + "_grad" for f in
                                                  (*LOSSES, "linear_cross_entropy")),
               "reduction='none': every gradient is scaled by grad_output's first element",
               "scale position i by grad_output[i]", _grad_output_first_element),
    Convention("per-microbatch-mean", LLM_LOSSES,
               "reduction='mean' is taken per sample (per micro-batch or sequence) and "
               "those means averaged, so a sample with few kept tokens weighs as much as a "
               "full one", "divide the sum over every token by the total kept count (or "
               "weight) of the whole batch", _per_microbatch_mean),
    Convention("z-loss-when-off", LLM_LOSSES,
               f"a z-loss ({DEFAULT_Z_LOSS:g} lse^2) is added although z_loss is 0",
               "add z_loss * lse^2 only when z_loss is set", _z_loss_when_off),
    Convention("z-loss-mean-all-tokens", LLM_LOSSES,
               "the z-loss mean is over all tokens: lse^2 of ignored ones included, divided "
               "by N", "sum lse^2 over the kept tokens and divide by their count",
               _z_loss_mean_all_tokens),
    Convention("dw-low-precision-accumulation", ("linear_cross_entropy_grad",),
               "dW and db are accumulated chunk by chunk in the input's dtype (bfloat16): "
               "each chunk's share is rounded, then the running sum",
               "accumulate dW and db in float32 across chunks, round once at the end",
               _dw_low_precision_accumulation),
    Convention("smoothing-local-vocab", LLM_LOSSES,
               "Megatron's vocab-parallel smoothing: alpha = eps K/(K-1) and the mean of "
               "-log p over the local vocabulary shard (K = C/2, the first of two ranks)",
               "mix eps/C over the whole vocabulary: all-reduce the sum of -log p over "
               "the shards, and use eps itself", _smoothing_local_vocab),
    Convention("linear-ignore-index-dropped", _pair("linear_cross_entropy"),
               "linear_cross_entropy ignores its ignore_index argument (only -100 is "
               "ignored)", "drop every target equal to ignore_index from the loss, the "
               "mean and the gradients", _linear_ignore_index_dropped),
    Convention("smoothing-weights-missing", _pair("linear_cross_entropy"),
               "linear_cross_entropy leaves the class weights out of the smoothing term",
               "weight the smoothing term: eps/C * sum_c w_c * -log p_c", _smoothing_weights_missing),
    Convention("probability-targets-refused", LLM_LOSSES,
               "probability (soft) targets raise", "accept targets shaped like the logits: "
               "-sum_c w_c y_c log p_c per position", _probability_targets_refused),
    # The rest of the family: kl_div and sigmoid_focal_loss.
    Convention("kl-mean-not-batchmean", _pair("kl_div"),
               "reduction='batchmean' divides by every element (N * C ...), as 'mean' does",
               "divide the sum by the batch size input.shape[0]: batchmean is the KL per "
               "sample ('mean' is per element)", _kl_mean_not_batchmean),
    Convention("kl-log-target-ignored", _pair("kl_div"),
               "log_target=True is ignored: the log-probability target is read as "
               "probabilities", "with log_target, use exp(t) (t - input)",
               _kl_log_target_ignored),
    Convention("kl-input-not-log", _pair("kl_div"),
               "takes the log of the input again: the input is treated as probabilities",
               "the input is log-probabilities already: t (log t - input), no log of it",
               _kl_input_not_log),
    Convention("kl-args-swapped", _pair("kl_div"),
               "computes KL(q || p), exp(input) (input - log t), for KL(p || q)",
               "weight the log-ratio by the target: t (log t - input)", _kl_args_swapped),
    Convention("focal-alpha-on-negatives", _pair("sigmoid_focal_loss"),
               "alpha weights every element, negatives too",
               "weight positives by alpha and negatives by 1 - alpha (alpha < 0: none)",
               _focal_alpha_on_negatives),
    Convention("focal-factor-not-differentiated", ("sigmoid_focal_loss_grad",),
               "the gradient treats (1 - p_t)^gamma as a constant (detached)",
               "differentiate the factor too: add -gamma (1 - p_t)^(gamma-1) dp_t/dx * CE",
               _focal_factor_constant),
    Convention("focal-via-sigmoid", ("sigmoid_focal_loss",),
               "p = sigmoid(x) then -log(p_t): p rounds to 0 or 1 at large |x|, the tiny "
               "losses become 0 and the wrong answers inf",
               "use BCE with logits (softplus) and 1 - p_t as sigmoid(-x) or sigmoid(x)",
               _focal_via_sigmoid),
)
# The second-order functions' mistakes (hvp, statistics) have a module of their own.
CATALOGUE += tuple(Convention(*row) for row in _second_order.ROWS)
BY_ID = {convention.id: convention for convention in CATALOGUE}


def explains(convention: Convention, outcome, judge, exact: bool = False) -> bool:
    """Whether ``outcome``'s output is what ``convention`` predicts (``judge``: the
    comparison by the case's own rule and tolerance; ``exact``: with ``atol = 0``, for
    values that all lie below the case's ``atol``)."""
    if outcome.function not in convention.functions:
        return False
    try:
        predicted = convention.predict(outcome.case, outcome.function, outcome.got)
    except (ValueError, TypeError, IndexError, FloatingPointError):
        return False
    if predicted is None:
        return False
    if isinstance(predicted, _Raises) or outcome.got is None:
        return isinstance(predicted, _Raises) and outcome.check.why.startswith("raised") \
            and getattr(predicted, "words", "") in outcome.check.why
    if also_wrong_dtype(convention, outcome, predicted):
        # A real cause found in a promoted result (float32 in, float64 out): judged in
        # the dtype returned; diagnose() reports the dtype as a secondary note.
        predicted = np.asarray(predicted).astype(outcome.got.dtype)
    substitute = _Substitute(outcome.case, predicted, exact)
    return judge(substitute, outcome.function, outcome.got).ok


def also_wrong_dtype(convention: Convention, outcome, predicted=None) -> bool:
    """Whether ``outcome`` returned another floating dtype than its case's while
    ``convention`` (not wrong-dtype itself) is about its values."""
    got = outcome.got
    if convention.id == "wrong-dtype" or got is None or isinstance(got, tuple) \
            or isinstance(predicted, tuple) or not is_float(np.asarray(got).dtype):
        return False
    expected = expected_of(outcome.case, outcome.function)
    return isinstance(expected, np.ndarray) and np.asarray(got).dtype != expected.dtype \
        and np.shape(got) == np.shape(expected)


class _Substitute:
    """A case whose expected value is a convention's prediction, for ``judge``."""

    rule = "tolerance"

    def __init__(self, case, predicted, exact: bool):
        # (several gradients, linear_cross_entropy's, stay a tuple: judged part by part)
        self.loss = self.grad = predicted if isinstance(predicted, (tuple, dict)) \
            else np.asarray(predicted)
        self.function = case.function
        self._case, self._exact = case, exact
        # a second-order kind's expected fields: the statistics, or its one field
        fields = golden.signature_of(case.function).fields
        self.expected = predicted if isinstance(predicted, dict) else dict(
            zip(fields[:1], [self.loss]))

    def tolerance_for(self, function: str) -> tuple[float, float]:
        rtol, atol = self._case.tolerance_for(function)
        return rtol, 0.0 if self._exact else atol
