"""float16 and bfloat16: every public function computes in float64 and rounds its result
once to the input's dtype -- the nearest value that dtype can hold to the exact answer.

The reference for a low-precision call is the same function called on float64 copies
of its arguments (the companions -- weights, probability targets, ``grad_output`` --
first rounded to the input's dtype, as PyTorch requires them in it), rounded once.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers.peak import peak_bytes

import xent_ref as xr
from tests.helpers.strategies import (class_inputs, class_weights, index_targets,
                                      probability_targets)
from xent_ref._engine.lowprec import round_once

ml_dtypes = pytest.importorskip("ml_dtypes")

F16 = np.dtype(np.float16)
BF16 = np.dtype(ml_dtypes.bfloat16)
LOW = [pytest.param(F16, id="float16"), pytest.param(BF16, id="bfloat16")]


def _cases():
    """``(id, function, kwargs)`` with float64 arrays; every public function, several options."""
    rng = np.random.default_rng(10)
    x = rng.normal(0, 3, (6, 5))
    x3 = rng.normal(0, 3, (3, 4, 2, 3))
    t = np.array([0, 4, 2, -100, 1, 3])
    t3 = rng.integers(0, 4, (3, 2, 3))
    w = rng.uniform(0.2, 2.0, 5)
    y = rng.dirichlet(np.ones(5), 6)
    p = rng.uniform(0.01, 0.99, (6, 5))
    b = (rng.uniform(size=(6, 5)) < 0.5).astype(np.float64)
    g6 = rng.normal(size=6)
    g65 = rng.normal(size=(6, 5))
    yield "softmax", xr.softmax, dict(x=x)
    yield "softmax-axis0", xr.softmax, dict(x=x, axis=0)
    yield "log_softmax", xr.log_softmax, dict(x=x)
    yield "softmax_grad", xr.softmax_grad, dict(x=x, grad_output=g65)
    yield "log_softmax_grad", xr.log_softmax_grad, dict(x=x, grad_output=g65)
    for reduction in ("mean", "sum", "none"):
        g = g6 if reduction == "none" else 0.7
        ce = dict(input=x, target=t, weight=w, reduction=reduction, label_smoothing=0.1)
        yield f"cross_entropy-{reduction}", xr.cross_entropy, ce
        yield f"cross_entropy_grad-{reduction}", xr.cross_entropy_grad, dict(ce, grad_output=g)
        yield (f"cross_entropy_with_grad-{reduction}", xr.cross_entropy_with_grad,
               dict(ce, grad_output=g))
        probs = dict(input=x, target=y, weight=w, reduction=reduction)
        yield f"cross_entropy-probs-{reduction}", xr.cross_entropy, probs
        yield (f"cross_entropy_grad-probs-{reduction}", xr.cross_entropy_grad,
               dict(probs, grad_output=g))
        nll = dict(input=xr.log_softmax(x), target=t, weight=w, reduction=reduction)
        yield f"nll_loss-{reduction}", xr.nll_loss, nll
        yield f"nll_loss_grad-{reduction}", xr.nll_loss_grad, dict(nll, grad_output=g)
        g = g65 if reduction == "none" else 0.7
        bce = dict(input=p, target=b, weight=w, reduction=reduction)
        yield f"bce-{reduction}", xr.binary_cross_entropy, bce
        yield f"bce_grad-{reduction}", xr.binary_cross_entropy_grad, dict(bce, grad_output=g)
        logits = dict(input=x, target=p, weight=w[:1], pos_weight=w, reduction=reduction)
        yield f"bce_logits-{reduction}", xr.binary_cross_entropy_with_logits, logits
        yield (f"bce_logits_grad-{reduction}", xr.binary_cross_entropy_with_logits_grad,
               dict(logits, grad_output=g))
        yield (f"bce_logits_with_grad-{reduction}", xr.binary_cross_entropy_with_logits_with_grad,
               dict(logits, grad_output=g))
    # certain predictions: the -100 clamp of the loss, the 1e-12 floor of the gradient's
    # denominator (computed in float64: p = 0 gives -1e12, rounded to -inf in float16)
    edges = dict(input=np.array([0.0, 1.0, 1e-7, 0.5, 1 - 2**-11, 6e-8]),
                 target=np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0]), reduction="none")
    yield "bce-edges", xr.binary_cross_entropy, edges
    yield "bce_grad-edges", xr.binary_cross_entropy_grad, edges
    yield "bce_grad-edges-mean", xr.binary_cross_entropy_grad, dict(edges, reduction="mean")
    yield "cross_entropy-4d", xr.cross_entropy, dict(input=x3, target=t3)
    # the LLM options and linear_cross_entropy (their PyTorch twins are compositions: the
    # torch test below covers the plain functions)
    options = dict(logit_scale=0.5, softcap=4.0, z_loss=1e-3, label_smoothing=0.1)
    yield "llm-cross_entropy_with_grad", xr.cross_entropy_with_grad, dict(options, input=x,
                                                                           target=t, weight=w)
    h, lin = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    linear = dict(options, input=h, linear_weight=lin, target=t, linear_bias=rng.normal(size=5),
                  weight=w, grad_output=0.7)
    yield "llm-linear_cross_entropy_with_grad", xr.linear_cross_entropy_with_grad, linear
    yield "llm-linear_cross_entropy_grad-none", xr.linear_cross_entropy_grad, dict(
        linear, reduction="none", grad_output=g6, chunk_size=2)
    yield "cross_entropy_grad-4d", xr.cross_entropy_grad, dict(input=x3, target=t3)


CASES = list(_cases())
CASE_PARAMS = [pytest.param(function, kwargs, id=name) for name, function, kwargs in CASES]
TORCH_PARAMS = [pytest.param(function, kwargs, id=name) for name, function, kwargs in CASES
                if not name.startswith("llm-")]


def _in_dtype(kwargs: dict, dtype) -> dict:
    """Every floating array of ``kwargs`` (and a scalar ``grad_output``) in ``dtype``."""
    return {k: (round_once(v, dtype) if (isinstance(v, np.ndarray) and v.dtype == np.float64)
                or (k == "grad_output" and isinstance(v, float)) else v)
            for k, v in kwargs.items()}


def _widened(kwargs: dict) -> dict:
    return {k: (np.asarray(v).astype(np.float64)
                if isinstance(v, np.ndarray) and v.dtype in (F16, BF16) else v)
            for k, v in kwargs.items()}


def _as_tuple(result):
    """A result flattened to a tuple of arrays (``linear_cross_entropy_with_grad`` nests)."""
    if not isinstance(result, tuple):
        return (result,)
    return tuple(a for item in result for a in _as_tuple(item))


def _bits(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).view(np.uint16)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("function, kwargs", CASE_PARAMS)
def test_result_is_the_float64_answer_rounded_once(function, kwargs, dtype):
    low = _in_dtype(kwargs, dtype)
    got = _as_tuple(function(**low))
    exact = _as_tuple(function(**_widened(low)))
    assert len(got) == len(exact)
    for g, e in zip(got, exact):
        assert g.dtype == dtype and e.dtype == np.float64
        assert g.shape == e.shape
        np.testing.assert_array_equal(_bits(g), _bits(round_once(e, dtype)))


@pytest.mark.parametrize("dtype", LOW)
def test_companions_are_rounded_to_the_input_dtype_first(dtype):
    """float64 weights, probability targets and grad_output given with a low-precision input
    are used as the input's dtype holds them (PyTorch requires them in it)."""
    name, function, kwargs = next(c for c in CASES if c[0] == "cross_entropy_grad-probs-none")
    in_dtype = _in_dtype(kwargs, dtype)
    mixed = dict(in_dtype, weight=kwargs["weight"], target=kwargs["target"],
                 grad_output=kwargs["grad_output"])
    np.testing.assert_array_equal(_bits(function(**mixed)), _bits(function(**in_dtype)))


