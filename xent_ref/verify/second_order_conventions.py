"""The catalogue's classic mistakes of the second-order functions: Hessian-vector products
(``*_hvp``) and per-token statistics (``*_stats``).

Each row of :data:`ROWS` becomes one :class:`xent_ref.verify.conventions.Convention`
(appended to its ``CATALOGUE``, so reports, ids and translations treat them as every
other): ``(id, functions, explanation, fix, predict)``, ``predict(case, function, got)``
the value an implementation making the mistake returns, computed with xent_ref's own
functions on float64 copies of the case's arrays and rounded once to its dtype, or
``None`` where the mistake changes nothing. A prediction for the statistics is the
whole ``{statistic: array}`` of the case with the mistaken statistics replaced.
"""

from __future__ import annotations

import numpy as np

from xent_ref import functions as lib
from xent_ref import golden, llm_options
from xent_ref.hvp import cross_entropy_second_order

_HVP_KWARGS = ("weight", "ignore_index", "reduction", "label_smoothing", "logit_scale",
               "softcap", "z_loss")


def _tokens_layout(x: np.ndarray) -> tuple:
    """The ``(N, C, S)`` layout of the pieces of :func:`cross_entropy_second_order`."""
    return (1, x.shape[0], 1) if x.ndim == 1 else (x.shape[0], x.shape[1], -1)


def _pieces(case):
    """``(pieces, v)`` of an hvp case in float64, ``v`` in the pieces' layout."""
    inputs, kwargs = golden.widened(case.inputs), golden.widened(case.kwargs)
    pieces = cross_entropy_second_order(
        inputs["input"], inputs["target"], grad_output=case.grad_output.astype(np.float64),
        **{key: value for key, value in kwargs.items() if key in _HVP_KWARGS})
    return pieces, inputs["v"].reshape(_tokens_layout(inputs["v"]))


def _in_dtype(case, value) -> np.ndarray:
    return np.asarray(value).reshape(case.inputs["input"].shape).astype(case.dtype)


def _hvp_missing_outer_product(case, function, got):
    """``phi' [a diag(p) + b p p^T] phi' v``: the cross-entropy part's ``- a p p^T`` left
    out (its softcap curvature, when there is one, kept)."""
    pieces, v = _pieces(case)
    u = pieces.slope * v
    missing = pieces.slope * pieces.a * pieces.probs * (pieces.probs * u).sum(axis=1,
                                                                              keepdims=True)
    if not missing.any():
        return None
    return _in_dtype(case, pieces.hvp(v) + missing)


def _hvp_softcap_second_derivative_missing(case, function, got):
    """``phi' H_z (phi' v)`` alone: the softcap's own curvature ``(dL/dz) phi'' v`` left out."""
    if case.kwargs.get("softcap") is None:
        return None
    pieces, v = _pieces(case)
    return _in_dtype(case, pieces.hvp(v) - pieces.curvature * v)


def _statistics_of(case, **changes) -> dict:
    """xent_ref's statistics of the case in float64 with some keyword arguments changed."""
    inputs, kwargs = golden.widened(case.inputs), golden.widened(case.kwargs)
    stats = golden.call_second_order(lib.named(case.function), case, inputs,
                                     dict(kwargs, **changes))
    return {name: getattr(stats, name) for name in golden.STATISTICS}


def _replaced(case, **fields) -> dict:
    """The case's expected statistics with ``fields`` replaced, each in its dtype."""
    expected = dict(case.expected)
    for name, value in fields.items():
        expected[name] = np.asarray(value).astype(expected[name].dtype)
    return expected


def _entropy_of_unscaled_logits(case, function, got):
    if case.kwargs.get("logit_scale", 1.0) == 1.0 and case.kwargs.get("softcap") is None:
        return None
    raw = _statistics_of(case, logit_scale=1.0, softcap=None)
    return _replaced(case, entropy=raw["entropy"])


