"""Vocab-parallel cross-entropy (xent_ref.parallel, and Megatron's on it) and gradient
accumulation (xent_ref.accumulation): equal to the unsharded, unsplit loss and gradient,
per-rank intermediates that are what the all-reduces say, and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_finite_differences import BOUND, numerical_gradient, relative_error
from xent_ref.accumulation import accumulated_cross_entropy, mean_denominator
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad
from xent_ref.frameworks import megatron
from xent_ref.parallel import vocab_parallel_cross_entropy

rng = np.random.default_rng(4)
VOCAB = 37


def uneven_cuts(k: int, vocab: int = VOCAB) -> list:
    """k consecutive slices of ``range(vocab)`` of different sizes (each at least 2)."""
    sizes = np.full(k, 2)
    extra = rng.multinomial(vocab - 2 * k, rng.dirichlet(np.ones(k) * 0.7))
    sizes += extra
    return np.split(np.arange(vocab), np.cumsum(sizes)[:-1])


def shard(x: np.ndarray, cuts) -> list:
    return [x[..., c] for c in cuts]


LOGITS = rng.normal(size=(7, VOCAB)) * 3
TARGET = rng.integers(0, VOCAB, 7)
TARGET[3] = -100


@pytest.mark.parametrize("k", [1, 2, 3, 8])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_equal_to_the_unsharded_loss_and_gradient(k, reduction, label_smoothing):
    cuts = uneven_cuts(k)
    assert len({len(c) for c in cuts}) > 1 or k == 1
    g = rng.normal(size=7) if reduction == "none" else 1.7
    result = vocab_parallel_cross_entropy(shard(LOGITS, cuts), TARGET, reduction=reduction,
                                          label_smoothing=label_smoothing, grad_output=g)
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    assert np.allclose(result.loss, cross_entropy(LOGITS, TARGET, **options), rtol=1e-13,
                       atol=0)
    assert np.allclose(np.concatenate(result.grads, axis=-1),
                       cross_entropy_grad(LOGITS, TARGET, **options, grad_output=g),
                       rtol=1e-12, atol=1e-16)
    for view in result.ranks:  # every rank agrees under global smoothing
        assert np.allclose(view.loss, cross_entropy(LOGITS, TARGET, reduction="none",
                                                    label_smoothing=label_smoothing))


@pytest.mark.parametrize("k", [2, 3, 8])
def test_per_rank_intermediates_are_the_all_reduces(k):
    cuts = uneven_cuts(k)
    x = rng.normal(size=(2, 3, VOCAB))
    t = rng.integers(0, VOCAB, (2, 3))
    result = vocab_parallel_cross_entropy(shard(x, cuts), t, reduction="none")
    m = x.max(axis=-1)
    assert np.array_equal(result.global_max, m)
    assert np.array_equal(np.max([v.local_max for v in result.ranks], axis=0), m)
    assert np.allclose(result.global_sum_exp, np.exp(x - m[..., None]).sum(axis=-1))
    assert np.allclose(sum(v.local_sum_exp for v in result.ranks), result.global_sum_exp)
    picked = np.take_along_axis(x, t[..., None], axis=-1)[..., 0] - m
    assert np.array_equal(result.target_logit, picked)
    for view, cut in zip(result.ranks, cuts):
        assert (view.vocab_start, view.vocab_end) == (cut[0], cut[-1] + 1)
        here = (t >= view.vocab_start) & (t < view.vocab_end)
        assert np.array_equal(view.target_logit, np.where(here, picked, 0.0))
        assert np.allclose(view.local_max, x[..., cut].max(axis=-1))


def test_batched_shapes_and_float32():
    cuts = uneven_cuts(3)
    x = rng.normal(size=(4, 2, VOCAB)).astype(np.float32)  # Megatron's [s, b, v]
    t = rng.integers(0, VOCAB, (4, 2))
    result = vocab_parallel_cross_entropy(shard(x, cuts), t)
    assert result.loss.dtype == np.float32 and all(g.dtype == np.float32 for g in result.grads)
    expected = cross_entropy(np.moveaxis(x, -1, 1), t)
    assert np.isclose(result.loss, expected, rtol=1e-6)


def test_float16_is_computed_wide_and_rounded_once():
    cuts = uneven_cuts(2)
    x = (rng.normal(size=(3, VOCAB)) * 4).astype(np.float16)
    t = rng.integers(0, VOCAB, 3)
    result = vocab_parallel_cross_entropy(shard(x, cuts), t)
    assert result.loss.dtype == np.float16
    assert result.loss == cross_entropy(x, t)  # (also computed in float64, rounded once)


def test_all_ignored_mean_is_nan_with_zero_gradient():
    cuts = uneven_cuts(3)
    result = vocab_parallel_cross_entropy(shard(LOGITS, cuts), np.full(7, -100))
    assert np.isnan(result.loss) and np.isnan(cross_entropy(LOGITS, np.full(7, -100)))
    assert not any(g.any() for g in result.grads)


def test_local_smoothing_with_one_rank_is_pytorch_with_alpha():
    eps = 0.1
    alpha = eps * VOCAB / (VOCAB - 1)
    result = vocab_parallel_cross_entropy([LOGITS], TARGET, label_smoothing=eps,
                                          smoothing="local", reduction="sum")
    assert np.allclose(result.loss, [cross_entropy(LOGITS, TARGET, reduction="sum",
                                                   label_smoothing=alpha)], rtol=1e-13)
    assert np.allclose(result.grads[0], cross_entropy_grad(LOGITS, TARGET, reduction="sum",
                                                           label_smoothing=alpha), rtol=1e-12)


def test_local_smoothing_differs_between_ranks_and_from_pytorch():
    cuts = uneven_cuts(3)
    result = vocab_parallel_cross_entropy(shard(LOGITS, cuts), TARGET, label_smoothing=0.2,
                                          smoothing="local", reduction="none")
    assert result.loss.shape == (3, 7)
    assert not np.allclose(result.loss[0], result.loss[1])
    assert not np.allclose(result.loss[0], cross_entropy(LOGITS, TARGET, reduction="none",
                                                         label_smoothing=0.2))
    no_smoothing = vocab_parallel_cross_entropy(shard(LOGITS, cuts), TARGET, smoothing="local")
    assert np.allclose(no_smoothing.loss, cross_entropy(LOGITS, TARGET), rtol=1e-13)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_megatron_gradient_is_each_ranks_own_loss_differentiated(k):
    cuts = uneven_cuts(k, 11)
    x = rng.normal(size=(3, 2, 11))
    t = rng.integers(0, 11, (3, 2))
    g = rng.normal(size=(3, 2))
    grads = megatron.vocab_parallel_cross_entropy_grad(shard(x, cuts), t, 0.1, g)
    for r in range(k):
        def rank_loss(piece, r=r):
            pieces = shard(x, cuts)
            pieces[r] = piece
            return float(np.sum(g * megatron.vocab_parallel_cross_entropy(pieces, t, 0.1)[r]))

        assert relative_error(grads[r], numerical_gradient(rank_loss, x[..., cuts[r]])) < BOUND


def test_megatron_argument_checks():
    with pytest.raises(ValueError, match="label_smoothing"):
        megatron.vocab_parallel_cross_entropy([LOGITS], np.maximum(TARGET, 0), 1.0)
    with pytest.raises(ValueError, match="out of range"):  # Megatron has no ignore_index
        megatron.vocab_parallel_cross_entropy([LOGITS], TARGET)
    with pytest.raises(ValueError, match="single class"):
        vocab_parallel_cross_entropy([LOGITS[:, :1], LOGITS[:, 1:]], np.maximum(TARGET, 0),
                                     label_smoothing=0.1, smoothing="local")
    with pytest.raises(ValueError, match="shards"):
        vocab_parallel_cross_entropy([LOGITS[:, :3], LOGITS[:5, 3:]], TARGET)
    with pytest.raises(TypeError, match="shards"):
        vocab_parallel_cross_entropy(LOGITS, TARGET)


# ---------------------------------------------------------------------------------------
# Gradient accumulation
# ---------------------------------------------------------------------------------------


def micro_batches():
    """Three micro-batches with different numbers of kept tokens (5, 2 and 4 of 5)."""
    x = rng.normal(size=(15, 6))
    t = rng.integers(0, 6, 15)
    t[[5, 6, 8]] = -100
    t[13] = -100
    return x, t, [(x[i:i + 5], t[i:i + 5]) for i in (0, 5, 10)]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_global_divisor_is_the_full_batch_mean(weighted, label_smoothing):
    weight = rng.random(6) + 0.5 if weighted else None
    x, t, parts = micro_batches()
    options = dict(weight=weight, label_smoothing=label_smoothing)
    step = accumulated_cross_entropy(parts, **options, grad_output=0.8)
    assert np.isclose(step.loss, cross_entropy(x, t, **options), rtol=1e-13)
    assert np.allclose(np.concatenate(step.grads),
                       cross_entropy_grad(x, t, **options, grad_output=0.8), rtol=1e-12)
    assert np.isclose(sum(step.counts), mean_denominator(x, t, weight))


def test_per_micro_batch_means_differ_when_counts_differ():
    x, t, parts = micro_batches()
    step = accumulated_cross_entropy(parts, divisor="per_micro_batch")
    means = [cross_entropy(a, b) for a, b in parts]
    assert np.isclose(step.loss, np.mean(means), rtol=1e-13)
    assert not np.isclose(step.loss, cross_entropy(x, t), rtol=1e-6)
    assert np.allclose(step.grads[1], cross_entropy_grad(*parts[1]) / 3, rtol=1e-13)
    assert step.counts == (5.0, 2.0, 4.0)
    text = step.explain()
    assert "(x1 + x2 + x3) / (n1 + n2 + n3)" in text and "they differ" in text
    assert str(step) == text


def test_equal_counts_agree():
    x = rng.normal(size=(8, 5))
    t = rng.integers(0, 5, 8)
    step = accumulated_cross_entropy([(x[:4], t[:4]), (x[4:], t[4:])])
    assert np.isclose(step.global_mean, step.per_micro_batch_mean, rtol=1e-13)
    assert "equal" in step.explain().splitlines()[-1]


def test_accumulation_argument_checks():
    with pytest.raises(ValueError, match="divisor"):
        accumulated_cross_entropy([(LOGITS, TARGET)], divisor="local")
    with pytest.raises(TypeError, match="micro_batches"):
        accumulated_cross_entropy([])
