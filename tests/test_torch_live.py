"""xent_ref against PyTorch run on the spot, on random cases (skipped when torch is absent).

The cases come from the fixture generator's own drawing functions
(``scripts/make_torch_fixtures.py``) with options and seeds chosen by hypothesis, so this
reaches inputs the stored fixtures do not hold. Run it where torch is installed, e.g.::

    PYTHONPATH=. python -m pytest tests/test_torch_live.py -p no:cacheprovider -o addopts=""   (a Python with torch)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402  (only once torch is known to exist)
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from torch_compare import assert_matches, call_xent  # noqa: E402

pytestmark = pytest.mark.torch


def _load_generator():
    path = Path(__file__).parents[1] / "scripts" / "make_torch_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_torch_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

LIVE = settings(max_examples=25, deadline=None)
rngs = st.integers(0, 2**32 - 1).map(np.random.default_rng)
dtypes = st.sampled_from(gen.DTYPES)
shape_kinds = st.sampled_from(gen.SHAPE_KINDS)
reductions = st.sampled_from(gen.REDUCTIONS)
ignore_modes = st.sampled_from(("default", "class", "neg1"))
smoothings = st.sampled_from(gen.LABEL_SMOOTHINGS) | st.floats(0.0, 1.0)
weight_modes = st.sampled_from(("now", "wfull", "wbcast"))


def check_against_torch(case):
    """Loss and gradient of one drawn case, xent_ref vs torch computed now."""
    case_id, function, args, kwargs, grad_output = case
    loss, grad = gen.torch_expected(function, args, kwargs, grad_output)
    dtype = args[0].dtype.name
    got_loss = call_xent(function, args, kwargs, grad_output, "loss")
    assert_matches(got_loss, loss, dtype, f"{case_id}: loss")
    got_grad = call_xent(function, args, kwargs, grad_output, "grad")
    assert_matches(got_grad, grad, dtype, f"{case_id}: grad")


@LIVE
@given(
    function=st.sampled_from(("softmax", "log_softmax")),
    dtype=dtypes,
    data=st.data(),
)
def test_softmax_family_live(function, dtype, data):
    x = data.draw(
        hnp.arrays(
            dtype,
            hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
            elements=st.floats(-1e4, 1e4, width=np.dtype(dtype).itemsize * 8),
        )
    )
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    grad_output = data.draw(
        hnp.arrays(dtype, x.shape, elements=st.floats(-3.0, 3.0, width=np.dtype(dtype).itemsize * 8))
    )
    check_against_torch((f"{function}-live", function, [x], {"axis": axis}, grad_output))


@LIVE
@given(rngs, shape_kinds, reductions, st.booleans(), ignore_modes, smoothings, dtypes)
def test_cross_entropy_index_targets_live(rng, kind, reduction, weighted, ignore_mode, ls, dtype):
    check_against_torch(
        gen.draw_cross_entropy_index(rng, kind, reduction, weighted, ignore_mode, ls, dtype)
    )


@LIVE
@given(
    rngs,
    shape_kinds,
    reductions,
    st.booleans(),
    smoothings,
    st.sampled_from(gen.PROBABILITY_TARGET_KINDS),
    st.sampled_from((-100, -1)),
    dtypes,
)
def test_cross_entropy_probability_targets_live(rng, kind, reduction, weighted, ls, target_kind, ii, dtype):
    check_against_torch(
        gen.draw_cross_entropy_probability(rng, kind, reduction, weighted, ls, target_kind, ii, dtype)
    )


@LIVE
@given(rngs, shape_kinds, reductions, st.booleans(), ignore_modes, dtypes)
def test_nll_loss_live(rng, kind, reduction, weighted, ignore_mode, dtype):
    check_against_torch(gen.draw_nll(rng, kind, reduction, weighted, ignore_mode, dtype))


@LIVE
@given(rngs, shape_kinds, reductions, weight_modes, st.sampled_from(("hard", "soft", "clamp")), dtypes)
def test_binary_cross_entropy_live(rng, kind, reduction, weight_mode, target_kind, dtype):
    check_against_torch(gen.draw_bce(rng, kind, reduction, weight_mode, target_kind, dtype))


@LIVE
@given(
    rngs,
    shape_kinds,
    reductions,
    weight_modes,
    st.booleans(),
    st.sampled_from(("normal", "large")),
    st.sampled_from(("hard", "mixed")),
    dtypes,
)
def test_binary_cross_entropy_with_logits_live(rng, kind, reduction, weight_mode, pw, logits, targets, dtype):
    check_against_torch(
        gen.draw_bce_logits(rng, kind, reduction, weight_mode, pw, logits, targets, dtype)
    )
