r"""Cross-entropy and negative log-likelihood, with hand-derived gradients.

Shapes (PyTorch's): ``input`` is ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``;
the class axis is 1 (0 for a 1-D input). Targets are either

* **class indices**, shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``, integers in
  ``[0, C)`` or equal to ``ignore_index``; or
* **class probabilities**, the input's own shape, floating point.

One sample's loss, with class weights :math:`w` (all 1 by default), label
smoothing :math:`\varepsilon` and :math:`\log p = \text{log\_softmax}(x)`:

.. math::

    \ell_i = (1-\varepsilon)\, w_{t_i}\,(-\log p_{i t_i})
             + \frac{\varepsilon}{C} \sum_c w_c\,(-\log p_{ic})
    \qquad \text{(class index } t_i\text{)}

    \ell_i = -\sum_c w_c\, y'_{ic} \log p_{ic}, \quad
    y' = (1-\varepsilon)\, y + \frac{\varepsilon}{C}
    \qquad \text{(probabilities } y\text{)}

Both are :math:`\ell_i = \sum_c q_{ic}(-\log p_{ic})` for a non-negative
"target mass" :math:`q_i` (for class indices
:math:`q_{ic} = (1-\varepsilon) w_{t_i} [c = t_i] + \tfrac{\varepsilon}{C} w_c`), and
with :math:`A_i = \sum_c q_{ic}` the gradient is the famous softmax minus target:

.. math::

    \frac{\partial \ell_i}{\partial x_{ij}}
    = \sum_c q_{ic}(p_{ij} - \delta_{cj}) = A_i\, p_{ij} - q_{ij}.

Reductions: ``sum`` adds the :math:`\ell_i`; ``mean`` divides by the total weight
of the kept targets :math:`\sum_{i\,\text{kept}} w_{t_i}` for class indices (the
count of kept targets without weights), and by the number of samples
:math:`N d_1 \cdots d_k` for probabilities. Ignored samples have zero loss and
zero gradient; when every target is ignored, ``mean`` is 0/0 = nan and the
gradient is all zeros, as in PyTorch.

Accuracy: :math:`-\log p_{it} = (m_i - x_{it}) + \operatorname{log1p}(\text{others}_i)`
(see :mod:`xent_ref.softmax`), and at the maximum :math:`j^*` the gradient is
formed as :math:`-A\,\text{others}/S + \sum_{c \ne j^*} q_c` instead of
:math:`A/S - q_{j^*}`, which would round a confident prediction's gradient to 0.

float16 and bfloat16 inputs are computed in float64 and the result rounded once
to the input's dtype (:func:`xent_ref._engine.lowprec.computed_wide`): no sum or count
overflows float16's 65504, and the one final rounding is the only error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from xent_ref import llm_options, target_grad
from xent_ref._engine import checks
from xent_ref._engine.lowprec import computed_wide
from xent_ref._engine.blocks import Picks, along_axis, class_blocks
from xent_ref._engine.reduce import divided, per_sample_scale, reduce, reduce_blocks
from xent_ref.softmax import exp_shifted_inplace, shifted_logits


@dataclass(frozen=True)
class PreparedCall:
    """One checked call of the cross-entropy family, laid out as ``(N, C, S)``: class
    axis 1, the trailing dimensions ``d1..dk`` flattened to ``S`` positions (``S = 1``
    for ``(N, C)`` input; a ``(C,)`` input is one sample, ``N = 1``).

    :func:`prepare` makes it once per public call; the loss, the gradient, the LLM
    options' chain rule and :mod:`xent_ref.linear`'s chunks (:meth:`chunk`) all read
    from it, and none of them validates again.
    """

    input_shape: tuple  # the caller's input shape (and the gradient's)
    loss_shape: tuple  # the shape of reduction="none"
    logits: np.ndarray  # (N, C, S)
    target: np.ndarray  # (N, S) int64 class indices, or (N, C, S) probabilities
    weight: np.ndarray | None  # (C,), as given
    w: np.ndarray  # (C,): the class weights w_c, ones without a weight
    ignore_index: int
    reduction: str
    probabilities: bool
    denominator: float  # of reduction="mean" (an int when it is a count)
    label_smoothing: float = 0.0
    options: llm_options.Options = llm_options.DEFAULT

    @property
    def n_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def splits_smoothing(self) -> bool:
        """Whether ``mean`` must divide label smoothing's two parts separately
        (:func:`split_mean`): class indices, smoothing, and a kept weight total of 0."""
        return (bool(self.label_smoothing) and not self.probabilities
                and self.reduction == "mean" and self.denominator == 0
                and self.logits.size > 0)

    def blocks(self):
        """``(rows, positions)`` index pairs covering the batch a block at a time."""
        n, c, s = self.logits.shape
        return class_blocks(n, c, s)

    def index_targets(self, rows, positions):
        """For a block: ``(t, kept, w_t)``, the targets with ignored ones replaced by
        class 0 (so they can index), shape ``(n, 1, s)``; the kept mask ``(n, s)``;
        and the target weights :math:`w_{t_i}`, 0 where ignored, ``(n, s)``."""
        return _index_targets(self.target[rows, positions], self.ignore_index, self.weight,
                              self.logits.dtype)

    def kept(self) -> np.ndarray:
        """The kept samples, ``(N, S)`` (probability targets: every sample)."""
        if self.probabilities:
            return np.ones(self.target.shape[:1] + self.target.shape[2:], bool)
        return self.target != self.ignore_index

    def with_logits(self, logits: np.ndarray, **changes) -> "PreparedCall":
        """This call on other logits of the same shape (the LLM options' ``z``)."""
        return replace(self, logits=logits.reshape(self.logits.shape), **changes)

    def chunk(self, rows: slice, logits: np.ndarray) -> "PreparedCall":
        """Rows ``rows`` of this call as a ``reduction="none"`` call of their own, on
        their ``logits`` (``(rows, C, d1, ..., dk)``, e.g. a chunk of
        :mod:`xent_ref.linear`'s): the targets are sliced, not checked again."""
        _, n_classes, positions = self.logits.shape
        return replace(self, input_shape=logits.shape,
                       loss_shape=logits.shape[:1] + logits.shape[2:],
                       logits=logits.reshape(logits.shape[0], n_classes, positions),
                       target=self.target[rows], reduction="none")


def _index_targets(target, ignore_index, weight, dtype):
    """``(t, kept, w_t)`` of :meth:`PreparedCall.index_targets`, for ``target`` ``(n, s)``."""
    kept = target != ignore_index
    t = np.where(kept, target, 0)
    if weight is None:
        w_t = kept.astype(dtype)
    else:
        w_t = np.where(kept, weight[t], 0).astype(dtype, copy=False)
    return t[:, None], kept, w_t


def prepare(input, target, *, weight=None, ignore_index=-100, reduction="mean",
            label_smoothing=0.0, options=None, allow_probabilities=True) -> PreparedCall:
    """Check a call's arguments once and lay them out as a :class:`PreparedCall`.

    ``options`` are the LLM options, already checked (:meth:`llm_options.Options.checked`);
    ``allow_probabilities=False`` is for ``nll_loss`` (class indices only).
    """
    logits = checks.as_input(input)
    reduction = checks.check_reduction(reduction)
    ignore_index = checks.check_ignore_index(ignore_index)
    checks.check_label_smoothing(label_smoothing)
    n_classes = logits.shape[0 if logits.ndim == 1 else 1]
    # No classes is an error, unless there are no samples either: a (0, 0) input is an
    # empty batch (PyTorch: mean nan, sum 0).
    if n_classes == 0 and (logits.ndim == 1 or logits.shape[0] * math.prod(logits.shape[2:]) > 0):
        raise ValueError(f"input: the class axis has size 0 (input shape {logits.shape})")
    weight = checks.class_weight(weight, n_classes, logits.dtype)
    target = checks.as_array(target, "target")
    batch = 1 if logits.ndim == 1 else logits.shape[0]
    loss_shape = () if logits.ndim == 1 else (batch,) + logits.shape[2:]
    positions = math.prod(logits.shape[2:])  # S = d1 * ... * dk (1 for 1-D and 2-D input)
    as_3d = (batch, n_classes, positions)
    common = dict(input_shape=logits.shape, loss_shape=loss_shape,
                  logits=logits.reshape(as_3d), weight=weight,
                  w=np.ones(n_classes, logits.dtype) if weight is None else weight,
                  ignore_index=ignore_index,
                  reduction=reduction, label_smoothing=float(label_smoothing),
                  options=llm_options.DEFAULT if options is None else options)
    if allow_probabilities and target.shape == logits.shape:
        target = checks.probability_target(target, ignore_index, logits.dtype)
        return PreparedCall(target=target.reshape(as_3d), probabilities=True,
                            denominator=float(math.prod(loss_shape)), **common)
    target = checks.index_target(target, logits.shape, ignore_index).reshape(batch, positions)
    # mean = sum_i w_{t_i} l_i / sum_{i kept} w_{t_i}: the same denominator for the loss
    # and (through the per-sample scale) for the gradient. Without weights it is a
    # count, kept an exact integer (float32 cannot hold every count above 2**24).
    _, kept, w_t = _index_targets(target, ignore_index, weight, logits.dtype)
    denominator = (int(np.count_nonzero(kept)) if weight is None
                   else w_t.sum(dtype=logits.dtype))
    return PreparedCall(target=target, probabilities=False, denominator=denominator, **common)


def _scale(call: PreparedCall, grad_output):
    """``dL/d loss_i`` for all samples: a scalar, or an ``(N, S)`` array for ``none``."""
    g = checks.grad_output(grad_output, call.reduction, call.loss_shape, call.logits.dtype)
    scale = per_sample_scale(g, call.reduction, call.denominator)
    n, _, positions = call.logits.shape
    return scale.reshape(n, positions) if call.reduction == "none" else scale


def _block_scale(scale, rows, positions, kept=None) -> np.ndarray:
    """The block's share of :func:`_scale`, shape ``(n, 1, s)``, zero on ignored samples."""
    if np.ndim(scale):
        scale = scale[rows, positions]
    if kept is not None:
        scale = np.where(kept, scale, 0)
    return np.asarray(scale)[..., None, :] if np.ndim(scale) else scale


def _checked(input, target, *, logit_scale, softcap, z_loss, **kwargs) -> PreparedCall:
    """The :class:`PreparedCall` of a public cross-entropy call (the options checked first)."""
    options = llm_options.Options.checked(logit_scale, softcap, z_loss)
    return prepare(input, target, options=options, **kwargs)

# ---------------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------------


@computed_wide("target", "weight", "grad_output")
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, *, logit_scale=1.0, softcap=None, z_loss=0.0):
    r"""Cross-entropy between the softmax of ``input`` (logits) and ``target``.

    Textbook twin: :func:`xent_ref.textbook.cross_entropy`; this one adds any trailing
    dimensions, the ``log1p`` form of tiny losses, PyTorch's inf/nan answers, the LLM
    options and block-by-block memory.

    Exactly ``torch.nn.functional.cross_entropy``; the formulas, reductions and
    accuracy notes are in the module docstring.

    Parameters
    ----------
    input : array_like, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``
        Logits (unnormalised scores). ``-inf`` is allowed; off the target it gives
        a finite loss (without label smoothing), on the target an infinite one.
    target : array_like
        Class indices, shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``; or class
        probabilities, the input's shape (floating point).
    weight : array_like, shape ``(C,)``, optional
        Per-class weights.
    ignore_index : int
        Class-index targets equal to it contribute nothing. Must be negative with
        probability targets (as in PyTorch).
    reduction : {"mean", "sum", "none"}
    label_smoothing : float in [0, 1]
        Stricter than PyTorch, which silently treats a negative value as 0: here it
        is a ``ValueError``.

    Returns
    -------
    loss : ndarray
        0-d for ``mean``/``sum``; the target's shape (without the class axis) for
        ``none``. Same floating dtype as ``input``.

    Examples
    --------
    The first worked example of "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数"
    (the document rounds it to 0.6406):

    >>> import xent_ref as xr
    >>> logits = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
    >>> float(xr.cross_entropy(logits, [0, 1, 0]))
    0.6405346...
    """
    call = _checked(input, target, weight=weight, ignore_index=ignore_index,
                    reduction=reduction, label_smoothing=label_smoothing,
                    logit_scale=logit_scale, softcap=softcap, z_loss=z_loss)
    return _with_options(call, grad_output=None, with_grad=False)[0]


