r"""Softmax and log-softmax, with their vector-Jacobian products.

.. math::

    p_c = \mathrm{softmax}(x)_c = \frac{e^{x_c}}{\sum_k e^{x_k}}, \qquad
    \log p_c = x_c - \operatorname{lse}(x), \qquad
    \operatorname{lse}(x) = \log \sum_k e^{x_k}.

Everything here (and the cross-entropy in :mod:`xent_ref.cross_entropy`) is built
from one computation, :func:`exp_shifted_inplace`. With :math:`m = \max_k x_k` and
:math:`j^*` the position of that maximum,

.. math::

    \operatorname{lse}(x) = m + \log S, \qquad
    S = \sum_k e^{x_k - m} = 1 + \underbrace{\sum_{k \ne j^*} e^{x_k - m}}_{\text{others}},
    \qquad \log S = \operatorname{log1p}(\text{others}).

Shifting by the maximum makes every exponent :math:`\le 0`, so nothing overflows
(logits of :math:`\pm 10^{300}` are fine) and the largest term is exactly 1.
Summing the *other* terms separately and using ``log1p`` keeps a confident
prediction's tiny loss: for logits ``[50, 0, 0]`` the loss of class 0 is
``log1p(2 e^-50) = 3.86e-22``, while ``log(1 + 3.86e-22)`` rounds to 0.

float16 and bfloat16 inputs are computed in float64 and the result rounded once
to the input's dtype (:func:`xent_ref._engine.lowprec.computed_wide`): no sum or count
overflows float16's 65504, and the one final rounding is the only error.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine.blocks import Picks
from xent_ref._engine.checks import as_float_array, as_input, check_axis
from xent_ref._engine.lowprec import computed_wide


def exp_shifted_inplace(shifted: np.ndarray, axis: int, keep_max: bool = True,
                        j_max: np.ndarray | None = None,
                        picks: Picks | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``shifted = x - max(x)`` into ``exp(shifted)`` in place; return ``(others, j_max)``.

    ``others`` (keepdims) is the sum of the exponentials along ``axis`` *without* the
    maximum's own term (which is exactly 1), so that ``S = 1 + others`` and
    ``log S = log1p(others)`` are exact even when ``others`` is 1e-22. ``j_max``
    (keepdims) is the index of the maximum (found here unless the caller has it:
    :func:`shifted_logits` with ``with_argmax``). ``picks`` is ``Picks(shifted, axis)``,
    if the caller has it.
    """
    if shifted.shape[axis] == 0:  # no classes: nothing to exponentiate or sum
        return shifted.sum(axis=axis, keepdims=True), np.zeros(shifted.shape, np.intp)
    if j_max is None:
        j_max = _first_zero(shifted, axis)  # the maximum: x - m is exactly 0 there
    np.exp(shifted, out=shifted)
    # The maximum's term: exactly 1 -- or nan in a row with no finite maximum (all
    # -inf, or holding +inf or nan), which PyTorch answers with nan too.
    picks = Picks(shifted, axis) if picks is None else picks
    flat, at_max = picks.view, picks.at(j_max)
    e_max = flat[at_max]
    # Leave it out of the sum (adding e_max - 1 adds exactly 0, or the row's nan),
    # then put it back (unless the caller overwrites that entry anyway:
    # ``keep_max=False`` leaves 0 there).
    flat[at_max] = 0.0
    others = shifted.sum(axis=axis, keepdims=True)
    others += e_max - 1
    if keep_max:
        flat[at_max] = e_max
    return others, j_max


def _first_zero(shifted: np.ndarray, axis: int) -> np.ndarray:
    """Index (keepdims, intp) of the first maximum along ``axis`` of ``shifted = x - max(x)``."""
    if shifted.strides[axis] == shifted.itemsize:  # classes contiguous: argmax is fast
        return np.argmax(shifted, axis=axis, keepdims=True)
    # Classes strided, as in an image's (N, C, H, W): np.argmax would first copy the
    # block into class-last order (a third of the loss's time). Reductions along any
    # axis are fast, so give class c the key C - c where it holds a maximum (0
    # elsewhere): the largest key marks the first maximum.
    n = shifted.shape[axis]
    dtype = np.min_scalar_type(n)
    keys = np.arange(n, 0, -1, dtype=dtype).reshape([-1 if a == axis else 1
                                                     for a in range(shifted.ndim)])
    at_max = shifted == 0
    # (up to 255 classes the keys are written over the mask: a bool is a uint8's size)
    keyed = np.multiply(at_max, keys, out=at_max.view(dtype) if dtype.itemsize == 1 else None)
    top_key = keyed.max(axis=axis, keepdims=True)
    # (a nan row has no zero, so no key: any index will do there, as long as it is valid)
    j_max = top_key.astype(np.intp)
    return np.minimum(np.subtract(n, j_max, out=j_max), n - 1, out=j_max)


