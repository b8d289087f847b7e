r"""Focal losses: cross-entropy that stops pushing on the examples it already gets right.

Lin et al. (2017, RetinaNet) multiply each cross-entropy term by :math:`(1 - p_t)^\gamma`,
where :math:`p_t` is the probability the model gives the right answer. An easy example
(:math:`p_t = 0.99`) then weighs :math:`10^{-4}` as much at :math:`\gamma = 2`; a hard one
(:math:`p_t = 0.1`) keeps 81% of its weight. :math:`\gamma = 0` is plain cross-entropy.

* :func:`sigmoid_focal_loss` -- torchvision's ``sigmoid_focal_loss``: element-wise binary
  problems on logits, with the class-balance weight :math:`\alpha_t`.
* :func:`softmax_focal_loss` -- the multi-class version on softmax probabilities, with
  cross-entropy's targets, weights, ``ignore_index`` and label smoothing.

Accuracy: :math:`1 - p_t` is never formed by a subtraction. For the sigmoid,
:math:`1 - \sigma(x) = \sigma(-x)`, both from :math:`e^{-|x|}`; so a confident right logit
(``x = 100``, target 1) keeps its tiny loss :math:`\alpha\,\sigma(-100)^\gamma
\operatorname{softplus}(-100) = 1.3 \times 10^{-131}` where ``1 - sigmoid(100)`` is 0.

float16 and bfloat16 inputs are computed in float64 and the result rounded once
to the input's dtype (:func:`xent_ref._engine.lowprec.computed_wide`).
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.lowprec import computed_wide
from xent_ref._engine.reduce import per_sample_scale, reduce
from xent_ref.binary import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
)
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad
from xent_ref.softmax import log_softmax, log_softmax_grad, softmax
from xent_ref.target_mass import one_minus_probs, target_mass

# ---------------------------------------------------------------------------------------------
# sigmoid_focal_loss
# ---------------------------------------------------------------------------------------------


def _prepare_sigmoid(input, target, alpha, gamma, reduction):
    x = checks.as_float_array(input, "input")
    if x.ndim:
        x = checks.as_input(x)
    y = checks.same_shape_target(target, x)
    alpha = checks.check_alpha(alpha)
    gamma = checks.check_nonnegative(gamma, "gamma")
    reduction = checks.check_reduction(reduction)
    # alpha_t = alpha on positives, 1 - alpha on negatives; alpha < 0: no weighting
    alpha_t = None if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
    return x, y, alpha_t, gamma, reduction


def _sigmoids(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(sigma(x), sigma(-x))`` from :math:`e^{-|x|}`: no overflow, and neither is one
    minus the other (``sigma(-40)`` is ``4.2e-18``, not ``1 - 1 = 0``)."""
    e = np.exp(-np.abs(x))
    total = 1 + e
    sigma_abs = 1 / total  # sigma(|x|)
    small = e / total  # sigma(-|x|), one rounding after e (not e * sigma(|x|): two)
    positive = x >= 0
    return np.where(positive, sigma_abs, small), np.where(positive, small, sigma_abs)


def _focal_parts(x, y):
    """``(ce, q, sigma(x), sigma(-x))``: the BCE-with-logits terms and ``q = 1 - p_t``."""
    ce = binary_cross_entropy_with_logits(x, y, reduction="none")
    sigma_x, sigma_neg_x = _sigmoids(x)
    # 1 - p_t = 1 - [sigma(x) y + sigma(-x) (1 - y)] = y sigma(-x) + (1 - y) sigma(x): for a
    # hard target sigma(-x) or sigma(x) itself; for a soft one, sigma(x) - y tanh(x/2) (or its
    # mirror for y > 1/2), a small correction to one sigmoid: fewer roundings, which the
    # power gamma multiplies.
    tanh = np.tanh(x / 2)  # sigma(x) - sigma(-x)
    q = np.where(y <= 0.5, sigma_x - y * tanh, sigma_neg_x + (1 - y) * tanh)
    q = np.where(y == 1, sigma_neg_x, np.where(y == 0, sigma_x, q))
    return ce, q, sigma_x, sigma_neg_x


