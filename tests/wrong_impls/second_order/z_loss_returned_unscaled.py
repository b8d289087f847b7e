"""The z-loss statistic returned as lse^2, without its weight z_loss (the loss itself is
right) (cross_entropy_stats).

Diagnosis: z-loss-returned-unscaled
"""

import dataclasses

import numpy as np

import xent_ref as xr


def cross_entropy_stats(input, target, z_loss=0.0, reduction="mean", **kwargs):
    stats = xr.cross_entropy_stats(input, target, z_loss=z_loss, reduction=reduction, **kwargs)
    unscaled = np.where(stats.kept, stats.lse**2, 0)  # BUG: lambda lse^2 without lambda
    reduced = {"none": unscaled, "sum": unscaled.sum(),
               "mean": unscaled.sum() / stats.kept.sum()}[reduction]
    dtype = stats.lse.dtype
    return dataclasses.replace(stats, z_loss=unscaled.astype(dtype),
                               reduced_z_loss=np.asarray(reduced).astype(dtype))