def test_class_indices_are_not_rounded():
    """Integer targets are class indices, exact: index 2049 is not float16's 2048."""
    logits = np.zeros((1, 2050), np.float16)
    logits[0, 2049] = 1
    loss = xr.cross_entropy(logits, [2049])
    assert loss == round_once(xr.cross_entropy(logits.astype(np.float64), [2049]), F16)
    assert loss < xr.cross_entropy(logits, [2048])


@pytest.mark.parametrize("dtype", LOW)
def test_modules_follow_the_functions(dtype):
    logits = round_once(np.random.default_rng(1).normal(size=(4, 3)), dtype)
    loss = xr.CrossEntropyLoss(label_smoothing=0.2)
    assert loss(logits, [0, 1, 2, 1]).dtype == dtype
    np.testing.assert_array_equal(_bits(loss.grad(logits, [0, 1, 2, 1])),
                                  _bits(xr.cross_entropy_grad(logits, [0, 1, 2, 1],
                                                              label_smoothing=0.2)))
    target = round_once(np.full((4, 3), 0.25), dtype)
    bce = xr.BCEWithLogitsLoss(pos_weight=2.0)
    assert bce(logits, target).dtype == dtype and bce.grad(logits, target).dtype == dtype


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([F16, BF16]),
       reduction=st.sampled_from(["none", "mean", "sum"]), probabilities=st.booleans())
