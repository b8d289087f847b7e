"""A z-loss is added when it is off (allenai/OLMo-core#702): with z_loss=0 the loss
still gets 1e-4 * lse^2 per kept token (the default coefficient, PaLM's), in the loss
and the gradients (cross_entropy, linear_cross_entropy).

Diagnosis: z-loss-when-off
"""

import xent_ref as xr
from tests.wrong_impls._common import llm_pairs


def _terms(name, target_at):
    def terms(args, kwargs):
        if kwargs.get("z_loss"):
            return None
        return [(1.0, args, dict(kwargs, z_loss=1e-4))]  # BUG: the default, though off
    return terms


globals().update(llm_pairs(xr, _terms))