def shifted_logits(logits: np.ndarray, axis: int, out: np.ndarray | None = None,
                   with_argmax: bool = False):
    """``logits - max(logits)`` along ``axis`` (written into ``out`` if given); with
    ``with_argmax``, ``(shifted, j_max)``, ``j_max`` as :func:`exp_shifted_inplace` needs
    it (or ``None``: it will find it).

    A row that is entirely ``-inf`` has no finite maximum; ``-inf - (-inf)`` is nan,
    which is PyTorch's answer for that row too, so we let it through (silently: every
    caller runs under the library's error state, see
    :func:`xent_ref._engine.blocks.library_errstate`).
    """
    j_max = None
    if logits.shape[axis] and logits.strides[axis] == logits.itemsize:
        # Classes contiguous: the first maximum's index is one pass (argmax), and the
        # maximum is read there -- the same numbers as max(), in one pass fewer. (A row
        # holding nan is nan either way; its j_max only needs to be a valid index.)
        j_max = np.argmax(logits, axis=axis, keepdims=True)
        picks = Picks(logits, axis)
        m = picks.view[picks.at(j_max)]
    else:
        m = logits.max(axis=axis, keepdims=True, initial=-np.inf)  # (-inf for an empty axis)
    shifted = np.subtract(logits, m, out=out)
    return (shifted, j_max) if with_argmax else shifted


@computed_wide()
def softmax(x, axis: int = -1) -> np.ndarray:
    r"""Softmax along ``axis``: :math:`p_c = e^{x_c - m} / S` (see the module docstring).

    Textbook twin: :func:`xent_ref.textbook.softmax`; this one shifts by the maximum (no
    overflow) and works along any axis.

    Parameters
    ----------
    x : array_like, shape ``(..., C, ...)``
        Logits; integers and lists become float64.
    axis : int
        The class axis.

    Returns
    -------
    probs : ndarray, same shape and floating dtype as ``x``; each slice along
        ``axis`` sums to 1.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.softmax([0.9, 0.1]).round(4)
    array([0.69, 0.31])
    """
    return _softmax_parts(x, axis)[0]


def _softmax_parts(x, axis: int):
    """``(probs, others, j_max, axis)``: the softmax and the pieces the gradients reuse."""
    logits = as_input(x, "x")
    axis = check_axis(axis, logits.ndim)
    probs, j_max = shifted_logits(logits, axis, with_argmax=True)
    others, j_max = exp_shifted_inplace(probs, axis, j_max=j_max)
    probs /= 1.0 + others
    return probs, others, j_max, axis


@computed_wide("grad_output")
def softmax_grad(x, grad_output, axis: int = -1) -> np.ndarray:
    r"""Vector-Jacobian product of :func:`softmax`: the gradient with respect to ``x``.

    Textbook twin: :func:`xent_ref.textbook.softmax_grad`; this one takes the top-class
    form below (no cancellation) and works along any axis.

    The Jacobian is :math:`\partial p_c / \partial x_j = p_c(\delta_{cj} - p_j)`, so for an
    upstream gradient :math:`g = \partial L / \partial p`

    .. math::

        \frac{\partial L}{\partial x_j} = \sum_c g_c\, p_c(\delta_{cj} - p_j)
        = p_j \Big(g_j - \sum_c g_c p_c\Big)
        = p_j \Big(\tilde g_j - \sum_c \tilde g_c p_c\Big), \qquad \tilde g = g - g_{j^*}.

    The second form (the same number, since the :math:`p_c` sum to 1) is the one
    computed: at the top class :math:`j^*` it is a sum of small terms,
    :math:`-p_{j^*} \sum_{c \ne j^*} p_c \tilde g_c`, where the first form would
    subtract two nearly equal numbers and return 0 for a confident prediction.

    Parameters
    ----------
    x : array_like
        The logits softmax was applied to.
    grad_output : array_like, same shape as ``x``
        :math:`\partial L / \partial p`.
    axis : int
        The class axis.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.softmax_grad([0.0, 0.0], [1.0, 0.0])
    array([ 0.25, -0.25])
    """
    probs, _, j_max, axis = _softmax_parts(x, axis)
    g = _same_shape_grad(grad_output, probs)
    # grad = p (g~ - sum_c g~_c p_c), g~ = g - g_{j*}: the textbook's p (g - sum_c g_c p_c)
    spread = g - np.take_along_axis(g, j_max, axis=axis)  # g - g_{j*}
    grad = probs * (spread - (spread * probs).sum(axis=axis, keepdims=True))
    # An infinite g_{j*} makes every entry of the second form inf - inf; the first is
    # PyTorch's own arrangement, and it answers ([inf, 1] at p = [.5, .5]: [nan, -inf]).
    if not np.isfinite(g).all():
        plain = probs * (g - (g * probs).sum(axis=axis, keepdims=True))
        np.copyto(grad, plain, where=np.isnan(grad))
    return grad


