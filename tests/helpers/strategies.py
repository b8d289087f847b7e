"""hypothesis strategies for the class-axis losses, shared by the property and naive-twin tests.

An input is ``(C,)`` (one sample, 0-d target) or ``(N, C, d1, ..., dk)`` (targets
``(N, d1, ..., dk)``), up to 4-D, as PyTorch lays it out.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

REDUCTIONS = ["none", "mean", "sum"]


def class_axis(x) -> int:
    return 0 if np.ndim(x) == 1 else 1


def loss_shape(input_shape) -> tuple:
    """The shape of ``reduction="none"`` (and of class-index targets)."""
    return () if len(input_shape) == 1 else (input_shape[0],) + tuple(input_shape[2:])


@st.composite
def class_inputs(draw, elements, min_batch=0, max_batch=3):
    """float64 logits of shape ``(C,)`` or ``(N, C, d1, ..., dk)``, 1 to 4 dimensions."""
    ndim = draw(st.integers(1, 4))
    n_classes = draw(st.integers(1, 5))
    if ndim == 1:
        shape = (n_classes,)
    else:
        extra = tuple(draw(st.integers(1, 3)) for _ in range(ndim - 2))
        shape = (draw(st.integers(min_batch, max_batch)), n_classes) + extra
    return draw(hnp.arrays(np.float64, shape, elements=elements))


@st.composite
def index_targets(draw, x, ignore_index=None):
    """Class indices for the logits ``x``; with ``ignore_index``, some entries equal it."""
    entries = st.integers(0, x.shape[class_axis(x)] - 1)
    if ignore_index is not None:
        entries = st.one_of(entries, st.just(ignore_index))
    return draw(hnp.arrays(np.int64, loss_shape(x.shape), elements=entries))


def probability_targets(x):
    """Class probabilities shaped like ``x``, each in [0, 1] (PyTorch does not ask them to
    sum to 1, and neither do the formulas)."""
    return hnp.arrays(np.float64, x.shape, elements=st.floats(0, 1))


def class_weights(n_classes):
    """Positive per-class weights (a zero total weight is an edge case of its own)."""
    return hnp.arrays(np.float64, (n_classes,), elements=st.floats(0.1, 3.0))
