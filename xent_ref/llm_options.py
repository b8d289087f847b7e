r"""The options of LLM loss kernels: logit scale, soft-capping and z-loss.

Fused cross-entropy kernels for language models (flash-attention's Triton loss,
Liger Kernel, Cut Cross-Entropy, Gemma 2's recipe, PaLM's) transform the logits
before the softmax and add a regulariser after it. With logits :math:`x` of one
token, in this order:

.. math::

    z = s\,x \quad (\text{logit\_scale } s), \qquad
    z \leftarrow c \tanh(z / c) \quad (\text{softcap } c), \qquad
    \ell = \ell_{\text{CE}}(z) + \lambda \operatorname{lse}(z)^2 \quad (\text{z\_loss } \lambda).

``softcap`` squashes every logit into :math:`(-c, c)` smoothly, so no single class
can dominate the softmax without bound (Gemma 2 uses :math:`c = 30`). ``z_loss``
(PaLM; Liger's ``lse_square_scale``) pulls :math:`\operatorname{lse}(z)`, the log
of the softmax's normaliser, towards 0, which keeps the logits from drifting in
low precision.

Conventions (all the projects above agree; see ``docs/llm.md`` for where others
differ):

* the z-loss term is **not** class-weighted and is added only for kept tokens
  (``ignore_index`` drops it too);
* with ``reduction="mean"`` the cross-entropy part divides by its usual
  denominator (the kept targets' total class weight) and the z-loss part by the
  **number** of kept tokens; without class weights the two are the same;
  ``"none"`` adds the z-loss term to each token's loss; ``"sum"`` adds it all up;
* with probability targets every sample is kept: both parts divide by the number
  of samples.

Gradient, by the chain rule. With :math:`p = \operatorname{softmax}(z)` and
:math:`\partial \operatorname{lse}/\partial z = p`,

.. math::

    \frac{\partial \ell}{\partial z} = \underbrace{A p - q}_{\text{cross-entropy}}
    + 2 \lambda \operatorname{lse}(z)\, p, \qquad
    \frac{\partial z}{\partial x} = s\,\big(1 - \tanh^2(s x / c)\big) = s\,\operatorname{sech}^2(s x / c),

(:math:`\partial z / \partial x = s` without a softcap), each part times its own
reduction scale (``grad_output`` over its own denominator).

With the defaults (``logit_scale=1``, ``softcap=None``, ``z_loss=0``) the
cross-entropy functions never come here: they are PyTorch's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.blocks import ELEMENTWISE_BLOCK, class_blocks, row_blocks
from xent_ref._engine.reduce import reduce
from xent_ref.softmax import exp_shifted_inplace, shifted_logits


@dataclass(frozen=True)
class Options:
    """The checked LLM options of one call."""

    logit_scale: float = 1.0
    softcap: float | None = None
    z_loss: float = 0.0

    @classmethod
    def checked(cls, logit_scale=1.0, softcap=None, z_loss=0.0) -> "Options":
        return cls(checks.check_logit_scale(logit_scale), checks.check_softcap(softcap),
                   checks.check_z_loss(z_loss))

    @property
    def is_default(self) -> bool:
        return self.logit_scale == 1.0 and self.softcap is None and self.z_loss == 0.0

    @property
    def rereads_logits(self) -> bool:
        """Whether the gradient's chain rule (:func:`chain_rule`) reads the logits
        again after the cross-entropy pass: a softcap's slope, z-loss's softmax."""
        return self.softcap is not None or bool(self.z_loss)


DEFAULT = Options()  # PyTorch's cross-entropy: no scale, no cap, no z-loss


def transform(logits: np.ndarray, options: Options, with_slope: bool = False):
    r"""``(z, dz/dx)``: the scaled and soft-capped logits, and (when asked) the slope
    (an array, or the scalar ``s`` when there is no softcap).

    The slope :math:`s \operatorname{sech}^2(u)`, :math:`u = s x / c`, is formed as
    :math:`s\,(2 e^{-|u|} / (1 + e^{-2|u|}))^2`: no exponent is positive, so it
    neither overflows nor, unlike :math:`1 - \tanh^2 u`, cancels to 0 where
    :math:`\tanh u` rounds to 1.

    >>> z, slope = transform(np.array([0.0, 30.0, 300.0]), Options(2.0, 30.0), with_slope=True)
    >>> z.round(4), slope.round(6)
    (array([ 0.    , 28.9208, 30.    ]), array([2.      , 0.141302, 0.      ]))
    """
    s, c = logits.dtype.type(options.logit_scale), options.softcap
    z = logits * s if options.logit_scale != 1.0 else logits
    if c is None:  # the slope is the constant s
        return z, (s if with_slope else None)
    u = z / logits.dtype.type(c)
    capped = np.tanh(u)
    capped *= logits.dtype.type(c)
    if not with_slope:
        return capped, None
    # (in place: the temporaries are u, e and sech)
    e = np.abs(u)
    e *= -2.0
    np.exp(e, out=e)  # e^{-2|u|} in (0, 1]
    sech = np.sqrt(e)
    sech *= 2.0
    e += 1.0
    sech /= e  # 2 e^{-|u|} / (1 + e^{-2|u|})
    e = np.multiply(s, sech, out=e)
    e *= sech  # s sech^2
    return capped, e.astype(logits.dtype, copy=False)


def transformed(logits: np.ndarray, options: Options, out=None) -> np.ndarray:
    """The scaled and soft-capped logits :math:`z` of :func:`transform`, all of them,
    formed a block of rows at a time into ``out`` (a new array by default; the logits
    themselves when the caller owns them): the formula's temporaries are a block's,
    never the logits' size. Without a softcap or scale, the logits themselves."""
    if options.softcap is None and options.logit_scale == 1.0:
        return logits
    z = np.empty_like(logits) if out is None else out
    n_rows = logits.shape[0]
    for rows in row_blocks(n_rows, logits.size // max(1, n_rows), ELEMENTWISE_BLOCK):
        z[rows] = transform(logits[rows], options)[0]
    return z


def lse_of(z3: np.ndarray) -> np.ndarray:
    r""":math:`\operatorname{lse}(z)` of ``(N, C, S)`` logits over the class axis, ``(N, S)``,
    a block at a time (:func:`lse_and_probs` on each block: no logits-sized temporary)."""
    lse = np.empty((z3.shape[0], z3.shape[2]), z3.dtype)
    for rows, positions in class_blocks(*z3.shape, block_elements=ELEMENTWISE_BLOCK):
        lse[rows, positions] = lse_and_probs(z3[rows, :, positions], axis=1)[0]
    return lse


def chain_rule(grad3: np.ndarray, logits3: np.ndarray, options: Options, lse=None,
               pull=None) -> None:
    r"""Finish the gradient in place, a block at a time: ``grad3`` (``(N, C, S)``) holds
    :math:`\partial L_{\text{CE}}/\partial z`; add z-loss's :math:`\text{pull}\; p` (``pull``
    :math:`= s_z\, 2 \lambda \operatorname{lse}`, ``(N, S)``, 0 on ignored tokens) and
    multiply by :math:`dz/dx`. Each block's :math:`z`, slope and softmax are formed again
    from ``logits3`` (:func:`transform`, :func:`lse_and_probs`), so no logits-sized
    temporary is ever held."""
    for rows, positions in class_blocks(*logits3.shape, block_elements=ELEMENTWISE_BLOCK):
        g = grad3[rows, :, positions]  # a view: written in place
        z, slope = transform(logits3[rows, :, positions], options, with_slope=True)
        if pull is not None:
            probs = lse_and_probs(z, axis=1)[1]
            probs *= pull[rows, positions][:, None, :].astype(z.dtype, copy=False)
            g += probs  # dL/dz = s_ce (A p - q) + s_z 2 lambda lse p
        if not (np.ndim(slope) == 0 and slope == 1.0):
            g *= slope  # dL/dx = dL/dz dz/dx


def lse_and_probs(z: np.ndarray, axis: int):
    r"""``(lse, p)``: :math:`\operatorname{lse}(z)` (the class axis removed) and
    :math:`\operatorname{softmax}(z)`, from one max-shifted exponential
    (:math:`\operatorname{lse} = m + \operatorname{log1p}(\text{others})`, see
    :mod:`xent_ref.softmax`)."""
    probs, j_max = shifted_logits(z, axis, with_argmax=True)
    others, _ = exp_shifted_inplace(probs, axis, j_max=j_max)
    probs /= 1.0 + others
    m = z.max(axis=axis, keepdims=True, initial=-np.inf)
    lse = m + np.log1p(others)  # (a row with no finite maximum is nan, as in PyTorch)
    return np.squeeze(lse, axis=axis), probs


def denominators(kept: np.ndarray, w_t_total, probabilities: bool):
    """``(ce_denominator, z_denominator)`` of ``reduction="mean"``: the kept weight
    total (or the number of samples) and the number of kept tokens."""
    count = kept.sum(dtype=np.float64)
    return (count if probabilities else w_t_total), count


def scales(grad_output: np.ndarray, reduction: str, ce_denominator, z_denominator, shape):
    """Per-token ``(ce_scale, z_scale)`` of the loss's shape: ``grad_output``, over each
    part's own denominator for ``mean``."""
    g = np.broadcast_to(grad_output, shape)
    if reduction != "mean":
        return g, g
    return g / ce_denominator, g / z_denominator  # (0 kept: inf, zeroed on ignored tokens)


def reduce_parts(ce, zl, reduction: str, ce_denominator, z_denominator, dtype,
                 ce_total=None) -> np.ndarray:
    """The loss of ``reduction`` from its two parts, each over its own denominator;
    ``ce_total``, when given, is the cross-entropy part already reduced (the smoothed
    mean over a zero weight total, :func:`xent_ref.cross_entropy.split_mean`)."""
    if reduction == "none":
        return np.asarray(ce + zl, dtype)
    if ce_total is None:
        ce_total = reduce(np.asarray(ce, dtype), reduction, ce_denominator)
    z_total = reduce(np.asarray(zl, dtype), reduction, z_denominator)
    return np.asarray(ce_total + z_total, dtype)

