"""log_softmax along the last axis whatever `axis` says.

Diagnosis: class-axis-last
"""

import xent_ref as xr


def log_softmax(x, axis=-1):
    return xr.log_softmax(x)  # BUG: axis dropped
