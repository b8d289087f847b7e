"""Per-token statistics: against PyTorch 2.13 (tests/fixtures/second_order.json: logsumexp,
argmax -- the first index --, entropy, log-probabilities and losses on the transformed logits),
against the library's own losses, their definitions, the linear version without the logits,
low precision and errors.
"""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

import xent_ref as xr
from tests.helpers.second_order import assert_close, cases_of, replay
from xent_ref._engine.dtypes import dtype_named
from xent_ref._engine.lowprec import round_once
from xent_ref.stats import FIELDS

STATS_CASES = cases_of("cross_entropy_stats", "linear_cross_entropy_stats")
rng = np.random.default_rng(551)


def test_the_cases_cover_both_functions_ties_and_every_option():
    assert {c["function"] for c in STATS_CASES} == {"cross_entropy_stats",
                                                   "linear_cross_entropy_stats"}
    kwargs = [c["kwargs"] for c in STATS_CASES]
    for name in ("softcap", "logit_scale", "z_loss", "label_smoothing", "weight"):
        assert any(name in k for k in kwargs), name
    assert any("ties" in c["id"] for c in STATS_CASES)


@pytest.mark.parametrize("case", STATS_CASES, ids=lambda c: c["id"])
def test_equals_torch(case):
    got, expected = replay(case)
    assert isinstance(got, xr.TokenStats)
    assert set(expected) == {f.name for f in dataclasses.fields(got)}
    for name, want in expected.items():
        assert_close(np.asarray(getattr(got, name)), want, case["dtype"], f"{case['id']}:{name}")


OPTIONS = [{}, {"weight": True, "label_smoothing": 0.1},
           {"softcap": 2.0, "logit_scale": 1.5, "z_loss": 0.01},
           {"weight": True, "softcap": 3.0, "z_loss": 0.1, "reduction": "sum"},
           {"reduction": "none", "z_loss": 0.2, "label_smoothing": 0.2}]


def _options(options, classes):
    options = dict(options)
    if options.pop("weight", False):
        options["weight"] = rng.uniform(0.3, 2.0, classes)
    return options


@pytest.mark.parametrize("options", OPTIONS)
def test_the_losses_are_the_library_losses(options):
    options = _options(options, 6)
    x, t = rng.normal(size=(5, 6)) * 3, np.array([0, -100, 5, 2, 2])
    stats = xr.cross_entropy_stats(x, t, **options)
    per_token = dict(options, reduction="none")
    np.testing.assert_allclose(stats.loss, xr.cross_entropy(x, t, **per_token), rtol=1e-14)
    np.testing.assert_allclose(stats.reduced_loss, xr.cross_entropy(x, t, **options),
                               rtol=1e-14)
    no_z = dict(per_token, z_loss=0.0)
    np.testing.assert_allclose(stats.loss - stats.z_loss, xr.cross_entropy(x, t, **no_z),
                               rtol=1e-12, atol=1e-15)
    kept = t != -100
    np.testing.assert_array_equal(stats.kept, kept)
    assert not stats.loss[~kept].any() and not stats.z_loss[~kept].any()
    assert not stats.correct[~kept].any() and not stats.target_logprob[~kept].any()


def test_the_definitions_on_a_small_input():
    x = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [5.0, -1.0, 0.0]])
    t = np.array([2, 0, -100])
    stats = xr.cross_entropy_stats(x, t, z_loss=0.5, reduction="mean")
    lse = np.log(np.exp(x).sum(axis=1))
    p = np.exp(x - lse[:, None])
    np.testing.assert_allclose(stats.lse, lse, rtol=1e-15)
    np.testing.assert_allclose(stats.entropy, -(p * np.log(p)).sum(axis=1), rtol=1e-14)
    assert stats.entropy[1] == pytest.approx(np.log(3), rel=1e-15)  # uniform: log C
    assert stats.argmax.tolist() == [1, 0, 0]  # the first maximal index, as Liger
    assert stats.correct.tolist() == [False, True, False]  # ignored: not counted
    np.testing.assert_allclose(stats.target_logprob[:2], [x[0, 2] - lse[0], -np.log(3)],
                               rtol=1e-15)
    np.testing.assert_allclose(stats.z_loss, [0.5 * lse[0] ** 2, 0.5 * lse[1] ** 2, 0.0],
                               rtol=1e-15)
    # the z-loss over the kept tokens' number, separately
    assert float(stats.reduced_z_loss) == pytest.approx(stats.z_loss[:2].mean(), rel=1e-15)


def test_statistics_are_of_the_transformed_logits():
    x = np.array([[50.0, 100.0, 0.0], [1.0, 2.0, 3.0]])
    stats = xr.cross_entropy_stats(x, [1, 2], softcap=1.0, logit_scale=2.0)
    z = np.tanh(2.0 * x)
    assert stats.argmax.tolist() == [0, 2]  # tanh ties 50 and 100: the first is taken
    assert stats.correct.tolist() == [False, True]
    log_p = xr.log_softmax(z, axis=1)
    np.testing.assert_allclose(stats.entropy, -(np.exp(log_p) * log_p).sum(axis=1), rtol=1e-14)