@computed_wide("target", "weight", "grad_output")
def cross_entropy_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None, *, logit_scale=1.0, softcap=None,
                       z_loss=0.0, wrt="input"):
    r"""Gradient of :func:`cross_entropy` with respect to ``input`` (the logits), or, with
    ``wrt="target"``, to probability targets (:mod:`xent_ref.target_grad`).

    Textbook twin: :func:`xent_ref.textbook.cross_entropy_grad` (one line:
    ``scale * (softmax - q)``); this one adds the top-class form of a confident prediction,
    PyTorch's inf/nan answers, the LLM options' chain rule and a gradient built in its
    own buffer, a block at a time.

    Derivation (for one sample; :math:`\log p_c = x_c - \operatorname{lse}(x)` so
    :math:`\partial(-\log p_c)/\partial x_j = p_j - \delta_{cj}`):

    .. math::

        \frac{\partial \ell}{\partial x_j}
        = \sum_c q_c\,(p_j - \delta_{cj}) = A\,p_j - q_j,
        \qquad A = \sum_c q_c.

    Without weights or smoothing, :math:`q` is the one-hot target, :math:`A = 1` and
    this is ``softmax - one_hot``; rows then sum to 0. The reduction multiplies
    each sample's row by ``grad_output`` (``mean``: divided by the same denominator
    as the loss); ignored samples get zero rows.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction, label_smoothing
        As for :func:`cross_entropy`.
    grad_output : scalar or array_like, optional
        Upstream gradient: a scalar for ``mean``/``sum`` (default 1), the loss's
        shape for ``none`` (default ones).

    Returns
    -------
    grad : ndarray, the shape and dtype of ``input``.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.cross_entropy_grad([[0.0, 0.0]], [0])
    array([[-0.5,  0.5]])
    """
    call = _checked(input, target, weight=weight, ignore_index=ignore_index,
                    reduction=reduction, label_smoothing=label_smoothing,
                    logit_scale=logit_scale, softcap=softcap, z_loss=z_loss)
    if target_grad.wrt_target(wrt):
        return target_grad.cross_entropy_target_grad(call, grad_output)
    return _with_options(call, grad_output=grad_output, with_grad=True)[1]