def test_property_cross_entropy_is_rounded_once(data, dtype, reduction, probabilities):
    """Any shape, targets, weights and smoothing: loss and gradient are the float64
    answer on the same (low-precision) arguments, rounded once."""
    x = round_once(data.draw(class_inputs(st.floats(-30, 30), min_batch=1)), dtype)
    target = data.draw(probability_targets(x) if probabilities else index_targets(x, -100))
    kwargs = dict(weight=data.draw(class_weights(x.shape[1 if x.ndim > 1 else 0])),
                  reduction=reduction, label_smoothing=data.draw(st.sampled_from([0.0, 0.2])))
    low = _in_dtype(dict(kwargs, input=x, target=target), dtype)
    got = xr.cross_entropy_with_grad(**low)
    exact = xr.cross_entropy_with_grad(**_widened(low))
    for g, e in zip(got, exact):
        np.testing.assert_array_equal(_bits(g), _bits(round_once(e, dtype)))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([F16, BF16]))
def test_property_bce_with_logits_is_rounded_once(data, dtype):
    x = round_once(data.draw(class_inputs(st.floats(-30, 30))), dtype)
    y = data.draw(probability_targets(x))
    low = _in_dtype(dict(input=x, target=y, pos_weight=np.float64(2.5)), dtype)
    got = xr.binary_cross_entropy_with_logits_with_grad(**low)
    exact = xr.binary_cross_entropy_with_logits_with_grad(**_widened(low))
    for g, e in zip(got, exact):
        np.testing.assert_array_equal(_bits(g), _bits(round_once(e, dtype)))


EXPLAINED = ["cross_entropy", "nll_loss", "binary_cross_entropy",
             "binary_cross_entropy_with_logits"]


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", EXPLAINED)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_explain_takes_low_precision(name, reduction, dtype):
    """explain adds up the rounded per-sample losses; its check allows for the dtype's
    rounding (bfloat16's eps, which np.finfo does not know, comes from ml_dtypes)."""
    kwargs = next(c[2] for c in CASES if c[0] == {
        "cross_entropy": "cross_entropy-mean", "nll_loss": "nll_loss-mean",
        "binary_cross_entropy": "bce-mean", "binary_cross_entropy_with_logits":
        "bce_logits-mean"}[name])
    low = _in_dtype(dict(kwargs, reduction=reduction), dtype)
    ex = xr.explain(name, low.pop("input"), low.pop("target"), **low)
    assert ex.result.dtype == dtype and ex.result == getattr(xr, name)(
        *(_in_dtype(kwargs, dtype)[k] for k in ("input", "target")),
        **{k: v for k, v in low.items()})


# --- sums and counts that once overflowed float16 ------------------------------------------


def test_bce_with_logits_of_many_zeros_is_log_2():
    """Was 0.0: the float16 sum of 65536 losses of log 2 overflowed (PyTorch gives 0.6934)."""
    zeros = np.zeros((256, 256), np.float16)
    loss = xr.binary_cross_entropy_with_logits(zeros, zeros)
    assert loss.dtype == np.float16 and loss == np.float16(math.log(2))


def test_bce_with_logits_gradient_of_many_zeros_is_not_zero():
    """Was all zeros: the mean's denominator 65536 is inf in float16."""
    zeros = np.zeros((256, 256), np.float16)
    grad = xr.binary_cross_entropy_with_logits_grad(zeros, zeros)
    assert grad.dtype == np.float16
    assert (grad == np.float16(0.5 / 65536)).all() and grad[0, 0] > 0


def test_a_batch_of_eights_is_finite():
    """Was inf: 64000 losses of softplus(8) add up to more than float16's 65504."""
    eights = np.full((16000, 4), 8, np.float16)
    loss = xr.binary_cross_entropy_with_logits(eights, np.zeros_like(eights))
    assert loss == np.float16(8 + math.log1p(math.exp(-8)))
    assert xr.cross_entropy(eights, np.zeros(16000, np.int64)) == np.float16(math.log(4))


