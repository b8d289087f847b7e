"""The z-loss mean is over all tokens: lse^2 of the ignored ones included, and divided
by N instead of by the kept count (reduction='mean'; cross_entropy,
linear_cross_entropy and their gradients).

Diagnosis: z-loss-mean-all-tokens
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import kept, llm_pairs


def _terms(name, target_at):
    def terms(args, kwargs):
        target = np.asarray(args[target_at])
        if not kwargs.get("z_loss") or target.dtype.kind != "i" \
                or kwargs.get("reduction", "mean") != "mean":
            return None
        mask = kept(target, kwargs)
        if mask.all():
            return None
        every = list(args)
        every[target_at] = np.where(mask, target, 0)
        no_z = dict(kwargs, z_loss=0.0)
        coef = 1.0 / target.size  # BUG: every token, ignored ones included
        return [(1.0, args, no_z), (coef, every, dict(kwargs, reduction="sum")),
                (-coef, every, dict(no_z, reduction="sum"))]
    return terms


globals().update(llm_pairs(xr, _terms))