@computed_wide("target", "weight", "grad_output")
def cross_entropy_with_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0, grad_output=None, *, logit_scale=1.0,
                            softcap=None, z_loss=0.0):
    """``(cross_entropy(...), cross_entropy_grad(...))`` in one pass over the logits.

    Textbook twins: :func:`xent_ref.textbook.cross_entropy` and
    :func:`xent_ref.textbook.cross_entropy_grad`; this one shares one softmax between
    them.

    A training step needs both; the softmax computed for the gradient already
    holds everything the loss needs, so this costs about as much as the gradient
    alone.

    Examples
    --------
    >>> import xent_ref as xr
    >>> loss, grad = xr.cross_entropy_with_grad([[0.0, 0.0]], [0])
    >>> float(loss), grad
    (0.6931471805599453, array([[-0.5,  0.5]]))
    """
    call = _checked(input, target, weight=weight, ignore_index=ignore_index,
                    reduction=reduction, label_smoothing=label_smoothing,
                    logit_scale=logit_scale, softcap=softcap, z_loss=z_loss)
    return _with_options(call, grad_output=grad_output, with_grad=True)


def _with_options(call: PreparedCall, *, grad_output, with_grad: bool):
    """``(loss, grad or None)`` with the LLM options (:mod:`xent_ref.llm_options`); the
    defaults go straight to :func:`_cross_entropy`, PyTorch's semantics bit for bit."""
    if call.options.is_default:
        return _cross_entropy(call, _scale(call, grad_output) if with_grad else None)
    dtype = call.logits.dtype
    kept = call.kept().reshape(call.loss_shape)
    ce_denominator, z_denominator = llm_options.denominators(kept, call.denominator,
                                                             call.probabilities)
    ce_scale = z_scale = None
    if with_grad:
        g = checks.grad_output(grad_output, call.reduction, call.loss_shape, dtype)
        ce_scale, z_scale = llm_options.scales(g, call.reduction, ce_denominator, z_denominator,
                                               call.loss_shape)
    ce, zl, grad, parts = cross_entropy_parts(call, kept, ce_scale=ce_scale, z_scale=z_scale,
                                              split=call.splits_smoothing)
    ce_total = None if parts is None else split_mean(call, *parts)
    loss = llm_options.reduce_parts(ce, zl, call.reduction, ce_denominator, z_denominator, dtype,
                                    ce_total=ce_total)
    return loss, grad


