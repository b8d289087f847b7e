"""cross_entropy's gradient masks only the one-hot of ignored targets: their rows keep
the softmax part p (times grad_output, over the mean's denominator) instead of 0.

Diagnosis: grad-ignored-rows-nonzero
"""

import numpy as np

import xent_ref as xr

cross_entropy = xr.cross_entropy


def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=1.0, **kwargs):
    grad = xr.cross_entropy_grad(input, target, weight=weight, ignore_index=ignore_index,
                                 reduction=reduction, label_smoothing=label_smoothing,
                                 grad_output=grad_output, **kwargs)
    target = np.asarray(target)
    if target.dtype.kind != "i" or np.ndim(input) < 2:
        return grad
    kept = target != ignore_index
    scale = np.broadcast_to(np.asarray(grad_output, np.float64), kept.shape)
    if reduction == "mean":
        w = np.ones(np.shape(input)[1]) if weight is None else np.asarray(weight, np.float64)
        total = np.where(kept, w[np.where(kept, target, 0)], 0).sum()
        scale = scale / total
    p = xr.softmax(np.asarray(input, np.float64), axis=1)
    extra = np.expand_dims(np.where(kept, 0.0, scale), 1) * p  # BUG: not zeroed
    return (grad + extra).astype(grad.dtype)
