"""linear_cross_entropy and the LLM options of cross_entropy (logit_scale, softcap, z_loss).

Against PyTorch 2.13 (tests/fixtures/llm_golden.json, written by scripts/make_llm_fixtures.py:
F.linear_cross_entropy, and the documented composition for the options; float32/float64 within
the usual tolerances, float16/bfloat16 inputs as the dtype's nearest value to PyTorch's float64
answer), central finite differences, the unfused definition, and a memory bound: the (N, V)
logits are never formed.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers.peak import peak_bytes
from tests.helpers.torch_compare import TOLERANCE
from xent_ref.golden import jsonio as _jsonio
from xent_ref._engine.lowprec import round_once
from xent_ref.golden.jsonio import decode_array, is_encoded_array

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "llm_golden.json").read_text())
CASES = FIXTURE["cases"]


def _decode(value):
    return decode_array(value) if is_encoded_array(value) else value


def _call(case, want):
    args = [decode_array(a) for a in case["args"]]
    kwargs = {k: _decode(v) for k, v in case["kwargs"].items()}
    before = [a.tobytes() for a in args]
    if case["function"] == "linear_cross_entropy":
        kwargs["chunk_size"] = 2  # several chunks even for these small batches
        if want == "loss":
            got = xr.linear_cross_entropy(*args, **kwargs)
        else:
            got = xr.linear_cross_entropy_grad(
                *args, grad_output=decode_array(case["grad_output"]), **kwargs)
    elif want == "loss":
        got = xr.cross_entropy(*args, **kwargs)
    else:
        got = (xr.cross_entropy_grad(*args, grad_output=decode_array(case["grad_output"]),
                                     **kwargs),)
    assert [a.tobytes() for a in args] == before, "an argument was modified in place"
    return got


def _check(got, expected, dtype, what):
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), (what, type(got))
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, equal_nan=True, err_msg=what, **TOLERANCE[dtype])


def test_fixture_records_torch_2_13():
    assert FIXTURE["torch_version"].startswith("2.13.")
    functions = {case["function"] for case in CASES}
    assert functions == {"linear_cross_entropy", "cross_entropy"}


def _check_rounded(got, exact, dtype, what):
    """``got`` (float16/bfloat16) is the dtype's nearest value to PyTorch's float64 answer
    ``exact`` -- up to float64's own rounding: any value within 1e-12 of the array's scale
    of ``exact`` may be the one rounded."""
    dtype = _jsonio.dtype_named(dtype)
    assert isinstance(got, np.ndarray) and got.dtype == dtype, (what, type(got))
    assert got.shape == exact.shape, (what, got.shape, exact.shape)
    finite = np.isfinite(exact)
    slack = 1e-12 * (np.abs(exact[finite]).max(initial=0.0))
    low = round_once(np.where(finite, exact - slack, exact), dtype).astype(np.float64)
    high = round_once(np.where(finite, exact + slack, exact), dtype).astype(np.float64)
    wide = got.astype(np.float64)
    ok = ((low <= wide) & (wide <= high)) | (np.isnan(exact) & np.isnan(wide))
    assert ok.all(), (what, wide[~ok], exact[~ok])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_matches_torch(case):
    check = _check_rounded if case.get("reference") == "float64" else _check
    check(_call(case, "loss"), decode_array(case["expected"]["loss"]), case["dtype"],
          case["id"] + " loss")
    grads = _call(case, "grad")
    expected = case["expected"]["grads"]
    assert len(grads) == len(expected)
    for i, (got, want) in enumerate(zip(grads, expected)):
        if want is None:
            assert got is None, f"{case['id']}: gradient {i} should be None (no bias)"
        else:
            check(got, decode_array(want), case["dtype"], f"{case['id']} grad {i}")


def test_low_precision_fixtures_are_there_and_tight():
    low = [c for c in CASES if c.get("reference") == "float64"]
    assert {c["dtype"] for c in low} == {"float16", "bfloat16"}
    assert {c["function"] for c in low} == {"linear_cross_entropy", "cross_entropy"}
    # The rule is the nearest value, not "close": a result one step off fails.
    case = next(c for c in low if c["id"] == "cross_entropy/low/peaked-p_t=0.999/bfloat16")
    got = _call(case, "loss")
    exact = decode_array(case["expected"]["loss"])
    _check_rounded(got, exact, "bfloat16", "peaked loss")
    one_off = round_once(got.astype(np.float64) * (1 + 2.0 ** -7), got.dtype)
    with pytest.raises(AssertionError):
        _check_rounded(one_off, exact, "bfloat16", "one step off")
    # and the true class's gradient survives: PyTorch's own bfloat16 softmax rounds it to 0
    (grad,) = _call(case, "grad")
    assert np.all(grad[np.arange(4), [3, 10, 500, 999]] < 0)


def test_defaults_are_bit_identical_to_plain_cross_entropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)) * 3
    t = np.array([0, 4, -100, 2])
    for reduction in ("mean", "sum", "none"):
        plain = xr.cross_entropy(x, t, reduction=reduction)
        named = xr.cross_entropy(x, t, reduction=reduction, logit_scale=1.0, softcap=None,
                                 z_loss=0.0)
        assert plain.tobytes() == named.tobytes()


def _finite_difference(f, arrays, index, h=1e-6):
    """Central difference of scalar f with respect to arrays[index]."""
    base = arrays[index]
    out = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        plus, minus = base.copy(), base.copy()
        plus[i] += h
        minus[i] -= h
        args_p = list(arrays)
        args_p[index] = plus
        args_m = list(arrays)
        args_m[index] = minus
        out[i] = (float(f(*args_p)) - float(f(*args_m))) / (2 * h)
    return out


OPTIONS = [
    {"logit_scale": 0.7},
    {"softcap": 1.5},
    {"z_loss": 0.3},
    {"logit_scale": 2.0, "softcap": 3.0, "z_loss": 0.1, "label_smoothing": 0.2,
     "weight": [1.0, 2.0, 0.5, 3.0]},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_gradient_by_finite_differences(options, reduction):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4)) * 2
    t = np.array([0, 1, -100, 3, 1])
    g = xr.cross_entropy_grad(x, t, reduction=reduction, **options)
    fd = _finite_difference(lambda x: xr.cross_entropy(x, t, reduction=reduction, **options),
                            [x], 0)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("options", [{}, {"z_loss": 0.2, "softcap": 2.0, "weight": [1, 2, 3, 1, 2],
                                          "label_smoothing": 0.1}], ids=["plain", "all"])
def test_linear_gradients_by_finite_differences(options):
    rng = np.random.default_rng(2)
    h, w, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), rng.normal(size=5)
    t = np.array([0, 4, -100, 2])

    def loss(h, w, b):
        return xr.linear_cross_entropy(h, w, t, linear_bias=b, chunk_size=3, **options)

    grads = xr.linear_cross_entropy_grad(h, w, t, linear_bias=b, chunk_size=3, **options)
    for index, got in enumerate(grads):
        np.testing.assert_allclose(got, _finite_difference(loss, [h, w, b], index),
                                   rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
def test_k_dimensional_linear_gradients_by_finite_differences(probabilities):
    rng = np.random.default_rng(5)
    h, w, b = rng.normal(size=(3, 4)), rng.normal(size=(5, 2, 4)), rng.normal(size=(5, 2))
    if probabilities:
        t = np.moveaxis(rng.dirichlet(np.ones(5), size=(3, 2)), -1, 1)  # (3, 5, 2)
    else:
        t = np.array([[0, 4], [-100, 2], [3, 3]])
    options = {"z_loss": 0.1, "softcap": 3.0, "label_smoothing": 0.1, "reduction": "sum"}

    def loss(h, w, b):
        return xr.linear_cross_entropy(h, w, t, linear_bias=b, chunk_size=2, **options)

    grads = xr.linear_cross_entropy_grad(h, w, t, linear_bias=b, chunk_size=2, **options)
    assert [g.shape for g in grads] == [(3, 4), (5, 2, 4), (5, 2)]
    for index, got in enumerate(grads):
        np.testing.assert_allclose(got, _finite_difference(loss, [h, w, b], index),
                                   rtol=1e-6, atol=1e-8)


def test_k_dimensional_linear_is_cross_entropy_of_k_dimensional_logits():
    rng = np.random.default_rng(6)
    h, w = rng.normal(size=(7, 3)), rng.normal(size=(4, 2, 3, 3))
    t = rng.integers(0, 4, (7, 2, 3))
    logits = np.einsum("nh,vabh->nvab", h, w)  # (N, V, d1, d2)
    for reduction in ("mean", "none"):
        expected, g = xr.cross_entropy_with_grad(logits, t, reduction=reduction)
        loss, (dh, dw, db) = xr.linear_cross_entropy_with_grad(h, w, t, reduction=reduction,
                                                              chunk_size=3)
        np.testing.assert_allclose(loss, expected, rtol=1e-14)
        assert loss.shape == expected.shape and db is None
        np.testing.assert_allclose(dh, np.einsum("nvab,vabh->nh", g, w), rtol=1e-12)
        np.testing.assert_allclose(dw, np.einsum("nvab,nh->vabh", g, h), rtol=1e-12)


def test_linear_equals_cross_entropy_of_the_logits_whatever_the_chunks():
    rng = np.random.default_rng(3)
    h, w, b = rng.normal(size=(9, 6)), rng.normal(size=(13, 6)), rng.normal(size=13)
    t = rng.integers(0, 13, 9)
    kw = {"label_smoothing": 0.1, "z_loss": 1e-2, "softcap": 5.0}
    logits = h @ w.T + b
    expected = xr.cross_entropy_with_grad(logits, t, **kw)
    for chunk_size in (1, 2, 4, 9, 100):
        loss, (dh, dw, db) = xr.linear_cross_entropy_with_grad(h, w, t, linear_bias=b,
                                                              chunk_size=chunk_size, **kw)
        np.testing.assert_allclose(loss, expected[0], rtol=1e-14)
        np.testing.assert_allclose(dh, expected[1] @ w, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(dw, expected[1].T @ h, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(db, expected[1].sum(axis=0), rtol=1e-12, atol=1e-15)


def test_z_loss_mean_divides_by_kept_tokens_not_by_weights():
    x = np.array([[1.0, 2.0, 0.0], [0.5, 0.5, 3.0], [2.0, 1.0, 1.0]])
    t = np.array([0, 2, -100])
    w = np.array([2.0, 1.0, 4.0])
    lse = np.log(np.exp(x).sum(axis=1))
    ce = float(xr.cross_entropy(x, t, weight=w))
    expected = ce + 0.1 * (lse[0] ** 2 + lse[1] ** 2) / 2  # two kept tokens, weights 2 and 4
    assert float(xr.cross_entropy(x, t, weight=w, z_loss=0.1)) == pytest.approx(expected, rel=1e-14)
    none = xr.cross_entropy(x, t, weight=w, z_loss=0.1, reduction="none")
    assert none[2] == 0.0
    assert none[0] == pytest.approx(w[0] * (lse[0] - x[0, 0]) + 0.1 * lse[0] ** 2, rel=1e-14)


def test_softcap_bounds_the_logits_and_its_slope_does_not_cancel():
    x = np.array([[0.0, 40.0, -1e4]])
    g = xr.cross_entropy_grad(x, [0], softcap=10.0)
    assert np.all(np.isfinite(g))
    # at x = 40 the slope is sech^2(4) = 1.34e-3, tiny but not 0
    assert g[0, 1] != 0.0


def test_linear_cross_entropy_never_forms_the_logits():
    rng = np.random.default_rng(4)
    n, h, v = 2048, 32, 8192
    hidden = rng.normal(size=(n, h)).astype(np.float32)
    w = (rng.normal(size=(v, h)) / 6).astype(np.float32)
    t = rng.integers(0, v, n)
    tracemalloc.start()
    try:
        xr.linear_cross_entropy_with_grad(hidden, w, t, z_loss=1e-4, chunk_size=128)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    logits_bytes = n * v * 4  # 64 MiB, never formed; a chunk of 128 rows is 4 MiB
    outputs = hidden.nbytes + w.nbytes  # the gradients
    assert peak - outputs < logits_bytes / 4, (peak, logits_bytes)


def test_default_chunks_keep_the_peak_within_a_quarter_of_inputs_and_gradients(monkeypatch):
    # With the byte budget made small, the chunk is a quarter of linear_weight: the
    # benchmark's rule (peak <= 1.25x inputs + gradients) holds at any vocabulary size.
    from xent_ref import linear

    monkeypatch.setattr(linear, "CHUNK_BYTES", 1 << 16)
    rng = np.random.default_rng(9)
    n, h, v = 1024, 64, 4096
    hidden = rng.normal(size=(n, h)).astype(np.float32)
    w = (rng.normal(size=(v, h)) / 8).astype(np.float32)
    b = rng.normal(size=v).astype(np.float32)
    t = rng.integers(0, v, n)
    inputs = hidden.nbytes + w.nbytes + b.nbytes
    tracemalloc.start()
    try:
        loss, grads = xr.linear_cross_entropy_with_grad(hidden, w, t, linear_bias=b)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    extra = peak - inputs  # beyond the gradients, which are outputs
    assert extra <= 0.25 * (2 * inputs), (extra, inputs)
    expected = xr.cross_entropy_with_grad(hidden @ w.T + b, t)
    np.testing.assert_allclose(loss, expected[0], rtol=1e-5)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"logit_scale": 0.0}, ValueError, "logit_scale"),
    ({"logit_scale": float("inf")}, ValueError, "logit_scale"),
    ({"softcap": -1.0}, ValueError, "softcap"),
    ({"softcap": "30"}, TypeError, "softcap"),
    ({"z_loss": -0.1}, ValueError, "z_loss"),
    ({"z_loss": True}, TypeError, "z_loss"),
])
def test_bad_options_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        xr.cross_entropy([[1.0, 2.0]], [0], **kwargs)
    with pytest.raises(error, match=words):
        xr.linear_cross_entropy([[1.0, 2.0]], [[1.0, 0.0]], [0], **kwargs)


@pytest.mark.parametrize("args, kwargs, error, words", [
    (([[1.0, 2.0]], [[1.0, 0.0, 2.0]], [0]), {}, ValueError, "linear_weight"),
    (([[[1.0, 2.0]]], [[1.0, 0.0]], [0]), {}, ValueError, "input"),
    (([[1.0, 2.0]], [[1.0, 0.0]], [0]), {"linear_bias": [1.0, 2.0]}, ValueError, "linear_bias"),
    (([[1.0, 2.0]], [[1.0, 0.0]], [3]), {}, ValueError, "target"),
    (([[1.0, 2.0]], [[1.0, 0.0]], [0]), {"chunk_size": 0}, ValueError, "chunk_size"),
    (([1.0, 2.0], [[[1.0, 0.0]]], 0), {}, ValueError, "needs a batch"),
    (([[1.0, 2.0]], [[1.0, 0.0]], [0]), {"chunk_size": 1.5}, TypeError, "chunk_size"),
    ((np.ones((3, 4)), np.ones((5, 2, 4)), [0, 1, 2]), {}, ValueError,
     r"target: expected shape \(3, 2\) \(class indices\) or \(3, 5, 2\) \(probabilities\)"),
    (([[1.0, 2.0]], [[[1.0, 0.0]]], [[0]]), {"linear_bias": [1.0]}, ValueError, "linear_bias"),
    (([[1.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5]]), {"ignore_index": -100}, ValueError,
     "ignore_index: cannot be given with probability targets"),
    ((np.ones((1, 2), np.float32), np.eye(2), [0]), {}, TypeError,
     "linear_weight: dtype float64 differs from the input's float32"),
    ((np.ones((1, 2)), np.eye(2), [0]), {"linear_bias": np.zeros(2, np.float16)}, TypeError,
     "linear_bias: dtype float16"),
    ((np.ones((1, 2), np.float16), np.eye(2, dtype=np.float32), [0]), {}, TypeError,
     "linear_weight: dtype float32 differs from the input's float16"),
])
def test_bad_linear_arguments_name_the_argument(args, kwargs, error, words):
    with pytest.raises(error, match=words):
        xr.linear_cross_entropy(*args, **kwargs)


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((-1, 5), {}, ValueError, "in_features: must be >= 0"),
    ((4.5, 5), {}, TypeError, "in_features: expected an integer"),
    ((4, 5), {"out_features": 2}, TypeError, "out_features: expected a tuple"),
    ((4, 5), {"out_features": (2, -1)}, ValueError, "out_features: must be >= 0"),
    ((4, 5), {"dtype": np.int32}, TypeError, "dtype: expected a floating dtype"),
    ((4, 5), {"dtype": "float8"}, TypeError, "dtype: not a dtype"),
])
def test_bad_module_arguments_name_the_argument(args, kwargs, error, words):
    with pytest.raises(error, match=words):
        xr.LinearCrossEntropyLoss(*args, **kwargs)


def test_linear_parameters_as_lists_follow_the_input_dtype():
    # Only an array that carries another floating dtype is refused; lists and Python
    # numbers take the input's dtype, as torch.tensor(...) of them would be made to.
    loss = xr.linear_cross_entropy(np.ones((1, 2), np.float32), [[1, 0], [0, 1]], [0],
                                   linear_bias=[0.5, 0.0])
    assert loss.dtype == np.float32
    ml_dtypes = pytest.importorskip("ml_dtypes")
    h = np.ones((1, 2), ml_dtypes.bfloat16)
    dh, dw, db = xr.linear_cross_entropy_grad(h, np.eye(2, dtype=ml_dtypes.bfloat16), [0],
                                              linear_bias=[0.5, 0.0])
    assert dh.dtype == dw.dtype == db.dtype == h.dtype


def test_cross_entropy_loss_module_takes_the_options():
    x = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    options = {"logit_scale": 0.5, "softcap": 2.0, "z_loss": 0.1, "ignore_index": 2}
    module = xr.CrossEntropyLoss(**options)
    np.testing.assert_array_equal(module(x, [0, 2]), xr.cross_entropy(x, [0, 2], **options))
    np.testing.assert_array_equal(module.grad(x, [0, 2]),
                                  xr.cross_entropy_grad(x, [0, 2], **options))
    assert xr.cross_entropy(x, [0, 2], **options) != xr.cross_entropy(x, [0, 2], ignore_index=2)


def test_linear_cross_entropy_loss_module_is_the_function():
    loss = xr.LinearCrossEntropyLoss(4, 6, out_features=(2,), bias=True, dtype=np.float64,
                                     weight=np.arange(1.0, 7.0), label_smoothing=0.1,
                                     z_loss=1e-3, chunk_size=2, seed=3)
    assert loss.linear_weight.shape == (6, 2, 4) and loss.linear_bias.shape == (6, 2)
    assert np.abs(loss.linear_weight).max() <= 0.5  # nn.Linear's bound 1/sqrt(in_features)
    rng = np.random.default_rng(7)
    h, t = rng.normal(size=(5, 4)), rng.integers(0, 6, (5, 2))
    kwargs = {"linear_bias": loss.linear_bias, "weight": np.arange(1.0, 7.0),
              "label_smoothing": 0.1, "z_loss": 1e-3, "chunk_size": 2}
    assert loss(h, t) == xr.linear_cross_entropy(h, loss.linear_weight, t, **kwargs)
    for got, want in zip(loss.grad(h, t, grad_output=2.0),
                         xr.linear_cross_entropy_grad(h, loss.linear_weight, t, grad_output=2.0,
                                                      **kwargs)):
        np.testing.assert_array_equal(got, want)
    assert xr.LinearCrossEntropyLoss(3, 5).linear_bias is None
    assert xr.LinearCrossEntropyLoss(3, 5)(np.ones((1, 3), np.float32), [1]).dtype == np.float32
    assert "LinearCrossEntropyLoss(in_features=4" in repr(loss)


@pytest.mark.torch
def test_linear_cross_entropy_loss_module_matches_torch_with_its_parameters():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.LinearCrossEntropyLoss(5, 7, out_features=(3,), bias=True,
                                             dtype=torch.float64, ignore_index=2,
                                             label_smoothing=0.05)
    ours = xr.LinearCrossEntropyLoss(5, 7, out_features=(3,), bias=True, dtype=np.float64,
                                     ignore_index=2, label_smoothing=0.05)
    ours.linear_weight = theirs.linear.weight.detach().numpy().reshape(7, 3, 5)
    ours.linear_bias = theirs.linear.bias.detach().numpy().reshape(7, 3)
    rng = np.random.default_rng(8)
    h, t = rng.normal(size=(4, 5)), rng.integers(0, 7, (4, 3))
    h_t = torch.tensor(h, requires_grad=True)
    out = theirs(h_t, torch.tensor(t))
    out.backward()
    np.testing.assert_allclose(ours(h, t), out.detach().numpy(), rtol=1e-12)
    dh, dw, db = ours.grad(h, t)
    np.testing.assert_allclose(dh, h_t.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dw.reshape(21, 5), theirs.linear.weight.grad.numpy(), rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_allclose(db.reshape(21), theirs.linear.bias.grad.numpy(), rtol=1e-10,
                               atol=1e-15)


@pytest.mark.parametrize("options", [{"softcap": 30.0}, {"z_loss": 1e-4},
                                     {"logit_scale": 0.5, "softcap": 30.0, "z_loss": 1e-4}])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_linear_peak_bound_holds_with_every_option_and_dtype(monkeypatch, options, dtype):
    # The documented rule: peak <= 1.25x inputs + gradients in float32, softcap and z-loss
    # included (they hold two logits-sized arrays, counted in the chunk's budget). Both
    # byte budgets are made small (the chunk's, and the option's per-block temporaries,
    # a fixed cost) so that this small call is in the regime of a large vocabulary.
    # float16 and bfloat16 are the float64 call on widened copies (4x the bytes): its
    # peak within the same rule, plus the widened inputs, plus the float32 error bounds
    # of dh and dW (2x: residues are returned as 0), plus the rounded gradients --
    # (I + 4I + 1.5 * 4I + 2I + I) / 2I = 7x the low-precision inputs + gradients.
    from xent_ref import linear, llm_options
    from xent_ref._engine.dtypes import dtype_named

    monkeypatch.setattr(linear, "CHUNK_BYTES", 1 << 16)
    monkeypatch.setattr(llm_options, "ELEMENTWISE_BLOCK", 1 << 11)
    rng = np.random.default_rng(9)
    n, h, v = 256, 64, 4096
    dt = dtype_named(dtype)
    hidden = rng.normal(size=(n, h)).astype(np.float32).astype(dt)
    w = (rng.normal(size=(v, h)) / 8).astype(np.float32).astype(dt)
    t = rng.integers(0, v, n)
    inputs = hidden.nbytes + w.nbytes
    peak = peak_bytes(lambda: xr.linear_cross_entropy_with_grad(hidden, w, t, **options))
    bound = 1.25 if dtype == "float32" else 7.0
    assert (inputs + peak) / (2 * inputs) <= bound, (peak, inputs)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("scale", [1.0, 1e30])
def test_low_precision_gradients_that_cancel_to_zero_are_zero(dtype, scale):
    # All logits equal and balanced targets: sum_j G_ij = 0 and sum_i G_ij = 0 exactly,
    # so dh (equal rows of W), dW and db (equal rows of h) are exactly 0; float64 leaves
    # residues of a few ulps (1e-17; 3.5e13 next to |h| = 1e30), which a float16 or
    # bfloat16 would keep. The nonzero entries are still the float64 answer rounded once.
    from xent_ref._engine.dtypes import dtype_named

    dt = dtype_named(dtype)
    n, v = 10, 5
    scale = scale if dtype == "bfloat16" else min(scale, 256.0)  # (float16 ends at 65504)
    h = np.full((n, 2), scale, np.float32).astype(dt)
    w = np.full((v, 2), 1.0 / scale, np.float32).astype(dt)
    t = np.arange(n) % v
    dh, dw, db = xr.linear_cross_entropy_grad(h, w, t, linear_bias=np.zeros(v, dt))
    for grad in (dh, dw, db):
        assert grad.dtype == dt and np.all(grad.astype(np.float64) == 0.0)
    # targets not balanced: the columns of G no longer cancel (dW, db are the float64
    # answer rounded once, not 0); its rows still do (dh stays exactly 0)
    dh, dw, db = xr.linear_cross_entropy_grad(h, w, np.zeros(n, np.int64),
                                              linear_bias=np.zeros(v, dt))
    wide = xr.linear_cross_entropy_grad(h.astype(np.float64), w.astype(np.float64),
                                        np.zeros(n, np.int64), linear_bias=np.zeros(v))
    assert np.all(dh.astype(np.float64) == 0.0)
    for grad, expected in zip((dw, db), wide[1:]):
        assert np.all(grad.astype(np.float64) != 0.0)
        assert np.array_equal(grad, round_once(expected, dt))


def test_linear_module_with_an_empty_axis_gives_pytorchs_answer():
    # PyTorch 2.13: no input features -> logits 0, loss log V; no positions -> a mean
    # over nothing, nan (the functions' answers: tests/fixtures/parity.json)
    no_features = xr.LinearCrossEntropyLoss(0, 5, dtype=np.float64)
    assert float(no_features(np.zeros((3, 0)), [0, 3, 4])) == pytest.approx(np.log(5))
    no_positions = xr.LinearCrossEntropyLoss(2, 5, out_features=(0,), dtype=np.float64)
    assert np.isnan(no_positions(np.ones((3, 2)), np.zeros((3, 0), np.int64)))
