"""linear_cross_entropy ignores its ignore_index argument: only the default -100 is
ignored, so with ignore_index=1 the targets of class 1 count (loss and gradients).

Diagnosis: linear-ignore-index-dropped
"""

import xent_ref as xr
from tests.wrong_impls._common import wrapped, without


def _terms(args, kwargs):
    if "ignore_index" not in kwargs:
        return None
    return [(1.0, args, without(kwargs, "ignore_index"))]  # BUG


linear_cross_entropy = wrapped(xr.linear_cross_entropy, _terms)
linear_cross_entropy_grad = wrapped(xr.linear_cross_entropy_grad, _terms)
