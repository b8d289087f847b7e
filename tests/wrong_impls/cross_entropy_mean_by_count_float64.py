"""A learner's cross_entropy: the weighted mean as `losses.sum() / kept.sum()`, which
divides by the count of kept targets (not their weights) and, as a NumPy integer
division of float32 by int64 does, returns float64 for float32 inputs. The cause is
the denominator; the dtype is a note beside it.

Diagnosis: mean-denominator-count
"""

import numpy as np

import xent_ref as xr


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, **llm_options):
    target = np.asarray(target)
    if llm_options or reduction != "mean" or weight is None or target.dtype.kind != "i" \
            or np.dtype(np.asarray(input).dtype).name not in ("float32", "float64"):
        return xr.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                                reduction=reduction, label_smoothing=label_smoothing,
                                **llm_options)
    losses = xr.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                              reduction="none", label_smoothing=label_smoothing)
    kept = target != ignore_index
    return losses.sum() / kept.sum().astype(np.float64)  # BUG: a count; float64 out