def cross_entropy_parts(call: PreparedCall, kept, *, ce_scale=None, z_scale=None,
                        overwrite_logits=False, split=False):
    r"""The per-token pieces of a prepared cross-entropy call with LLM options.

    Returns ``(ce, zl, grad, parts)``: the cross-entropy losses of ``reduction="none"``
    (class-weighted, as PyTorch's), the z-loss terms :math:`\lambda \operatorname{lse}^2`
    (0 where ``kept``, the loss-shaped mask of kept tokens, is False), and -- when the
    per-token scales ``ce_scale`` and ``z_scale`` (the loss's shape) are given -- the
    gradient with respect to the logits, by the chain rule
    ``(ce_scale (A p - q) + z_scale 2 lambda lse p) * dz/dx``; and, with ``split`` (the
    whole call's :attr:`PreparedCall.splits_smoothing`), the :func:`smoothing_parts` of
    these tokens for :func:`split_mean` (else ``None``).

    Both :func:`xent_ref.cross_entropy` (on the whole input) and
    :func:`xent_ref.linear_cross_entropy` (a :meth:`PreparedCall.chunk` of rows at a
    time) call this; the reductions are theirs, because their denominators are global.
    With ``overwrite_logits`` (a caller that owns them) the gradient is built in the
    logits' own memory.
    """
    options, with_grad = call.options, ce_scale is not None
    logits = call.logits  # (N, C, S)
    # z = c tanh(s x / c), in the logits' own memory when they are ours and the chain
    # rule will not read them again; the gradient is then built in z's memory: at most
    # two logits-sized arrays (x and z), and one when x may be overwritten
    in_place = overwrite_logits and not options.rereads_logits
    z = llm_options.transformed(logits, options, out=logits if in_place else None)
    lse = llm_options.lse_of(z) if options.z_loss else None  # (N, S)
    z_call = call.with_logits(z, reduction="none")
    parts = smoothing_parts(z_call) if split else None  # (before the gradient overwrites z)
    own_z = in_place or z is not logits
    ce_grad_scale = None if not with_grad else _token_scale(z_call, ce_scale)
    ce, grad = _cross_entropy(z_call, ce_grad_scale,
                              out=z if with_grad and own_z and z.flags.c_contiguous else None)
    kept3 = kept.reshape(lse.shape) if options.z_loss else None
    zl = np.zeros_like(ce)
    if options.z_loss:
        zl = np.where(kept3, options.z_loss * lse * lse, 0).astype(z.dtype,
                                                                  copy=False).reshape(ce.shape)
    if with_grad:
        grad3 = grad.reshape(logits.shape)
        if options.rereads_logits:
            # d(lambda lse^2)/dz = 2 lambda lse p, on kept tokens, times their scale
            pull = None if not options.z_loss else np.where(
                kept3, np.asarray(z_scale).reshape(lse.shape) * (2.0 * options.z_loss) * lse, 0)
            llm_options.chain_rule(grad3, logits, options, lse, pull)
        elif options.logit_scale != 1.0:
            grad3 *= logits.dtype.type(options.logit_scale)  # dz/dx = s
    return ce, zl, grad, parts


