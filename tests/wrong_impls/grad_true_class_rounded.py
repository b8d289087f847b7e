"""cross_entropy_grad that stores the probabilities in the input's dtype, then subtracts
the one-hot target there: p_t - 1 with p_t already rounded. In bfloat16 a peaked row's
p_t = 0.999 rounds to 1 (the spacing below 1 is 2^-8), so the true class's gradient is 0
instead of -0.001: the fused-kernel bug the vocabulary-scale low-precision cases catch.
Right in float32 and float64, where the rounding is below the tolerance.

Diagnosis: grad-true-class-rounded
"""

import numpy as np

import xent_ref as xr


def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None, **llm_options):
    x = np.asarray(input)
    dtype = x.dtype
    wide = x.astype(np.float64)
    options = dict(weight=None if weight is None else np.asarray(weight, np.float64),
                   ignore_index=ignore_index, reduction=reduction)
    upstream = None if grad_output is None else np.asarray(grad_output, np.float64)
    target = np.asarray(target)
    if label_smoothing or llm_options or target.dtype.kind not in "iu":
        if target.dtype.kind not in "iu":
            target = target.astype(np.float64)
        return xr.cross_entropy_grad(wide, target, label_smoothing=label_smoothing,
                                     grad_output=upstream, **options,
                                     **llm_options).astype(dtype)  # left right
    axis = 0 if x.ndim == 1 else 1
    p = xr.softmax(wide, axis=axis).astype(dtype)  # BUG: p_t rounded before p_t - 1
    # The scale of each row (w_t g / denominator) is xent_ref's: the nll_loss gradient of
    # the log-probabilities is minus it at the target.
    nll = xr.nll_loss_grad(xr.log_softmax(wide, axis=axis), target, grad_output=upstream,
                           **options)
    return (nll - p.astype(np.float64) * nll.sum(axis=axis, keepdims=True)).astype(dtype)
