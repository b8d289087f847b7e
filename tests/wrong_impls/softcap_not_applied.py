"""The softcap is not applied (apple/ml-cross-entropy#48): the logits are scaled by
logit_scale but never capped, in the loss and in the gradients (cross_entropy,
linear_cross_entropy).

Diagnosis: softcap-not-applied
"""

import xent_ref as xr
from tests.wrong_impls._common import llm_pairs, without


def _terms(name, target_at):
    def terms(args, kwargs):
        if kwargs.get("softcap") is None:
            return None
        return [(1.0, args, without(kwargs, "softcap"))]  # BUG: no cap
    return terms


globals().update(llm_pairs(xr, _terms))