def _token_scale(call: PreparedCall, scale) -> np.ndarray:
    """A per-token scale of the loss's shape as the ``(N, S)`` scale of :func:`_scale`."""
    n, _, positions = call.logits.shape
    return np.asarray(scale).astype(call.logits.dtype, copy=False).reshape(n, positions)


def _cross_entropy(call: PreparedCall, scale=None, out=None):
    """The one pass behind the public functions: ``(loss, grad or None)``, the gradient
    when the per-sample ``scale`` (:func:`_scale`) is given.

    The logits are visited a block at a time. Each block's ``x - m`` is written into
    a block-sized temporary -- or, when the gradient is wanted, straight into the
    gradient's own buffer, where it becomes the softmax and then the gradient:
    beyond the output, no full-size temporary is ever made. ``out`` (a contiguous
    array of the input's shape, possibly the input itself: each block reads its
    logits once, before writing) is that buffer, for callers that own their logits
    (:mod:`xent_ref.linear`'s chunks).
    """
    with_grad = scale is not None
    block = _probability_block if call.probabilities else _index_block
    n, _, positions = call.logits.shape
    grad = None
    if with_grad:
        grad = (np.empty(call.logits.shape, dtype=call.logits.dtype) if out is None
                else out.reshape(call.logits.shape))

    def block_losses(index):
        rows, cols = index
        buffer = grad[rows, :, cols] if with_grad else None  # a view into `grad`
        return block(call, rows, cols, buffer, scale)

    loss = reduce_blocks(block_losses, call.blocks(), call.reduction, call.denominator,
                         call.logits.dtype, (n, positions))
    if call.splits_smoothing:
        loss = split_mean(call, *smoothing_parts(call))
    if call.reduction == "none":
        loss = loss.reshape(call.loss_shape)
    return loss, (grad.reshape(call.input_shape) if with_grad else None)


def smoothing_parts(call: PreparedCall):
    """``(nll_sum, smooth_sum)``: the ``sum`` of the call's losses without smoothing and
    at ``label_smoothing=1`` (its smoothing part, :math:`M / C`), for :func:`split_mean`
    (the LLM options' and :mod:`xent_ref.linear`'s chunks call it on their own logits)."""
    nll_sum = _cross_entropy(replace(call, reduction="sum", label_smoothing=0.0))[0]
    smooth_sum = _cross_entropy(replace(call, reduction="sum", label_smoothing=1.0))[0]
    return nll_sum, smooth_sum


