"""Properties every correct implementation has, checked by hypothesis on random problems.

Normalisation, shift invariance, gradient rows summing to 0, the identities linking
the losses to each other, the reduction arithmetic, dtypes, argument safety, list
inputs and the module classes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xent_ref as xr
from tests.helpers.strategies import (REDUCTIONS, class_axis, class_inputs, class_weights,
                                      index_targets, loss_shape, probability_targets)

fast = settings(max_examples=60, deadline=None)

EPS = np.finfo(np.float64).eps
LOGITS = st.floats(-30, 30, allow_nan=False, width=64)


@st.composite
def ce_options(draw, x):
    """A full cross-entropy call: ``(target, options)``, either target kind, every option."""
    n_classes = x.shape[class_axis(x)]
    options = dict(reduction=draw(st.sampled_from(REDUCTIONS)),
                   label_smoothing=draw(st.sampled_from([0.0, 0.1, 1.0])))
    if draw(st.booleans()):
        options["weight"] = draw(class_weights(n_classes))
    if draw(st.booleans()):
        return draw(probability_targets(x)), options
    options["ignore_index"] = draw(st.sampled_from([-100, n_classes - 1]))
    return draw(index_targets(x, options["ignore_index"])), options


def shift_per_row(x, shift):
    """``x`` plus ``shift[i]`` on every class of sample ``i`` (one constant per row)."""
    return x + np.expand_dims(shift, class_axis(x))


# ---------------------------------------------------------------------------------------------
# softmax
# ---------------------------------------------------------------------------------------------


@fast
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
                  elements=st.floats(-1e300, 1e300)), st.data())
def test_softmax_rows_sum_to_one(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    probs = xr.softmax(x, axis=axis)
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=axis), 1.0, rtol=0, atol=8 * EPS)
    # exp(log p) = p, to the rounding of log p: an absolute error of about eps |log p| in
    # log p is a relative error of the same size in exp(log p)
    log_probs = xr.log_softmax(x, axis=axis)
    np.testing.assert_array_less(np.abs(np.exp(log_probs) - probs),
                                 4 * EPS * (1 + np.abs(log_probs)) * probs + 1e-300)


# Shift invariance, exactly. Logits on a 1/64 grid in [-10, 10] plus an integer shift up
# to 1000 are sums float64 holds exactly, and so is x - max(x): after the max shift the
# computation sees bit-identical numbers, so the results must be bit-identical too.
GRID_LOGITS = st.integers(-640, 640).map(lambda k: k / 64)
SHIFTS = st.integers(-1000, 1000).map(float)


@fast
@given(class_inputs(GRID_LOGITS, min_batch=1, max_batch=4), st.data())
def test_shift_invariance_is_exact(x, data):
    shift = data.draw(hnp.arrays(np.float64, loss_shape(x.shape), elements=SHIFTS))
    shifted = shift_per_row(x, shift)
    axis = class_axis(x)
    np.testing.assert_array_equal(xr.softmax(shifted, axis=axis), xr.softmax(x, axis=axis))
    np.testing.assert_array_equal(xr.log_softmax(shifted, axis=axis), xr.log_softmax(x, axis=axis))
    target, options = data.draw(ce_options(x))
    np.testing.assert_array_equal(xr.cross_entropy(shifted, target, **options),
                                  xr.cross_entropy(x, target, **options))
    np.testing.assert_array_equal(xr.cross_entropy_grad(shifted, target, **options),
                                  xr.cross_entropy_grad(x, target, **options))


@fast
@given(class_inputs(LOGITS, min_batch=1, max_batch=4), st.data())
def test_shift_invariance_any_shift(x, data):
    """An arbitrary real shift rounds ``x + c``, so equality holds only up to that rounding:
    at most ``eps |x + c|`` in each shifted logit, twice that in a difference ``x_c - x_j``."""
    shift = data.draw(hnp.arrays(np.float64, loss_shape(x.shape), elements=st.floats(-100, 100)))
    shifted = shift_per_row(x, shift)
    axis = class_axis(x)
    rounding = 2 * EPS * np.max(np.abs(shifted))
    np.testing.assert_allclose(xr.softmax(shifted, axis=axis), xr.softmax(x, axis=axis),
                               rtol=rounding + 1e-14, atol=1e-300)
    np.testing.assert_allclose(xr.log_softmax(shifted, axis=axis), xr.log_softmax(x, axis=axis),
                               rtol=1e-14, atol=2 * rounding)
    target, options = data.draw(ce_options(x))
    # each sample's loss moves by at most 2 * rounding times its target mass
    # A = sum_c q_c <= max(w) * (C for probability targets, else 1)
    n_classes = x.shape[axis]
    max_mass = np.max(options.get("weight", 1.0)) * (n_classes if target.shape == x.shape else 1)
    n_samples = int(np.prod(loss_shape(x.shape)))
    np.testing.assert_allclose(xr.cross_entropy(shifted, target, **options),
                               xr.cross_entropy(x, target, **options),
                               rtol=1e-13, atol=2 * rounding * max_mass * n_samples)


# ---------------------------------------------------------------------------------------------
# gradients of the cross-entropy: rows sum to 0
# ---------------------------------------------------------------------------------------------


def target_mass_times_scale(x, target, weight=None, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0):
    """``|s_i| A_i`` per sample: the size of the terms of ``s (A p - q)``, which bounds the
    rounding error of a gradient row."""
    axis = class_axis(x)
    n_classes = x.shape[axis]
    w = np.ones(n_classes) if weight is None else np.asarray(weight)
    eps = label_smoothing
    if target.shape == x.shape:
        w_c = np.expand_dims(w, tuple(range(1, x.ndim - axis)))  # along the class axis
        mass = np.sum(w_c * ((1 - eps) * target + eps / n_classes), axis=axis)
        denominator = mass.size
    else:
        kept = target != ignore_index
        w_t = np.where(kept, w[np.where(kept, target, 0)], 0.0)
        mass = (1 - eps) * w_t + np.where(kept, eps / n_classes * w.sum(), 0.0)
        denominator = w_t.sum()
    # (nothing kept: the gradient is all zeros, and so is the mass)
    return mass / denominator if reduction == "mean" and denominator else mass


@fast
@given(class_inputs(LOGITS, max_batch=4), st.data())
def test_cross_entropy_grad_rows_sum_to_zero(x, data):
    """Each sample's gradient row is ``s (A p - q)`` with ``A = sum_c q_c``, so it sums to
    ``s (A - A) = 0`` whatever ``q`` is: with or without weights, smoothing, either target
    kind (even probability targets that do not sum to 1), any reduction. It is the
    derivative of shift invariance: ``loss(x + t) = loss(x)`` for a constant ``t``."""
    target, options = data.draw(ce_options(x))
    row_sums = xr.cross_entropy_grad(x, target, **options).sum(axis=class_axis(x))
    size = target_mass_times_scale(x, target, **options)
    np.testing.assert_array_less(np.abs(row_sums), 16 * EPS * size + 1e-300)


# ---------------------------------------------------------------------------------------------
# identities between the losses
# ---------------------------------------------------------------------------------------------


@fast
@given(class_inputs(LOGITS, max_batch=4), st.data())
def test_cross_entropy_is_nll_of_log_softmax(x, data):
    n_classes = x.shape[class_axis(x)]
    ignore_index = data.draw(st.sampled_from([-100, 0]))
    target = data.draw(index_targets(x, ignore_index))
    options = dict(ignore_index=ignore_index, reduction=data.draw(st.sampled_from(REDUCTIONS)))
    if data.draw(st.booleans()):
        options["weight"] = data.draw(class_weights(n_classes))
    log_probs = xr.log_softmax(x, axis=class_axis(x))
    np.testing.assert_allclose(xr.cross_entropy(x, target, **options),
                               xr.nll_loss(log_probs, target, **options),
                               rtol=1e-13, atol=1e-300, equal_nan=True)


@fast
@given(class_inputs(LOGITS, max_batch=4), st.data())
def test_one_hot_probabilities_equal_class_indices(x, data):
    """One-hot probability targets give the index-target loss and gradient, smoothing
    included (``(1 - eps) one_hot + eps / C`` is the index target's smoothed mass). With
    weights only ``none`` and ``sum`` agree: ``mean`` then divides by the summed target
    weights for indices but by the sample count for probabilities."""
    n_classes = x.shape[class_axis(x)]
    target = data.draw(index_targets(x))
    one_hot = np.moveaxis(np.eye(n_classes)[target], -1, class_axis(x))
    weighted = data.draw(st.booleans())
    options = dict(
        reduction=data.draw(st.sampled_from(["none", "sum"] if weighted else REDUCTIONS)),
        label_smoothing=data.draw(st.sampled_from([0.0, 0.25, 1.0])),
        weight=data.draw(class_weights(n_classes)) if weighted else None,
    )
    for func in (xr.cross_entropy, xr.cross_entropy_grad):
        np.testing.assert_allclose(func(x, one_hot, **options), func(x, target, **options),
                                   rtol=1e-13, atol=1e-15, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------


def assert_reductions(loss, denominator, *args, **options):
    """``sum == none.sum()`` and ``mean == none.sum() / denominator``."""
    per_sample = loss(*args, reduction="none", **options)
    total = loss(*args, reduction="sum", **options)
    mean = loss(*args, reduction="mean", **options)
    assert total.shape == mean.shape == ()
    np.testing.assert_allclose(total, per_sample.sum(), rtol=1e-13, atol=1e-300)
    with np.errstate(invalid="ignore"):  # 0 / 0 for an empty or all-ignored batch
        expected_mean = per_sample.sum() / denominator
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-13, atol=1e-300, equal_nan=True)


@fast
@given(class_inputs(LOGITS, max_batch=4), st.data())
def test_class_index_reductions(x, data):
    """Class indices: ``mean`` is the weighted mean, ``sum_i w_t l_i / sum_i w_t`` over kept
    targets (``none`` already holds ``w_t l_i``)."""
    n_classes = x.shape[class_axis(x)]
    ignore_index = data.draw(st.sampled_from([-100, 0]))
    target = data.draw(index_targets(x, ignore_index))
    weight = data.draw(class_weights(n_classes)) if data.draw(st.booleans()) else None
    kept = target[target != ignore_index]
    denominator = (np.ones(n_classes) if weight is None else weight)[kept].sum()
    eps = data.draw(st.sampled_from([0.0, 0.2]))
    assert_reductions(xr.cross_entropy, denominator, x, target, weight=weight,
                      ignore_index=ignore_index, label_smoothing=eps)
    assert_reductions(xr.nll_loss, denominator, x, target, weight=weight,
                      ignore_index=ignore_index)


@fast
@given(class_inputs(LOGITS, max_batch=4), st.data())
def test_probability_reductions(x, data):
    """Probability targets: ``mean`` divides by the number of samples, not by weights."""
    target = data.draw(probability_targets(x))
    weight = data.draw(class_weights(x.shape[class_axis(x)])) if data.draw(st.booleans()) else None
    n_samples = x.size // x.shape[class_axis(x)]
    assert_reductions(xr.cross_entropy, n_samples, x, target, weight=weight)


@fast
@given(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4), st.data())
def test_binary_reductions(shape, data):
    """Both binary losses: ``mean`` divides by the number of elements, whatever the weights."""
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    y = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    weight = data.draw(hnp.arrays(np.float64, shape[-1:], elements=st.floats(0.1, 3.0)))
    assert_reductions(xr.binary_cross_entropy, p.size, p, y, weight=weight)
    assert_reductions(xr.binary_cross_entropy_with_logits, p.size, 10 * p - 5, y, weight=weight,
                      pos_weight=weight)


# ---------------------------------------------------------------------------------------------
# every function: dtypes, argument safety, list inputs, the module classes
# ---------------------------------------------------------------------------------------------


def every_call(rng, dtype=np.float64):
    """``(name, function, args, kwargs)`` covering every public function, with every array
    argument given (weight, pos_weight, targets, grad_output) in ``dtype``."""
    x = rng.normal(size=(3, 4, 2)).astype(dtype)
    g_full = rng.normal(size=(3, 4, 2)).astype(dtype)
    t = np.array([[0, 1], [3, -100], [2, 2]])
    probs = rng.dirichlet(np.ones(4), size=(3, 2)).transpose(0, 2, 1).astype(dtype)
    w = rng.uniform(0.5, 2.0, size=4).astype(dtype)
    g_loss = rng.normal(size=(3, 2)).astype(dtype)
    p = rng.uniform(0.1, 0.9, size=(3, 4)).astype(dtype)
    y = rng.uniform(0.0, 1.0, size=(3, 4)).astype(dtype)
    g_elem = rng.normal(size=(3, 4)).astype(dtype)
    ce = dict(weight=w, label_smoothing=0.1)
    return [
        ("softmax", xr.softmax, (x,), dict(axis=1)),
        ("softmax_grad", xr.softmax_grad, (x, g_full), dict(axis=1)),
        ("log_softmax", xr.log_softmax, (x,), dict(axis=1)),
        ("log_softmax_grad", xr.log_softmax_grad, (x, g_full), dict(axis=1)),
        ("cross_entropy[index]", xr.cross_entropy, (x, t), ce),
        ("cross_entropy[probs]", xr.cross_entropy, (x, probs), dict(ce, reduction="none")),
        ("cross_entropy_grad[index]", xr.cross_entropy_grad, (x, t),
         dict(ce, reduction="none", grad_output=g_loss)),
        ("cross_entropy_grad[probs]", xr.cross_entropy_grad, (x, probs),
         dict(ce, grad_output=np.asarray(2.0, dtype))),
        ("nll_loss", xr.nll_loss, (x, t), dict(weight=w, reduction="sum")),
        ("nll_loss_grad", xr.nll_loss_grad, (x, t),
         dict(weight=w, reduction="none", grad_output=g_loss)),
        ("binary_cross_entropy", xr.binary_cross_entropy, (p, y), dict(weight=w)),
        ("binary_cross_entropy_grad", xr.binary_cross_entropy_grad, (p, y),
         dict(weight=w, reduction="none", grad_output=g_elem)),
        ("binary_cross_entropy_with_logits", xr.binary_cross_entropy_with_logits, (g_elem, y),
         dict(weight=w, pos_weight=w[::-1].copy())),
        ("binary_cross_entropy_with_logits_grad", xr.binary_cross_entropy_with_logits_grad,
         (g_elem, y), dict(weight=w, pos_weight=w[::-1].copy(), reduction="none",
                           grad_output=g_elem)),
    ]


CALL_NAMES = [name for name, *_ in every_call(np.random.default_rng(0))]


def call_named(name, dtype=np.float64):
    calls = {c[0]: c[1:] for c in every_call(np.random.default_rng(7), dtype)}
    return calls[name]


@pytest.mark.parametrize("name", CALL_NAMES)
def test_float32_in_float32_out(name):
    func, args, kwargs = call_named(name, np.float32)
    out = func(*args, **kwargs)
    assert out.dtype == np.float32
    # and float32 input with float64 weights/targets/grad_output still gives float32
    args64 = tuple(a.astype(np.float64) if i and a.dtype.kind == "f" else a
                   for i, a in enumerate(args))
    kwargs64 = {k: np.asarray(v, np.float64) if isinstance(v, np.ndarray) else v
                for k, v in kwargs.items()}
    assert func(*args64, **kwargs64).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CALL_NAMES)
def test_arguments_are_not_modified(name, dtype):
    func, args, kwargs = call_named(name, dtype)
    arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    out = func(*args, **kwargs)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    # the result is a new array: writing into it cannot reach an argument
    assert not any(np.shares_memory(out, a) for a in arrays)


@pytest.mark.parametrize("name", CALL_NAMES)
def test_lists_work_and_give_float64(name):
    func, args, kwargs = call_named(name)
    out = func(*args, **kwargs)
    as_lists = tuple(a.tolist() for a in args)
    kwargs_lists = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    from_lists = func(*as_lists, **kwargs_lists)
    assert isinstance(from_lists, np.ndarray) and from_lists.dtype == np.float64
    np.testing.assert_array_equal(from_lists, out)


def test_integer_input_gives_float64():
    assert xr.softmax([1, 2, 3]).dtype == np.float64
    assert xr.cross_entropy(np.array([[1, 2, 3]]), [2]).dtype == np.float64
    assert xr.binary_cross_entropy_with_logits(np.array([1, -2]), np.array([1, 0])).dtype \
        == np.float64


MODULES = [
    (xr.CrossEntropyLoss, xr.cross_entropy, xr.cross_entropy_grad,
     dict(weight=[1.0, 2.0, 0.5], ignore_index=1, reduction="sum", label_smoothing=0.2)),
    (xr.NLLLoss, xr.nll_loss, xr.nll_loss_grad,
     dict(weight=[1.0, 2.0, 0.5], ignore_index=1, reduction="mean")),
    (xr.BCELoss, xr.binary_cross_entropy, xr.binary_cross_entropy_grad,
     dict(weight=[1.0, 2.0, 0.5], reduction="none")),
    (xr.BCEWithLogitsLoss, xr.binary_cross_entropy_with_logits,
     xr.binary_cross_entropy_with_logits_grad,
     dict(weight=[1.0, 2.0, 0.5], pos_weight=[3.0, 1.0, 0.5], reduction="mean")),
]


@pytest.mark.parametrize(("cls", "func", "grad", "options"), MODULES,
                         ids=[m[0].__name__ for m in MODULES])
@pytest.mark.parametrize("defaults", [True, False], ids=["defaults", "options"])
def test_module_classes_equal_functions(cls, func, grad, options, defaults):
    options = {} if defaults else options
    rng = np.random.default_rng(3)
    if cls in (xr.BCELoss,):
        x, target = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3))
    elif cls is xr.BCEWithLogitsLoss:
        x, target = rng.normal(size=(4, 3)), rng.uniform(0, 1, (4, 3))
    else:
        x, target = rng.normal(size=(4, 3)), np.array([0, 1, 2, 1])
    module = cls(**options)
    np.testing.assert_array_equal(module(x, target), func(x, target, **options))
    np.testing.assert_array_equal(module.grad(x, target), grad(x, target, **options))
    g = np.full(np.shape(func(x, target, **options)), 0.5)
    np.testing.assert_array_equal(module.grad(x, target, grad_output=g),
                                  grad(x, target, **options, grad_output=g))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (0, 3), (300, 1000)])
def test_fused_functions_equal_the_separate_calls_bit_for_bit(shape, reduction):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * 20
    loss_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    g = rng.standard_normal(loss_shape) if reduction == "none" else 0.7
    t = rng.integers(0, shape[1 if len(shape) > 1 else 0], loss_shape)
    kw = dict(weight=rng.random(shape[1 if len(shape) > 1 else 0]), reduction=reduction,
              label_smoothing=0.1)
    loss, grad = xr.cross_entropy_with_grad(x, t, **kw, grad_output=g)
    np.testing.assert_array_equal(loss, xr.cross_entropy(x, t, **kw))
    np.testing.assert_array_equal(grad, xr.cross_entropy_grad(x, t, **kw, grad_output=g))
    y = rng.random(shape)
    g = rng.standard_normal(shape) if reduction == "none" else 0.7
    kw = dict(weight=rng.random(shape[-1:]), pos_weight=3 * rng.random(shape[-1:]),
              reduction=reduction)
    loss, grad = xr.binary_cross_entropy_with_logits_with_grad(x, y, **kw, grad_output=g)
    np.testing.assert_array_equal(loss, xr.binary_cross_entropy_with_logits(x, y, **kw))
    np.testing.assert_array_equal(
        grad, xr.binary_cross_entropy_with_logits_grad(x, y, **kw, grad_output=g))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_picks_read_and_write_the_entries_along_axis_picks(data):
    # Picks lays any view flat (sliced, strided, transposed); a reversed one is indexed
    # the slow way: either way the same entries as take_along_axis / put_along_axis.
    from xent_ref._engine.blocks import Picks
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    base = np.arange(float(np.prod([2 * n for n in shape]))).reshape([2 * n for n in shape])
    view = base[tuple(data.draw(st.sampled_from([slice(None, n), slice(1, None, 2),
                                                 slice(None, None, -2)])) for n in shape)]
    view = view.transpose(data.draw(st.permutations(range(view.ndim))))
    axis = data.draw(st.integers(0, view.ndim - 1))
    index_shape = tuple(1 if d == axis else n for d, n in enumerate(view.shape))
    index = data.draw(hnp.arrays(np.intp, index_shape,
                                 elements=st.integers(0, view.shape[axis] - 1)))
    picks = Picks(view, axis)
    np.testing.assert_array_equal(picks.view[picks.at(index)],
                                  np.take_along_axis(view, index, axis))
    expected = view.copy()
    np.put_along_axis(expected, index, -1.0, axis)
    picks.view[picks.at(index)] = -1.0
    np.testing.assert_array_equal(view, expected)


def test_reversed_and_transposed_logits_give_the_contiguous_answer():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 9, 4))
    t = rng.integers(0, 9, (6, 4))
    expected = xr.cross_entropy_with_grad(x.copy(), t, reduction="none")
    for view in (x[:, ::-1][:, ::-1], np.asfortranarray(x)):
        loss, grad = xr.cross_entropy_with_grad(view, t, reduction="none")
        np.testing.assert_array_equal(loss, expected[0])
        np.testing.assert_array_equal(grad, expected[1])
    flipped = x[:, ::-1]  # negative strides: the slow index, the same numbers
    loss, grad = xr.cross_entropy_with_grad(flipped, t[:, :], reduction="none")
    np.testing.assert_array_equal(loss, xr.cross_entropy(flipped.copy(), t, reduction="none"))
    np.testing.assert_array_equal(grad, xr.cross_entropy_grad(flipped.copy(), t,
                                                              reduction="none"))
