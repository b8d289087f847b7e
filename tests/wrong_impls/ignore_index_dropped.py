"""ignore_index is not passed on: only the default -100 is ever ignored, so targets equal
to ignore_index=1 are counted and ignore_index=-1 targets are out of range.

Diagnosis: ignore-index-not-applied
"""

import xent_ref as xr


def cross_entropy(input, target, ignore_index=-100, **kwargs):
    return xr.cross_entropy(input, target, **kwargs)  # BUG: ignore_index dropped


def nll_loss_grad(input, target, ignore_index=-100, **kwargs):
    return xr.nll_loss_grad(input, target, **kwargs)  # BUG: ignore_index dropped
