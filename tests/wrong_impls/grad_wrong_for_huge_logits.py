"""cross_entropy_grad as exp(x - lse) - one_hot(t) with lse = max + log(sum exp(x - max))
formed first. Right for ordinary logits; at |x| = 1e30 the lse rounds to max(x), so two
tied maxima each get p = 1 instead of 1/2. Only a corpus whose huge-logit cases are judged
on the gradient's own scale, not the logits', can see it.

Diagnosis: softmax-via-rounded-lse
"""

import numpy as np

import xent_ref as xr


def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None, **llm_options):
    x = np.asarray(input)
    axis = 0 if x.ndim == 1 else 1
    top = x.max(axis=axis, keepdims=True)
    lse = top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))
    p = np.exp(x - lse)  # BUG: x - lse loses log(sum) when |x| is huge
    # The rest (one-hot, weights, ignore_index, smoothing, reduction) is xent_ref's: the
    # gradient of nll_loss on log p is -w_t g / denominator at the target, so adding
    # p times its row sum gives (p - y) scaled exactly as the true gradient.
    exact = xr.cross_entropy_grad(x, target, weight=weight, ignore_index=ignore_index,
                                  reduction=reduction, label_smoothing=label_smoothing,
                                  grad_output=grad_output, **llm_options)
    if label_smoothing or llm_options or np.asarray(target).dtype.kind not in "iu":
        return exact  # probability targets, smoothing and the LLM options: left right
    nll = xr.nll_loss_grad(np.log(p), target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, grad_output=grad_output)
    return (nll - p * nll.sum(axis=axis, keepdims=True)).astype(exact.dtype)
