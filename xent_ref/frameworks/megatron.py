r"""Megatron-LM's ``tensor_parallel.vocab_parallel_cross_entropy``, over a list of shards.

Megatron calls it on each tensor-parallel rank with that rank's slice of the
logits, ``[sequence, batch, vocab / k]``, and the full ``[sequence, batch]``
targets; the ranks meet in three all-reduces (see :mod:`xent_ref.parallel`). Here
the k ranks are simulated: ``vocab_parallel_logits`` is the list of their slices.

Where it differs from ``torch.nn.functional.cross_entropy(..., reduction="none")``:

* **label smoothing is local**: each rank smooths with its own vocabulary size
  :math:`K = V / k`, :math:`\alpha = \varepsilon K / (K - 1)`, and its own mean of the
  log-probabilities, :math:`\ell_r = (1-\alpha)(-\log p_t) - \frac{\alpha}{K}
  \sum_{c \in r} \log p_c`. So with k > 1 the ranks return different losses, none
  of them PyTorch's; with k = 1 it is PyTorch's smoothing with :math:`\alpha = \varepsilon
  V/(V-1)` instead of :math:`\varepsilon`. Megatron requires :math:`0 \le \varepsilon < 1`.
* no reduction, no ``ignore_index``, no class weights: the caller masks the
  per-token losses (Megatron's ``loss_mask``) and divides;
* Megatron computes in float32 (``logits.float()``), so bfloat16 logits give a
  float32 loss; here the result has the logits' dtype (computed in float64 and
  rounded once).

Each shard's gradient is the derivative of its rank's loss with respect to that
shard, :math:`g\,(p - (1-\alpha)[c = t] - \alpha/K)`: what Megatron's backward returns.
"""

from __future__ import annotations

import numpy as np

from xent_ref.parallel import vocab_parallel_cross_entropy as _parallel

# Megatron has no ignore index: every target is a class (checked in range).
_NO_IGNORE = -(2**63)


def _checked_smoothing(label_smoothing) -> float:
    value = float(label_smoothing)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"label_smoothing: Megatron needs 0 <= label_smoothing < 1, "
                         f"got {label_smoothing!r}")
    return value


def vocab_parallel_cross_entropy(vocab_parallel_logits, target, label_smoothing=0.0):
    r"""The per-token losses each rank returns: an array ``(k, *target.shape)``.

    One token (``[s, b] = [1, 1]``), a vocabulary of 4 on two ranks. Without
    smoothing both ranks return :math:`\log S - (x_t - M)`; with it, each its own:

    >>> from xent_ref.frameworks.megatron import vocab_parallel_cross_entropy
    >>> shards = [[[[2.0, 0.0]]], [[[0.0, 0.0]]]]
    >>> vocab_parallel_cross_entropy(shards, [[0]]).ravel().round(4)
    array([0.3408, 0.3408])
    >>> vocab_parallel_cross_entropy(shards, [[0]], 0.1).ravel().round(4)
    array([0.5408, 0.7408])
    """
    eps = _checked_smoothing(label_smoothing)
    result = _parallel(vocab_parallel_logits, target, ignore_index=_NO_IGNORE, reduction="none",
                       label_smoothing=eps, smoothing="local", with_grad=False)
    return np.stack([view.loss for view in result.ranks])


def vocab_parallel_cross_entropy_grad(vocab_parallel_logits, target, label_smoothing=0.0,
                                      grad_output=None):
    r"""Each shard's gradient, for the upstream ``grad_output`` (the target's shape,
    the same on every rank): :math:`g\,(p - (1-\alpha)[c = t] - \alpha / K)`.

    >>> from xent_ref.frameworks.megatron import vocab_parallel_cross_entropy_grad
    >>> [g.round(4) for g in vocab_parallel_cross_entropy_grad([[0.0, 0.0], [0.0, 0.0]], 3)]
    [array([0.25, 0.25]), array([ 0.25, -0.75])]
    """
    eps = _checked_smoothing(label_smoothing)
    result = _parallel(vocab_parallel_logits, target, ignore_index=_NO_IGNORE, reduction="none",
                       label_smoothing=eps, smoothing="local", grad_output=grad_output)
    return list(result.grads)
