"""reduction='none': the gradient of every position is scaled by grad_output's first
element instead of its own (linkedin/Liger-Kernel#968), for every loss.

Diagnosis: grad-output-first-element
"""

import numpy as np

import xent_ref as xr


def _first_element(fn):
    def call(*args, grad_output=None, **kwargs):
        g = np.asarray(grad_output)
        if kwargs.get("reduction", "mean") == "none" and g.size:
            g = np.full_like(g, g.reshape(-1)[0])  # BUG: grad_output[0] for all
        return fn(*args, grad_output=g, **kwargs)
    return call


cross_entropy, nll_loss = xr.cross_entropy, xr.nll_loss
binary_cross_entropy = xr.binary_cross_entropy
binary_cross_entropy_with_logits = xr.binary_cross_entropy_with_logits
linear_cross_entropy = xr.linear_cross_entropy
cross_entropy_grad = _first_element(xr.cross_entropy_grad)
nll_loss_grad = _first_element(xr.nll_loss_grad)
binary_cross_entropy_grad = _first_element(xr.binary_cross_entropy_grad)
binary_cross_entropy_with_logits_grad = _first_element(xr.binary_cross_entropy_with_logits_grad)
linear_cross_entropy_grad = _first_element(xr.linear_cross_entropy_grad)
