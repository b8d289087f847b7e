r"""Gradients with respect to the target: ``*_grad(..., wrt="target")``.

Distillation and contrastive losses learn the target distribution too, so they
differentiate the loss with respect to it. Each loss here is *linear* in its target,
so each gradient is the loss's per-sample coefficient of the target, times the
reduction's scale :math:`s_i` (``grad_output``, divided by the ``mean``'s denominator).

Cross-entropy with probability targets :math:`y` (class weights :math:`w`, label
smoothing :math:`\varepsilon`, :math:`y' = (1-\varepsilon) y + \varepsilon / C`):

.. math::

    \ell_i = -\sum_c w_c\, y'_{ic} \log p_{ic}
    \quad\Rightarrow\quad
    \frac{\partial L}{\partial y_{ic}} = -s_i\,(1-\varepsilon)\, w_c \log p_{ic},

with :math:`\log p = \operatorname{log\_softmax}(z)` of the transformed logits :math:`z`
(:mod:`xent_ref.llm_options`; the z-loss term does not depend on the target). The
smoothing's :math:`\varepsilon / C` is a constant: it has no target gradient.
``ignore_index`` has no effect with probability targets (PyTorch's too: every
sample is kept), and ``mean`` divides by the number of samples.

Binary cross-entropy of probabilities :math:`x`:

.. math::

    \ell = -w\,[\,y \log x + (1 - y)\log(1 - x)\,]
    \quad\Rightarrow\quad
    \frac{\partial \ell}{\partial y} = w\,[\log(1 - x) - \log x] = -w \operatorname{logit}(x).

PyTorch's autograd gives exactly this, *without* the -100 clamp of the loss's logs
(checked against torch 2.13: ``x = 0`` gives ``+inf``, not 100), and so do we.

Binary cross-entropy with logits :math:`x` (``pos_weight`` :math:`p_w`):

.. math::

    \ell = w\,[\,p_w\, y \operatorname{softplus}(-x) + (1 - y) \operatorname{softplus}(x)\,]
    \quad\Rightarrow\quad
    \frac{\partial \ell}{\partial y} = w\,[\,p_w \operatorname{softplus}(-x) - \operatorname{softplus}(x)\,],

which without ``pos_weight`` is exactly :math:`-w x` (as
:math:`\operatorname{softplus}(-x) - \operatorname{softplus}(x) = -x`), the form
PyTorch uses there, and the one taken here: it is exact, and infinite logits give
:math:`\mp\infty` rather than :math:`\infty - \infty`.
"""

from __future__ import annotations

import numpy as np

from xent_ref import llm_options
from xent_ref._engine import checks
from xent_ref._engine.reduce import per_sample_scale
from xent_ref.softmax import log_softmax

WRT = ("input", "target")


def wrt_target(wrt) -> bool:
    """Whether ``wrt`` asks for the target's gradient: ``"input"`` (False) or
    ``"target"`` (True); anything else is an error naming the argument.

    >>> wrt_target("target"), wrt_target("input")
    (True, False)
    """
    if not isinstance(wrt, str):
        raise TypeError(f"wrt: expected one of {WRT}, got {wrt!r}")
    if wrt not in WRT:
        raise ValueError(f"wrt: must be one of {WRT}, got {wrt!r}")
    return wrt == "target"


def cross_entropy_target_grad(call, grad_output) -> np.ndarray:
    r""":math:`\partial L / \partial y_{ic} = -s_i (1-\varepsilon) w_c \log p_{ic}` of a prepared
    cross-entropy call (:func:`xent_ref.cross_entropy.prepare`) with probability targets.

    The loss :math:`-\sum_c w_c ((1-\varepsilon) y_c + \varepsilon / C) \log p_c` is
    linear in :math:`y`: its coefficient of :math:`y_c` is the gradient, times the
    reduction's scale. Class indices have no gradient (they are integers): a
    ``TypeError``.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.cross_entropy_grad([[0.0, 0.0]], [[0.5, 0.5]], wrt="target")
    array([[0.69314718, 0.69314718]])
    """
    if not call.probabilities:
        raise TypeError("target: wrt='target' needs probability targets (the input's shape, "
                        "floating point); class indices are integers and have no gradient")
    dtype = call.logits.dtype
    g = checks.grad_output(grad_output, call.reduction, call.loss_shape, dtype)
    scale = per_sample_scale(g, call.reduction, call.denominator)
    n, _, positions = call.logits.shape
    if call.reduction == "none":
        scale = scale.reshape(n, 1, positions)
    logits = call.logits.reshape(call.input_shape)
    z, _ = llm_options.transform(logits, call.options)
    log_probs = log_softmax(z, axis=0 if z.ndim == 1 else 1).reshape(call.logits.shape)
    # -s w_c log p_c, then times (1 - eps), PyTorch's order of the products
    grad = -(scale * call.w[:, None]) * log_probs
    grad *= dtype.type(1.0 - call.label_smoothing)
    return grad.astype(dtype, copy=False).reshape(call.input_shape)


def binary_cross_entropy_target_block(call, rows: slice, scale: np.ndarray) -> np.ndarray:
    r"""A block of :math:`\partial \ell / \partial y = s\,w\,[\log(1 - x) - \log x]` (binary
    cross-entropy of probabilities; no clamp, as PyTorch's autograd), for
    :mod:`xent_ref.binary`'s block loop.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.binary_cross_entropy_grad([0.8, 0.5], [1.0, 0.0], reduction="sum", wrt="target")
    array([-1.38629436,  0.        ])
    """
    x = call.input[rows]
    grad = np.log1p(-x)
    grad -= np.log(x)  # log(1 - x) - log x = -logit(x)
    if call.weight is not None:
        grad *= call.weight[rows]
    grad *= scale
    return grad


def binary_cross_entropy_with_logits_target_block(call, rows: slice,
                                                  scale: np.ndarray) -> np.ndarray:
    r"""A block of :math:`\partial \ell / \partial y = s\,w\,[p_w \operatorname{softplus}(-x) -
    \operatorname{softplus}(x)]` (binary cross-entropy with logits), :math:`-s\,w\,x` without
    ``pos_weight``.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.binary_cross_entropy_with_logits_grad([2.0, 0.0], [1.0, 0.0], pos_weight=3.0,
    ...                                          reduction="sum", wrt="target")
    array([-1.74614398,  1.38629436])
    """
    x = call.input[rows]
    if call.pos_weight is None:
        grad = -x  # softplus(-x) - softplus(x), exactly
    else:
        tail = np.log1p(np.exp(-np.abs(x)))  # softplus(+-x) = max(+-x, 0) + tail
        grad = call.pos_weight[rows] * (np.maximum(-x, 0) + tail)
        grad -= np.maximum(x, 0) + tail
    if call.weight is not None:
        grad = grad * call.weight[rows]
    return grad * scale
