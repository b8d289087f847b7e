"""binary_cross_entropy_with_logits through a sigmoid clipped to [1e-7, 1 - 1e-7], as some
frameworks do to dodge log(0). Always finite, but wrong once |x| > 16: at x = -40, y = 1
it costs -log(1e-7) = 16.1 instead of 40. float16 and bfloat16 are computed in float32
and rounded once (1 - 1e-7 would round to 1 in float16, undoing the clip).

Diagnosis: bce-clip-1e-7
"""

import numpy as np


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    dtype = np.asarray(input).dtype
    work = np.float32 if dtype.name in ("float16", "bfloat16") else dtype
    x = np.asarray(input, work)
    y = np.asarray(target, dtype=x.dtype)
    e = np.exp(-np.abs(x))
    p = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    p = np.clip(p, 1e-7, 1 - 1e-7)  # BUG: the clip caps the loss at 16.1
    pw = 1 if pos_weight is None else np.asarray(pos_weight, dtype=x.dtype)
    losses = -(pw * y * np.log(p) + (1 - y) * np.log1p(-p))
    if weight is not None:
        losses = losses * np.asarray(weight, dtype=x.dtype)
    if reduction == "none":
        return losses.astype(dtype)
    return np.asarray(losses.sum() if reduction == "sum" else losses.mean()).astype(dtype)