def test_probability_target_gradient_at_70000_rows():
    """Was zero: the denominator N = 70000 is inf in float16."""
    n = 70000
    logits = np.zeros((n, 2), np.float16)
    target = np.zeros((n, 2), np.float16)
    target[:, 0] = 1
    grad = xr.cross_entropy_grad(logits, target)
    assert (grad[:, 0] == np.float16(-0.5 / n)).all() and (grad[:, 1] == np.float16(0.5 / n)).all()


def test_overflow_of_the_result_is_inf_without_a_warning():
    """A result beyond float16's range is inf (the nearest it holds), silently; so is a
    weight float16 cannot hold, as in PyTorch."""
    big = np.full(4, 60000, np.float16)
    assert xr.binary_cross_entropy_with_logits(big, np.zeros(4, np.float16),
                                               reduction="sum") == np.inf
    assert xr.cross_entropy(np.zeros((2, 2), np.float16), [0, 1], weight=[1e5, 1.0],
                            reduction="none")[0] == np.inf


# --- the one rounding: bfloat16 must not be rounded twice -----------------------------------


def test_bfloat16_rounding_is_correct_not_double():
    """``ml_dtypes`` rounds float64 to bfloat16 through float32 (twice): 1 + 2**-8 + 2**-30
    becomes 1.0. The nearest bfloat16 is 1 + 2**-7."""
    x = np.array([1 + 2**-8 + 2**-30, -(1 + 2**-8 + 2**-30), 1 + 2**-8])
    np.testing.assert_array_equal(round_once(x, BF16).astype(np.float64),
                                  [1 + 2**-7, -(1 + 2**-7), 1.0])


def _exact_nearest_check(x: float, r: float, neighbours, bits: int) -> None:
    d = abs(Fraction(x) - Fraction(r))
    for n in neighbours:
        if math.isfinite(n):
            dn = abs(Fraction(x) - Fraction(n))
            assert d < dn or (d == dn and bits % 2 == 0), (x, r, n)


@pytest.mark.parametrize("dtype", LOW)
def test_round_once_is_correctly_rounded(dtype):
    rng = np.random.default_rng(7)
    exponent = rng.integers(-140 if dtype == BF16 else -26, 128 if dtype == BF16 else 16, 3000)
    x = rng.uniform(-2, 2, 3000) * 2.0 ** exponent
    # values near ties, where a double rounding goes wrong
    x[:500] = round_once(x[:500], dtype).astype(np.float64) * (1 + 2.0**-9 + 2.0**-40)
    r = round_once(x, dtype)
    bits = r.view(np.uint16)
    for i in range(x.size):
        up, down = (bits[i : i + 1] + np.uint16(1)), (bits[i : i + 1] - np.uint16(1))
        neighbours = [float(v.view(dtype).astype(np.float64)[0]) for v in (up, down)]
        _exact_nearest_check(float(x[i]), float(r[i].astype(np.float64)), neighbours,
                             int(bits[i]))


# --- float32: counts stay exact integers -----------------------------------------------------


def test_float32_mean_counts_above_2_to_the_24_are_exact():
    """A count of 2**24 + 1 is not a float32; the mean divides by the exact count (in float64,
    rounded once), so the gradient is 0.5 / (2**24 + 1) rounded, not 0.5 / 2**24."""
    n = 2**24 + 1
    zeros = np.broadcast_to(np.float32(0), (n,))
    grad = xr.binary_cross_entropy_with_logits_grad(zeros, zeros)
    assert grad.dtype == np.float32 and grad[0] == np.float32(0.5 / n) != np.float32(2.0**-25)


def test_cross_entropy_count_is_an_integer():
    """The class-index count goes down the same exact path (an int, not a float32 sum of
    ones); a batch above 2**24 targets is too large for the suite, so check the count."""
    from xent_ref.cross_entropy import prepare

    call = prepare(np.zeros((3, 2), np.float32), np.array([0, -100, 1]))
    assert type(call.denominator) is int and call.denominator == 2


# --- PyTorch in the same dtype: we are never further from the float64 answer ---------------


