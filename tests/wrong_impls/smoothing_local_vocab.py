"""Megatron's vocab-parallel label smoothing (NVIDIA/Megatron-LM#737), as the first of
two tensor-parallel ranks sees it: alpha = eps K/(K-1) with K the local vocabulary
(C/2) and the mean of -log p over that shard only, (1 - alpha)(-log p_t) + alpha
mean_{c<K} -log p_c. A vocabulary two ranks cannot split evenly runs on one rank, where
that formula is eps/(C-1) to each other class. Megatron has no class weights: weighted
calls are left right (cross_entropy, linear_cross_entropy and their gradients).

Diagnosis: smoothing-local-vocab
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import kept, llm_pairs, mean_term, n_classes, spread, without


def _terms(name, target_at):
    def terms(args, kwargs):
        target = np.asarray(args[target_at])
        eps = kwargs.get("label_smoothing", 0.0)
        if not eps or target.dtype.kind != "i" or kwargs.get("weight") is not None:
            return None
        classes = n_classes(name, args)
        local = classes // 2 if classes % 2 == 0 and classes >= 4 else classes  # (ranks)
        if local < 2:
            return None
        alpha = eps * local / (local - 1)  # BUG: K/(K-1) of the local vocabulary
        mask = kept(target, kwargs)
        if kwargs.get("reduction", "mean") == "mean" and not mask.any():
            return None
        coef, reduction = mean_term(kwargs, alpha, float(mask.sum()))
        shard = list(args)
        shard[target_at] = spread(target, classes, mask, slice(0, local))  # BUG: local mean
        term_kwargs = without(kwargs, "ignore_index", "label_smoothing", "z_loss")
        unsmoothed = without(kwargs, "label_smoothing")  # (the z-loss stays whole)
        return [(1.0, args, unsmoothed), (-alpha, args, dict(unsmoothed, z_loss=0.0)),
                (coef, shard, dict(term_kwargs, reduction=reduction))]
    return terms


globals().update(llm_pairs(xr, _terms))
