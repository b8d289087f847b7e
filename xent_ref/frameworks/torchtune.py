r"""torchtune's chunked cross-entropies (``torchtune.modules.loss``), with their gradients.

Both sum PyTorch's ``cross_entropy(reduction="sum")`` over chunks of the
sequence (to upcast one chunk at a time to float32) and divide by the number of
kept tokens of the whole batch -- the same number as one ``mean`` over the
batch, except when **every token is ignored**:

* :func:`linear_cross_entropy_loss` (``LinearCrossEntropyLoss``, which applies the
  output projection chunk by chunk) returns **0** then, not nan: it skips the
  division so that data-parallel ranks without a single label still take part in
  the step with a zero loss and zero gradients;
* :func:`chunked_cross_entropy` (``CEWithChunkedOutputLoss``, deprecated in favour
  of the first, over a list of logit chunks) divides anyway: 0/0 = nan, as
  PyTorch's ``mean``.

Shapes are torchtune's: hidden states ``[batch, seq, embed]``, logits
``[batch, seq / chunks, vocab]`` per chunk, targets ``[batch, seq]``; the
chunks are ``tensor_split`` along the sequence (axis 1). No weights, no smoothing.
torchtune computes the loss in float32; here in the inputs' dtype.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad
from xent_ref.linear import linear_cross_entropy, linear_cross_entropy_grad


def _targets(targets, ignore_index):
    targets = checks.as_array(targets, "targets")
    if targets.ndim != 2:
        raise ValueError(f"targets: expected [batch, seq], got shape {targets.shape}")
    return targets, checks.check_ignore_index(ignore_index)


def _divisor(targets, ignore_index) -> int:
    """The kept tokens of the whole batch, or 1 when there are none (torchtune's 0)."""
    return max(int(np.count_nonzero(targets != ignore_index)), 1)


def _hidden_chunks(outputs, targets, num_output_chunks):
    outputs = checks.as_input(outputs, "outputs")
    if outputs.ndim != 3 or outputs.shape[:2] != targets.shape:
        raise ValueError(f"outputs: expected [batch, seq, embed] for targets of shape "
                         f"{targets.shape}, got shape {outputs.shape}")
    count = checks.check_count(num_output_chunks, "num_output_chunks", minimum=1)
    return outputs, list(zip(np.array_split(outputs, count, axis=1),
                             np.array_split(targets, count, axis=1)))


def linear_cross_entropy_loss(outputs, linear_weight, targets, *, linear_bias=None,
                              num_output_chunks=8, ignore_index=-100):
    r"""``LinearCrossEntropyLoss``: :math:`\sum_{\text{chunks}} \sum_i \ell_i / n_{\text{kept}}`,
    0 when :math:`n_{\text{kept}} = 0`, with logits :math:`h W^\top + b` of each chunk.

    >>> import numpy as np
    >>> from xent_ref.frameworks.torchtune import linear_cross_entropy_loss
    >>> h, W = np.zeros((1, 4, 3)), np.ones((5, 3))
    >>> round(float(linear_cross_entropy_loss(h, W, [[0, 1, 2, -100]], num_output_chunks=2)), 4)
    1.6094
    >>> float(linear_cross_entropy_loss(h, W, [[-100] * 4]))
    0.0
    """
    targets, ignore_index = _targets(targets, ignore_index)
    outputs, chunks = _hidden_chunks(outputs, targets, num_output_chunks)
    total = np.zeros((), outputs.dtype)
    for hidden, target in chunks:
        if hidden.size:
            total = total + linear_cross_entropy(
                hidden.reshape(-1, hidden.shape[-1]), linear_weight, target.reshape(-1),
                linear_bias=linear_bias, reduction="sum", ignore_index=ignore_index)
    return np.asarray(total / _divisor(targets, ignore_index), outputs.dtype)


def linear_cross_entropy_loss_grad(outputs, linear_weight, targets, *, linear_bias=None,
                                   num_output_chunks=8, ignore_index=-100, grad_output=None):
    r"""``(grad_outputs, grad_linear_weight, grad_linear_bias)`` of
    :func:`linear_cross_entropy_loss`: :func:`xent_ref.linear.linear_cross_entropy_grad`
    of each chunk's ``sum``, divided by the kept count (all zeros when nothing is kept;
    ``grad_linear_bias`` is ``None`` without a bias).

    >>> import numpy as np
    >>> from xent_ref.frameworks.torchtune import linear_cross_entropy_loss_grad
    >>> dh, dW, db = linear_cross_entropy_loss_grad(np.zeros((1, 1, 2)), np.eye(2), [[0]])
    >>> dh, dW, db
    (array([[[-0.5,  0.5]]]), array([[0., 0.],
           [0., 0.]]), None)
    """
    targets, ignore_index = _targets(targets, ignore_index)
    outputs, chunks = _hidden_chunks(outputs, targets, num_output_chunks)
    g = checks.grad_output(grad_output, "sum", (), outputs.dtype) / _divisor(targets,
                                                                            ignore_index)
    grad_outputs, grad_weight, grad_bias = [], 0.0, 0.0 if linear_bias is not None else None
    for hidden, target in chunks:
        if not hidden.size:
            grad_outputs.append(hidden.copy())
            continue
        dh, dw, db = linear_cross_entropy_grad(
            hidden.reshape(-1, hidden.shape[-1]), linear_weight, target.reshape(-1),
            linear_bias=linear_bias, reduction="sum", ignore_index=ignore_index,
            grad_output=g)
        grad_outputs.append(dh.reshape(hidden.shape))
        grad_weight = grad_weight + dw
        grad_bias = None if db is None else grad_bias + db
    return np.concatenate(grad_outputs, axis=1), grad_weight, grad_bias


def _logit_chunks(logits, targets):
    if isinstance(logits, np.ndarray) or not len(logits):
        raise TypeError("logits: expected a non-empty list of chunks [batch, seq / chunks, vocab]")
    chunks = [checks.as_input(chunk, f"logits[{i}]") for i, chunk in enumerate(logits)]
    labels = np.array_split(targets, len(chunks), axis=1)
    for i, (chunk, label) in enumerate(zip(chunks, labels)):
        if chunk.ndim != 3 or chunk.shape[:2] != label.shape:
            raise ValueError(f"logits[{i}]: expected [batch, {label.shape[1]}, vocab], "
                             f"got shape {chunk.shape}")
    return chunks, labels


def chunked_cross_entropy(logits, labels, *, ignore_index=-100):
    r"""``CEWithChunkedOutputLoss``: :math:`\sum_{\text{chunks}} \sum_i \ell_i / n_{\text{kept}}`,
    nan when nothing is kept. ``logits`` is the list of chunks.

    >>> import numpy as np
    >>> from xent_ref.frameworks.torchtune import chunked_cross_entropy
    >>> chunks = [np.zeros((1, 1, 2)), np.zeros((1, 1, 2))]
    >>> float(chunked_cross_entropy(chunks, [[0, -100]]))
    0.6931471805599453
    >>> float(chunked_cross_entropy(chunks, [[-100, -100]]))
    nan
    """
    labels, ignore_index = _targets(labels, ignore_index)
    chunks, parts = _logit_chunks(logits, labels)
    total = sum(cross_entropy(np.moveaxis(c, -1, 1), t, ignore_index=ignore_index,
                              reduction="sum") for c, t in zip(chunks, parts))
    kept = int(np.count_nonzero(labels != ignore_index))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.float64(total) / kept, chunks[0].dtype)


