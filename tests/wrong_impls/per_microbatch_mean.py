"""reduction='mean' taken per micro-batch (huggingface/transformers#34191): each sample
of the leading axis (a sequence) is averaged over its own kept tokens, and those means
are averaged, so a sequence with one kept token weighs as much as a full one
(cross_entropy, linear_cross_entropy and their gradients, index targets with positions).
In float64 from xent_ref, one call per sample, rounded once.

Diagnosis: per-microbatch-mean
"""

import numpy as np

import xent_ref as xr
from tests.wrong_impls._common import rounded, widen


def _per_sample(fn, target_at, grad):
    def call(*args, **kwargs):
        target = np.asarray(args[target_at])
        if kwargs.get("reduction", "mean") != "mean" or target.dtype.kind != "i" \
                or target.ndim < 2 or len(target) < 2:
            return fn(*args, **kwargs)
        dtype, n = np.asarray(args[0]).dtype, len(target)
        args = [widen(a) for a in args]
        kwargs = {key: widen(value) for key, value in kwargs.items()}
        if grad:
            kwargs["grad_output"] = kwargs["grad_output"] / n
        sliced = [0, target_at]  # the samples' rows: the input (logits or h), the target
        parts = [fn(*[a[i:i + 1] if at in sliced else a for at, a in enumerate(args)],
                    **kwargs) for i in range(n)]
        if not grad:
            return rounded(sum(parts) / n, dtype)  # BUG: the mean of the samples' means
        if isinstance(parts[0], tuple):  # (dh rows, dW summed, db summed)
            return rounded((np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts),
                            None if parts[0][2] is None else sum(p[2] for p in parts)), dtype)
        return rounded(np.concatenate(parts), dtype)
    return call


cross_entropy = _per_sample(xr.cross_entropy, 1, False)
cross_entropy_grad = _per_sample(xr.cross_entropy_grad, 1, True)
linear_cross_entropy = _per_sample(xr.linear_cross_entropy, 2, False)
linear_cross_entropy_grad = _per_sample(xr.linear_cross_entropy_grad, 2, True)
