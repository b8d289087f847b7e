"""cross_entropy's gradient computed without the class weights (the loss has them).

Diagnosis: grad-missing-weight
"""

import xent_ref as xr

cross_entropy = xr.cross_entropy


def cross_entropy_grad(input, target, weight=None, **kwargs):
    return xr.cross_entropy_grad(input, target, **kwargs)  # BUG: weight left out
