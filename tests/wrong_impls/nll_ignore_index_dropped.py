"""nll_loss that drops its ignore_index argument: only the default -100 is ignored.

Diagnosis: ignore-index-not-applied
"""

import xent_ref as xr


def nll_loss(input, target, ignore_index=-100, **kwargs):
    return xr.nll_loss(input, target, **kwargs)  # BUG: ignore_index dropped


def nll_loss_grad(input, target, ignore_index=-100, **kwargs):
    return xr.nll_loss_grad(input, target, **kwargs)  # BUG: same