@computed_wide("target", "grad_output")
def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    r"""torchvision's sigmoid focal loss on logits ``input`` and binary targets.

    Textbook twin: :func:`xent_ref.textbook.sigmoid_focal_loss`; this one never forms
    ``1 - sigmoid(x)``.

    .. math::

        \ell = \alpha_t\,(1 - p_t)^\gamma\,\mathrm{BCE}(x, y), \qquad
        p_t = \sigma(x)\,y + (1 - \sigma(x))(1 - y), \qquad
        \alpha_t = \alpha\,y + (1 - \alpha)(1 - y),

    with :math:`\mathrm{BCE}(x, y) = y \operatorname{softplus}(-x) + (1 - y)
    \operatorname{softplus}(x)` (:func:`xent_ref.binary_cross_entropy_with_logits`), and
    :math:`1 - p_t = y\,\sigma(-x) + (1 - y)\,\sigma(x)` computed without a subtraction.
    ``alpha`` weights the positives and ``1 - alpha`` the negatives; a negative ``alpha``
    (torchvision's ``-1``) turns the weighting off. At ``gamma = 0`` this *is*
    ``binary_cross_entropy_with_logits`` with ``weight = alpha_t`` (or none): that function
    is called.

    Parameters
    ----------
    input : array_like, any shape (0-d too)
        Logits.
    target : array_like, the input's shape
        Targets, 0 or 1 (soft targets in [0, 1] are computed by the same formula).
    alpha : float in [0, 1], or negative
    gamma : float >= 0
    reduction : {"none", "mean", "sum"}
        torchvision's default is ``none``; ``mean`` divides by the number of elements.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.sigmoid_focal_loss([0.0, 2.0, 100.0], [1.0, 0.0, 1.0])
    array([4.33216988e-002, 1.23755863e+000, 1.28705006e-131])
    """
    x, y, alpha_t, gamma, reduction = _prepare_sigmoid(input, target, alpha, gamma, reduction)
    if gamma == 0:
        return binary_cross_entropy_with_logits(x, y, weight=alpha_t, reduction=reduction)
    ce, q, _, _ = _focal_parts(x, y)
    losses = ce * q**gamma
    if alpha_t is not None:
        losses *= alpha_t
    return reduce(losses, reduction, x.size)


