r"""Linear cross-entropy: the last layer of a language model and its loss, fused.

A language model's head turns hidden states :math:`h` (``(N, H)``) into logits over
a vocabulary of :math:`V` tokens with one matrix product, and the loss follows:

.. math::

    x = h W^\top + b \quad (N \times V), \qquad L = \operatorname{cross\_entropy}(x, t).

At :math:`N = 8192` tokens and :math:`V = 128256` the logits alone take 4 GB in
float32, and their gradient as much again, although the loss needs only one
number per token. :func:`linear_cross_entropy` never forms them: it works through
the batch a chunk of rows at a time -- the chunk's logits, its losses, its logits
gradient :math:`G_c`, that gradient's share of the three parameter gradients --
so the extra memory is a chunk's, whatever :math:`N`.

The gradients follow from :math:`x_{ij} = \sum_k h_{ik} W_{jk} + b_j` and the
logits gradient :math:`G = \partial L / \partial x` (``cross_entropy_grad``):

.. math::

    \frac{\partial L}{\partial h_{ik}} = \sum_j G_{ij} W_{jk}, \qquad
    \frac{\partial L}{\partial W_{jk}} = \sum_i G_{ij} h_{ik}, \qquad
    \frac{\partial L}{\partial b_j} = \sum_i G_{ij},

that is :math:`dh = G W`, :math:`dW = G^\top h`, :math:`db = G^\top \mathbf{1}`. Rows
of :math:`G` are independent given the reduction's denominator, so a chunk's rows
give :math:`dh` for those rows and *add* their share to :math:`dW` and :math:`db`.
The denominator of ``reduction="mean"`` (the kept targets' total weight) is a sum
over all rows; it is computed from the targets first, then every chunk is scaled
by it.

Semantics are PyTorch 2.13's ``torch.nn.functional.linear_cross_entropy``, which is
defined as ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``;
the LLM options of :mod:`xent_ref.llm_options` apply to the logits as in
:func:`xent_ref.cross_entropy`. As there, ``linear_weight`` may be ``(V, d1, ..., dK, H)``
(the logits are then ``(N, V, d1, ..., dK)``: the products treat it as a matrix of
``V d1 ... dK`` rows, the loss as ``K`` extra axes), ``ignore_index=None`` is -100 for
class indices and may not be named with probability targets, and parameters of another
dtype than the input's are refused. PyTorch's ``options=`` (its own chunking strategy)
has no counterpart: ``chunk_size`` sets the rows per chunk, and the answer is the same
for every chunking up to the rounding of the sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref import llm_options
from xent_ref._engine import checks
from xent_ref._engine.blocks import row_blocks
from xent_ref._engine.lowprec import computed_wide, rounding_to
from xent_ref.cross_entropy import PreparedCall, cross_entropy_parts, prepare, split_mean

# Rows per chunk, by default: about this many bytes of logits at a time, or a quarter of
# linear_weight's bytes if that is more. Matrix products of a few rows run far below the
# machine's speed, and every chunk adds its share to all of dW (a pass over V x H
# numbers), so a chunk is as large as the memory budget allows: one chunk (the logits,
# then their gradient in the same buffer) is the only vocabulary-sized array, and at a
# quarter of W it keeps the peak near 1.2x the inputs plus gradients.
CHUNK_BYTES = 16 << 20
# The weight gradient is updated a slice of the vocabulary at a time, so that the
# product G_c^T h_c never needs a temporary as large as W itself.
_VOCAB_SLICES = 8


@dataclass(frozen=True)
class _LinearCall:
    """A checked linear cross-entropy call: the products see ``h`` ``(N, H)`` and ``W``
    ``(outputs, H)`` (a K-dimensional weight ``(V, d1, ..., dK, H)`` is one matrix of
    ``V d1 ... dK`` rows); ``call`` is the :class:`~xent_ref.cross_entropy.PreparedCall`
    of the (never formed) logits ``(N, V, d1, ..., dK)``, which every chunk reuses."""

    h: np.ndarray  # (N, H): a 1-D input as one row
    w: np.ndarray  # (outputs, H)
    b: np.ndarray | None  # (outputs,)
    call: PreparedCall
    rows: int  # per chunk
    input_shape: tuple  # the caller's h, W and b shapes, for the gradients
    weight_shape: tuple
    out_features: tuple  # (V,) or (V, d1, ..., dK)

    @property
    def loss_shape(self) -> tuple:
        return self.h.shape[:1] + self.out_features[1:]


def _prepare_linear(input, linear_weight, target, *, linear_bias, weight, reduction,
                    ignore_index, label_smoothing, options, chunk_size) -> _LinearCall:
    """The arguments checked once, into a :class:`_LinearCall`."""
    h = checks.as_input(input, "input")
    if h.ndim > 2:
        raise ValueError(f"input: expected shape (N, H) or (H,), got {h.ndim} dimensions "
                         f"{h.shape}")
    w = checks.as_float_array(linear_weight, "linear_weight", h.dtype)
    _check_shapes(h, w)
    out_features = w.shape[:-1]  # (V,) or (V, d1, ..., dK)
    b = None
    if linear_bias is not None:
        b = checks.as_float_array(linear_bias, "linear_bias", h.dtype)
        if b.shape != out_features:
            raise ValueError(f"linear_bias: expected shape {out_features}, one per output, "
                             f"got shape {b.shape}")
    call = _prepare_logits(h, w, target, weight=weight, reduction=reduction,
                           ignore_index=ignore_index, label_smoothing=label_smoothing,
                           options=options)
    outputs = int(np.prod(out_features))
    if chunk_size is None:
        budget = max(CHUNK_BYTES, w.nbytes // 4)
        # the budget counts every logits-sized array a chunk holds: with a softcap or
        # z-loss the chain rule rereads the logits, so they and z (then G) are two
        arrays = 2 if options.rereads_logits else 1
        rows = max(1, budget // max(1, outputs * h.dtype.itemsize * arrays))
    else:
        rows = checks.check_count(chunk_size, "chunk_size (rows per chunk)", minimum=1)
    return _LinearCall(h=h[None, :] if h.ndim == 1 else h, w=w.reshape(outputs, w.shape[-1]),
                       b=None if b is None else b.reshape(outputs), call=call, rows=rows,
                       input_shape=h.shape, weight_shape=w.shape, out_features=out_features)


def _check_shapes(h, w) -> None:
    if w.ndim < 2 or w.shape[-1] != h.shape[-1]:
        raise ValueError(f"linear_weight: expected shape (V, {h.shape[-1]}) or "
                         f"(V, d1, ..., dK, {h.shape[-1]}) for an input with {h.shape[-1]} "
                         f"features, got shape {w.shape}")
    if w.ndim > 2 and h.ndim == 1:
        raise ValueError(f"input: a K-dimensional linear_weight {w.shape} needs a batch of "
                         f"inputs (N, {h.shape[-1]}), got the single input of shape {h.shape}")


def _prepare_logits(h, w, target, *, weight, reduction, ignore_index, label_smoothing,
                    options) -> PreparedCall:
    """The :class:`~xent_ref.cross_entropy.PreparedCall` of the logits ``h W^T + b``, which
    are never formed: the checks and the mean's denominator need only their shape, and
    a broadcast zero of that shape takes no memory."""
    out_features = w.shape[:-1]
    logits_shape = h.shape[:-1] + out_features
    target_shape = checks.as_array(target, "target").shape
    index_shape = h.shape[:-1] + out_features[1:]
    if target_shape not in (index_shape, logits_shape):
        raise ValueError(f"target: expected shape {index_shape} (class indices) or "
                         f"{logits_shape} (probabilities) for an input of shape {h.shape} and "
                         f"a linear_weight of shape {w.shape}, got shape {target_shape}")
    phantom = np.broadcast_to(np.zeros((), h.dtype), logits_shape)
    # PyTorch 2.13: ignore_index=None means -100 for class indices, and naming any
    # ignore_index with probability targets is an error (they have nothing to ignore).
    call = prepare(phantom, target, weight=weight,
                   ignore_index=-100 if ignore_index is None else ignore_index,
                   reduction=reduction, label_smoothing=label_smoothing, options=options)
    if call.probabilities and ignore_index is not None:
        raise ValueError(f"ignore_index: cannot be given with probability targets (got "
                         f"{ignore_index!r}; leave it None, as PyTorch's linear_cross_entropy "
                         f"requires)")
    return call


def _linear_cross_entropy(lin: _LinearCall, *, grad_output, with_grad: bool):
    """``(loss, (grad_input, grad_linear_weight, grad_linear_bias) or None)``, a chunk of
    rows at a time: ``L = cross_entropy(h W^T + b)``, ``dh = G W``, ``dW = G^T h``,
    ``db = G^T 1`` with ``G`` the chunk's logits gradient."""
    call, h, w, dtype = lin.call, lin.h, lin.w, lin.h.dtype
    n, loss_shape = h.shape[0], lin.loss_shape
    kept = call.kept().reshape(loss_shape)
    ce_denominator, z_denominator = llm_options.denominators(kept, call.denominator,
                                                             call.probabilities)
    ce_scale = z_scale = grads = bounds = None
    if with_grad:
        g = checks.grad_output(grad_output, call.reduction, call.loss_shape, dtype)
        ce_scale, z_scale = llm_options.scales(g.reshape(loss_shape) if len(lin.input_shape) == 1
                                               else g, call.reduction, ce_denominator,
                                               z_denominator, loss_shape)
        grads = (np.empty_like(h), np.zeros(w.shape, dtype),
                 None if lin.b is None else np.zeros(w.shape[0], dtype))
        # float16/bfloat16: the gradients' error bounds, to return residues as 0
        bounds = None if rounding_to() is None else tuple(
            None if g is None else np.zeros(g.shape, np.float32) for g in grads)
    ce, zl = np.empty(loss_shape, dtype), np.empty(loss_shape, dtype)
    parts = np.zeros(2, dtype) if call.splits_smoothing else None  # (their sums, over chunks)
    for start in range(0, n, lin.rows):
        c = slice(start, min(start + lin.rows, n))
        scales = dict(ce_scale=ce_scale[c], z_scale=z_scale[c]) if with_grad else {}
        ce[c], zl[c] = _chunk(lin, c, kept[c], grads, parts, bounds, **scales)
    ce_total = None if parts is None else split_mean(call, *parts)
    loss = llm_options.reduce_parts(ce, zl, call.reduction, ce_denominator, z_denominator, dtype,
                                    ce_total=ce_total)
    if call.reduction == "none" and len(lin.input_shape) == 1:
        loss = loss.reshape(())
    if not with_grad:
        return loss, None
    if bounds is not None:
        _drop_residues(grads, bounds, terms=(lin.w.shape[0], n, n))
    grad_h, grad_w, grad_b = grads
    return loss, (grad_h.reshape(lin.input_shape), grad_w.reshape(lin.weight_shape),
                  None if grad_b is None else grad_b.reshape(lin.out_features))


