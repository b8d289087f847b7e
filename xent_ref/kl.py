r"""Kullback-Leibler divergence, PyTorch's ``F.kl_div``, with its hand-derived gradient.

The input holds log-probabilities :math:`\log q` (a model's), the target holds
probabilities :math:`p` (or, with ``log_target=True``, their logs). Element by element,

.. math::

    \ell = p\,(\log p - \log q), \qquad 0 \log 0 = 0,

so that summing one row gives :math:`\mathrm{KL}(p \,\|\, q) = \sum_c p_c \log(p_c / q_c)`:
the *target* comes first, the model second. Cross-entropy is entropy plus this
divergence, :math:`H(p, q) = H(p) + \mathrm{KL}(p \,\|\, q)`, so with a fixed target
the two losses have the same gradient.

Reductions (PyTorch's): ``none`` the elements; ``sum`` their sum; ``batchmean`` the sum
divided by the batch size ``input.shape[0]`` -- the true mean KL per sample, and the one
to use -- and ``mean`` the sum divided by *every* element, ``N * C`` (PyTorch warns that
this is not the KL divergence; here the docstring does).

As in PyTorch, the target is not checked: a negative probability gives ``nan``. Unlike
PyTorch, the target must have the input's own shape (PyTorch broadcasts it).

float16 and bfloat16 inputs are computed in float64 and the result rounded once
to the input's dtype (:func:`xent_ref._engine.lowprec.computed_wide`).
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.lowprec import computed_wide
from xent_ref._engine.reduce import per_sample_scale, reduce


def _prepare(input, target, reduction, log_target):
    """``(log_q, target, reduction, denominator)``: ``batchmean`` as a ``mean`` over the
    batch size (a 0-d input has none: its ``batchmean`` is the sum, as in PyTorch)."""
    log_q = checks.as_float_array(input, "input")
    if log_q.ndim:
        log_q = checks.as_input(log_q)
    reduction = checks.check_kl_reduction(reduction)
    checks.check_flag(log_target, "log_target")
    target = checks.same_shape_target(target, log_q)
    if reduction == "batchmean":
        if log_q.ndim == 0:
            return log_q, target, "sum", 1
        return log_q, target, "mean", log_q.shape[0]
    return log_q, target, reduction, log_q.size


@computed_wide("target", "grad_output")
def kl_div(input, target, reduction="mean", log_target=False):
    r"""KL divergence of the target from the log-probabilities ``input``: ``F.kl_div``.

    Textbook twin: :func:`xent_ref.textbook.kl_div`; this one checks its arguments and
    gives PyTorch's ``nan`` at the edges.

    .. math::

        \ell = p\,(\log p - x) \quad (\text{target } p,\ 0 \log 0 = 0), \qquad
        \ell = e^{t}\,(t - x) \quad (\texttt{log\_target=True},\ t = \log p)

    The first form is PyTorch's ``xlogy(p, p) - p * x``, written as one product where
    :math:`p > 0`: a zero target contributes :math:`0 - 0 \cdot x = 0` (``nan`` if
    ``x = -inf``, as in PyTorch).

    Parameters
    ----------
    input : array_like, any shape (0-d too)
        Log-probabilities :math:`x = \log q` (``log_softmax`` of a model's logits).
    target : array_like, the input's shape
        Probabilities :math:`p`, or log-probabilities with ``log_target=True``.
    reduction : {"mean", "batchmean", "sum", "none"}
        ``batchmean`` divides the sum by ``input.shape[0]`` (the KL divergence per
        sample); ``mean`` (the default, as in PyTorch) by the number of elements.
    log_target : bool

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> float(xr.kl_div(np.log([[0.5, 0.5]]), [[0.9, 0.1]], reduction="batchmean"))
    0.3680642...
    """
    log_q, target, reduction, denominator = _prepare(input, target, reduction, log_target)
    return reduce(_losses(log_q, target, log_target), reduction, denominator)


def _losses(log_q: np.ndarray, target: np.ndarray, log_target: bool) -> np.ndarray:
    # (log 0 = -inf and 0 * inf = nan are silent here: `where` keeps PyTorch's answer)
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:
            return np.exp(target) * (target - log_q)
        gap = np.log(target)
        gap -= log_q  # log p - x
        gap *= target
        return np.where(target == 0, 0.0 - target * log_q, gap).astype(log_q.dtype, copy=False)


@computed_wide("target", "grad_output")
def kl_div_grad(input, target, reduction="mean", log_target=False, grad_output=None):
    r"""Gradient of :func:`kl_div` with respect to ``input``.

    Textbook twin: :func:`xent_ref.textbook.kl_div_grad`; the same numbers.

    Only the cross term :math:`-p\,x` depends on the input (the target's entropy term
    :math:`p \log p` is a constant), so

    .. math::

        \frac{\partial \ell}{\partial x} = -p \quad\text{or}\quad -e^{t}
        \ (\texttt{log\_target=True}),

    times the reduction's scale: ``grad_output``, divided by ``input.shape[0]`` for
    ``batchmean`` and by the number of elements for ``mean``. A model's logits then get
    this through ``log_softmax_grad``: ``softmax(z) - p`` per sample, cross-entropy's.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> xr.kl_div_grad(np.log([[0.5, 0.5]]), [[0.9, 0.1]], reduction="batchmean")
    array([[-0.9, -0.1]])
    """
    log_q, target, reduction, denominator = _prepare(input, target, reduction, log_target)
    g = checks.grad_output(grad_output, reduction, log_q.shape, log_q.dtype)
    scale = per_sample_scale(g, reduction, denominator)
    p = np.exp(target) if log_target else target
    return np.asarray(0.0 - p * scale, dtype=log_q.dtype)
