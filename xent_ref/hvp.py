r"""Second derivatives: Hessian-vector products, exact, derived by hand.

``*_hvp(input, ..., v)`` is :math:`H v`, the derivative of the gradient in the direction
``v``: what PyTorch's double backward gives for
``torch.autograd.grad(torch.autograd.grad(L, x, grad_output, create_graph=True)[0], x, v)``.
Nothing here is a finite difference (the tests compare against those, of the
library's own gradients, and against torch).

Cross-entropy, one row. With :math:`\ell = A \operatorname{lse}(z) - \langle q, z \rangle`
(:mod:`xent_ref.cross_entropy`: target mass :math:`q`, :math:`A = \sum_c q_c`) and
:math:`\partial p_c / \partial z_j = p_c (\delta_{cj} - p_j)`,

.. math::

    \nabla_z \ell = A p - q, \qquad
    H^{\text{CE}}_z = A\,(\operatorname{diag}(p) - p p^\top),

the covariance of the one-hot class under the softmax, times :math:`A`: positive
semidefinite (:math:`u^\top H u = A \operatorname{Var}_p(u) \ge 0`), each row summing to 0
(it does not see a shift of all the logits), and **independent of the target** beyond
:math:`A`. The z-loss :math:`\lambda \operatorname{lse}^2` adds

.. math::

    \nabla_z = 2\lambda \operatorname{lse}\, p, \qquad
    H^{z}_z = 2\lambda\,\big(p p^\top + \operatorname{lse}\,(\operatorname{diag}(p) - p p^\top)\big).

With the reduction's per-token scales :math:`s` (cross-entropy) and :math:`s_z` (z-loss),
:math:`H_z = a\,(\operatorname{diag}(p) - p p^\top) + b\, p p^\top`,
:math:`a = s A + 2 \lambda s_z \operatorname{lse}`, :math:`b = 2 \lambda s_z`, so that
:math:`H_z u = a\, p \odot (u - \langle p, u \rangle) + b\, p \langle p, u \rangle`.

The logits' transform :math:`z = \varphi(x) = c \tanh(s x / c)` acts element by element,
so by the chain rule twice

.. math::

    \nabla_x L = \varphi' \odot \nabla_z L, \qquad
    H_x v = \varphi' \odot H_z (\varphi' \odot v) + (\nabla_z L \odot \varphi'') \odot v,

with :math:`\varphi' = s \operatorname{sech}^2(s x / c)` and
:math:`\varphi'' = -2 (s / c) \tanh(s x / c)\, \varphi' = -2 s z \varphi' / c^2`: the
softcap's second derivative is not zero, and its term (diagonal, and indefinite) is
the one a Gauss-Newton product leaves out. Without a softcap :math:`\varphi' = s`,
:math:`\varphi'' = 0`. Ignored tokens have no second derivative (``a = b = 0``).

float16 and bfloat16 are computed in float64 and rounded once, as everywhere
(:func:`xent_ref._engine.lowprec.computed_wide`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xent_ref import binary, llm_options
from xent_ref._engine import checks
from xent_ref._engine.lowprec import computed_wide
from xent_ref.cross_entropy import cross_entropy_parts, prepare
from xent_ref.linear import prepare_linear
from xent_ref.softmax import softmax

# PyTorch's double backward of binary_cross_entropy divides by (x + eps)^2 (1 - x + eps)^2,
# eps a C++ double 1e-12 (unlike the first derivative's float floor): x = 0 is finite.
BCE_HVP_EPSILON = 1e-12


def _like(value, name: str, shape: tuple, dtype) -> np.ndarray:
    """A direction or upstream gradient of exactly ``shape``, in ``dtype``."""
    array = checks.as_float_array(value, name, dtype)
    if array.shape != tuple(shape):
        raise ValueError(f"{name}: expected the input's shape {tuple(shape)}, got shape "
                         f"{array.shape}")
    return array


# ---------------------------------------------------------------------------------------------
# softmax and log_softmax: second-order vector-Jacobian products
# ---------------------------------------------------------------------------------------------


def _softmax_arguments(x, grad_output, v, axis):
    """``(p, g, v, axis)``: the softmax of ``x`` and the checked companions."""
    logits = checks.as_input(x, "x")
    axis = checks.check_axis(axis, logits.ndim)
    p = softmax(logits, axis)
    return (p, _like(grad_output, "grad_output", p.shape, p.dtype),
            _like(v, "v", p.shape, p.dtype), axis)


@computed_wide("grad_output", "v")
def softmax_hvp(x, grad_output, v, axis: int = -1) -> np.ndarray:
    r""":math:`\partial_x \langle g, J(x)\, v \rangle` for :math:`p = \operatorname{softmax}(x)`:
    the derivative of :func:`xent_ref.softmax_grad` (``grad_output`` :math:`g` held fixed)
    in the direction ``v``, as PyTorch's double backward gives it.

    With :math:`J^\top g = p \odot (g - \langle g, p \rangle)` and
    :math:`\partial p_j / \partial x_k = p_j(\delta_{jk} - p_k)`, differentiating
    :math:`\langle v, J^\top g \rangle = \langle v g, p \rangle - \langle v, p \rangle \langle g, p \rangle`:

    .. math::

        \frac{\partial}{\partial x_k} = p_k\big[v_k g_k - \langle v g, p \rangle
        - (v_k - \langle v, p \rangle) \langle g, p \rangle
        - \langle v, p \rangle (g_k - \langle g, p \rangle)\big].

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.softmax_hvp([0.0, 1.0], [1.0, 0.0], [1.0, 0.0]).round(6)
    array([ 0.090858, -0.090858])
    """
    p, g, v, axis = _softmax_arguments(x, grad_output, v, axis)

    def dot(a):
        return (a * p).sum(axis=axis, keepdims=True)

    vp, gp = dot(v), dot(g)
    return p * (v * g - dot(v * g) - (v - vp) * gp - vp * (g - gp))


@computed_wide("grad_output", "v")
def log_softmax_hvp(x, grad_output, v, axis: int = -1) -> np.ndarray:
    r""":math:`\partial_x \langle g, J(x)\, v \rangle` for :math:`\log \operatorname{softmax}(x)`:
    the derivative of :func:`xent_ref.log_softmax_grad` in the direction ``v``.

    :math:`J^\top g = g - p\,G` with :math:`G = \sum_c g_c`, so
    :math:`\langle v, J^\top g \rangle = \langle v, g \rangle - G \langle v, p \rangle`, and

    .. math::

        \frac{\partial}{\partial x_k} = -G\, p_k\,(v_k - \langle v, p \rangle),

    :math:`-G` times the softmax's covariance applied to ``v``: for a cross-entropy
    (:math:`g = -q`, :math:`G = -A`) the Hessian :math:`A (\operatorname{diag} p - p p^\top)`.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.log_softmax_hvp([0.0, 0.0], [-1.0, 0.0], [1.0, 0.0])
    array([ 0.25, -0.25])
    """
    p, g, v, axis = _softmax_arguments(x, grad_output, v, axis)
    g_sum = g.sum(axis=axis, keepdims=True)
    return -g_sum * p * (v - (v * p).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------------------------------------
# cross-entropy: the per-token pieces of the Hessian, then H v and the dense H
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecondOrder:
    r"""The Hessian of a prepared cross-entropy call, token by token, in the call's
    ``(N, C, S)`` layout: :math:`H_x = \varphi' [a (\operatorname{diag} p - p p^\top) + b\,p p^\top]
    \varphi' + \operatorname{diag}(\text{curvature})` (module docstring)."""

    probs: np.ndarray  # p = softmax(z), (N, C, S)
    a: np.ndarray  # (N, 1, S): s A + 2 lambda s_z lse, 0 on ignored tokens
    b: np.ndarray  # (N, 1, S): 2 lambda s_z, 0 on ignored tokens
    slope: np.ndarray | float  # phi' = dz/dx, (N, C, S) or the scalar s
    curvature: np.ndarray | None  # grad_z L * phi'' (softcap only), (N, C, S)
    grad_z: np.ndarray  # dL/dz, (N, C, S)

    def hvp(self, v: np.ndarray) -> np.ndarray:
        r""":math:`H_x v` for ``v`` of the ``(N, C, S)`` layout."""
        p = self.probs
        u = self.slope * v  # phi' v
        pu = (p * u).sum(axis=1, keepdims=True)  # <p, u>
        hv = self.a * p * (u - pu) + self.b * p * pu  # H_z u
        hv *= self.slope
        if self.curvature is not None:
            hv += self.curvature * v
        return hv

    def dense(self) -> np.ndarray:
        """The per-token matrices :math:`H_x`, ``(N, S, C, C)``."""
        p = np.moveaxis(self.probs, 1, -1)  # (N, S, C)
        a, b = (np.moveaxis(c, 1, -1)[..., None] for c in (self.a, self.b))  # (N, S, 1, 1)
        outer = p[..., :, None] * p[..., None, :]
        hessian = a * (p[..., None] * np.eye(p.shape[-1], dtype=p.dtype) - outer) + b * outer
        slope = np.broadcast_to(np.moveaxis(np.broadcast_to(self.slope, self.probs.shape),
                                            1, -1), p.shape)
        hessian *= slope[..., :, None] * slope[..., None, :]
        if self.curvature is not None:
            diagonal = np.einsum("...cc->...c", hessian)  # a writable view of the diagonal
            diagonal += np.moveaxis(self.curvature, 1, -1)
        return hessian


def second_order(call, kept, ce_scale, z_scale) -> SecondOrder:
    r"""The :class:`SecondOrder` pieces of a prepared call (:func:`xent_ref.cross_entropy.prepare`,
    or a chunk of one), with the loss-shaped mask ``kept`` and per-token scales
    ``ce_scale``, ``z_scale`` (as :func:`xent_ref.cross_entropy.cross_entropy_parts` takes
    them)."""
    options, (n, _, positions) = call.options, call.logits.shape
    logits = call.logits.reshape(call.input_shape)
    z, slope = llm_options.transform(logits, options, with_slope=True)
    lse, probs = llm_options.lse_and_probs(z, 0 if z.ndim == 1 else 1)

    def per_token(values):  # loss-shaped -> (N, 1, S)
        return np.reshape(values, (n, 1, positions))

    kept3 = per_token(kept)
    z_part = per_token(z_scale) * (2.0 * options.z_loss)
    a = per_token(ce_scale) * _target_total(call)
    if options.z_loss:  # (only then: 0 * a non-finite lse would be nan)
        a = a + z_part * per_token(lse)
    a = np.where(kept3, a, 0)
    b = np.where(kept3, z_part, 0) if options.z_loss else np.zeros_like(a)
    # dL/dz: the same call on z itself, its z-loss kept, its transform the identity
    z_call = call.with_logits(z, options=llm_options.Options(z_loss=options.z_loss))
    grad_z = cross_entropy_parts(z_call, kept, ce_scale=ce_scale,
                                 z_scale=z_scale)[2].reshape(call.logits.shape)
    shape3 = call.logits.shape
    curvature = None
    if options.softcap is not None:
        # phi'' = -2 s z phi' / c^2
        phi2 = (-2.0 * options.logit_scale / options.softcap ** 2) * z * slope
        curvature = grad_z * phi2.reshape(shape3)
    slope3 = slope.reshape(shape3) if np.ndim(slope) else slope
    return SecondOrder(probs.reshape(shape3).astype(call.logits.dtype, copy=False),
                       a.astype(call.logits.dtype, copy=False),
                       b.astype(call.logits.dtype, copy=False), slope3, curvature, grad_z)


def _target_total(call) -> np.ndarray:
    r""":math:`A_i = \sum_c q_{ic}` per token, ``(N, 1, S)``: :math:`(1-\varepsilon) w_{t_i} +
    \tfrac{\varepsilon}{C} \sum_c w_c` for class indices (0 where ignored), :math:`\sum_c w_c
    ((1-\varepsilon) y_{ic} + \varepsilon / C)` for probabilities."""
    eps, smoothing = call.label_smoothing, call.label_smoothing / call.n_classes * call.w.sum()
    if call.probabilities:
        total = (1.0 - eps) * np.einsum("ncs,c->ns", call.target, call.w)
    else:
        _, kept, w_t = call.index_targets(slice(None), slice(None))
        total = np.where(kept, (1.0 - eps) * w_t, 0)
    return (total + smoothing)[:, None, :] if eps else total[:, None, :]


def _token_scales(call, grad_output):
    """``(kept, ce_scale, z_scale)`` of a prepared call: the loss-shaped kept mask and the
    per-token scales of its two parts (:func:`xent_ref.llm_options.scales`)."""
    kept = call.kept().reshape(call.loss_shape)
    ce_den, z_den = llm_options.denominators(kept, call.denominator, call.probabilities)
    g = checks.grad_output(grad_output, call.reduction, call.loss_shape, call.logits.dtype)
    return (kept,) + llm_options.scales(g, call.reduction, ce_den, z_den, call.loss_shape)


def _call_pieces(input, target, weight, ignore_index, reduction, label_smoothing, grad_output,
                 logit_scale, softcap, z_loss):
    """``(prepared call, its SecondOrder pieces)`` of a cross-entropy call."""
    options = llm_options.Options.checked(logit_scale, softcap, z_loss)
    call = prepare(input, target, weight=weight, ignore_index=ignore_index,
                   reduction=reduction, label_smoothing=label_smoothing, options=options)
    return call, second_order(call, *_token_scales(call, grad_output))


def cross_entropy_second_order(input, target, weight=None, ignore_index=-100, reduction="mean",
                               label_smoothing=0.0, grad_output=None, *, logit_scale=1.0,
                               softcap=None, z_loss=0.0) -> SecondOrder:
    r"""The :class:`SecondOrder` pieces of :func:`xent_ref.cross_entropy`'s Hessian (the
    arguments of :func:`cross_entropy_hvp` but ``v``), in the ``(N, C, S)`` layout of
    tokens (``(1, C, 1)`` for one sample): what :func:`cross_entropy_hvp` and
    :func:`cross_entropy_hessian` combine, for a diagnosis that recombines them otherwise
    (``verify``'s ``hvp-missing-outer-product``).

    Examples
    --------
    >>> pieces = cross_entropy_second_order([[0.0, 0.0]], [0])
    >>> pieces.probs.ravel().tolist(), pieces.a.ravel().tolist()
    ([0.5, 0.5], [1.0])
    """
    return _call_pieces(input, target, weight, ignore_index, reduction, label_smoothing,
                        grad_output, logit_scale, softcap, z_loss)[1]


@computed_wide("target", "weight", "grad_output", "v")
def cross_entropy_hvp(input, target, v, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0, grad_output=None, *, logit_scale=1.0, softcap=None,
                      z_loss=0.0):
    r""":math:`H v`, the Hessian of :func:`xent_ref.cross_entropy` (times ``grad_output``)
    with respect to ``input``, applied to ``v`` (the input's shape).

    Per token (module docstring): :math:`H_x v = \varphi' \odot [a\,p \odot (u - \langle p,
    u\rangle) + b\,p\,\langle p, u \rangle] + (\nabla_z L \odot \varphi'') \odot v`,
    :math:`u = \varphi' \odot v`; without the LLM options, :math:`s A\, p \odot (v - \langle p, v
    \rangle)` -- :math:`s A` times the softmax's covariance applied to ``v``. Every option
    of the loss is taken, as the loss takes it.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.cross_entropy_hvp([[0.0, 0.0]], [0], [[1.0, 0.0]])
    array([[ 0.25, -0.25]])
    """
    call, pieces = _call_pieces(input, target, weight, ignore_index, reduction,
                                label_smoothing, grad_output, logit_scale, softcap, z_loss)
    v = _like(v, "v", call.input_shape, call.logits.dtype).reshape(call.logits.shape)
    return pieces.hvp(v).reshape(call.input_shape)


@computed_wide("target", "weight", "grad_output")
def cross_entropy_hessian(input, target, weight=None, ignore_index=-100, reduction="mean",
                          label_smoothing=0.0, grad_output=None, *, logit_scale=1.0,
                          softcap=None, z_loss=0.0):
    r"""The dense Hessian of :func:`xent_ref.cross_entropy`, one ``(C, C)`` matrix per token
    (tokens do not interact): shape ``(C, C)`` for a ``(C,)`` input, ``(N, C, C)`` for
    ``(N, C)``, ``(N, d1, ..., dk, C, C)`` for ``(N, C, d1, ..., dk)``. For teaching and
    small inputs: it holds ``C`` times the logits.

    Without the LLM options, :math:`s A (\operatorname{diag}(p) - p p^\top)`: symmetric,
    positive semidefinite (the covariance of the one-hot class under ``p``), rows summing
    to 0 -- so the loss is convex in the logits. A softcap adds an indefinite diagonal
    (module docstring), a z-loss a multiple of :math:`p p^\top`.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.cross_entropy_hessian([0.0, 0.0], 1)
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    call, pieces = _call_pieces(input, target, weight, ignore_index, reduction,
                                label_smoothing, grad_output, logit_scale, softcap, z_loss)
    hessian = pieces.dense()
    n_classes = call.n_classes
    return hessian.reshape(call.loss_shape + (n_classes, n_classes))


@computed_wide("target", "weight", "grad_output", "v")
def nll_loss_hvp(input, target, v, weight=None, ignore_index=-100, reduction="mean",
                 grad_output=None):
    r""":math:`H v = 0`: :func:`xent_ref.nll_loss` is :math:`-\sum_i w_{t_i} x_{i t_i}` (over a
    denominator that depends on the targets only), *linear* in its input, so its gradient
    does not depend on the input and every second derivative is 0. (The curvature of
    ``cross_entropy = nll_loss(log_softmax(x))`` is all in the log-softmax:
    :func:`log_softmax_hvp`.) The arguments are checked as :func:`xent_ref.nll_loss_grad`
    checks them.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.nll_loss_hvp([[-0.7, -0.7]], [0], [[1.0, 2.0]])
    array([[0., 0.]])
    """
    call = prepare(input, target, weight=weight, ignore_index=ignore_index,
                   reduction=reduction, allow_probabilities=False)
    checks.grad_output(grad_output, call.reduction, call.loss_shape, call.logits.dtype)
    _like(v, "v", call.input_shape, call.logits.dtype)
    return np.zeros(call.input_shape, call.logits.dtype)


# ---------------------------------------------------------------------------------------------
# binary cross-entropy: the Hessian is diagonal
# ---------------------------------------------------------------------------------------------


@computed_wide("target", "weight", "grad_output", "v")
def binary_cross_entropy_hvp(input, target, v, weight=None, reduction="mean",
                             grad_output=None) -> np.ndarray:
    r""":math:`H v` of :func:`xent_ref.binary_cross_entropy`: the loss is a sum over
    elements, so :math:`H` is diagonal, with

    .. math::

        \frac{\partial^2 \ell}{\partial x^2} = w\Big[\frac{y}{x^2} + \frac{1-y}{(1-x)^2}\Big]
        = w\,\frac{y (1-x)^2 + (1-y) x^2}{x^2 (1-x)^2},

    the derivative of :math:`w [-y/x + (1-y)/(1-x)]`. As PyTorch's double backward, the
    denominator is :math:`(x + 10^{-12})^2 (1 - x + 10^{-12})^2`, so ``x = 0`` or ``1``
    gives a large finite value; the numerator is taken in the form above (two
    non-negative terms), PyTorch's :math:`x^2 - 2xy + y` rearranged.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.binary_cross_entropy_hvp([0.5, 0.8], [1.0, 0.0], [1.0, 1.0], reduction="sum")
    array([ 4., 25.])
    """
    call = binary.prepare(input, target, weight=weight, reduction=reduction,
                          probabilities=True)
    v = _like(v, "v", call.shape, call.input.dtype).reshape(call.input.shape)
    x, y, eps = call.input, call.target, call.input.dtype.type(BCE_HVP_EPSILON)
    curvature = (y * (1 - x) ** 2 + (1 - y) * x * x) / ((x + eps) ** 2 * (1 - x + eps) ** 2)
    return _diagonal_hvp(call, curvature, v, grad_output)


def _diagonal_hvp(call, curvature, v, grad_output) -> np.ndarray:
    """``s w curvature v``, the caller's shape: the diagonal Hessian of a binary loss."""
    if call.weight is not None:
        curvature = curvature * call.weight
    return (binary.upstream(call, grad_output) * curvature * v).reshape(call.shape)


@computed_wide("target", "weight", "grad_output", "pos_weight", "v")
def binary_cross_entropy_with_logits_hvp(input, target, v, weight=None, pos_weight=None,
                                         reduction="mean", grad_output=None) -> np.ndarray:
    r""":math:`H v` of :func:`xent_ref.binary_cross_entropy_with_logits`, a diagonal Hessian:
    from the gradient :math:`w[(1-y)\sigma(x) - p_w y \sigma(-x)]` and
    :math:`\sigma'(x) = \sigma(x)\sigma(-x)`,

    .. math::

        \frac{\partial^2 \ell}{\partial x^2} = w\,(p_w y + 1 - y)\,\sigma(x)\,\sigma(-x),
        \qquad \sigma(x)\sigma(-x) = \frac{e^{-|x|}}{(1 + e^{-|x|})^2},

    the right-hand form exact for every ``x`` (where :math:`\sigma(x)(1 - \sigma(x))` would
    round to 0 for ``x > 37`` in float64; PyTorch's double backward is that 0).

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.binary_cross_entropy_with_logits_hvp([0.0, 0.0], [1.0, 0.0], [1.0, 1.0],
    ...                                         pos_weight=3.0, reduction="sum")
    array([0.75, 0.25])
    """
    call = binary.prepare(input, target, weight=weight, reduction=reduction,
                          pos_weight=pos_weight)
    v = _like(v, "v", call.shape, call.input.dtype).reshape(call.input.shape)
    x, y = call.input, call.target
    e = np.exp(-np.abs(x))
    curvature = e / (1 + e) ** 2
    if call.pos_weight is not None:
        curvature *= call.pos_weight * y + (1 - y)  # p_w y + 1 - y (1 without pos_weight)
    return _diagonal_hvp(call, curvature, v, grad_output)


# ---------------------------------------------------------------------------------------------
# linear cross-entropy: jointly over (input, linear_weight[, linear_bias]), a chunk at a time
# ---------------------------------------------------------------------------------------------


# (``v`` is a tuple, not one array: each direction is cast to the computing dtype as given)
@computed_wide("linear_weight", "target", "linear_bias", "weight", "grad_output",
               same_dtype=("linear_weight", "linear_bias"))
def linear_cross_entropy_hvp(input, linear_weight, target, v, *, linear_bias=None, weight=None,
                             reduction="mean", ignore_index=None, label_smoothing=0.0,
                             logit_scale=1.0, softcap=None, z_loss=0.0, chunk_size=None,
                             grad_output=None):
    r"""The joint :math:`H v` of :func:`xent_ref.linear_cross_entropy` over all its parameters:
    ``v = (v_input, v_linear_weight)`` or ``(v_input, v_linear_weight, v_linear_bias)``
    (shapes of ``input``, ``linear_weight``, ``linear_bias``; a ``None`` entry is a zero
    direction). Returns ``(hv_input, hv_linear_weight, hv_linear_bias or None)``.

    Joint, because the Hessian has cross blocks :math:`\partial^2 L / \partial h\,\partial W`;
    one parameter's own block is the product with the other directions zero
    (``v = (v_h, None)`` gives :math:`H_{hh} v_h` and :math:`H_{Wh} v_h`). With
    :math:`x = h W^\top + b`, :math:`G = \nabla_x L`, :math:`dh = G W`, :math:`dW = G^\top h`,
    :math:`db = G^\top 1`, differentiate the three gradients in the direction :math:`v`:
    the logits move by :math:`\dot x = v_h W^\top + h v_W^\top + v_b`, so :math:`G` moves by
    :math:`\dot G = H_x \dot x` (:func:`cross_entropy_hvp`, row by row), and

    .. math::

        H v = \big(\dot G W + G v_W,\;\; \dot G^\top h + G^\top v_h,\;\; \dot G^\top 1\big),

    the Gauss-Newton part through :math:`\dot G` plus the bilinear cross terms. As the loss,
    a chunk of rows at a time: no ``(N, V)`` array beyond a chunk's.

    Examples
    --------
    >>> import numpy as np, xent_ref as xr
    >>> h, W = np.array([[1.0, -1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> hv_h, hv_W, _ = xr.linear_cross_entropy_hvp(h, W, [0], (np.array([[1.0, 0.0]]), None))
    >>> hv_h.round(6), hv_W.round(6)
    (array([[ 0.104994, -0.104994]]), array([[-0.014209, -0.104994],
           [ 0.014209,  0.104994]]))
    """
    lin = prepare_linear(input, linear_weight, target, linear_bias=linear_bias, weight=weight,
                         reduction=reduction, ignore_index=ignore_index,
                         label_smoothing=label_smoothing, logit_scale=logit_scale,
                         softcap=softcap, z_loss=z_loss, chunk_size=chunk_size)
    v_h, v_w, v_b = _linear_directions(lin, v)
    kept, ce_scale, z_scale = _token_scales(lin.call, _flat_grad_output(lin, grad_output))
    hv_h, hv_w = np.empty_like(lin.h), np.zeros_like(lin.w)
    hv_b = None if lin.b is None else np.zeros_like(lin.b)
    for start in range(0, lin.h.shape[0], lin.rows):
        c = slice(start, min(start + lin.rows, lin.h.shape[0]))
        h_c = lin.h[c]
        logits = h_c @ lin.w.T
        moved = v_h[c] @ lin.w.T + h_c @ v_w.T  # x' = v_h W^T + h v_W^T + v_b
        if lin.b is not None:
            logits += lin.b
            moved += v_b
        chunk = lin.call.chunk(c, logits.reshape((-1,) + lin.out_features))
        pieces = second_order(chunk, kept[c], ce_scale[c], z_scale[c])
        g = (pieces.slope * pieces.grad_z).reshape(logits.shape)  # G = phi' dL/dz
        g_moved = pieces.hvp(moved.reshape(chunk.logits.shape)).reshape(logits.shape)  # G'
        hv_h[c] = g_moved @ lin.w + g @ v_w
        hv_w += g_moved.T @ h_c  # (two updates: one W-sized temporary at a time)
        hv_w += g.T @ v_h[c]
        if hv_b is not None:
            hv_b += g_moved.sum(axis=0)
    return (hv_h.reshape(lin.input_shape), hv_w.reshape(lin.weight_shape),
            None if hv_b is None else hv_b.reshape(lin.out_features))


def _flat_grad_output(lin, grad_output):
    """``grad_output`` of a 1-D input's ``reduction="none"`` (a 0-d loss) as one row."""
    if grad_output is None or lin.call.reduction != "none" or len(lin.input_shape) != 1:
        return grad_output
    return np.reshape(checks.as_float_array(grad_output, "grad_output", lin.h.dtype),
                      lin.call.loss_shape)


def _linear_directions(lin, v):
    """``(v_h, v_W, v_b)`` laid out as ``lin``'s ``h``, ``w``, ``b`` (zeros for ``None``)."""
    if not isinstance(v, (tuple, list)) or len(v) not in (2, 3):
        raise TypeError("v: expected a tuple (v_input, v_linear_weight[, v_linear_bias]), "
                        f"got {type(v).__name__}")
    v_b = v[2] if len(v) == 3 else None
    if lin.b is None and v_b is not None:
        raise ValueError("v: a direction for linear_bias was given, but there is no linear_bias")
    dtype = lin.h.dtype
    v_h = (np.zeros(lin.input_shape, dtype) if v[0] is None
           else _like(v[0], "v[0] (v_input)", lin.input_shape, dtype))
    v_w = (np.zeros(lin.weight_shape, dtype) if v[1] is None
           else _like(v[1], "v[1] (v_linear_weight)", lin.weight_shape, dtype))
    if lin.b is not None:
        v_b = (np.zeros(lin.out_features, dtype) if v_b is None
               else _like(v_b, "v[2] (v_linear_bias)", lin.out_features, dtype))
        v_b = v_b.reshape(-1)
    return v_h.reshape(lin.h.shape), v_w.reshape(lin.w.shape), v_b