def _chunk(lin: _LinearCall, c: slice, kept, grads, parts=None, bounds=None, ce_scale=None,
           z_scale=None):
    """One chunk of rows ``c``: returns its ``(ce, zl)``, adds its smoothing parts to
    ``parts`` (when given: see :func:`~xent_ref.cross_entropy.split_mean`) and, given the
    scales, its share to the three gradients ``grads`` (``dh`` for its rows, ``dW``, ``db``)."""
    h_c = lin.h[c]
    logits = h_c @ lin.w.T  # (rows, outputs): the only vocabulary-sized arrays are a chunk's
    if lin.b is not None:
        logits += lin.b
    chunk = lin.call.chunk(c, logits.reshape(logits.shape[:1] + lin.out_features))
    ce, zl, g_logits, chunk_parts = cross_entropy_parts(
        chunk, kept, ce_scale=ce_scale, z_scale=z_scale, overwrite_logits=True,
        split=parts is not None)  # G, in the chunk's logits
    if parts is not None:
        parts += chunk_parts
    if ce_scale is not None:
        grad_h, grad_w, grad_b = grads
        g_logits = g_logits.reshape(logits.shape)
        # dh = G W, computed as (W^T G^T)^T: the same product, in the orientation that
        # OpenBLAS runs fastest
        grad_h[c] = (lin.w.T @ g_logits.T).T
        for v in _vocabulary_slices(lin.w.shape[0]):
            grad_w[v] += g_logits[:, v].T @ h_c  # dW += G^T h, a slice at a time
        if grad_b is not None:
            grad_b += g_logits.sum(axis=0)  # db += G^T 1
        if bounds is not None:
            _add_bounds(bounds, lin, c, g_logits)
    return ce, zl


