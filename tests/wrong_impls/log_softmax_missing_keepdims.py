"""log_softmax with the log-sum taken without keepdims=True: (N, C) - (N,) raises a
broadcast ValueError, or subtracts along the wrong axis.

Diagnosis: missing-keepdims
"""

import numpy as np


def log_softmax(x, axis=-1):
    x = np.asarray(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis))  # BUG: keepdims forgotten
