"""cross_entropy with the LLM options (logit_scale, softcap, z_loss; class indices)
computed naively in float16/bfloat16: the scale, the cap's tanh, every exp, log and sum
over the vocabulary, the z-loss terms and the means rounded to the dtype. Right in
float32 and float64 (xent_ref, there) and without the options; the gradient is
xent_ref's.

Diagnosis: low-precision-arithmetic
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import rounded, widen


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, logit_scale=1.0, softcap=None, z_loss=0.0):
    x, target = np.asarray(input), np.asarray(target)
    options = {"logit_scale": logit_scale, "softcap": softcap, "z_loss": z_loss}
    plain = (logit_scale, softcap, z_loss) == (1.0, None, 0.0)
    if x.dtype.name not in ("float16", "bfloat16") or plain or label_smoothing \
            or target.dtype.kind != "i":
        return rounded(xr.cross_entropy(widen(x), target, weight=widen(weight),
                                        ignore_index=ignore_index, reduction=reduction,
                                        label_smoothing=label_smoothing, **options), x.dtype)
    one, axis = x.dtype.type, 0 if x.ndim == 1 else 1
    z = x * one(logit_scale)  # BUG (all below): every operation in the dtype
    if softcap is not None:
        z = one(softcap) * np.tanh(z / one(softcap))
    top = z.max(axis=axis, keepdims=True)
    shifted = z - top
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    kept = target != ignore_index
    safe = np.where(kept, target, 0)
    picked = np.take_along_axis(shifted - log_sum, np.expand_dims(safe, axis), axis)
    w = np.ones(x.shape[axis], x.dtype) if weight is None else np.asarray(weight)
    w = np.where(kept, w[safe], 0).astype(x.dtype)
    total = -picked.squeeze(axis) * w
    total = total if reduction == "none" else total.sum()
    if reduction == "mean":
        total = total / w.sum()
    if not z_loss:
        return total
    lse = (top + log_sum).squeeze(axis)
    z_losses = np.where(kept, one(z_loss) * lse ** 2, 0).astype(x.dtype)
    if reduction == "none":
        return total + z_losses
    return total + z_losses.sum() / (kept.sum().astype(x.dtype) if reduction == "mean" else 1)


cross_entropy_grad = xr.cross_entropy_grad