def test_an_impossible_class_adds_no_entropy():
    stats = xr.cross_entropy_stats([[0.0, -np.inf, 0.0]], [0])
    assert stats.entropy.tolist() == [pytest.approx(np.log(2), rel=1e-15)]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_linear_stats_are_the_stats_of_the_logits(options, bias):
    options = _options(options, 7)
    h, w = rng.normal(size=(9, 4)), rng.normal(size=(7, 4))
    b = rng.normal(size=7) if bias else None
    t = np.array([0, 6, -100, 3, 3, 1, 2, -100, 5])
    logits = h @ w.T + (0 if b is None else b)
    expected = xr.cross_entropy_stats(logits, t, **options)
    for rows in (1, 4, 9):
        got = xr.linear_cross_entropy_stats(h, w, t, linear_bias=b, chunk_size=rows, **options)
        for name in FIELDS + ("reduced_loss", "reduced_z_loss"):
            a, e = np.asarray(getattr(got, name)), np.asarray(getattr(expected, name))
            assert a.dtype == e.dtype and a.shape == e.shape, name
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14, err_msg=name)


def test_linear_stats_of_one_row_are_0_d():
    stats = xr.linear_cross_entropy_stats(rng.normal(size=3), rng.normal(size=(5, 3)), 4)
    assert stats.lse.shape == stats.argmax.shape == stats.correct.shape == ()


def test_linear_stats_never_form_the_logits():
    n, hidden, vocab = 1024, 16, 2048
    h = rng.normal(size=(n, hidden)).astype(np.float32)
    w = (rng.normal(size=(vocab, hidden)) / 4).astype(np.float32)
    t = rng.integers(0, vocab, n)
    tracemalloc.start()
    try:
        xr.linear_cross_entropy_stats(h, w, t, z_loss=1e-4, softcap=30.0, chunk_size=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    logits_bytes = n * vocab * 4  # 8 MiB, never formed; a chunk of 8 rows is 64 KiB
    assert peak < logits_bytes / 8, (peak, logits_bytes)



@pytest.mark.parametrize("probabilities", [False, True])
def test_stats_of_given_logits_in_blocks_are_those_of_one_block(monkeypatch, probabilities):
    from xent_ref import stats as stats_module

    x = rng.normal(size=(7, 5, 3)) * 4
    t = rng.dirichlet(np.ones(5), size=(7, 3)).transpose(0, 2, 1) if probabilities else \
        np.where(rng.random((7, 3)) < 0.3, -100, rng.integers(0, 5, (7, 3)))
    kwargs = dict(weight=rng.random(5) + 0.5, label_smoothing=0.1, softcap=3.0, z_loss=1e-2)
    whole = xr.cross_entropy_stats(x, t, **kwargs)
    monkeypatch.setattr(stats_module, "STATS_BLOCK", 2 * 5 * 3)  # blocks of 2 samples
    blocked = xr.cross_entropy_stats(x, t, **kwargs)
    for field in dataclasses.fields(whole):
        np.testing.assert_array_equal(getattr(blocked, field.name), getattr(whole, field.name),
                                      err_msg=field.name)


def test_stats_of_given_logits_hold_a_block_not_the_logits():
    x = rng.normal(size=(64, 32768)).astype(np.float32)  # 8 MiB of logits, 8 blocks
    t = rng.integers(0, 32768, 64)
    tracemalloc.start()
    try:
        xr.cross_entropy_stats(x, t, softcap=30.0, z_loss=1e-4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes, (peak, x.nbytes)  # a few block-sized arrays

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_is_each_float64_statistic_rounded_once(dtype):
    low = dtype_named(dtype)
    x, t = (rng.normal(size=(4, 6)) * 3).astype(low), np.array([0, 5, -100, 2])
    kw = dict(softcap=3.0, z_loss=0.01, label_smoothing=0.1)
    got, wide = xr.cross_entropy_stats(x, t, **kw), xr.cross_entropy_stats(x.astype(float), t,
                                                                           **kw)
    for name in ("lse", "loss", "z_loss", "target_logprob", "entropy", "reduced_loss",
                 "reduced_z_loss"):
        value = getattr(got, name)
        assert value.dtype == low, name
        np.testing.assert_array_equal(value.astype(float),
                                      round_once(getattr(wide, name), low).astype(float), name)
    np.testing.assert_array_equal(got.argmax, wide.argmax)
    assert got.argmax.dtype == np.int64 and got.correct.dtype == np.bool_


def test_the_result_is_frozen_and_errors_are_the_losses():
    stats = xr.cross_entropy_stats([[0.0, 1.0]], [1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.lse = None
    with pytest.raises(ValueError, match="^reduction: "):
        xr.cross_entropy_stats([[0.0, 1.0]], [1], reduction="avg")
    with pytest.raises(ValueError, match="^softcap: "):
        xr.cross_entropy_stats([[0.0, 1.0]], [1], softcap=-1.0)
    with pytest.raises(ValueError, match="^target: "):
        xr.linear_cross_entropy_stats(np.ones((2, 3)), np.ones((4, 3)), [0, 1, 2])


def test_one_token_and_empty_batches():
    one = xr.cross_entropy_stats([1.0, 2.0, 3.0], 1, z_loss=0.1)
    for name in FIELDS + ("reduced_loss", "reduced_z_loss"):
        assert isinstance(getattr(one, name), np.ndarray) and getattr(one, name).shape == ()
    empty = xr.linear_cross_entropy_stats(np.ones((0, 3)), np.ones((4, 3)), np.zeros(0, int))
    assert empty.lse.shape == (0,) and np.isnan(empty.reduced_loss)
    assert xr.cross_entropy_stats(np.zeros((0, 3)), np.zeros(0, int)).argmax.shape == (0,)


def test_a_nan_logit_makes_the_row_nan_and_is_its_argmax():
    stats = xr.cross_entropy_stats([[1.0, np.nan, 3.0]], [2])
    assert np.isnan(stats.entropy[0]) and np.isnan(stats.lse[0])
    assert stats.argmax.tolist() == [1]  # as torch.argmax and np.argmax