def split_mean(call: PreparedCall, nll_sum, smooth_sum) -> np.ndarray:
    r"""The smoothed ``mean`` when the kept weights total 0 (:attr:`PreparedCall.splits_smoothing`),
    as PyTorch forms it, from the two parts' sums (:func:`smoothing_parts`).

    PyTorch divides its two parts separately, :math:`(1-\varepsilon)\,N/0 +
    (\varepsilon/C)\,M/0` (``N`` the weighted NLL sum, ``M`` the smoothing sum), so
    the answer is an infinity whose sign is each part's sign, or nan (0/0, or the
    infinities of the two parts cancel): one combined division would get it wrong.
    Every path of a call with this mean (plain, LLM options, linear chunks) ends here.
    """
    eps, dtype = call.label_smoothing, call.logits.dtype
    return np.asarray((1.0 - eps) * divided(nll_sum, 0, dtype)
                      + (eps / call.n_classes) * divided(smooth_sum, 0, dtype), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# One block: the losses, then (in the same buffer) the gradient s (A p - q)
# ---------------------------------------------------------------------------------------------


def _index_block(call: PreparedCall, rows, positions, buffer=None, scale=None):
    r"""One block of class-index samples: returns their losses :math:`\ell_i` ``(n, s)``
    and, when ``scale`` is given, writes :math:`s_i (A_i p_i - q_i)` into ``buffer``."""
    eps = call.label_smoothing
    t, kept, w_t = call.index_targets(rows, positions)
    shifted, j_max = shifted_logits(call.logits[rows, :, positions], axis=1, out=buffer,
                                    with_argmax=True)  # x - m
    picks = Picks(shifted, 1)  # the target's and the top class's entries
    at_t = picks.at(t)
    shifted_t = picks.view[at_t][:, 0]  # x_t - m  (<= 0)
    # sum_c w_c (x_c - m), taken before `shifted` is exponentiated in place
    weighted_shifted = _mass_dot_shifted(call.w[:, None], shifted) if eps else None
    # (the top class's entry is left 0: the gradient's _top_class writes it)
    others, j_max = exp_shifted_inplace(shifted, axis=1, keep_max=False, j_max=j_max,
                                        picks=picks)
    losses = _index_losses(call, w_t, np.log1p(others[:, 0]), shifted_t, weighted_shifted)
    if scale is not None:
        s = _block_scale(scale, rows, positions, kept)  # (n, 1, s), 0 on ignored samples
        _index_grad(call, picks, others, j_max, (t, at_t), w_t[:, None], s)
        if eps:
            _nan_where_infinite(shifted, s)
    # `where`, not a product: an ignored sample may have an infinite loss (inf * 0 = nan).
    return np.where(kept, losses, 0)


def _index_losses(call: PreparedCall, w_t, log_s, shifted_t, weighted_shifted):
    r"""The block's losses
    :math:`\ell = (1-\varepsilon) w_t (-\log p_t) + \tfrac{\varepsilon}{C}\sum_c w_c (-\log p_c)`,
    each :math:`-\log p_c = \log S - (x_c - m)` a sum of two non-negative terms (no
    cancellation). (An ignored sample's "target" may have a -inf logit: its 0 weight
    times inf is nan, which the caller's ``where`` replaces with 0.)"""
    eps = call.label_smoothing
    losses = (1.0 - eps) * w_t * (log_s - shifted_t)
    if eps:
        # sum_c w_c (-log p_c) = W log S - sum_c w_c (x_c - m)
        losses += (eps / call.n_classes) * (call.w.sum() * log_s - weighted_shifted)
    return losses


def _index_grad(call: PreparedCall, picks: Picks, others, j_max, targets, w_t, s) -> None:
    r"""The gradient :math:`s\,(A p - q)` of a block of class-index samples, written in
    place over :math:`e^{x - m}` (``grad``, its top-class entry 0, ``picks`` its
    :class:`~xent_ref._engine.blocks.Picks`; ``targets`` the targets and their offsets).

    Textbook twin: :func:`xent_ref.textbook.cross_entropy_grad`, one line,
    ``scale * (softmax - q)``. The numerical care is in the helpers: the target
    mass and every smoothing branch in :func:`_index_mass`, the top class in
    :func:`_top_class`.
    """
    # grad = s (A p - q), q = (1 - eps) w_t [c = t] + (eps / C) w_c
    eps, n_classes, grad, (t, at_t) = call.label_smoothing, call.n_classes, picks.array, targets
    mass = _index_mass(call, t, w_t, j_max, s)
    total = 1.0 + others  # S
    grad /= total  # p
    grad *= mass.s_a  # s A p
    picks.view[at_t] = picks.view[at_t] - s * mass.at_target  # - s q, at the target
    if eps:
        # - s q, the smoothing part (eps / C) w_c everywhere (a block-sized product)
        grad -= (s * (eps / n_classes)) * call.w[:, None]
    _top_class(picks, j_max, mass, others, total, s)


def _mass_dot_shifted(q, shifted) -> np.ndarray:
    r""":math:`\sum_c q_c (x_c - m)` per sample, ``(n, s)``, for a target mass ``q``
    (``(C, 1)`` class weights or an ``(n, C, s)`` block) and ``shifted`` :math:`x - m`.

    A class at the maximum has :math:`x_c - m = 0` exactly: its term is 0 even when
    :math:`q_c` is infinite (PyTorch multiplies :math:`q_c` by :math:`\log p_c`, which is
    finite there), so the product :math:`\infty \cdot 0` is never formed. Only a block
    whose plain product is nan pays for the masked one.
    """
    dot = (np.einsum("ncs,c->ns", shifted, q[:, 0]) if q.ndim == 2
           else np.einsum("ncs,ncs->ns", q, shifted))
    lost = np.isnan(dot)
    if lost.any():
        terms = np.where(shifted == 0, 0.0, q * shifted)  # (-inf logits keep 0 * inf = nan)
        dot = np.where(lost, terms.sum(axis=1), dot)
    return dot


def _nan_where_infinite(grad, s) -> None:
    r"""nan over every sample whose scale ``s`` is infinite (``grad_output = inf``, or a
    ``mean`` over a zero weight total), in place.

    PyTorch's gradient of a target mass spread over the classes (label smoothing,
    probability targets) is :math:`g_c - p \sum_c g_c` with :math:`g_c = -s q_c`: at
    :math:`s = \infty` the sum is :math:`\pm\infty` or nan and every entry
    :math:`\infty - \infty` or nan, whatever the signs of the weights.
    """
    infinite = ~np.isfinite(s)
    if np.any(infinite):
        grad += np.where(infinite, np.nan, 0.0)


@dataclass(frozen=True)
class _TargetMass:
    r"""The target mass :math:`q` of a block, as the gradient needs it: :math:`A = \sum_c q_c`,
    :math:`q` at the target (its ``(1 - eps) w_t`` part), at the top class :math:`j^*`,
    and summed over the other classes; ``s_a`` and ``s_q_max`` are :math:`s A` and
    :math:`s q_{j^*}` as formed (``None``: the plain products)."""

    a: np.ndarray
    at_target: np.ndarray
    q_max: np.ndarray
    rest: np.ndarray
    s_a: np.ndarray | None = None
    s_q_max: np.ndarray | None = None


def _index_mass(call: PreparedCall, t, w_t, j_max, s) -> _TargetMass:
    """:class:`_TargetMass` of class-index targets (``w_t`` ``(n, 1, s)``), every
    smoothing branch here.

    When every kept target has weight 0, ``mean`` divides by 0: s is inf, s w_t is
    inf * 0 = nan and the whole row is nan, as in PyTorch -- so ``s A`` is formed as
    two products. The smoothing terms are formed only when eps > 0, as in PyTorch: an
    infinite weight off the target, or s = inf, would otherwise add 0 * inf = nan.
    """
    eps, n_classes, w = call.label_smoothing, call.n_classes, call.w
    w_sum = w.sum()  # W
    at_target = a = (1.0 - eps) * w_t  # A = sum_c q_c, without smoothing
    s_a = s * a
    q_max = a * (t == j_max)
    rest = a * (t != j_max)
    if eps:
        a = a + (eps / n_classes) * w_sum
        s_a = s_a + s * ((eps / n_classes) * w_sum)
        q_max = q_max + (eps / n_classes) * w[j_max]
        rest = rest + (eps / n_classes) * (w_sum - w[j_max])
    # Without smoothing q_{j*} is 0 unless j* is the target, and s q_{j*} is then 0
    # too, even for s = inf (PyTorch's).
    s_q_max = None if eps else np.where(t == j_max, s * q_max, 0.0)
    return _TargetMass(a, at_target, q_max, rest, s_a, s_q_max)


def _probability_block(call: PreparedCall, rows, positions, buffer=None, scale=None):
    r"""One block of probability-target samples: returns
    :math:`\ell_i = A_i \log S_i - \sum_c q_{ic}(x_{ic} - m_i)` ``(n, s)`` and, when
    ``scale`` is given, writes :math:`s\,(A_i p_i - q_i)` into ``buffer``."""
    eps = call.label_smoothing
    # q = w ((1 - eps) y + eps / C), a new block-sized array
    q = call.target[rows, :, positions] * (1.0 - eps)
    if eps:
        q += eps / call.n_classes
    if call.weight is not None:
        q *= call.weight[:, None]
    a = q.sum(axis=1)  # A
    shifted, j_max = shifted_logits(call.logits[rows, :, positions], axis=1, out=buffer,
                                    with_argmax=True)
    # (a 0 target against a -inf logit gives 0 * inf = nan here, as in PyTorch)
    q_dot_shifted = _mass_dot_shifted(q, shifted)
    # (the top class's entry is left 0: the gradient's _top_class writes it)
    others, j_max = exp_shifted_inplace(shifted, axis=1, keep_max=False, j_max=j_max)
    losses = a * np.log1p(others[:, 0]) - q_dot_shifted
    if scale is not None:
        _probability_grad(shifted, others, j_max, q, a[:, None],
                          _block_scale(scale, rows, positions))
    return losses


def _probability_grad(grad, others, j_max, q, a, s) -> None:
    r"""The gradient :math:`s\,(A p - q)` of a block of probability targets, written in
    place over :math:`e^{x - m}` (``grad``); ``q`` is consumed.

    Textbook twin: :func:`xent_ref.textbook.cross_entropy_grad`; the top class is
    formed by :func:`_top_class`.
    """
    # grad = s (A p - q)
    total = 1.0 + others  # S
    grad /= total  # p
    grad *= a  # A p
    grad -= q  # A p - q
    _top_class(Picks(grad, 1), j_max, _probability_mass(q, j_max, a), others, total)
    grad *= s  # s (A p - q)
    _nan_where_infinite(grad, s)


def _probability_mass(q, j_max, a) -> _TargetMass:
    """:class:`_TargetMass` of probability targets; zeroes ``q`` at the top class, to sum
    the others without it (not as ``A - q_{j*}``, which would cancel)."""
    at_max = along_axis(q.shape, j_max, 1)
    q_max = q[at_max]
    q[at_max] = 0.0
    rest = q.sum(axis=1, keepdims=True)  # sum_{c != j*} q_c
    return _TargetMass(a, None, q_max, rest)


def _top_class(picks: Picks, j_max, mass: _TargetMass, others, total, s=1.0) -> None:
    r"""Rewrite the gradient's top-class entries :math:`s(A p_{j^*} - q_{j^*})` in place
    (the gradient's :class:`~xent_ref._engine.blocks.Picks`), in whichever of two equal
    forms rounds less.

    With :math:`p_{j^*} = 1/S` and :math:`1 - p_{j^*} = \text{others}/S`,

    .. math::

        A p_{j^*} - q_{j^*} = \sum_{c \ne j^*} q_c - A\,\frac{\text{others}}{S}.

    For a confident, correct prediction the left side subtracts two numbers near
    :math:`A` and rounds to 0, while the right side's terms are tiny and exact (logits
    ``[50, 0, 0]``, target 0: :math:`-3.86 \times 10^{-22}`). Elsewhere the right side
    can be the one that cancels, so each entry takes the form whose terms are smaller.
    An infinite scale ``s`` (``grad_output = inf``, or a ``mean`` over a zero total
    weight) makes the complement form inf - inf; the plain form is PyTorch's own
    arrangement, so it is the one taken whenever the complement is not finite.
    """
    a, q_max, rest = mass.a, mass.q_max, mass.rest
    s_a = s * a if mass.s_a is None else mass.s_a
    s_q_max = s * q_max if mass.s_q_max is None else mass.s_q_max
    plain_terms = np.abs(a) / total + np.abs(q_max)
    complement_terms = np.abs(rest) + np.abs(a) * others / total
    complement = s * rest - s_a * others / total
    plain = s_a / total - s_q_max
    use_complement = (complement_terms < plain_terms) & np.isfinite(complement)
    picks.view[picks.at(j_max)] = np.where(use_complement, complement, plain)


# ---------------------------------------------------------------------------------------------
# nll_loss
# ---------------------------------------------------------------------------------------------


@computed_wide("target", "weight", "grad_output")
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood: :math:`\ell_i = -w_{t_i}\, x_{i t_i}` for log-probabilities ``input``.

    Textbook twin: :func:`xent_ref.textbook.nll_loss`; this one adds any trailing
    dimensions and the exact count of kept targets.

    ``cross_entropy(x, t)`` equals ``nll_loss(log_softmax(x, axis=1), t)`` (without
    label smoothing). Only class-index targets (as in PyTorch); ``mean`` divides by
    :math:`\sum_{i\,\text{kept}} w_{t_i}`.

    Parameters
    ----------
    input : array_like, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``
        Log-probabilities (any real numbers are accepted, as in PyTorch).
    target : array_like of int, shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``
    weight, ignore_index, reduction
        As for :func:`cross_entropy`.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> float(xr.nll_loss(np.log([[0.5, 0.5], [0.25, 0.75]]), [0, 1], weight=[1.0, 2.0]))
    0.4228...
    """
    call = prepare(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                   allow_probabilities=False)
    t, kept, w_t = call.index_targets(slice(None), slice(None))
    picked = call.logits[along_axis(call.logits.shape, t, 1)][:, 0]
    # `where`, not a product: an ignored sample's picked value may be -inf (and its
    # 0 weight times -inf, a nan that `where` discards).
    losses = np.where(kept, -w_t * picked, 0).astype(call.logits.dtype, copy=False)
    return reduce(losses.reshape(call.loss_shape), call.reduction, call.denominator)


@computed_wide("target", "weight", "grad_output")
def nll_loss_grad(input, target, weight=None, ignore_index=-100, reduction="mean",
                  grad_output=None):
    r"""Gradient of :func:`nll_loss` with respect to ``input``.

    Textbook twin: :func:`xent_ref.textbook.nll_loss_grad`; this one writes the nonzero
    entries only.

    :math:`\ell_i = -w_{t_i} x_{i t_i}` depends on one entry per sample, so

    .. math::

        \frac{\partial \ell_i}{\partial x_{ij}} = -w_{t_i}\,[j = t_i],

    times the reduction's scale (``grad_output``, divided by the total kept weight
    for ``mean``); zero everywhere else and on ignored samples.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.nll_loss_grad([[-0.7, -0.7], [-1.4, -0.3]], [0, 1], weight=[1.0, 2.0])
    array([[-0.33333333,  0.        ],
           [ 0.        , -0.66666667]])
    """
    call = prepare(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                   allow_probabilities=False)
    t, kept, w_t = call.index_targets(slice(None), slice(None))
    s = _block_scale(_scale(call, grad_output), slice(None), slice(None), kept)
    # grad = -s w_t at the target, 0 elsewhere (0 * inf = nan when the mean divides by
    # 0, as in PyTorch; 0 - w_t s rather than -w_t s: an ignored sample's entry is 0.0,
    # not -0.0)
    grad = np.zeros_like(call.logits)
    picks = Picks(grad, 1)
    at_t = picks.at(t)
    picks.view[at_t] = picks.view[at_t] - w_t[:, None] * s
    return grad.reshape(call.input_shape)
