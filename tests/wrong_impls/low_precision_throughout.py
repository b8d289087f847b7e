"""cross_entropy (class indices) and binary_cross_entropy_with_logits computed with
NumPy's arithmetic in the input's dtype: every exp, log, sum and the mean's count
rounded to float16 (or bfloat16). Fine in float32 and float64 (xent_ref is called
there); in float16 the sums lose digits, and the mean of 65536 zero logits divides by a
count float16 cannot hold (inf), giving 0 instead of log 2. The low-precision cases'
rule (no worse than PyTorch's own error, plus one ulp) fails it.

Diagnosis: low-precision-arithmetic
"""

import numpy as np

import xent_ref as xr


def _low(x) -> bool:
    return x.dtype.name in ("float16", "bfloat16")


def _wide(a):
    a = np.asarray(a)
    return a if a.dtype.kind in "iu" else a.astype(np.float64)


def _reference(fn, x, y, **options):
    """xent_ref's answer in float64, rounded once to the input's dtype (the right way)."""
    options = {key: value if value is None or np.isscalar(value) else _wide(value)
               for key, value in options.items()}
    return np.asarray(fn(_wide(x), _wide(y), **options)).astype(np.asarray(x).dtype)


def _reduced(losses, denominator, reduction):
    if reduction == "none":
        return losses
    total = losses.sum()  # BUG: a float16 sum
    return total if reduction == "sum" else total / denominator  # BUG: a float16 count


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, **llm_options):
    x, target = np.asarray(input), np.asarray(target)
    if not _low(x) or label_smoothing or llm_options or target.dtype.kind not in "iu":
        return _reference(xr.cross_entropy, x, target, weight=weight,
                          ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=label_smoothing, **llm_options)
    axis = 0 if x.ndim == 1 else 1
    shifted = x - x.max(axis=axis, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    kept = target != ignore_index
    safe = np.where(kept, target, 0)
    picked = np.take_along_axis(log_probs, np.expand_dims(safe, axis), axis=axis).squeeze(axis)
    w = np.ones(x.shape[axis], x.dtype) if weight is None else np.asarray(weight)
    w = np.where(kept, w[safe], np.zeros((), w.dtype)).astype(x.dtype)
    return _reduced(-picked * w, w.sum(), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    x, y = np.asarray(input), np.asarray(target)
    if not _low(x):
        return _reference(xr.binary_cross_entropy_with_logits, x, y, weight=weight,
                          pos_weight=pos_weight, reduction=reduction)
    one = np.ones((), x.dtype)
    softplus = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)  # log(1 + e^-x)
    pw = one if pos_weight is None else np.asarray(pos_weight)
    losses = (one - y) * x + (one + (pw - one) * y) * softplus
    if weight is not None:
        losses = losses * np.asarray(weight)
    return _reduced(losses, np.array(losses.size).astype(x.dtype), reduction)