@computed_wide()
def log_softmax(x, axis: int = -1) -> np.ndarray:
    r"""Log-softmax along ``axis``: :math:`\log p_c = (x_c - m) - \operatorname{log1p}(\text{others})`.

    Textbook twin: :func:`xent_ref.textbook.log_softmax`; this one shifts by the maximum
    and takes ``log1p`` of the others (no overflow, tiny losses kept).

    Computed directly, not as ``log(softmax(x))``: a probability that underflows to 0
    would give ``-inf``, while ``x_c - lse`` stays finite (``[0, -1000]`` gives
    ``[0, -1000]``, not ``[0, -inf]``).

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.log_softmax([0.0, -1000.0])
    array([    0., -1000.])
    """
    logits = as_input(x, "x")
    axis = check_axis(axis, logits.ndim)
    log_probs, j_max = shifted_logits(logits, axis, with_argmax=True)
    others, _ = exp_shifted_inplace(log_probs.copy(), axis, j_max=j_max)
    log_probs -= np.log1p(others)
    return log_probs


@computed_wide("grad_output")
def log_softmax_grad(x, grad_output, axis: int = -1) -> np.ndarray:
    r"""Vector-Jacobian product of :func:`log_softmax`.

    Textbook twin: :func:`xent_ref.textbook.log_softmax_grad`; this one writes the top
    class in the form that rounds less.

    From :math:`\partial \log p_c / \partial x_j = \delta_{cj} - p_j`,

    .. math::

        \frac{\partial L}{\partial x_j} = \sum_c g_c(\delta_{cj} - p_j) = g_j - p_j \sum_c g_c.

    With :math:`g = -y` for a target distribution :math:`y` this is the famous
    ``softmax - target`` of the cross-entropy.

    At the top class :math:`j^*` of a confident prediction (:math:`p_{j^*} \approx 1`)
    :math:`g_{j^*} - p_{j^*} G` (with :math:`G = \sum_c g_c`) subtracts nearly equal
    numbers; the same value is :math:`-\sum_{c \ne j^*} g_c + G\,\text{others}/S`
    (as :math:`1 - p_{j^*} = \text{others}/S`), whose terms are small there. Each
    entry at :math:`j^*` uses whichever form has the smaller terms.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.log_softmax_grad([0.0, 0.0], [-1.0, 0.0])
    array([-0.5,  0.5])
    """
    probs, others, j_max, axis = _softmax_parts(x, axis)
    g = _same_shape_grad(grad_output, probs)
    # grad = g - p G, G = sum_c g_c: the textbook's line
    g_sum = g.sum(axis=axis, keepdims=True)  # G
    grad = g - probs * g_sum
    _log_softmax_top_class(grad, g, g_sum, probs, others, j_max, axis)
    return grad


def _log_softmax_top_class(grad, g, g_sum, probs, others, j_max, axis) -> None:
    """Rewrite the top class's entry of :func:`log_softmax_grad` in place, in the form
    with the smaller terms: ``g* - p* G``, or the same number as
    ``-sum_{c != j*} g_c + G others / S``."""
    g_max = np.take_along_axis(g, j_max, axis=axis)
    g_others = g.copy()
    np.put_along_axis(g_others, j_max, 0.0, axis=axis)
    g_rest = g_others.sum(axis=axis, keepdims=True)  # summed without g*, not G - g*
    p_max = np.take_along_axis(probs, j_max, axis=axis)
    tail = others / (1.0 + others)  # 1 - p*, without the subtraction
    plain_terms = np.abs(g_max) + np.abs(g_sum) * p_max
    complement_terms = np.abs(g_rest) + np.abs(g_sum) * tail
    top = np.where(complement_terms < plain_terms, g_sum * tail - g_rest, g_max - p_max * g_sum)
    np.put_along_axis(grad, j_max, top, axis=axis)


def _same_shape_grad(grad_output, like: np.ndarray) -> np.ndarray:
    g = as_float_array(grad_output, "grad_output", like.dtype)
    if g.shape != like.shape:
        raise ValueError(f"grad_output: expected the shape of x {like.shape}, got shape {g.shape}")
    return g
