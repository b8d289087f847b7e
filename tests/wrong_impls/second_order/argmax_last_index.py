"""Ties in the prediction broken to the last maximal index, not the first (as Liger and
torch.argmax break them) -- and `correct` following it (cross_entropy_stats).

Diagnosis: argmax-last-index
"""

import dataclasses

import numpy as np

import xent_ref as xr


def cross_entropy_stats(input, target, softcap=None, logit_scale=1.0, **kwargs):
    stats = xr.cross_entropy_stats(input, target, softcap=softcap, logit_scale=logit_scale,
                                   **kwargs)
    z = logit_scale * np.asarray(input, dtype=float)
    if softcap is not None:
        z = softcap * np.tanh(z / softcap)
    n_classes = z.shape[1]
    argmax = n_classes - 1 - np.argmax(z[:, ::-1], axis=1)  # BUG: the last maximum
    target = np.asarray(target)
    if target.dtype.kind == "f":  # probabilities: the target's own (first) maximum
        return dataclasses.replace(stats, argmax=argmax,
                                   correct=argmax == np.argmax(target, axis=1))
    return dataclasses.replace(stats, argmax=argmax, correct=(argmax == target) & stats.kept)
