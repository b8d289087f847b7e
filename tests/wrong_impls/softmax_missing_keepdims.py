"""softmax with the sum over the class axis taken without keepdims=True: (N, C) / (N,)
raises a broadcast ValueError, or divides along the wrong axis where N = C.

Diagnosis: missing-keepdims
"""

import numpy as np


def softmax(x, axis=-1):
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis)  # BUG: keepdims forgotten
