"""The gradient of reduction='mean' comes back undivided: the 'sum' gradient (a backward pass
that forgets the 1/denominator its forward pass applied), for cross_entropy, nll_loss and
linear_cross_entropy.

Diagnosis: grad-mean-not-divided
"""

import xent_ref as xr


def _undivided(fn):
    def grad(*args, **kwargs):
        if kwargs.get("reduction", "mean") == "mean":
            kwargs = dict(kwargs, reduction="sum")  # BUG: the mean's denominator dropped
        return fn(*args, **kwargs)
    return grad


cross_entropy_grad = _undivided(xr.cross_entropy_grad)
nll_loss_grad = _undivided(xr.nll_loss_grad)
linear_cross_entropy_grad = _undivided(xr.linear_cross_entropy_grad)
