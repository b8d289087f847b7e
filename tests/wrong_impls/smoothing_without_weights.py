"""cross_entropy with class weights and label smoothing whose smoothing term forgets the
weights: (1 - eps) w_t nll + eps/C sum_c -log p_c instead of eps/C sum_c -w_c log p_c
(index targets). The unweighted term is xent_ref's loss for a uniform probability target.

Diagnosis: smoothing-unweighted
"""

import numpy as np

import xent_ref as xr


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, **llm_options):
    x, t = np.asarray(input), np.asarray(target)
    options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
    if weight is None or not label_smoothing or llm_options or t.dtype.kind != "i":
        # right, the LLM options (logit_scale, softcap, z_loss) included
        return xr.cross_entropy(x, t, label_smoothing=label_smoothing, **options, **llm_options)
    axis = 0 if x.ndim == 1 else 1
    kept = t != ignore_index
    uniform = np.broadcast_to(np.expand_dims(kept, axis) / x.shape[axis], x.shape)
    smooth = xr.cross_entropy(x, uniform.astype(x.dtype), reduction="sum" if reduction == "mean"
                              else reduction)  # BUG: no class weights in this term
    if reduction == "mean":
        smooth = smooth / np.asarray(weight, dtype=np.float64)[t[kept]].sum()
    nll = xr.cross_entropy(x, t, **options)
    return ((1 - label_smoothing) * nll + label_smoothing * smooth).astype(nll.dtype)
