r"""Per-token statistics of a cross-entropy call: what LLM trainers log beside the loss.

For each token, on the *transformed* logits :math:`z` (``logit_scale``, then
``softcap``: :mod:`xent_ref.llm_options`), with :math:`p = \operatorname{softmax}(z)`:

* ``lse`` :math:`= \operatorname{lse}(z) = \log \sum_c e^{z_c}` (Cut Cross-Entropy's output);
* ``loss``, the token's loss as ``reduction="none"`` gives it (cross-entropy, class
  weights and smoothing included, plus the z-loss term), 0 where ignored;
* ``z_loss`` :math:`= \lambda \operatorname{lse}(z)^2` on kept tokens, 0 where ignored
  (Liger's ``return_z_loss``);
* ``target_logprob`` :math:`= \log p_t = z_t - \operatorname{lse}(z)`, 0 where ignored; for
  probability targets :math:`\sum_c y_c \log p_c` (unweighted, unsmoothed);
* ``entropy`` :math:`= -\sum_c p_c \log p_c = \operatorname{lse}(z) - \langle p, z \rangle`
  of the softmax the loss uses (0 log 0 taken as 0), as RL trainers log it;
* ``argmax``, the predicted class: the **first** maximal index of :math:`z`, as Liger,
  ``torch.argmax`` and ``np.argmax`` break ties (a softcap makes ties: ``c tanh(u)``
  rounds to ``c`` for every large logit);
* ``correct`` = ``argmax == target`` on kept tokens (False where ignored); for
  probability targets, ``argmax == `` the target's first maximal index;
* ``kept``, the tokens that count.

``lse``, ``entropy`` and ``argmax`` do not depend on the target and are given for
every token, ignored ones too. The reduced loss (exactly :func:`xent_ref.cross_entropy`'s
answer for the call's ``reduction``) and the reduced z-loss (the z-loss part alone, over
its own denominator: the number of kept tokens for ``mean``) come separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref import llm_options
from xent_ref._engine.lowprec import computed_wide
from xent_ref._engine.reduce import reduce
from xent_ref.cross_entropy import cross_entropy_parts, prepare
from xent_ref.linear import prepare_linear

# The statistics make several block-sized arrays per block (the transformed logits,
# their softmax, the entropy's terms), so their blocks stay smaller than the loss's.
STATS_BLOCK = 1 << 18

FIELDS = ("lse", "loss", "z_loss", "target_logprob", "entropy", "argmax", "correct", "kept")


@dataclass(frozen=True)
class TokenStats:
    """Per-token statistics (each the loss's ``reduction="none"`` shape) and the two reduced
    losses (0-d, or per token for ``reduction="none"``); see :mod:`xent_ref.stats`."""

    lse: np.ndarray
    loss: np.ndarray
    z_loss: np.ndarray
    target_logprob: np.ndarray
    entropy: np.ndarray
    argmax: np.ndarray  # int64, the first maximal index
    correct: np.ndarray  # bool
    kept: np.ndarray  # bool
    reduced_loss: np.ndarray
    reduced_z_loss: np.ndarray


def token_stats(call, kept) -> tuple:
    """The per-token statistics (in :data:`FIELDS` order) of a prepared call
    (:func:`xent_ref.cross_entropy.prepare`, or a chunk of one) with loss-shaped ``kept``,
    plus the cross-entropy part of the loss: ``(*stats, ce)``."""
    logits = call.logits.reshape(call.input_shape)
    z, _ = llm_options.transform(logits, call.options)
    axis = 0 if z.ndim == 1 else 1
    lse, probs = llm_options.lse_and_probs(z, axis)
    log_probs = z - np.expand_dims(lse, axis)
    # -sum_c p_c log p_c, a class with p = 0 adding 0 (not 0 * -inf; a nan row stays nan)
    entropy = -np.where(probs == 0, 0, probs * log_probs).sum(axis=axis)
    argmax = np.argmax(z, axis=axis)  # the first maximal index (nan counts as maximal)
    ce, zl, _, _ = cross_entropy_parts(call, kept)
    target = call.target.reshape(z.shape if call.probabilities else kept.shape)
    if call.probabilities:
        target_logprob = (target * log_probs).sum(axis=axis)
        correct = argmax == np.argmax(target, axis=axis)
    else:
        t = np.expand_dims(np.where(kept, target, 0), axis)
        target_logprob = np.where(kept, np.take_along_axis(log_probs, t, axis=axis)
                                  .squeeze(axis), 0)
        correct = (argmax == target) & kept
    dtype = call.logits.dtype
    floats = (np.asarray(part, dtype) for part in (lse, ce + zl, zl, target_logprob, entropy))
    return (*floats, np.asarray(argmax, np.int64), np.asarray(correct), np.asarray(kept),
            np.asarray(ce, dtype))


def _reduced(call, kept, ce, zl):
    """``(reduced_loss, reduced_z_loss)``, each part over its own denominator."""
    ce_den, z_den = llm_options.denominators(kept, call.denominator, call.probabilities)
    dtype = call.logits.dtype
    loss = llm_options.reduce_parts(ce, zl, call.reduction, ce_den, z_den, dtype)
    return loss, reduce(np.asarray(zl, dtype), call.reduction, z_den)


def _in_chunks(call, kept, n: int, rows: int, chunk_logits) -> list:
    """The statistics of ``n`` rows, ``rows`` at a time: chunk ``c`` is the call on
    ``chunk_logits(c)`` (:meth:`~xent_ref.cross_entropy.PreparedCall.chunk`), so the
    vocabulary-sized temporaries of :func:`token_stats` are a chunk's, never the batch's."""
    stats = None
    for start in range(0, max(n, 1), rows):  # (an empty batch: one empty chunk)
        c = slice(start, min(start + rows, n))
        chunk_stats = token_stats(call.chunk(c, chunk_logits(c)), kept[c])
        if stats is None:
            stats = [np.empty(kept.shape, part.dtype) for part in chunk_stats]
        for whole, part in zip(stats, chunk_stats):
            whole[c] = part
    return stats


@computed_wide("target", "weight")
def _cross_entropy_stats(input, target, weight, ignore_index, reduction, label_smoothing,
                         logit_scale, softcap, z_loss) -> tuple:
    options = llm_options.Options.checked(logit_scale, softcap, z_loss)
    call = prepare(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=label_smoothing, options=options)
    kept = call.kept().reshape(call.loss_shape)
    if len(call.input_shape) < 2:  # one sample
        *stats, ce = token_stats(call, kept)
    else:  # blocks of whole samples, as the loss takes them: (N, C, S) rows
        n, n_classes, positions = call.logits.shape
        rows = max(1, STATS_BLOCK // max(1, n_classes * positions))
        *stats, ce = (part.reshape(call.loss_shape) for part in
                      _in_chunks(call, call.kept(), n, rows, lambda c: call.logits[c]))
    return tuple(stats) + _reduced(call, kept, ce, stats[2])


def cross_entropy_stats(input, target, weight=None, ignore_index=-100, reduction="mean",
                        label_smoothing=0.0, *, logit_scale=1.0, softcap=None,
                        z_loss=0.0) -> TokenStats:
    r"""The per-token statistics of :func:`xent_ref.cross_entropy` (module docstring), its
    arguments exactly.

    The entropy is :math:`-\sum_c p_c \log p_c` with :math:`\log p = z - \operatorname{lse}(z)`
    (no ``log`` of a rounded probability), of the softmax of the transformed logits; a
    float16 or bfloat16 call is computed in float64 and each statistic rounded once.

    Examples
    --------
    >>> import xent_ref as xr
    >>> s = xr.cross_entropy_stats([[0.0, 0.0], [2.0, 0.0]], [1, 1])
    >>> s.argmax, s.correct, s.entropy.round(6), float(s.reduced_loss)
    (array([0, 0]), array([False, False]), array([0.693147, 0.365334]), 1.410037595801459)
    """
    return TokenStats(*_cross_entropy_stats(input, target, weight, ignore_index, reduction,
                                            label_smoothing, logit_scale, softcap, z_loss))


@computed_wide("linear_weight", "target", "linear_bias", "weight",
               same_dtype=("linear_weight", "linear_bias"))
def _linear_cross_entropy_stats(input, linear_weight, target, **kwargs) -> tuple:
    lin = prepare_linear(input, linear_weight, target, **kwargs)
    call, n = lin.call, lin.h.shape[0]
    kept = call.kept().reshape(lin.loss_shape)

    def chunk_logits(c):  # a chunk's logits, the only vocabulary-sized array
        logits = lin.h[c] @ lin.w.T
        if lin.b is not None:
            logits += lin.b
        return logits.reshape((-1,) + lin.out_features)

    stats = _in_chunks(call, kept, n, lin.rows, chunk_logits)
    *stats, ce = stats
    reduced = _reduced(call, kept, ce, stats[2])
    if len(lin.input_shape) == 1:  # one token: its statistics are 0-d
        stats = [part.reshape(()) for part in stats]
        reduced = tuple(r.reshape(()) for r in reduced)
    return tuple(stats) + reduced


def linear_cross_entropy_stats(input, linear_weight, target, *, linear_bias=None, weight=None,
                               reduction="mean", ignore_index=None, label_smoothing=0.0,
                               logit_scale=1.0, softcap=None, z_loss=0.0,
                               chunk_size=None) -> TokenStats:
    r"""The per-token statistics of :func:`xent_ref.linear_cross_entropy`, its arguments
    exactly, without the ``(N, V)`` logits: as the loss, a chunk of rows at a time (each
    chunk's logits :math:`h_c W^\top + b`, their statistics, then the next chunk), so the
    extra memory is a chunk's few vocabulary-sized arrays whatever ``N``.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> h = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    >>> W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    >>> s = xr.linear_cross_entropy_stats(h, W, [0, 1], chunk_size=1)
    >>> s.argmax, s.correct, round(float(s.reduced_loss), 10)
    (array([0, 3]), array([ True, False]), 0.8637641851)
    """
    return TokenStats(*_linear_cross_entropy_stats(
        input, linear_weight, target, linear_bias=linear_bias, weight=weight,
        reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
        logit_scale=logit_scale, softcap=softcap, z_loss=z_loss, chunk_size=chunk_size))
