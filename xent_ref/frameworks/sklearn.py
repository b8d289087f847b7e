r"""scikit-learn's ``sklearn.metrics.log_loss``, and its gradient with respect to the probabilities.

.. math::

    L = \frac{\sum_i s_i \ell_i}{\sum_i s_i}, \qquad
    \ell_i = -\sum_c Y_{ic} \log \operatorname{clip}(P_{ic}, \epsilon, 1 - \epsilon),

with :math:`Y` the one-hot labels (columns in sorted label order), :math:`s` the
sample weights (ones) and :math:`\epsilon` the **machine epsilon of the
probabilities' dtype** (``np.finfo(dtype).eps``: 2.2e-16 for float64, 1.2e-7 for
float32). ``normalize=False`` returns the weighted sum instead.

Where it differs from PyTorch's ``nll_loss(log(P), t)``:

* it takes probabilities, not log-probabilities or logits, and clips them (a
  probability 0 on the true class costs :math:`-\log\epsilon` = 36.04 in float64,
  not inf; Keras clips to 1e-7, PyTorch's ``binary_cross_entropy`` clamps the log
  at -100);
* labels are any sortable values (``["ham", "spam"]``), matched to columns by
  sorted order; ``labels=`` names them when ``y_true`` lacks some; a 1-D ``y_proba``
  is the positive class's probability, :math:`P = [1 - p, p]`;
* rows that do not sum to 1 are *not* renormalised (scikit-learn >= 1.5 warns);
* float32 and float64 probabilities keep their dtype; anything else is computed
  in float64, as scikit-learn's ``check_array`` converts it;
* weights are per sample and the mean divides by their sum (a zero sum is an
  error here -- NumPy's ``ZeroDivisionError`` in scikit-learn).

scikit-learn has no gradient; :func:`log_loss_grad` differentiates the formula
above, with the clip's derivative 0 outside :math:`(\epsilon, 1 - \epsilon)`.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine import checks
from xent_ref._engine.blocks import library_errstate


def _prepare(y_true, y_proba, sample_weight, labels):
    """``(Y, P, s, positive_only)``: one-hot labels, ``(n, C)`` probabilities, weights."""
    proba = checks.as_float_array(y_proba, "y_proba")
    if proba.dtype not in (np.float32, np.float64):
        proba = proba.astype(np.float64)
    if proba.ndim not in (1, 2):
        raise ValueError(f"y_proba: expected shape (n_samples,) or (n_samples, n_classes), "
                         f"got {proba.shape}")
    if proba.size and (proba.max() > 1 or proba.min() < 0):
        raise ValueError("y_proba: every probability must be in [0, 1]")
    y_true = checks.as_array(y_true, "y_true")
    if y_true.ndim != 1 or len(y_true) != len(proba):
        raise ValueError(f"y_true: expected {len(proba)} labels (one per row of y_proba), "
                         f"got shape {y_true.shape}")
    classes = np.unique(y_true if labels is None else checks.as_array(labels, "labels"))
    if len(classes) < 2:
        raise ValueError(f"labels: log_loss needs at least two classes, got {classes.tolist()}"
                         " (pass labels= to name them)")
    if not np.isin(y_true, classes).all():
        raise ValueError(f"y_true: contains values not in labels {classes.tolist()}")
    positive_only = proba.ndim == 1 or proba.shape[1] == 1
    if positive_only:
        p = proba.reshape(-1)
        proba = np.stack([1 - p, p], axis=1)
    if proba.shape[1] != len(classes):
        raise ValueError(f"y_proba: {proba.shape[1]} columns for {len(classes)} classes "
                         f"{classes.tolist()}")
    one_hot = (y_true[:, None] == classes[None, :]).astype(proba.dtype)
    weight = None
    if sample_weight is not None:
        # (kept in its own dtype, as scikit-learn keeps it: float64 weights make a
        # float32 mean in float64 before the final rounding)
        weight = checks.as_float_array(sample_weight, "sample_weight")
        if weight.shape != (len(proba),):
            raise ValueError(f"sample_weight: expected shape ({len(proba)},), "
                             f"got {weight.shape}")
    return one_hot, proba, weight, positive_only


def _scale(weight, n: int, normalize: bool, dtype) -> np.ndarray:
    """:math:`\\partial L / \\partial \\ell_i`: ``s_i / sum(s)``, ``1/n``, ``s_i`` or 1."""
    s = np.ones(n, dtype) if weight is None else weight
    if not normalize:
        return s
    total = s.sum()
    if total == 0:
        raise ValueError("sample_weight: the weights sum to zero, so the mean is undefined")
    return s / total


def log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None):
    r"""``sklearn.metrics.log_loss``: the (weighted) mean of :math:`-\log P_{i, y_i}`, clipped.

    scikit-learn's own example:

    >>> from xent_ref.frameworks.sklearn import log_loss
    >>> round(float(log_loss(["spam", "ham", "ham", "spam"],
    ...                      [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])), 5)
    0.21616

    Returns a 0-d array of the probabilities' dtype (scikit-learn returns ``float``).
    """
    one_hot, proba, weight, _ = _prepare(y_true, y_proba, sample_weight, labels)
    eps = np.finfo(proba.dtype).eps
    with library_errstate():
        clipped = np.clip(proba, eps, 1 - eps)
        # xlogy: a zero label contributes 0 whatever the log
        losses = -np.where(one_hot != 0, one_hot * np.log(clipped), 0.0).sum(axis=1)
    _scale(weight, len(proba), normalize, proba.dtype)  # (refuses weights that sum to 0)
    # summed as scikit-learn sums (np.average, np.dot), so float32 rounds alike
    if weight is None:
        total = losses.mean() if normalize else losses.sum()
    else:
        total = np.average(losses, weights=weight) if normalize else np.dot(losses, weight)
    # (scikit-learn returns float(total): with float64 weights on float32 probabilities
    # that is the float64 value, which is rounded once to float32 here)
    return np.asarray(total, proba.dtype)


def log_loss_grad(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None):
    r"""Gradient of :func:`log_loss` with respect to ``y_proba``.

    .. math::

        \frac{\partial L}{\partial P_{ic}} = -\frac{Y_{ic}}{P_{ic}}\,
        [\epsilon < P_{ic} < 1 - \epsilon]\; \frac{s_i}{\sum_k s_k}

    (without the last factor's denominator for ``normalize=False``). For a 1-D
    ``y_proba``, :math:`P = [1 - p, p]`, so :math:`\partial L/\partial p =
    \partial L/\partial P_{i1} - \partial L/\partial P_{i0}`.

    >>> from xent_ref.frameworks.sklearn import log_loss_grad
    >>> log_loss_grad([0, 1], [[0.5, 0.5], [0.25, 0.75]])
    array([[-1.        ,  0.        ],
           [ 0.        , -0.66666667]])
    """
    one_hot, proba, weight, positive_only = _prepare(y_true, y_proba, sample_weight, labels)
    eps = np.finfo(proba.dtype).eps
    inside = (proba > eps) & (proba < 1 - eps)
    with library_errstate():
        grad = np.where(inside & (one_hot != 0), -one_hot / proba, 0.0)
    grad *= _scale(weight, len(proba), normalize, proba.dtype)[:, None]
    grad = grad.astype(proba.dtype, copy=False)
    if positive_only:
        grad = (grad[:, 1] - grad[:, 0]).reshape(np.shape(y_proba))
    return grad
