"""softmax and log_softmax without subtracting the maximum first: exp overflows to inf
for logits above ~89 (float32) or ~709 (float64), and inf / inf is nan.

Diagnosis: no-max-shift
"""

import numpy as np


def softmax(x, axis=-1):
    e = np.exp(np.asarray(x))  # BUG: no x - max(x)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x = np.asarray(x)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))  # BUG: same
