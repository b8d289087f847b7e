"""binary_cross_entropy_grad with the denominator clamp max(p (1 - p), 1e-12) in double
precision; PyTorch (and xent_ref) use the C++ float 1e-12 = 9.99999996e-13. The
gradients at p = 0 or 1 (about 1e12) then differ in float64 by 4 parts in 10^9.

Diagnosis: bce-grad-clamp-double
"""

import numpy as np

import xent_ref as xr


def binary_cross_entropy_grad(input, target, weight=None, reduction="mean", grad_output=None):
    grad = xr.binary_cross_entropy_grad(input, target, weight=weight, reduction=reduction,
                                        grad_output=grad_output)
    p = np.asarray(input)
    clamped = p * (1 - p) < 1e-12
    # BUG: rescale the clamped entries from the float constant to a double 1e-12.
    return np.where(clamped, grad * (float(np.float32(1e-12)) / 1e-12), grad).astype(grad.dtype)