@computed_wide("target", "grad_output")
def sigmoid_focal_loss_grad(input, target, alpha=0.25, gamma=2.0, reduction="none",
                            grad_output=None):
    r"""Gradient of :func:`sigmoid_focal_loss` with respect to ``input``, through the
    modulating factor too.

    Textbook twin: :func:`xent_ref.textbook.sigmoid_focal_loss_grad`; this one never forms
    :math:`(1 - p_t)^{\gamma - 1}`.

    With :math:`q = 1 - p_t`, :math:`\mathrm{BCE}' = \sigma(x) - y` and
    :math:`q' = (1 - 2y)\,\sigma(x)\,\sigma(-x)` (from :math:`\sigma' = \sigma(x)\sigma(-x)`),

    .. math::

        \frac{\partial \ell}{\partial x}
        = \alpha_t\big[\mathrm{BCE}'\, q^\gamma + \gamma\, q^{\gamma - 1} q'\,\mathrm{BCE}\big]
        = \alpha_t\, q^\gamma \big[\mathrm{BCE}' + \gamma\,(1 - 2y)\, r\,\mathrm{BCE}\big],
        \qquad r = \frac{\sigma(x)\,\sigma(-x)}{q}.

    The naive :math:`q^{\gamma - 1}` is infinite at :math:`p_t = 1` for :math:`\gamma < 1`;
    here it never appears: for a hard target :math:`r` is :math:`\sigma(x)` (``y = 1``) or
    :math:`\sigma(-x)` (``y = 0``), exactly, and for a soft one :math:`q \ge \min(y, 1-y) > 0`.
    So the gradient is finite for every ``gamma >= 0``, and at ``gamma = 0`` it is
    :func:`xent_ref.binary_cross_entropy_with_logits_grad`'s. For hard targets the two terms
    in the bracket have the same sign: nothing cancels.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.sigmoid_focal_loss_grad([0.0, 2.0], [1.0, 0.0], reduction="sum")
    array([-0.0745717,  0.8075353])
    """
    x, y, alpha_t, gamma, reduction = _prepare_sigmoid(input, target, alpha, gamma, reduction)
    if gamma == 0:
        return binary_cross_entropy_with_logits_grad(x, y, weight=alpha_t, reduction=reduction,
                                                     grad_output=grad_output)
    g = checks.grad_output(grad_output, reduction, x.shape, x.dtype)
    scale = per_sample_scale(g, reduction, x.size)
    ce, q, sigma_x, sigma_neg_x = _focal_parts(x, y)
    slope = binary_cross_entropy_with_logits_grad(x, y, reduction="none")  # sigma(x) - y
    hard = (y == 0) | (y == 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # (0/0 only where `hard` replaces it)
        r = np.where(hard, y * sigma_x + (1 - y) * sigma_neg_x, sigma_x * sigma_neg_x / q)
    grad = slope + gamma * (1 - 2 * y) * r * ce
    grad *= q**gamma
    if alpha_t is not None:
        grad *= alpha_t
    return np.asarray(grad * scale, dtype=x.dtype)


# ---------------------------------------------------------------------------------------------
# softmax_focal_loss
# ---------------------------------------------------------------------------------------------


@computed_wide("target", "weight", "grad_output")
def softmax_focal_loss(input, target, gamma=2.0, weight=None, ignore_index=-100,
                       reduction="mean", label_smoothing=0.0):
    r"""The multi-class focal loss on logits, with cross-entropy's targets and options.

    Textbook twin: :func:`xent_ref.textbook.softmax_focal_loss`; this one forms :math:`1 - p`
    at the top class from the other probabilities.

    Each term of cross-entropy's sum over its target mass :math:`q`
    (:mod:`xent_ref.target_mass`) is modulated by its own :math:`(1 - p_c)^\gamma`:

    .. math::

        \ell_i = -\sum_c q_{ic}\,(1 - p_{ic})^\gamma \log p_{ic},
        \qquad p = \operatorname{softmax}(x_i),

    so a class index without weights or smoothing gives :math:`-(1 - p_t)^\gamma \log p_t`.
    ``gamma = 0`` is :func:`xent_ref.cross_entropy` exactly (it is what is called).

    **mean** divides by cross-entropy's denominator: the kept targets' total weight
    :math:`\sum_{i\,\text{kept}} w_{t_i}` for class indices (their count without weights),
    the number of samples for probabilities. The reason: ``gamma = 0`` must be
    ``cross_entropy`` for every option, and the weighted mean stays a weighted average of
    per-sample losses (a batch whose weights are all doubled has the same mean).

    Keras's ``CategoricalFocalCrossentropy`` differs in four ways: it takes probabilities
    (or logits with ``from_logits=True``) and clips them to :math:`[10^{-7}, 1 - 10^{-7}]`,
    so a confident right answer costs about :math:`10^{-7\gamma - 7}` instead of its true,
    smaller loss; its ``alpha`` (default 0.25) is one factor for every class and sample and
    its mean divides by the batch size, so ``alpha`` scales the mean -- here a ``weight`` of
    ``alpha`` for every class cancels out of ``mean``, as in cross-entropy (``sum`` and
    ``none`` agree with Keras's ``alpha``); it has no ``ignore_index``; and it has no
    per-class weights beyond ``alpha``. Its label smoothing is cross-entropy's.

    Examples
    --------
    >>> import xent_ref as xr
    >>> float(xr.softmax_focal_loss([[2.0, 0.0, 0.0]], [0], gamma=2.0))
    0.01086933...
    """
    gamma = checks.check_nonnegative(gamma, "gamma")
    if gamma == 0:
        return cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
    tm = target_mass(input, target, weight, ignore_index, reduction, label_smoothing)
    log_p = log_softmax(tm.logits, axis=1)
    u = one_minus_probs(softmax(tm.logits, axis=1))
    # (a class outside the target mass may have a -inf logit: 0 * inf, silently discarded)
    with np.errstate(invalid="ignore"):
        terms = np.where(tm.q != 0, tm.q * u**gamma * -log_p, 0)
    return tm.reduced(terms.sum(axis=1))


@computed_wide("target", "weight", "grad_output")
def softmax_focal_loss_grad(input, target, gamma=2.0, weight=None, ignore_index=-100,
                            reduction="mean", label_smoothing=0.0, grad_output=None):
    r"""Gradient of :func:`softmax_focal_loss` with respect to ``input``.

    Textbook twin: :func:`xent_ref.textbook.softmax_focal_loss_grad`; this one never forms
    :math:`(1 - p)^{\gamma - 1}`.

    For one term :math:`f_c = u_c^\gamma L_c` with :math:`u_c = 1 - p_c`,
    :math:`L_c = -\log p_c`, :math:`\partial L_c/\partial x_j = -(\delta_{cj} - p_j)` and
    :math:`\partial u_c/\partial x_j = -p_c(\delta_{cj} - p_j)`:

    .. math::

        \frac{\partial f_c}{\partial x_j}
        = -(\delta_{cj} - p_j)\big[u_c^\gamma + \gamma\,u_c^{\gamma - 1} p_c L_c\big].

    So with :math:`h_c = q_c\,u_c^\gamma\big(1 + \gamma\,p_c L_c / u_c\big)` and
    :math:`H = \sum_c h_c`, the gradient has cross-entropy's shape with :math:`h` for
    :math:`q`:

    .. math::

        \frac{\partial \ell}{\partial x_j} = H\,p_j - h_j,

    the log-softmax vector-Jacobian product for the upstream :math:`-h`
    (:func:`xent_ref.log_softmax_grad`, accurate at the top class). :math:`L_c / u_c`
    tends to 1 as :math:`p_c \to 1`, so :math:`h` is finite for every ``gamma >= 0`` --
    also below 1, where the :math:`u^{\gamma - 1}` of the naive form is infinite.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.softmax_focal_loss_grad([[0.0, 0.0]], [0], gamma=1.0).round(6)
    array([[-0.423287,  0.423287]])
    """
    gamma = checks.check_nonnegative(gamma, "gamma")
    if gamma == 0:
        return cross_entropy_grad(input, target, weight, ignore_index, reduction,
                                  label_smoothing, grad_output)
    tm = target_mass(input, target, weight, ignore_index, reduction, label_smoothing)
    log_p = log_softmax(tm.logits, axis=1)
    p = softmax(tm.logits, axis=1)
    u = one_minus_probs(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        # p L / u, with its limit 1 at p = 1 (u = 0) and 0 where p underflows to 0
        ratio = np.where(u > 0, p * -log_p / u, 1.0)
        ratio = np.where(p > 0, ratio, 0.0)
    h = tm.q * u**gamma * (1 + gamma * ratio)
    grad = log_softmax_grad(tm.logits, -h, axis=1)
    grad *= tm.row_scale(grad_output)
    grad += 0.0  # an ignored row's -0.0 entries (from -h = -0.0) read 0, as cross-entropy's
    return tm.in_input_layout(grad)