def _torch_call(torch, function, kwargs: dict, dtype):
    """The PyTorch twin of an ``xent_ref`` call, run in ``dtype``: a tuple like ours."""
    import torch.nn.functional as F

    tdt = {F16: torch.float16, BF16: torch.bfloat16}[dtype]

    def tensor(a):
        a = np.asarray(a)
        if a.dtype.kind in "iu":
            return torch.from_numpy(a.astype(np.int64))
        return torch.from_numpy(a.astype(np.float32)).to(tdt)  # exact: float32 holds both

    name = function.__name__
    base = name.removesuffix("_with_grad").removesuffix("_grad")
    options = {k: v for k, v in kwargs.items() if k not in ("x", "input", "grad_output")}
    if base in ("softmax", "log_softmax"):
        inp = tensor(kwargs["x"]).requires_grad_()
        out = getattr(F, base)(inp, dim=options.get("axis", -1))
    else:
        inp = tensor(kwargs["input"]).requires_grad_()
        target = tensor(options.pop("target"))
        options = {k: tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
        if isinstance(options.get("pos_weight"), float):
            options["pos_weight"] = tensor(options["pos_weight"])
        out = getattr(F, base)(inp, target, **options)
    wanted = []
    if name == base or name.endswith("_with_grad"):
        wanted.append(out)
    if name != base:
        g = kwargs.get("grad_output")
        out.backward(torch.ones_like(out) if g is None else tensor(g).expand_as(out))
        wanted.append(inp.grad)
    return tuple(w.detach().float().numpy().astype(np.float64) for w in wanted)


def _error(value: np.ndarray, exact: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(value == exact, 0.0, np.abs(value - exact))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("function, kwargs", TORCH_PARAMS)
def test_no_further_from_float64_than_pytorch(function, kwargs, dtype):
    """Our error against the float64 answer (xent_ref on the widened, rounded arguments) is
    at most PyTorch's own error in the same dtype, entry by entry; and PyTorch agrees with the
    float64 answer loosely (the same semantics, not the same rounding)."""
    torch = pytest.importorskip("torch")
    low = _in_dtype(kwargs, dtype)
    ours = _as_tuple(function(**low))
    exact = _as_tuple(function(**_widened(low)))
    theirs = _torch_call(torch, function, low, dtype)
    for o, e, t in zip(ours, exact, theirs, strict=True):
        o = o.astype(np.float64)
        assert (_error(o, e) <= _error(t, e)).all()
        finite = np.isfinite(o)  # beyond the dtype's range both must say inf
        scale = np.abs(e[finite]).max(initial=1.0)
        np.testing.assert_allclose(t[finite], e[finite], rtol=0.05, atol=0.05 * scale)
        np.testing.assert_array_equal(t[~finite], o[~finite])


# ---------------------------------------------------------------------------------------------
# Memory: rounding adds only the output (a block at a time into it, the widened arguments
# freed first)
# ---------------------------------------------------------------------------------------------


MEMORY_CALLS = {
    "cross_entropy_grad": lambda x, y, t: xr.cross_entropy_grad(x, t),
    "cross_entropy_grad-softcap-z_loss": lambda x, y, t: xr.cross_entropy_grad(
        x, t, softcap=30.0, z_loss=1e-4),
    "softmax": lambda x, y, t: xr.softmax(x, axis=1),
    "bce_with_logits_grad": lambda x, y, t: xr.binary_cross_entropy_with_logits_grad(x, y),
}


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", list(MEMORY_CALLS))
def test_low_precision_peak_is_the_float64_peak_plus_widened_arguments_and_output(name, dtype):
    # A float16 or bfloat16 call is the float64 call on widened copies of its arrays: its
    # peak may be that call's, plus the widened arrays (8 bytes an element), plus the
    # rounded output (the input's size) -- and nothing for the rounding itself (once 14
    # bytes an element of float32 and float64 temporaries for bfloat16).
    rng = np.random.default_rng(3)
    x64 = rng.normal(0, 3, (512, 2048))
    y64 = rng.random((512, 2048))
    t = rng.integers(0, 2048, 512)
    x, y = round_once(x64, dtype), round_once(y64, dtype)
    call = MEMORY_CALLS[name]
    float64_peak = peak_bytes(lambda: call(x.astype(np.float64), y.astype(np.float64), t))
    widened = x64.nbytes * (2 if name.startswith("bce") else 1)  # the input (and target)
    peak = peak_bytes(lambda: call(x, y, t))
    assert peak <= 1.05 * (float64_peak + widened) + x.nbytes, (peak, float64_peak)
