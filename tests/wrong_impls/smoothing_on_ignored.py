"""The label-smoothing term is counted on ignored tokens too (pytorch/pytorch#73205):
an ignored token drops its -log p_t but still adds eps/C sum_c w_c (-log p_c)
(cross_entropy, linear_cross_entropy and their gradients); the mean still divides by
the kept tokens' weight.

Diagnosis: smoothing-on-ignored
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import kept, llm_pairs, mean_term, n_classes, spread, without


def _terms(name, target_at):
    def terms(args, kwargs):
        target = np.asarray(args[target_at])
        eps = kwargs.get("label_smoothing", 0.0)
        mask = kept(target, kwargs)
        if not eps or target.dtype.kind != "i" or mask.all():
            return None
        weight = kwargs.get("weight")
        safe = target[mask]
        denominator = float(mask.sum()) if weight is None else float(weight[safe].sum())
        if kwargs.get("reduction", "mean") == "mean" and not denominator:
            return None
        coef, reduction = mean_term(kwargs, eps, denominator)
        ignored = list(args)
        ignored[target_at] = spread(target, n_classes(name, args), ~mask)  # BUG
        term_kwargs = without(kwargs, "ignore_index", "label_smoothing", "z_loss")
        return [(1.0, args, kwargs), (coef, ignored, dict(term_kwargs, reduction=reduction))]
    return terms


globals().update(llm_pairs(xr, _terms))
