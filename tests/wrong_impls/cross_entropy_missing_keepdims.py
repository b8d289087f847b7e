"""cross_entropy whose log-softmax forgets keepdims=True on the max and the sum: a
broadcast ValueError on most shapes, a wrong loss where N = C.

Diagnosis: missing-keepdims
"""

import numpy as np

import xent_ref as xr


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, **llm_options):
    input, target = np.asarray(input), np.asarray(target)
    if llm_options or target.dtype.kind != "i" or label_smoothing or input.ndim < 2:
        return xr.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                                reduction=reduction, label_smoothing=label_smoothing,
                                **llm_options)
    shifted = input - input.max(axis=1)  # BUG: keepdims forgotten (twice)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1))
    return xr.nll_loss(log_probs.astype(input.dtype), target, weight=weight,
                       ignore_index=ignore_index, reduction=reduction)