def chunked_cross_entropy_grad(logits, labels, *, ignore_index=-100, grad_output=None):
    r"""Gradient of :func:`chunked_cross_entropy`, one array per chunk:
    :math:`g\,(p - \mathrm{onehot}(t)) / n_{\text{kept}}` on kept tokens, 0 on ignored
    ones -- all zeros when nothing is kept, although the loss is nan then (PyTorch's
    autograd gives the same zeros: an ignored token's gradient is 0 whatever the scale).

    >>> import numpy as np
    >>> from xent_ref.frameworks.torchtune import chunked_cross_entropy_grad
    >>> chunked_cross_entropy_grad([np.zeros((1, 1, 2)), np.zeros((1, 1, 2))], [[0, -100]])
    [array([[[-0.5,  0.5]]]), array([[[0., 0.]]])]
    """
    labels, ignore_index = _targets(labels, ignore_index)
    chunks, parts = _logit_chunks(logits, labels)
    kept = int(np.count_nonzero(labels != ignore_index))
    g = checks.grad_output(grad_output, "sum", (), chunks[0].dtype) / max(kept, 1)
    return [np.moveaxis(cross_entropy_grad(np.moveaxis(c, -1, 1), t, ignore_index=ignore_index,
                                           reduction="sum", grad_output=g), 1, -1)
            for c, t in zip(chunks, parts)]