def _add_bounds(bounds, lin: _LinearCall, c: slice, g_logits) -> None:
    """Add a chunk's share to the magnitudes ``|G| |W|``, ``|G|^T |h|``, ``|G|^T 1`` that
    bound the rounding errors of ``dh``, ``dW``, ``db`` (:func:`_drop_residues`); in
    float32, a vocabulary slice at a time (a bound needs a few digits, not 53 bits)."""
    bound_h, bound_w, bound_b = bounds
    abs_g = np.abs(g_logits).astype(np.float32)
    abs_h = np.abs(lin.h[c]).astype(np.float32)
    bound_h[c] = 0
    for v in _vocabulary_slices(lin.w.shape[0]):
        bound_h[c] += abs_g[:, v] @ np.abs(lin.w[v]).astype(np.float32)
        bound_w[v] += abs_g[:, v].T @ abs_h
    if bound_b is not None:
        bound_b += abs_g.sum(axis=0)


def _drop_residues(grads, bounds, terms) -> None:
    r"""Set to 0, in place, every gradient entry within its float64 rounding-error bound of 0
    (a block of rows at a time: no gradient-sized temporary).

    A sum of :math:`K` float64 products :math:`\sum_k a_k b_k` is within
    :math:`(K + 16)\,2^{-53} \sum_k |a_k b_k|` of the exact one (the 16: the error
    :math:`G` itself carries from the softmax); an entry no larger than twice that (the
    bound's own float32 rounding) cannot be told from 0, and where the exact answer is
    0 (all logits equal and balanced targets: :math:`\sum_i G_{ij} = 0`) it is a residue
    that a float16 or bfloat16 would keep (``1e-17``, or ``3.5e13`` next to
    :math:`|h| = 10^{30}`). ``terms`` is :math:`K` for ``dh`` (the outputs), ``dW`` and
    ``db`` (the rows).
    """
    for grad, bound, k in zip(grads, bounds, terms):
        if grad is None:
            continue
        factor = np.float32(2.0 * (k + 16) * 2.0**-53)
        for rows in row_blocks(grad.shape[0], grad.size // max(1, grad.shape[0])):
            tolerance = bound[rows] * factor
            # (a bound that overflowed float32 bounds nothing: those entries are kept)
            residue = (np.abs(grad[rows]) < tolerance) & np.isfinite(tolerance)
            grad[rows][residue] = 0.0


def _vocabulary_slices(v: int):
    step = max(1, -(-v // _VOCAB_SLICES))
    for start in range(0, v, step):
        yield slice(start, min(start + step, v))


def _checked(input, linear_weight, target, *, logit_scale, softcap, z_loss,
             **kwargs) -> _LinearCall:
    """The :class:`_LinearCall` of a public call (the LLM options checked first)."""
    options = llm_options.Options.checked(logit_scale, softcap, z_loss)
    return _prepare_linear(input, linear_weight, target, options=options, **kwargs)


@computed_wide("linear_weight", "target", "linear_bias", "weight", "grad_output",
               same_dtype=("linear_weight", "linear_bias"))
def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction="mean", ignore_index=None, label_smoothing=0.0,
                         logit_scale=1.0, softcap=None, z_loss=0.0, chunk_size=None):
    r"""``cross_entropy(input @ linear_weight.T + linear_bias, target, ...)`` without the logits.

    Textbook reading: :func:`xent_ref.textbook.cross_entropy` of ``h @ W.T + b``; this
    one never forms the logits (a chunk of rows at a time).

    Parameters
    ----------
    input : array_like, shape ``(N, H)`` or ``(H,)``
        Hidden states.
    linear_weight : array_like, shape ``(V, H)`` or ``(V, d1, ..., dK, H)``
        The output projection (PyTorch's ``nn.Linear`` layout). An array of another
        floating dtype than the input's is a ``TypeError``, as in PyTorch. A
        K-dimensional weight gives K-dimensional logits ``(N, V, d1, ..., dK)`` (a loss
        per position, as :func:`xent_ref.cross_entropy` has for images); it needs an
        ``(N, H)`` input.
    target : array_like
        Class indices ``(N, d1, ..., dK)`` (``()`` for a 1-D input), or probabilities
        ``(N, V, d1, ..., dK)``.
    linear_bias : array_like, shape ``(V, d1, ..., dK)``, optional
    ignore_index : int, optional
        As PyTorch 2.13's: ``None`` (the default) means -100 for class indices; with
        probability targets it must be left ``None``.
    weight, reduction, label_smoothing
        As for :func:`xent_ref.cross_entropy`.
    logit_scale, softcap, z_loss
        The LLM options of :mod:`xent_ref.llm_options`.
    chunk_size : int, optional
        Rows per chunk (default: about 16 MiB of logits per chunk, or a quarter of
        ``linear_weight``'s size if that is more). The answer does not depend on it
        beyond rounding of the sums.

    Returns
    -------
    loss : ndarray in the input's dtype (0-d unless ``reduction="none"``).

    Examples
    --------
    Two tokens, three features, a vocabulary of four:

    >>> import numpy as np, xent_ref as xr
    >>> h = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    >>> W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    >>> round(float(xr.linear_cross_entropy(h, W, [0, 1])), 10)
    0.8637641851
    >>> round(float(xr.cross_entropy(h @ W.T, [0, 1])), 10)
    0.8637641851
    """
    lin = _checked(input, linear_weight, target, linear_bias=linear_bias, weight=weight,
                   reduction=reduction, ignore_index=ignore_index,
                   label_smoothing=label_smoothing, logit_scale=logit_scale, softcap=softcap,
                   z_loss=z_loss, chunk_size=chunk_size)
    return _linear_cross_entropy(lin, grad_output=None, with_grad=False)[0]


@computed_wide("linear_weight", "target", "linear_bias", "weight", "grad_output",
               same_dtype=("linear_weight", "linear_bias"))
def linear_cross_entropy_grad(input, linear_weight, target, *, linear_bias=None, weight=None,
                              reduction="mean", ignore_index=None, label_smoothing=0.0,
                              logit_scale=1.0, softcap=None, z_loss=0.0, chunk_size=None,
                              grad_output=None):
    r"""``(grad_input, grad_linear_weight, grad_linear_bias)`` of :func:`linear_cross_entropy`.

    Textbook reading: :func:`xent_ref.textbook.cross_entropy_grad` ``G`` of ``h @ W.T +
    b``, then ``G W``, ``G^T h``, ``G^T 1``; this one works a chunk of rows at a time.

    With :math:`G` the gradient of the loss with respect to the logits
    (:func:`xent_ref.cross_entropy_grad`, chained through the LLM options):
    :math:`dh = G W`, :math:`dW = G^\top h`, :math:`db = \sum_i G_i` (``None`` without a
    bias); see the module docstring. ``grad_output`` is as for the other ``_grad``
    functions.

    Residues (float16 and bfloat16): each gradient is the float64 answer rounded once,
    except that an entry within the float64 computation's own rounding-error bound of
    0 (:math:`2(K + 16)\,2^{-53}` times the sum of the magnitudes of its :math:`K`
    terms, ``|G| |W|``, ``|G|^T |h|``, ``|G|^T 1``) is returned as 0: an entry whose exact
    value is 0 because its terms cancel (the rows of :math:`G` always sum to 0; its
    columns do for balanced targets and equal logits) is exactly 0, never a float64
    residue such as ``1e-17``. float32 and float64 results are the plain products.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> h, W = np.array([[1.0, -1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> dh, dW, db = xr.linear_cross_entropy_grad(h, W, [0], linear_bias=np.zeros(2))
    >>> dh.round(6), dW.round(6), db.round(6)
    (array([[-0.119203,  0.119203]]), array([[-0.119203,  0.119203],
           [ 0.119203, -0.119203]]), array([-0.119203,  0.119203]))
    """
    lin = _checked(input, linear_weight, target, linear_bias=linear_bias, weight=weight,
                   reduction=reduction, ignore_index=ignore_index,
                   label_smoothing=label_smoothing, logit_scale=logit_scale, softcap=softcap,
                   z_loss=z_loss, chunk_size=chunk_size)
    return _linear_cross_entropy(lin, grad_output=grad_output, with_grad=True)[1]


@computed_wide("linear_weight", "target", "linear_bias", "weight", "grad_output",
               same_dtype=("linear_weight", "linear_bias"))
def linear_cross_entropy_with_grad(input, linear_weight, target, *, linear_bias=None,
                                   weight=None, reduction="mean", ignore_index=None,
                                   label_smoothing=0.0, logit_scale=1.0, softcap=None,
                                   z_loss=0.0, chunk_size=None, grad_output=None):
    """``(loss, (grad_input, grad_linear_weight, grad_linear_bias))`` in one pass over the
    chunks (a training step needs both; the chunk's softmax serves the loss too).

    Textbook reading: as for :func:`linear_cross_entropy_grad`; one pass serves the loss
    and the gradients.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> loss, (dh, dW, db) = xr.linear_cross_entropy_with_grad(np.ones((1, 2)), np.eye(2), [1])
    >>> float(loss), db is None
    (0.6931471805599453, True)
    """
    lin = _checked(input, linear_weight, target, linear_bias=linear_bias, weight=weight,
                   reduction=reduction, ignore_index=ignore_index,
                   label_smoothing=label_smoothing, logit_scale=logit_scale, softcap=softcap,
                   z_loss=z_loss, chunk_size=chunk_size)
    return _linear_cross_entropy(lin, grad_output=grad_output, with_grad=True)


def prepare_linear(input, linear_weight, target, *, linear_bias=None, weight=None,
                   reduction="mean", ignore_index=None, label_smoothing=0.0, logit_scale=1.0,
                   softcap=None, z_loss=0.0, chunk_size=None):
    """A linear cross-entropy call checked once, as the loss checks it: ``h`` ``(N, H)``,
    ``w`` ``(outputs, H)``, ``b``, the logits' ``call`` (whose :meth:`chunk` each chunk of
    ``rows`` rows reuses), ``input_shape``, ``weight_shape``, ``out_features`` and
    ``loss_shape`` -- for the modules that work through the same chunks
    (:mod:`xent_ref.hvp`, :mod:`xent_ref.stats`)."""
    return _checked(input, linear_weight, target, linear_bias=linear_bias, weight=weight,
                    reduction=reduction, ignore_index=ignore_index,
                    label_smoothing=label_smoothing, logit_scale=logit_scale, softcap=softcap,
                    z_loss=z_loss, chunk_size=chunk_size)
