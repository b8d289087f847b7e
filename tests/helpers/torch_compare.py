"""Run one xent_ref function the way a PyTorch case describes it, and compare the answer.

Shared by ``test_torch_golden.py`` (stored PyTorch values) and ``test_torch_live.py``
(PyTorch run on the spot), so both hold xent_ref to the same calls and tolerances.
"""

from __future__ import annotations

import numpy as np

import xent_ref as xr

# float64: PyTorch and xent_ref both compute in float64; they differ by a few ulps from
# summation order, and where PyTorch rounds a tiny true value away xent_ref keeps it
# (logits [50, 0, 0]: PyTorch's loss 0, the true loss 3.86e-22; BCE with logits at x = -30:
# PyTorch is off by 1.2e-15). atol 1e-12 absorbs those absolute differences and nothing of
# size; rtol 1e-9 is the project's float64 contract.
# float32: PyTorch computes in float32 (ulp 1.2e-7 at 1). rtol 2e-4 is the project's float32
# contract. Entries that come out of a cancellation (softmax minus target, sigmoid(x) minus y
# with pos_weight) carry absolute, not relative, error: over every float32 fixture case,
# PyTorch's float32 answer needs at most atol 4.4e-7 on top of rtol 2e-4 to match PyTorch's own
# float64 answer on the same inputs (measured when the fixtures were made). atol 1e-6, about
# eight float32 ulps at 1, leaves room for xent_ref's own float32 rounding of the same size.
TOLERANCE = {
    "float64": {"rtol": 1e-9, "atol": 1e-12},
    "float32": {"rtol": 2e-4, "atol": 1e-6},
}

SOFTMAX_LIKE = ("softmax", "log_softmax")


def _argument_arrays(args, kwargs, grad_output):
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    arrays += [v for v in kwargs.values() if isinstance(v, np.ndarray)]
    return arrays + [grad_output]


def call_xent(function, args, kwargs, grad_output, want):
    """Call ``xent_ref.<function>`` (want="loss") or its ``_grad`` twin (want="grad").

    Softmax gradients take ``grad_output`` second, the losses take it as the last keyword.
    Asserts that no argument array was modified in place.
    """
    arrays = _argument_arrays(args, kwargs, grad_output)
    before = [(a.dtype, a.shape, a.tobytes()) for a in arrays]
    if want == "loss":
        result = getattr(xr, function)(*args, **kwargs)
    elif function in SOFTMAX_LIKE:
        result = getattr(xr, function + "_grad")(*args, grad_output, **kwargs)
    else:
        result = getattr(xr, function + "_grad")(*args, **kwargs, grad_output=grad_output)
    after = [(a.dtype, a.shape, a.tobytes()) for a in arrays]
    for i, (b, a) in enumerate(zip(before, after)):
        assert a == b, f"argument array #{i} was modified in place by {function} ({want})"
    return result


def assert_matches(got, expected, dtype, what):
    """Same type, dtype and shape as PyTorch's answer, values within TOLERANCE[dtype]."""
    assert isinstance(got, np.ndarray), f"{what}: expected a NumPy array, got {type(got).__name__}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, equal_nan=True, err_msg=what, **TOLERANCE[dtype])
