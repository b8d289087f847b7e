"""binary_cross_entropy_with_logits with a 1-D weight and pos_weight aligned to axis 1 (as a
class weight would be) whenever their length fits it, instead of right-aligned to the last
axis as PyTorch broadcasts them. Invisible unless axis 1 and the last axis have equal length.

Diagnosis: weight-on-axis-1
"""

import numpy as np

import xent_ref as xr


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    x = np.asarray(input)

    def on_axis_1(w):  # BUG: PyTorch aligns a (C,) weight with the last axis
        if w is None or x.ndim < 3 or np.ndim(w) != 1 or len(w) != x.shape[1]:
            return w
        return np.reshape(w, (-1,) + (1,) * (x.ndim - 2))

    return xr.binary_cross_entropy_with_logits(x, target, on_axis_1(weight),
                                               on_axis_1(pos_weight), reduction)
