"""A chunked linear cross-entropy kernel that accumulates dW and db across chunks of 4
tokens in the input's dtype (linkedin/Liger-Kernel#512, apple/ml-cross-entropy#14):
each chunk's share G_c^T h_c (G_c^T 1) is formed exactly and rounded to bfloat16/float16,
then added to the running sum, rounded again. dh and the loss are right (float64,
rounded once); float32 and float64 are left to xent_ref.

Diagnosis: dw-low-precision-accumulation
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import rounded, widen, without

CHUNK = 4  # tokens per chunk

linear_cross_entropy = xr.linear_cross_entropy


def linear_cross_entropy_grad(input, linear_weight, target, linear_bias=None,
                              grad_output=None, **kwargs):
    h, w = np.asarray(input), np.asarray(linear_weight)
    dtype = h.dtype
    if dtype.name not in ("float16", "bfloat16") or h.ndim != 2 or w.ndim != 2:
        return xr.linear_cross_entropy_grad(input, linear_weight, target,
                                            linear_bias=linear_bias, grad_output=grad_output,
                                            **kwargs)
    h64, w64 = widen(h), widen(w)
    logits = h64 @ w64.T + (0.0 if linear_bias is None else widen(linear_bias))
    options = {key: widen(value) for key, value in without(kwargs, "chunk_size").items()}
    g = xr.cross_entropy_grad(logits, target, grad_output=widen(grad_output), **options)
    dw, db = np.zeros(w.shape, dtype), np.zeros(w.shape[0], dtype)
    for start in range(0, len(h), CHUNK):
        c = slice(start, start + CHUNK)
        # BUG: the running sums in the dtype
        dw = rounded(widen(dw) + widen(rounded(g[c].T @ h64[c], dtype)), dtype)
        db = rounded(widen(db) + widen(rounded(g[c].sum(axis=0), dtype)), dtype)
    return rounded(g @ w64, dtype), dw, None if linear_bias is None else db
