"""cross_entropy_grad for probability targets as softmax(x) - y (scaled by grad_output and
the mean), right only when the targets (smoothed, weighted) sum to 1 over the classes;
the true gradient is p * sum_c w_c y_c - w y.

Diagnosis: soft-target-grad-p-minus-y
"""

import numpy as np

import xent_ref as xr


def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None, **llm_options):
    x, y = np.asarray(input), np.asarray(target)
    options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=label_smoothing, grad_output=grad_output)
    exact = xr.cross_entropy_grad(x, y, **options, **llm_options)
    if y.dtype.kind != "f" or llm_options:  # the LLM options: left right
        return exact
    axis = 0 if x.ndim == 1 else 1
    n_classes = x.shape[axis]
    shape = [1] * x.ndim
    shape[axis] = -1
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    mass = (w.reshape(shape) * ((1 - label_smoothing) * y + label_smoothing / n_classes)).sum(
        axis=axis, keepdims=True)
    g = np.float64(1.0) if grad_output is None else np.asarray(grad_output, dtype=np.float64)
    scale = (np.expand_dims(g, axis) if reduction == "none"
             else g / (y.size // n_classes if reduction == "mean" else 1))
    p = xr.softmax(x.astype(np.float64), axis=axis)
    # BUG: p * mass - w y written as p - w y
    return (exact + (1 - mass) * p * scale).astype(exact.dtype)
