r"""The textbook reading: every loss and gradient written as its formula reads.

Read this module first. Each function is plain vectorised NumPy on a batch of
logits of shape ``(N, C)`` (the binary losses: any shape, elementwise), one
screen long, with no blocks, threads, buffers or accuracy tricks. The
production functions (``xent_ref.cross_entropy`` and friends) compute the same
numbers; ``tests/test_textbook.py`` holds the two equal on ordinary inputs.
Where the plain formula loses accuracy or overflows, the production version
does not: ``docs/textbook.md`` shows each case with numbers.

What the losses take is what the production functions take, checked by the same
checks (so a bad argument is the same clear ``ValueError`` or ``TypeError`` naming
it): the multiclass losses also take ``(C,)`` and ``(N, C, d1, ..., dk)`` inputs,
laid out as rows of classes (:func:`rows_of_classes`) before the formula; the
result has the input's floating dtype (float32 in, float32 out, computed in
float32: no wide accumulation, no rounding care, so float16 rounds as it goes).
The softmax functions take any array and work along its last axis, unchecked.
None of them takes the LLM options (``logit_scale``, ``softcap``, ``z_loss``).

Every gradient here has the same shape: a *scale* (``grad_output`` divided by
the reduction's denominator) times "what the model predicts minus what the
target asks for".

>>> import numpy as np
>>> from xent_ref import textbook as tb
>>> logits = np.array([[2.0, 1.0, 0.1]])
>>> round(float(tb.cross_entropy(logits, np.array([0]))), 6)
0.41703
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref.cross_entropy import prepare

__all__ = [
    "softmax", "log_softmax", "softmax_grad", "log_softmax_grad",
    "target_distribution", "rows_of_classes",
    "cross_entropy", "cross_entropy_grad", "nll_loss", "nll_loss_grad",
    "binary_cross_entropy", "binary_cross_entropy_grad",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad",
]


def softmax(logits):
    r"""Softmax along the last axis.

    .. math:: p_c = \frac{e^{x_c}}{\sum_k e^{x_k}}

    >>> softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])

    The production :func:`xent_ref.softmax` subtracts the row's maximum first, so
    ``e^{x}`` never overflows (here ``x = 1000`` gives ``inf / inf = nan``), and
    works along any axis.
    """
    exps = np.exp(logits)
    return exps / exps.sum(axis=-1, keepdims=True)


def log_softmax(logits):
    r"""Log-softmax along the last axis.

    .. math:: \log p_c = x_c - \log \sum_k e^{x_k}

    >>> log_softmax(np.array([[0.0, 0.0]]))
    array([[-0.69314718, -0.69314718]])

    The production :func:`xent_ref.log_softmax` shifts by the maximum ``m`` and
    computes :math:`\log\sum_k e^{x_k - m}` as ``log1p`` of the non-maximal
    terms, so a confident row keeps its tiny ``-log p`` (``3.86e-22`` for
    ``[50, 0, 0]``) instead of rounding it to 0.
    """
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def softmax_grad(logits, grad_output):
    r"""Vector-Jacobian product of softmax along the last axis.

    .. math::

        \frac{\partial p_c}{\partial x_j} = p_c(\delta_{cj} - p_j)
        \quad\Rightarrow\quad
        \frac{\partial L}{\partial x_j} = \sum_c g_c\, p_c(\delta_{cj} - p_j)
        = p_j \Big(g_j - \sum_c g_c p_c\Big)

    >>> softmax_grad(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]))
    array([[ 0.25, -0.25]])

    The production :func:`xent_ref.softmax_grad` shares the max-shifted softmax and
    works on any axis.
    """
    probs = softmax(logits)
    return probs * (grad_output - (grad_output * probs).sum(axis=-1, keepdims=True))


def log_softmax_grad(logits, grad_output):
    r"""Vector-Jacobian product of log-softmax along the last axis.

    .. math::

        \frac{\partial \log p_c}{\partial x_j} = \delta_{cj} - p_j
        \quad\Rightarrow\quad
        \frac{\partial L}{\partial x_j} = g_j - p_j \sum_c g_c

    >>> log_softmax_grad(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]))
    array([[ 0.5, -0.5]])

    The production :func:`xent_ref.log_softmax_grad` writes the largest entry in
    whichever of two equal forms rounds less, so a confident row's gradient keeps its
    tiny terms.
    """
    return grad_output - softmax(logits) * grad_output.sum(axis=-1, keepdims=True)


def target_distribution(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    r"""The weighted target distribution ``q`` of each row, and its mean denominator.

    Cross-entropy is :math:`\ell_i = -\sum_c q_{ic} \log p_{ic}` with

    .. math::

        q_{ic} = w_c \Big((1 - \varepsilon)\, y_{ic} + \frac{\varepsilon}{C}\Big),

    where :math:`y_i` is one-hot at the target class (class-index targets, a row
    of zeros when the target is ``ignore_index``) or the given probabilities.
    ``mean`` divides by the sum of :math:`w_{t_i}` over kept rows (class indices)
    or by :math:`N` (probabilities).

    Returns ``(q, kept, denominator)``: ``q`` has shape ``(N, C)``, ``kept`` is a
    boolean ``(N,)`` mask.

    >>> q, kept, den = target_distribution(np.zeros((2, 2)), np.array([1, -100]))
    >>> q, den
    (array([[0., 1.],
           [0., 0.]]), 1.0)
    """
    n, num_classes = logits.shape
    dtype = logits.dtype if logits.dtype.kind == "f" else np.float64
    w = np.ones(num_classes, dtype) if weight is None else np.asarray(weight, dtype=dtype)
    target = np.asarray(target)
    if target.shape == logits.shape:  # probability targets: every row counts once
        y, kept = target.astype(dtype, copy=False), np.ones(n, dtype=bool)
        denominator = float(n)
    else:
        kept = target != ignore_index
        # An ignored row's one-hot is all zeros (clip only makes the index valid).
        y = np.eye(num_classes, dtype=dtype)[np.clip(target, 0, num_classes - 1)] * kept[:, None]
        denominator = float(w[target[kept]].sum())
    q = w * ((1 - label_smoothing) * y + label_smoothing / num_classes)
    return q * kept[:, None], kept, denominator


def rows_of_classes(input, target, weight=None, ignore_index=-100, reduction="mean",
                    label_smoothing=0.0, probabilities=True):
    """Check a multiclass call as the production functions do, and lay it out as rows.

    Returns ``(logits, target, weight, loss_shape, to_input)``: ``(N * d1 * ... * dk, C)``
    logits in the input's floating dtype (the class axis moved last), the target as
    one class index per row (or one distribution per row), the class weights in that
    dtype, the shape of ``reduction="none"``'s result and a function that lays a
    ``(rows, C)`` gradient back out in the input's shape. Bad arguments raise the
    production's errors (:func:`xent_ref.cross_entropy.prepare`).

    >>> x, t, w, shape, to_input = rows_of_classes(np.zeros((2, 3, 4)), np.zeros((2, 4), int))
    >>> x.shape, t.shape, shape, to_input(x).shape
    ((8, 3), (8,), (2, 4), (2, 3, 4))
    """
    call = prepare(input, target, weight=weight, ignore_index=ignore_index,
                   reduction=reduction, label_smoothing=label_smoothing,
                   allow_probabilities=probabilities)
    n, num_classes, positions = call.logits.shape  # (N, C, d1 * ... * dk)
    logits = np.moveaxis(call.logits, 1, -1).reshape(-1, num_classes)
    if call.probabilities:
        target = np.moveaxis(call.target, 1, -1).reshape(-1, num_classes)
    else:
        target = np.asarray(call.target).reshape(-1)

    def to_input(rows):
        return np.moveaxis(rows.reshape(n, positions, num_classes), -1, 1).reshape(
            call.input_shape)

    return logits, target, call.weight, call.loss_shape, to_input


def _binary_checked(input, target, weight, pos_weight, reduction, probabilities):
    """``(x, y, weight, pos_weight)`` checked by the production's checks, in x's dtype."""
    x, y, weight, pos_weight, _ = checks.binary_arguments(input, target, weight, pos_weight,
                                                          reduction, probabilities)
    one = x.dtype.type(1)
    return x, y, one if weight is None else weight, one if pos_weight is None else pos_weight


def _reduce(losses, reduction, denominator):
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / total.dtype.type(denominator)


def _scale(grad_output, reduction, denominator, loss_shape=(), dtype=np.float64):
    """d(reduced loss) / d(each element's loss), times the upstream gradient (checked)."""
    g = checks.grad_output(grad_output, reduction, loss_shape, dtype)
    return g / g.dtype.type(denominator) if reduction == "mean" else g


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    r"""Cross-entropy of ``(N, C)`` logits with class indices ``(N,)`` or probabilities ``(N, C)``.

    .. math:: \ell_i = -\sum_c q_{ic} \log \mathrm{softmax}(x_i)_c

    with ``q`` from :func:`target_distribution`; ``mean`` divides the sum by its
    denominator.

    >>> round(float(cross_entropy(np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]),
    ...                           np.array([0, 1, 0]), weight=[1.0, 2.0])), 6)
    0.739773

    The production :func:`xent_ref.cross_entropy` adds: the max-shifted ``log1p``
    log-sum-exp (exact tiny losses, no overflow), low-precision inputs computed wide,
    the LLM options, and blocks run on threads so memory stays small.
    """
    logits, target, weight, shape, _ = rows_of_classes(logits, target, weight, ignore_index,
                                                       reduction, label_smoothing)
    q, kept, denominator = target_distribution(logits, target, weight, ignore_index,
                                               label_smoothing)
    losses = -(q * log_softmax(logits)).sum(axis=1)
    return _reduce(losses.reshape(shape), reduction, denominator)


def cross_entropy_grad(logits, target, weight=None, ignore_index=-100, reduction="mean",
                       label_smoothing=0.0, grad_output=None):
    r"""Gradient of :func:`cross_entropy` with respect to the logits.

    Since :math:`\partial(-\log p_c)/\partial x_j = p_j - \delta_{cj}`,

    .. math::

        \frac{\partial \ell_i}{\partial x_{ij}} = \sum_c q_{ic}(p_{ij} - \delta_{cj})
        = A_i\, p_{ij} - q_{ij}, \qquad A_i = \sum_c q_{ic},

    times the scale ``grad_output / denominator`` (``mean``). Without weights
    and smoothing, ``A = 1`` and ``q`` is one-hot: the row is ``p - onehot``.

    >>> cross_entropy_grad(np.array([[0.0, 0.0]]), np.array([1]))
    array([[ 0.5, -0.5]])

    The production :func:`xent_ref.cross_entropy_grad` adds what :func:`cross_entropy`
    adds, and writes the target's entry ``A p_t - q_t`` in whichever of two equal forms
    rounds less, so a confident row's gradient is exact rather than ``p_t - 1 = 0``.
    """
    logits, target, weight, shape, to_input = rows_of_classes(
        logits, target, weight, ignore_index, reduction, label_smoothing)
    q, kept, denominator = target_distribution(logits, target, weight, ignore_index,
                                               label_smoothing)
    A = q.sum(axis=1, keepdims=True)
    scale = _scale(grad_output, reduction, denominator, shape, logits.dtype)
    if reduction == "none":
        scale = scale.reshape(-1, 1)  # one upstream gradient per row
    return to_input(scale * (A * softmax(logits) - q))


def nll_loss(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood of ``(N, C)`` log-probabilities and class indices ``(N,)``.

    .. math:: \ell_i = -w_{t_i}\, x_{i t_i}

    >>> float(nll_loss(np.array([[-0.5, -1.0], [-2.0, -0.1]]), np.array([0, 1]),
    ...                weight=[1.0, 3.0]))
    0.2

    The production :func:`xent_ref.nll_loss` adds low-precision inputs computed wide
    and reads only the target's entry (here ``0 * inf`` off the target would be nan).
    """
    log_probs, target, weight, shape, _ = rows_of_classes(
        log_probs, target, weight, ignore_index, reduction, probabilities=False)
    q, kept, denominator = target_distribution(log_probs, target, weight, ignore_index)
    losses = -(q * log_probs).sum(axis=1)  # q is w_t at the target, 0 elsewhere
    return _reduce(losses.reshape(shape), reduction, denominator)


def nll_loss_grad(log_probs, target, weight=None, ignore_index=-100, reduction="mean",
                  grad_output=None):
    r"""Gradient of :func:`nll_loss`: :math:`\partial \ell_i / \partial x_{ij} = -q_{ij}`.

    .. math:: \frac{\partial \ell_i}{\partial x_{ij}} = -w_{t_i}\,[j = t_i]

    times the scale ``grad_output / denominator`` (``mean``).

    >>> nll_loss_grad(np.array([[-0.5, -1.0], [-2.0, -0.1]]), np.array([0, 1]))
    array([[-0.5,  0. ],
           [ 0. , -0.5]])

    The production :func:`xent_ref.nll_loss_grad` writes the nonzero entries only, with
    no ``(N, C)`` one-hot in memory.
    """
    log_probs, target, weight, shape, to_input = rows_of_classes(
        log_probs, target, weight, ignore_index, reduction, probabilities=False)
    q, kept, denominator = target_distribution(log_probs, target, weight, ignore_index)
    scale = _scale(grad_output, reduction, denominator, shape, log_probs.dtype)
    if reduction == "none":
        scale = scale.reshape(-1, 1)
    return to_input(scale * (0 - q))  # (0 - q, not -q: the zero entries print as 0, not -0)


def binary_cross_entropy(probs, target, weight=None, reduction="mean"):
    r"""Binary cross-entropy of probabilities, elementwise; ``mean`` over all elements.

    .. math:: \ell = -w\,\big(y \log p + (1 - y) \log(1 - p)\big)

    >>> round(float(binary_cross_entropy(np.array([0.8, 0.4]), np.array([1.0, 0.0]))), 6)
    0.366985

    The production :func:`xent_ref.binary_cross_entropy` clamps each log at -100 as
    PyTorch does, so ``p = 0`` with ``y = 1`` gives 100, not ``inf`` (and no
    warning), and checks that targets lie in [0, 1].
    """
    probs, target, w, _ = _binary_checked(probs, target, weight, None, reduction, True)
    losses = -w * (target * np.log(probs) + (1 - target) * np.log(1 - probs))
    return _reduce(losses, reduction, np.size(losses))


def binary_cross_entropy_grad(probs, target, weight=None, reduction="mean", grad_output=None):
    r"""Gradient of :func:`binary_cross_entropy` with respect to ``p``.

    .. math::

        \frac{\partial \ell}{\partial p} = -w\Big(\frac{y}{p} - \frac{1 - y}{1 - p}\Big)
        = w\,\frac{p - y}{p(1 - p)}

    >>> binary_cross_entropy_grad(np.array([0.8, 0.4]), np.array([1.0, 0.0]))
    array([-0.625     ,  0.83333333])

    The production :func:`xent_ref.binary_cross_entropy_grad` divides by
    :math:`\max(p(1-p), 10^{-12})` as PyTorch does, so ``p = 0`` or ``1`` gives a large
    finite number, not ``inf``/``nan``.
    """
    probs, target, w, _ = _binary_checked(probs, target, weight, None, reduction, True)
    scale = _scale(grad_output, reduction, np.size(probs), probs.shape, probs.dtype)
    return scale * w * (probs - target) / (probs * (1 - probs))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def binary_cross_entropy_with_logits(logits, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    r"""Binary cross-entropy of logits, elementwise; ``mean`` over all elements.

    With :math:`\sigma(x) = 1/(1 + e^{-x})` and the positive class weighted by
    :math:`r` (``pos_weight``):

    .. math:: \ell = -w\,\big(r\,y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))\big)

    >>> round(float(binary_cross_entropy_with_logits(np.array([1.0, -2.0]),
    ...                                               np.array([1.0, 0.0]))), 6)
    0.220095

    The production :func:`xent_ref.binary_cross_entropy_with_logits` writes
    :math:`-\log\sigma(x) = \mathrm{softplus}(-x)` as ``max(-x, 0) + log1p(exp(-|x|))``:
    no overflow at ``|x| = 1000`` and no ``log(1 - 1) = -inf`` when :math:`\sigma(x)`
    rounds to 1 (here ``x = 40``).
    """
    logits, target, w, r = _binary_checked(logits, target, weight, pos_weight, reduction, False)
    p = _sigmoid(logits)
    losses = -w * (r * target * np.log(p) + (1 - target) * np.log(1 - p))
    return _reduce(losses, reduction, np.size(losses))


def binary_cross_entropy_with_logits_grad(logits, target, weight=None, pos_weight=None,
                                          reduction="mean", grad_output=None):
    r"""Gradient of :func:`binary_cross_entropy_with_logits` with respect to ``x``.

    Using :math:`\sigma'(x) = \sigma(x)(1 - \sigma(x))`:

    .. math::

        \frac{\partial \ell}{\partial x} = w\big((1 - y)\,\sigma(x) - r\,y\,(1 - \sigma(x))\big)
        = w\big((1 + (r - 1)\,y)\,\sigma(x) - r\,y\big)

    With ``r = 1`` this is the famous :math:`w(\sigma(x) - y)`.

    >>> binary_cross_entropy_with_logits_grad(np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    array([-0.25,  0.25])

    The production :func:`xent_ref.binary_cross_entropy_with_logits_grad` computes
    :math:`1 - \sigma(x)` as :math:`\sigma(-x)` from ``exp(-|x|)``, so it neither
    overflows nor loses the tiny gradient of a confident logit to cancellation.
    """
    logits, target, w, r = _binary_checked(logits, target, weight, pos_weight, reduction, False)
    scale = _scale(grad_output, reduction, np.size(logits), logits.shape, logits.dtype)
    p = _sigmoid(logits)
    return scale * w * ((1 + (r - 1) * target) * p - r * target)


# ---------------------------------------------------------------------------------------------
# The relatives: KL divergence, focal losses, poly-1
# ---------------------------------------------------------------------------------------------

__all__ += ["kl_div", "kl_div_grad"]


def _kl_denominator(log_probs, reduction):
    return log_probs.shape[0] if reduction == "batchmean" else np.size(log_probs)


def kl_div(log_probs, target, reduction="mean", log_target=False):
    r"""KL divergence of ``target`` from the model's ``log_probs``, elementwise.

    .. math:: \ell = p\,(\log p - \log q), \qquad 0 \log 0 = 0

    with :math:`\log q` the input and :math:`p` the target (``log_target=True``: the
    target is :math:`\log p`). ``batchmean`` divides the sum by the batch size,
    ``mean`` by every element.

    >>> round(float(kl_div(np.log([[0.5, 0.5]]), np.array([[0.9, 0.1]]), "batchmean")), 6)
    0.368064

    The production :func:`xent_ref.kl_div` adds argument checks, 0-d inputs, and PyTorch's
    answers at the edges (``nan`` for a zero target against a ``-inf`` log-probability).
    """
    p = np.exp(target) if log_target else target
    log_p = target if log_target else np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
    losses = p * (log_p - log_probs)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / _kl_denominator(log_probs,
                                                                                   reduction)


def kl_div_grad(log_probs, target, reduction="mean", log_target=False, grad_output=None):
    r"""Gradient of :func:`kl_div` with respect to ``log_probs``: :math:`-p`.

    Only :math:`-p \log q` depends on the input, so :math:`\partial\ell/\partial \log q = -p`,
    times ``grad_output`` (divided by the denominator for ``mean``/``batchmean``).

    >>> kl_div_grad(np.log([[0.5, 0.5]]), np.array([[0.9, 0.1]]), "batchmean")
    array([[-0.9, -0.1]])

    The production :func:`xent_ref.kl_div_grad` adds argument checks and ``grad_output``'s.
    """
    p = np.exp(target) if log_target else target
    g = np.ones((), dtype=float) if grad_output is None else np.asarray(grad_output, dtype=float)
    if reduction in ("mean", "batchmean"):
        g = g / _kl_denominator(log_probs, reduction)
    return -p * g


__all__ += ["sigmoid_focal_loss", "sigmoid_focal_loss_grad"]


def _focal_terms(logits, target, alpha):
    p = _sigmoid(logits)
    ce = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = 1.0 if alpha < 0 else alpha * target + (1 - alpha) * (1 - target)
    return p, ce, p_t, alpha_t


def sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none"):
    r"""torchvision's sigmoid focal loss, elementwise; ``mean`` over all elements.

    .. math::

        \ell = \alpha_t\,(1 - p_t)^\gamma\,\mathrm{BCE}(x, y), \quad
        p_t = \sigma(x)\,y + (1 - \sigma(x))(1 - y), \quad
        \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    (no :math:`\alpha_t` when ``alpha < 0``).

    >>> sigmoid_focal_loss(np.array([0.0, 2.0]), np.array([1.0, 0.0])).round(6)
    array([0.043322, 1.237559])

    The production :func:`xent_ref.sigmoid_focal_loss` writes :math:`1 - p_t` as
    :math:`y\sigma(-x) + (1 - y)\sigma(x)` and the BCE with ``softplus``: at ``x = 100``,
    target 1, the loss is ``1.3e-131``, not ``0 * 0``.
    """
    _, ce, p_t, alpha_t = _focal_terms(logits, target, alpha)
    return _reduce(alpha_t * (1 - p_t) ** gamma * ce, reduction, np.size(logits))


def sigmoid_focal_loss_grad(logits, target, alpha=0.25, gamma=2.0, reduction="none",
                            grad_output=None):
    r"""Gradient of :func:`sigmoid_focal_loss` with respect to the logits.

    With :math:`q = 1 - p_t`, :math:`\partial\,\mathrm{BCE}/\partial x = \sigma(x) - y` and
    :math:`\partial q/\partial x = (1 - 2y)\,\sigma(x)(1 - \sigma(x))`, the product rule gives

    .. math::

        \frac{\partial \ell}{\partial x} = \alpha_t\big[(\sigma(x) - y)\,q^\gamma
        + \gamma\,q^{\gamma - 1}\,(1 - 2y)\,\sigma(x)(1 - \sigma(x))\,\mathrm{BCE}\big]

    >>> sigmoid_focal_loss_grad(np.array([0.0, 2.0]), np.array([1.0, 0.0])).round(6)
    array([-0.074572,  0.807535])

    The production :func:`xent_ref.sigmoid_focal_loss_grad` never forms :math:`q^{\gamma - 1}` (infinite at
    :math:`q = 0` for :math:`\gamma < 1`): it divides :math:`\sigma(x)\sigma(-x)` by
    :math:`q` exactly, as :math:`\sigma(x)` or :math:`\sigma(-x)` for a hard target.
    """
    p, ce, p_t, alpha_t = _focal_terms(logits, target, alpha)
    q = 1 - p_t
    slope = (p - target) * q**gamma + gamma * q ** (gamma - 1) * (1 - 2 * target) * p * (1 - p) * ce
    return _scale(grad_output, reduction, np.size(logits), np.shape(logits),
                  logits.dtype) * alpha_t * slope


__all__ += ["poly1_cross_entropy", "poly1_cross_entropy_grad"]


def poly1_cross_entropy(logits, target, epsilon=1.0, weight=None, ignore_index=-100,
                        reduction="mean", label_smoothing=0.0):
    r"""Poly-1 of ``(N, C)`` logits: cross-entropy plus :math:`\varepsilon (1 - p)` per unit
    of target mass.

    .. math:: \ell_i = \sum_c q_{ic}\big(-\log p_{ic} + \varepsilon (1 - p_{ic})\big)

    with ``q`` from :func:`target_distribution` (a class index: :math:`-\log p_t +
    \varepsilon (1 - p_t)`).

    >>> round(float(poly1_cross_entropy(np.array([[2.0, 0.0]]), np.array([1]))), 6)
    3.007725

    The production version adds cross-entropy's, and forms :math:`1 - p` at a row's top
    class as the sum of the other probabilities (a confident row's poly term is not 0).
    """
    q, kept, denominator = target_distribution(logits, target, weight, ignore_index,
                                               label_smoothing)
    probs = softmax(logits)
    losses = (q * (-np.log(probs) + epsilon * (1 - probs))).sum(axis=1)
    return _reduce(losses, reduction, denominator)


def poly1_cross_entropy_grad(logits, target, epsilon=1.0, weight=None, ignore_index=-100,
                             reduction="mean", label_smoothing=0.0, grad_output=None):
    r"""Gradient of :func:`poly1_cross_entropy` with respect to the logits.

    .. math::

        \frac{\partial \ell_i}{\partial x_{ij}} = A_i p_{ij} - q_{ij}
        + \varepsilon\, p_{ij}\Big(\sum_c q_{ic} p_{ic} - q_{ij}\Big)

    (the second term from :math:`\partial p_c/\partial x_j = p_c(\delta_{cj} - p_j)`).

    >>> poly1_cross_entropy_grad(np.array([[0.0, 0.0]]), np.array([0]))
    array([[-0.75,  0.75]])

    The production :func:`xent_ref.poly1_cross_entropy_grad` is cross-entropy's gradient plus
    the softmax's vector-Jacobian product, both accurate at a confident row's top class.
    """
    q, kept, denominator = target_distribution(logits, target, weight, ignore_index,
                                               label_smoothing)
    probs = softmax(logits)
    A = q.sum(axis=1, keepdims=True)
    q_dot_p = (q * probs).sum(axis=1, keepdims=True)
    scale = _scale(grad_output, reduction, denominator, kept.shape, logits.dtype)
    if reduction == "none":
        scale = scale[:, None]
    return scale * (A * probs - q + epsilon * probs * (q_dot_p - q))


__all__ += ["softmax_focal_loss", "softmax_focal_loss_grad"]


def softmax_focal_loss(logits, target, gamma=2.0, weight=None, ignore_index=-100,
                       reduction="mean", label_smoothing=0.0):
    r"""Multi-class focal loss of ``(N, C)`` logits: cross-entropy's terms, each times
    :math:`(1 - p_c)^\gamma`.

    .. math:: \ell_i = -\sum_c q_{ic}\,(1 - p_{ic})^\gamma \log p_{ic}

    with ``q`` from :func:`target_distribution`; ``mean`` divides by its denominator.

    >>> round(float(softmax_focal_loss(np.array([[2.0, 0.0, 0.0]]), np.array([0]))), 6)
    0.010869

    The production version forms :math:`1 - p` at a row's top class as the sum of the
    others, so a confident right answer keeps its (very) tiny loss.
    """
    q, kept, denominator = target_distribution(logits, target, weight, ignore_index,
                                               label_smoothing)
    probs = softmax(logits)
    losses = -(q * (1 - probs) ** gamma * np.log(probs)).sum(axis=1)
    return _reduce(losses, reduction, denominator)


def softmax_focal_loss_grad(logits, target, gamma=2.0, weight=None, ignore_index=-100,
                            reduction="mean", label_smoothing=0.0, grad_output=None):
    r"""Gradient of :func:`softmax_focal_loss` with respect to the logits.

    With :math:`h_c = q_c\big[(1 - p_c)^\gamma - \gamma (1 - p_c)^{\gamma - 1} p_c \log p_c\big]`
    (the product rule on each term) and :math:`H = \sum_c h_c`:

    .. math:: \frac{\partial \ell_i}{\partial x_{ij}} = H_i\, p_{ij} - h_{ij}

    >>> softmax_focal_loss_grad(np.array([[0.0, 0.0]]), np.array([0]), gamma=1.0).round(6)
    array([[-0.423287,  0.423287]])

    The production :func:`xent_ref.softmax_focal_loss_grad` never forms :math:`(1 - p)^{\gamma - 1}` (infinite at
    :math:`p = 1` for :math:`\gamma < 1`): it uses :math:`-\log p / (1 - p) \to 1`.
    """
    q, kept, denominator = target_distribution(logits, target, weight, ignore_index,
                                               label_smoothing)
    probs = softmax(logits)
    u = 1 - probs
    h = q * (u**gamma - gamma * u ** (gamma - 1) * probs * np.log(probs))
    scale = _scale(grad_output, reduction, denominator, kept.shape, logits.dtype)
    if reduction == "none":
        scale = scale[:, None]
    return scale * (h.sum(axis=1, keepdims=True) * probs - h)
