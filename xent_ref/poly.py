r"""Poly-1 cross-entropy (Leng et al., 2022, "PolyLoss"), with its hand-derived gradient.

Cross-entropy's Taylor series in :math:`1 - p_t` is
:math:`-\log p_t = \sum_{k \ge 1} (1 - p_t)^k / k`; PolyLoss changes its leading
coefficient by :math:`\varepsilon`:

.. math::

    \ell = -\log p_t + \varepsilon\,(1 - p_t),

optax's ``poly_loss_cross_entropy``. For probability targets :math:`y` optax adds
:math:`\varepsilon \sum_c y_c (1 - p_c)` (which is :math:`1 - \sum_c y_c p_c` for a
distribution). Here both are one formula over cross-entropy's target mass :math:`q`
(:mod:`xent_ref.target_mass`), so every option of :func:`xent_ref.cross_entropy` carries
over -- class weights, ``ignore_index``, label smoothing -- and so does ``mean``'s
denominator:

.. math::

    \ell_i = \sum_c q_{ic}\big(-\log p_{ic} + \varepsilon\,(1 - p_{ic})\big)
    = \mathrm{CE}_i + \varepsilon \sum_c q_{ic}(1 - p_{ic}).

``epsilon = 0`` is :func:`xent_ref.cross_entropy` exactly (it is what is called);
optax's default is ``epsilon = 2.0``, the paper's first choice for ImageNet is 1.

float16 and bfloat16 inputs are computed in float64 and the result rounded once
to the input's dtype (:func:`xent_ref._engine.lowprec.computed_wide`).
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.lowprec import computed_wide
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad
from xent_ref.softmax import softmax, softmax_grad
from xent_ref.target_mass import one_minus_probs, target_mass


@computed_wide("target", "weight", "grad_output")
def poly1_cross_entropy(input, target, epsilon=1.0, weight=None, ignore_index=-100,
                        reduction="mean", label_smoothing=0.0):
    r"""Poly-1: cross-entropy plus :math:`\varepsilon` times the target mass's :math:`1 - p`.

    Textbook twin: :func:`xent_ref.textbook.poly1_cross_entropy`; this one forms :math:`1 - p`
    at the top class from the other probabilities.

    .. math::

        \ell_i = \mathrm{CE}_i + \varepsilon \sum_c q_{ic}(1 - p_{ic}),
        \qquad p = \operatorname{softmax}(x_i)

    (for a class index without weights or smoothing, :math:`-\log p_t + \varepsilon(1-p_t)`).
    :math:`1 - p` at a row's top class is the sum of the other probabilities, so a
    confident row keeps its tiny poly term.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction, label_smoothing
        As for :func:`xent_ref.cross_entropy`; ``mean`` divides by the same denominator.
    epsilon : float
        The change of the leading coefficient (any finite value; the paper also tries
        negative ones, down to -1).

    Examples
    --------
    >>> import xent_ref as xr
    >>> float(xr.poly1_cross_entropy([[2.0, 0.0]], [1], epsilon=1.0))
    3.0077250...
    """
    epsilon = checks.check_real(epsilon, "epsilon")
    ce = cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
    if epsilon == 0:
        return ce
    tm = target_mass(input, target, weight, ignore_index, reduction, label_smoothing)
    poly = (tm.q * one_minus_probs(softmax(tm.logits, axis=1))).sum(axis=1)
    return np.asarray(ce + epsilon * tm.reduced(poly), dtype=ce.dtype)


@computed_wide("target", "weight", "grad_output")
def poly1_cross_entropy_grad(input, target, epsilon=1.0, weight=None, ignore_index=-100,
                             reduction="mean", label_smoothing=0.0, grad_output=None):
    r"""Gradient of :func:`poly1_cross_entropy` with respect to ``input``.

    Textbook twin: :func:`xent_ref.textbook.poly1_cross_entropy_grad`; this one is accurate at a
    confident row's top class.

    With :math:`\partial p_c / \partial x_j = p_c(\delta_{cj} - p_j)`,

    .. math::

        \frac{\partial}{\partial x_j} \sum_c q_c (1 - p_c) = -\sum_c q_c\, p_c(\delta_{cj} - p_j)
        = p_j \Big(\sum_c q_c p_c - q_j\Big),

    which is the softmax's vector-Jacobian product for the upstream :math:`-q`
    (:func:`xent_ref.softmax_grad`, accurate at the top class). So

    .. math::

        \frac{\partial \ell_i}{\partial x_{ij}} = (A_i p_{ij} - q_{ij})
        + \varepsilon\, p_{ij}\Big(\sum_c q_{ic} p_{ic} - q_{ij}\Big),

    cross-entropy's gradient plus :math:`\varepsilon` times that, both times the reduction's
    scale. For a one-hot target the two terms have the same sign in every entry.

    Examples
    --------
    >>> import xent_ref as xr
    >>> xr.poly1_cross_entropy_grad([[0.0, 0.0]], [0], epsilon=1.0)
    array([[-0.75,  0.75]])
    """
    epsilon = checks.check_real(epsilon, "epsilon")
    grad = cross_entropy_grad(input, target, weight, ignore_index, reduction, label_smoothing,
                              grad_output)
    if epsilon == 0:
        return grad
    tm = target_mass(input, target, weight, ignore_index, reduction, label_smoothing)
    poly = softmax_grad(tm.logits, -tm.q, axis=1)
    poly *= epsilon * tm.row_scale(grad_output)
    return np.asarray(grad + tm.in_input_layout(poly), dtype=grad.dtype)