def _logits(case) -> np.ndarray | None:
    """The logits before the LLM options: the input, or ``h W^T + b`` (a 2-D ``W``)."""
    if case.function == "cross_entropy_stats":
        return case.inputs["input"]
    h, w = case.inputs["input"], case.inputs["linear_weight"]
    if w.ndim != 2:
        return None
    logits = np.atleast_2d(h) @ w.T
    bias = case.kwargs.get("linear_bias")
    return logits if bias is None else logits + bias


def _argmax_last_index(case, function, got):
    """Ties in the transformed logits broken to the last maximal index; ``correct`` with it."""
    logits = _logits(case)
    if logits is None:
        return None
    options = llm_options.Options.checked(case.kwargs.get("logit_scale", 1.0),
                                          case.kwargs.get("softcap"), 0.0)
    z, _ = llm_options.transform(logits, options)
    axis = 0 if z.ndim == 1 else 1
    last = z.shape[axis] - 1 - np.argmax(np.flip(z, axis=axis), axis=axis)
    last = last.reshape(case.expected["argmax"].shape)
    if (last == case.expected["argmax"]).all():
        return None
    target = case.inputs["target"]
    if golden.is_float(target.dtype):
        correct = last == np.argmax(target, axis=axis)
    else:
        correct = (last == target.reshape(last.shape)) & case.expected["kept"]
    return _replaced(case, argmax=last, correct=correct)


def _z_loss_returned_unscaled(case, function, got):
    """``lse^2`` on kept tokens for the z-loss statistic, and its reduction, without the
    weight ``z_loss`` (the loss itself right)."""
    if case.kwargs.get("z_loss", 0.0) == 1.0:
        return None
    kept = case.expected["kept"]
    lse = case.expected["lse"].astype(np.float64)
    unscaled = np.where(kept, lse * lse, 0.0)
    reduction = case.kwargs.get("reduction", "mean")
    with np.errstate(all="ignore"):
        reduced = unscaled if reduction == "none" else unscaled.sum() / (
            kept.sum() if reduction == "mean" else 1)
    return _replaced(case, z_loss=unscaled, reduced_z_loss=reduced)


STATS = ("cross_entropy_stats", "linear_cross_entropy_stats")
ROWS = (
    ("hvp-missing-outer-product", ("cross_entropy_hvp",),
     "the cross-entropy Hessian is taken as diag(p) alone: H v = s A p * v, without the "
     "- p (p . v) of - p p^T",
     "use the softmax's covariance: H v = s A (p * v - p (p . v)) (rows of H sum to 0)",
     _hvp_missing_outer_product),
    ("hvp-softcap-second-derivative-missing", ("cross_entropy_hvp",),
     "with a softcap, H v = phi' H_z (phi' v) only: the cap's own curvature (dL/dz) phi'' v "
     "is left out (a Gauss-Newton product, not the Hessian)",
     "add (dL/dz) * phi'' * v, phi'' = -2 s z phi' / c^2 (z = c tanh(s x / c))",
     _hvp_softcap_second_derivative_missing),
    ("entropy-of-unscaled-logits", STATS,
     "the entropy is taken of softmax(x), the logits before logit_scale and softcap",
     "take the entropy of the softmax the loss uses: of z = c tanh(s x / c)",
     _entropy_of_unscaled_logits),
    ("argmax-last-index", STATS,
     "ties in the prediction are broken to the last maximal index (and correct with it)",
     "take the first maximal index, as torch.argmax and np.argmax do (a softcap makes "
     "ties: c tanh(u) rounds to c for every large logit)", _argmax_last_index),
    ("z-loss-returned-unscaled", STATS,
     "the z-loss statistic is lse^2, without its weight z_loss (the loss itself is right)",
     "return z_loss * lse^2 on kept tokens (0 on ignored ones), reduced as the z-loss part "
     "of the loss", _z_loss_returned_unscaled),
)
