r"""Vocab-parallel cross-entropy: the loss over a vocabulary split across k ranks.

Tensor parallelism splits the output layer's vocabulary over k devices; rank
:math:`r` holds the logits of classes :math:`[v_r, v_{r+1})` only, and the
cross-entropy is assembled from three all-reduces of one number per token
(Megatron-LM's ``vocab_parallel_cross_entropy``):

1. ``MAX`` of the local maxima: :math:`M = \max_r m_r`, :math:`m_r = \max_{c \in r} x_c`;
2. ``SUM`` of the local sums :math:`s_r = \sum_{c \in r} e^{x_c - M}`: :math:`S = \sum_r s_r`;
3. ``SUM`` of the target's shifted logit :math:`x_t - M`, which only the rank holding
   the target contributes (the others send 0).

Then :math:`-\log p_t = \log S - (x_t - M)` on every rank, and rank :math:`r`'s
gradient is its slice of softmax minus one-hot, :math:`p_c - [c = t]` for
:math:`c \in r` with :math:`p_c = e^{x_c - M} / S`: no rank ever holds the whole
vocabulary, and the answer is :func:`xent_ref.cross_entropy.cross_entropy` of the
concatenated logits.

Label smoothing has two formulas:

* ``smoothing="global"`` (PyTorch's, over the whole vocabulary :math:`V`):
  :math:`\ell = (1-\varepsilon)(-\log p_t) + \frac{\varepsilon}{V}\sum_c(-\log p_c)`, with
  :math:`\sum_c -\log p_c = V \log S - \sum_r \sum_{c \in r}(x_c - M)` -- a fourth
  all-reduce (``SUM`` of each rank's shifted-logit sum). Gradient
  :math:`p - (1-\varepsilon)[c = t] - \varepsilon / V`.
* ``smoothing="local"`` (Megatron-LM's): each rank uses its own vocabulary size
  :math:`K = V_r` and mean, :math:`\alpha = \varepsilon K / (K - 1)`,
  :math:`\ell_r = (1-\alpha)(-\log p_t) - \alpha\,\frac{1}{K}\sum_{c \in r} \log p_c`,
  no extra all-reduce. The ranks' losses then differ from each other (and from
  PyTorch's); with one rank it is PyTorch's smoothing with :math:`\alpha` in place of
  :math:`\varepsilon` (:math:`\alpha K/(K-1)` puts :math:`\varepsilon` of the mass on the
  :math:`K - 1` wrong classes rather than on all :math:`K`). Rank :math:`r`'s gradient
  (of its own loss, on its own shard) is :math:`p - (1-\alpha)[c = t] - \alpha / K`.

The vocabulary is the last axis of every shard (Megatron's ``[s, b, v / k]``);
shards may have different sizes. Ignored targets (``ignore_index``) get loss 0
and gradient 0; ``mean`` divides by the kept count, as PyTorch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.blocks import library_errstate
from xent_ref._engine.lowprec import COMPUTE_DTYPE, low_precision_dtype, round_once
from xent_ref._engine.reduce import per_sample_scale, reduce

SMOOTHING = ("global", "local")


@dataclass(frozen=True)
class RankView:
    """What rank ``rank`` computes and sends, per token (the target's shape)."""

    rank: int
    vocab_start: int
    vocab_end: int
    local_max: np.ndarray  # m_r, sent to the MAX all-reduce
    local_sum_exp: np.ndarray  # s_r = sum over the shard of exp(x - M), after that all-reduce
    target_logit: np.ndarray  # x_t - M where the target is on this rank, else 0
    local_logit_sum: np.ndarray  # sum over the shard of (x - M), for global smoothing
    loss: np.ndarray  # the per-token loss this rank ends with


@dataclass(frozen=True)
class VocabParallelResult:
    """The loss, the all-reduced values, every rank's view and every shard's gradient.

    ``loss`` is reduced as asked. With ``smoothing="local"`` every rank has its own
    loss: ``loss`` then has a leading axis of the k ranks.
    """

    loss: np.ndarray
    grads: tuple | None  # one gradient per shard, the shard's shape
    ranks: tuple  # of RankView
    global_max: np.ndarray  # M
    global_sum_exp: np.ndarray  # S
    target_logit: np.ndarray  # x_t - M, all-reduced
    logit_sum: np.ndarray  # sum over the vocabulary of (x - M), all-reduced


def _shards(shards, target, ignore_index):
    """The shards as float arrays of one dtype and lead shape; targets checked in range."""
    if isinstance(shards, np.ndarray) or not len(shards):
        raise TypeError("shards: expected a non-empty list of arrays, one per rank")
    arrays = [checks.as_input(s, f"shards[{r}]") for r, s in enumerate(shards)]
    lead = arrays[0].shape[:-1]
    for r, a in enumerate(arrays):
        if a.shape[:-1] != lead or a.dtype != arrays[0].dtype:
            raise ValueError(f"shards[{r}]: shape {a.shape}, dtype {a.dtype}; every shard needs "
                             f"the lead shape {lead} and dtype {arrays[0].dtype}")
        if a.shape[-1] == 0:
            raise ValueError(f"shards[{r}]: an empty vocabulary slice")
    sizes = [a.shape[-1] for a in arrays]
    vocab = int(sum(sizes))
    target = checks.as_array(target, "target")
    if target.dtype.kind not in "iu":
        raise TypeError(f"target: expected integer class indices, got dtype {target.dtype}")
    if target.shape != lead:
        raise ValueError(f"target: expected shape {lead}, got shape {target.shape}")
    bad = (target != ignore_index) & ((target < 0) | (target >= vocab))
    if bad.any():
        raise ValueError(f"target: class index {int(target[bad].flat[0])} is out of range "
                         f"for a vocabulary of {vocab}")
    return arrays, np.cumsum([0] + sizes), target.astype(np.int64)


def vocab_parallel_cross_entropy(shards, target, *, ignore_index=-100, reduction="mean",
                                 label_smoothing=0.0, smoothing="global", grad_output=None,
                                 with_grad=True) -> VocabParallelResult:
    r"""The cross-entropy of logits split by vocabulary into ``shards``, as k ranks compute it.

    ``shards[r]`` is rank r's ``(..., V_r)`` slice of the vocabulary (consecutive
    slices, in order); ``target`` the ``(...)`` class indices into the whole
    vocabulary. Returns a :class:`VocabParallelResult`: the loss, the all-reduced
    :math:`M`, :math:`S` and :math:`x_t - M`, each rank's :class:`RankView`, and (with
    ``with_grad``) each shard's gradient, for the upstream ``grad_output``. See the
    module docstring for the formulas and both ``smoothing`` choices.

    Two ranks, the target on the second:

    >>> result = vocab_parallel_cross_entropy([[[0.0, 1.0]], [[2.0]]], [2])
    >>> round(float(result.loss), 10), float(result.global_max[0]), result.ranks[0].target_logit
    (0.4076059644, 2.0, array([0.]))
    >>> [g.round(4) for g in result.grads]
    [array([[0.09  , 0.2447]]), array([[-0.3348]])]
    """
    ignore_index = checks.check_ignore_index(ignore_index)
    reduction = checks.check_reduction(reduction)
    eps = checks.check_label_smoothing(label_smoothing)
    if smoothing not in SMOOTHING:
        raise ValueError(f"smoothing: expected one of {SMOOTHING}, got {smoothing!r}")
    arrays, bounds, target = _shards(shards, target, ignore_index)
    low = low_precision_dtype(arrays[0])
    if low is not None:  # computed in float64, every output rounded once
        arrays = [a.astype(COMPUTE_DTYPE) for a in arrays]
    if smoothing == "local" and eps and min(np.diff(bounds)) == 1:
        raise ValueError("shards: local smoothing divides by K - 1, so no shard may hold "
                         "a single class")
    with library_errstate():
        result = _vocab_parallel(arrays, bounds, target, ignore_index, reduction, eps,
                                 smoothing, grad_output, with_grad)
    return result if low is None else _rounded(result, low)


def _vocab_parallel(arrays, bounds, target, ignore_index, reduction, eps, smoothing,
                    grad_output, with_grad) -> VocabParallelResult:
    kept = target != ignore_index
    t = np.where(kept, target, -1)  # an ignored token's target is on no rank
    local_max = [a.max(axis=-1) for a in arrays]
    m = np.max(local_max, axis=0)  # all-reduce MAX
    shifted = [a - m[..., None] for a in arrays]
    local_sum_exp = [np.exp(s).sum(axis=-1) for s in shifted]
    s_total = np.sum(local_sum_exp, axis=0)  # all-reduce SUM
    on_rank = [(t >= lo) & (t < hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    target_local = [np.where(on, np.take_along_axis(s, np.where(on, t - lo, 0)[..., None],
                                                    axis=-1)[..., 0], 0.0)
                    for s, on, lo in zip(shifted, on_rank, bounds)]
    x_t = np.sum(target_local, axis=0)  # all-reduce SUM
    local_logit_sum = [s.sum(axis=-1) for s in shifted]
    logit_sum = np.sum(local_logit_sum, axis=0)  # all-reduce SUM (global smoothing only)
    log_s = np.log(s_total)
    nll = log_s - x_t
    vocab = int(bounds[-1])
    coefficients = _smoothing_coefficients(eps, smoothing, np.diff(bounds), vocab)
    losses = []
    for (keep, spread), k, local_sum in zip(coefficients, np.diff(bounds), local_logit_sum):
        if smoothing == "global":  # (eps / V) sum_c -log p_c = eps (log S - sum_c (x_c - M) / V)
            smooth = log_s - logit_sum / vocab
        else:  # -alpha mean_{c in r} log p_c = alpha (log S - sum_{c in r} (x_c - M) / K)
            smooth = log_s - local_sum / k
        loss = keep * nll + (spread * (k if smoothing == "local" else vocab)) * smooth
        losses.append(np.where(kept, loss, 0.0).astype(arrays[0].dtype, copy=False))
    count = int(np.count_nonzero(kept))
    reduced = [reduce(loss, reduction, count) for loss in losses]
    grads = None
    if with_grad:
        g = checks.grad_output(grad_output, reduction, target.shape, arrays[0].dtype)
        scale = np.where(kept, per_sample_scale(g, reduction, count), 0.0)[..., None]
        grads = tuple(_shard_grad(s, s_total, on, t - lo, keep, spread, scale)
                      for s, on, lo, (keep, spread) in zip(shifted, on_rank, bounds,
                                                           coefficients))
    views = tuple(RankView(r, int(lo), int(hi), *values) for r, (lo, hi, *values) in
                  enumerate(zip(bounds[:-1], bounds[1:], local_max, local_sum_exp,
                                target_local, local_logit_sum, losses)))
    loss = reduced[0] if smoothing == "global" else np.stack(reduced)
    return VocabParallelResult(loss, grads, views, m, s_total, x_t, logit_sum)


def _smoothing_coefficients(eps: float, smoothing: str, sizes, vocab: int):
    r"""Per rank ``(keep, spread)``: the target mass is ``keep`` and every class of the
    shard gets ``spread`` (:math:`(1-\varepsilon, \varepsilon/V)` globally, :math:`(1-\alpha,
    \alpha/K)` with :math:`\alpha = \varepsilon K / (K - 1)` locally)."""
    if smoothing == "global" or not eps:
        return [(1.0 - eps, eps / vocab)] * len(sizes)
    alphas = [eps * int(k) / (int(k) - 1) for k in sizes]
    return [(1.0 - alpha, alpha / int(k)) for alpha, k in zip(alphas, sizes)]


def _shard_grad(shifted, s_total, on_rank, local_t, keep, spread, scale) -> np.ndarray:
    r"""One shard's :math:`s\,(p - \text{keep}\,[c = t] - \text{spread})`."""
    grad = np.exp(shifted) / s_total[..., None]
    if spread:
        grad -= spread
    index = np.where(on_rank, local_t, 0)[..., None]
    at_target = np.take_along_axis(grad, index, axis=-1)
    np.put_along_axis(grad, index, np.where(on_rank[..., None], at_target - keep, at_target),
                      axis=-1)
    return grad * scale


def _rounded(result: VocabParallelResult, dtype) -> VocabParallelResult:
    """Every array of ``result`` rounded once from float64 to ``dtype``."""
    def one(value):
        return round_once(value, dtype) if isinstance(value, np.ndarray) else value

    views = tuple(RankView(v.rank, v.vocab_start, v.vocab_end,
                           *(one(getattr(v, f)) for f in ("local_max", "local_sum_exp",
                                                          "target_logit", "local_logit_sum",
                                                          "loss"))) for v in result.ranks)
    grads = None if result.grads is None else tuple(one(g) for g in result.grads)
    return VocabParallelResult(one(result.loss), grads, views, one(result.global_max),
                               one(result.global_sum_exp), one(result.target_logit),
                               one(result.logit_sum))
