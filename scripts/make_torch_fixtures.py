"""Generate ``tests/fixtures/torch_golden.json``: PyTorch's losses and autograd gradients.

Run it with the PyTorch 2.13 CPU environment (torch is not a dependency of xent_ref):

    python scripts/make_torch_fixtures.py      (any Python with torch==2.13.0 and numpy)

Every input is drawn from one seeded NumPy generator, so the inputs do not depend on the
torch version; torch only computes the expected values. For each case torch evaluates the
``torch.nn.functional`` twin of an xent_ref function, then ``loss.backward(grad_output)``
gives the expected gradient with respect to the first argument. Arrays are stored with
``xent_ref.golden.jsonio.encode_array`` (exact, non-finite values as strings), one case per line.

Case layout (see also ``SCHEMA`` below)::

    {"id": "...", "function": "cross_entropy", "dtype": "float32",
     "args": [input, target],            # softmax/log_softmax: [x]
     "kwargs": {"weight": ..., ...},       # softmax/log_softmax: {"axis": k}; null = None
     "grad_output": array,                 # 0-d for mean/sum, shaped like the loss for none
     "expected": {"loss": array, "grad": array}}
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


# Only the array encoding comes from xent_ref (a file format, numpy alone): every
# expected value below is computed by PyTorch.
sys.path.insert(0, str(REPO))
from xent_ref.golden.jsonio import encode_array  # noqa: E402

TORCH_SERIES = "2.13."
SEED = 20250613
DEFAULT_OUTPUT = REPO / "tests" / "fixtures" / "torch_golden.json"
DTYPES = ("float64", "float32")
REDUCTIONS = ("none", "mean", "sum")
LABEL_SMOOTHINGS = (0.0, 0.1, 0.3)
SHAPE_KINDS = ("C", "NC", "NCd", "NCdd")
PROBABILITY_TARGET_KINDS = ("dist", "unnormalized", "onehot")
SOFTMAX_SHAPES = {1: (5,), 2: (3, 4), 3: (2, 3, 4), 4: (2, 3, 2, 2)}
SOFTMAX_AXES = {1: (-1, 0), 2: (-1, 0, 1, -2), 3: (-1, 0, 1, 2), 4: (1, -1, 0, 2)}

SCHEMA = (
    "Each case calls xent_ref.<function>(*args, **kwargs) for the loss and "
    "xent_ref.<function>_grad(*args, **kwargs, grad_output=grad_output) for the gradient "
    "(softmax/log_softmax: <function>_grad(x, grad_output, axis=...)). Arrays use "
    "xent_ref.golden.jsonio.encode_array; a null kwarg means None. expected.loss and expected.grad "
    "are torch.nn.functional's value and the autograd gradient w.r.t. args[0], both in the "
    "case's dtype."
)

TORCH_FUNCTIONS = {
    "softmax": lambda x, axis: F.softmax(x, dim=axis),
    "log_softmax": lambda x, axis: F.log_softmax(x, dim=axis),
    "cross_entropy": F.cross_entropy,
    "nll_loss": F.nll_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
}


# --------------------------------------------------------------------------- torch runner


def torch_expected(function, args, kwargs, grad_output):
    """Loss and gradient w.r.t. ``args[0]`` from torch, as NumPy arrays of the input's dtype."""
    first = torch.from_numpy(args[0].copy()).requires_grad_(True)
    rest = [torch.from_numpy(a.copy()) for a in args[1:]]
    torch_kwargs = {
        k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v
        for k, v in kwargs.items()
        if v is not None
    }
    loss = TORCH_FUNCTIONS[function](first, *rest, **torch_kwargs)
    loss.backward(torch.from_numpy(grad_output.copy()))
    return loss.detach().numpy().copy(), first.grad.numpy().copy()


class Cases:
    """Collects cases: draws nothing itself, only evaluates torch and encodes."""

    def __init__(self):
        self.cases = []
        self.ids = set()

    def add(self, case_id, function, args, kwargs, grad_output):
        if case_id in self.ids:
            raise AssertionError(f"duplicate case id {case_id}")
        dtype = args[0].dtype
        loss, grad = torch_expected(function, args, kwargs, grad_output)
        # Sanity checks on what torch returned, so a bad fixture cannot be written silently.
        assert loss.dtype == dtype and grad.dtype == dtype, case_id
        assert grad.shape == args[0].shape, case_id
        assert grad_output.shape == loss.shape and grad_output.dtype == dtype, case_id
        self.ids.add(case_id)
        self.cases.append(
            {
                "id": case_id,
                "function": function,
                "dtype": dtype.name,
                "args": [encode_array(a) for a in args],
                "kwargs": {
                    k: encode_array(v) if isinstance(v, np.ndarray) else v
                    for k, v in kwargs.items()
                },
                "grad_output": encode_array(grad_output),
                "expected": {"loss": encode_array(loss), "grad": encode_array(grad)},
            }
        )
        return loss, grad


# --------------------------------------------------------------------------- input drawing


def loss_shape(rng, kind):
    """A small input shape of the given kind; the class axis is 0 for (C,), else 1."""
    if kind == "C":
        return (int(rng.integers(3, 6)),)
    if kind == "NC":
        return (int(rng.integers(2, 5)), int(rng.integers(3, 6)))
    if kind == "NCd":
        return (int(rng.integers(2, 4)), int(rng.integers(3, 5)), int(rng.integers(2, 4)))
    return (2, 3, 2, int(rng.integers(2, 4)))


def class_axis(shape):
    return 0 if len(shape) == 1 else 1


def target_shape(shape):
    """Shape of class-index targets for an input of ``shape``."""
    return () if len(shape) == 1 else shape[:1] + shape[2:]


def softmax_np(z, axis):
    """float64 softmax for drawing probability targets (not a reference computation)."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def grad_output_for(rng, loss_shape_, dtype):
    """Non-trivial upstream gradient: signed, away from 1."""
    if loss_shape_ == ():
        value = rng.uniform(0.3, 2.5) * rng.choice([-1.0, 1.0])
        return np.array(value, dtype=dtype)
    return rng.normal(0.0, 1.0, loss_shape_).astype(dtype)


def index_targets(rng, shape, ignore_mode):
    """Class indices plus the ignore_index that goes with ``ignore_mode``.

    default: ignore_index -100, nothing ignored; class: ignore_index 1 and some targets are 1
    (a 0-d target is then ignored entirely); neg1: ignore_index -1 with some -1 targets.
    """
    n_classes = shape[class_axis(shape)]
    t = rng.integers(0, n_classes, target_shape(shape)).astype(np.int64)
    flat = t.reshape(-1)
    if ignore_mode == "default":
        return t, -100
    if ignore_mode == "class":
        if t.ndim == 0:
            return np.array(1, dtype=np.int64), 1
        flat[0], flat[-1] = 1, 0  # at least one ignored, at least one kept
        return t, 1
    if t.ndim == 0:
        return t, -1  # kept: ignore_index is set but unused
    flat[rng.random(flat.size) < 0.3] = -1
    flat[0], flat[-1] = -1, 2
    return t, -1


def class_weight(rng, shape, dtype):
    return rng.uniform(0.2, 2.0, shape[class_axis(shape)]).astype(dtype)


def probability_targets(rng, shape, kind):
    axis = class_axis(shape)
    if kind == "dist":
        return softmax_np(rng.normal(0.0, 1.5, shape), axis)
    if kind == "unnormalized":  # torch does not require rows summing to 1
        return rng.uniform(0.0, 1.0, shape)
    onehot = rng.integers(0, shape[axis], target_shape(shape))
    return np.moveaxis(np.eye(shape[axis])[onehot], -1, axis)


def broadcast_shape(shape, variant):
    """A weight/pos_weight shape that broadcasts right-aligned against ``shape``."""
    if len(shape) == 1:
        return (1,) if variant == "weight" else shape
    if len(shape) == 2:
        return (shape[1],)
    # Per-channel along axis 1, as images need: (C, 1) or (C, 1, 1).
    return (shape[1],) + (1,) * (len(shape) - 2)


# --------------------------------------------------------------------------- case families


def draw_softmax(rng, function, ndim, axis, dtype):
    x = rng.normal(0.0, 2.0, SOFTMAX_SHAPES[ndim]).astype(dtype)
    g = grad_output_for(rng, x.shape, dtype)
    return f"{function}-{ndim}d-axis{axis}-{dtype}", function, [x], {"axis": axis}, g


def draw_cross_entropy_index(rng, kind, reduction, weighted, ignore_mode, ls, dtype):
    shape = loss_shape(rng, kind)
    x = rng.normal(0.0, 2.0, shape).astype(dtype)
    t, ignore_index = index_targets(rng, shape, ignore_mode)
    weight = class_weight(rng, shape, dtype) if weighted else None
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=ls)
    g = grad_output_for(rng, t.shape if reduction == "none" else (), dtype)
    case_id = (
        f"cross_entropy-index-{kind}-{reduction}-{'w' if weighted else 'now'}"
        f"-ii_{ignore_mode}-ls{ls}-{dtype}"
    )
    return case_id, "cross_entropy", [x, t], kwargs, g


def draw_cross_entropy_probability(rng, kind, reduction, weighted, ls, target_kind, ignore_index, dtype):
    """Probability targets; ``ignore_index`` must be negative (torch rejects others) and is unused."""
    shape = loss_shape(rng, kind)
    x = rng.normal(0.0, 2.0, shape).astype(dtype)
    y = probability_targets(rng, shape, target_kind).astype(dtype)
    weight = class_weight(rng, shape, dtype) if weighted else None
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=ls)
    g = grad_output_for(rng, target_shape(shape) if reduction == "none" else (), dtype)
    case_id = (
        f"cross_entropy-prob_{target_kind}-{kind}-{reduction}-{'w' if weighted else 'now'}"
        f"-ii{ignore_index}-ls{ls}-{dtype}"
    )
    return case_id, "cross_entropy", [x, y], kwargs, g


def log_probs(x, axis):
    """Log-probabilities as torch computes them in x's dtype (the nll_loss inputs)."""
    return F.log_softmax(torch.from_numpy(x), dim=axis).numpy().copy()


def draw_nll(rng, kind, reduction, weighted, ignore_mode, dtype):
    shape = loss_shape(rng, kind)
    lp = log_probs(rng.normal(0.0, 2.0, shape).astype(dtype), class_axis(shape))
    t, ignore_index = index_targets(rng, shape, ignore_mode)
    weight = class_weight(rng, shape, dtype) if weighted else None
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
    g = grad_output_for(rng, t.shape if reduction == "none" else (), dtype)
    case_id = f"nll_loss-{kind}-{reduction}-{'w' if weighted else 'now'}-ii_{ignore_mode}-{dtype}"
    return case_id, "nll_loss", [lp, t], kwargs, g


def sigmoid_np(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def elementwise_weight(rng, shape, weight_mode, variant):
    """None, a full-shape weight, or one that broadcasts (see ``broadcast_shape``)."""
    if weight_mode == "now":
        return None
    wshape = shape if weight_mode == "wfull" else broadcast_shape(shape, variant)
    return rng.uniform(0.2, 2.0, wshape)


def draw_bce(rng, kind, reduction, weight_mode, target_kind, dtype):
    """target_kind: hard {0, 1}, soft [0, 1], or clamp (exact 0/1 probabilities, mixed targets)."""
    shape = loss_shape(rng, kind)
    p = sigmoid_np(rng.normal(0.0, 2.5, shape))
    hard = rng.integers(0, 2, shape).astype(np.float64)
    soft = rng.uniform(0.0, 1.0, shape)
    if target_kind == "hard":
        y = hard
    elif target_kind == "soft":
        y = soft
    else:
        # Exact 0 and 1 probabilities hit the -100 clamp on the log and the 1e-12 floor
        # on the gradient's denominator.
        y = np.where(rng.random(shape) < 0.5, hard, soft)
        pf, yf = p.reshape(-1), y.reshape(-1)
        pick = rng.random(pf.size) < 0.3
        pf[pick] = rng.integers(0, 2, int(pick.sum()))
        pf[:3], yf[:3] = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)
    weight = elementwise_weight(rng, shape, weight_mode, "weight")
    kwargs = dict(weight=None if weight is None else weight.astype(dtype), reduction=reduction)
    g = grad_output_for(rng, shape if reduction == "none" else (), dtype)
    case_id = f"binary_cross_entropy-{kind}-{reduction}-{weight_mode}-{target_kind}-{dtype}"
    return case_id, "binary_cross_entropy", [p.astype(dtype), y.astype(dtype)], kwargs, g


def draw_bce_logits(rng, kind, reduction, weight_mode, pos_weighted, logit_kind, target_kind, dtype):
    """logit_kind: normal, or large (many of +-30, +-100, +-1e4); target_kind: hard or mixed."""
    function = "binary_cross_entropy_with_logits"
    shape = loss_shape(rng, kind)
    x = rng.normal(0.0, 3.0, shape)
    if logit_kind == "large":
        xf = x.reshape(-1)
        big = np.array([30.0, -30.0, 100.0, -100.0, 1e4, -1e4])
        pick = rng.random(xf.size) < 0.6
        xf[pick] = rng.choice(big, int(pick.sum()))
        xf[: min(4, xf.size)] = big[: min(4, xf.size)]  # always some of +-30, +-100
    y = rng.integers(0, 2, shape).astype(np.float64)
    if target_kind == "mixed":
        y = np.where(rng.random(shape) < 0.5, y, rng.uniform(0.0, 1.0, shape))
    weight = elementwise_weight(rng, shape, weight_mode, "weight")
    pos_weight = rng.uniform(0.3, 4.0, broadcast_shape(shape, "pos_weight")) if pos_weighted else None
    kwargs = dict(
        weight=None if weight is None else weight.astype(dtype),
        pos_weight=None if pos_weight is None else pos_weight.astype(dtype),
        reduction=reduction,
    )
    g = grad_output_for(rng, shape if reduction == "none" else (), dtype)
    pw = "pw" if pos_weighted else "nopw"
    case_id = f"{function}-{kind}-{reduction}-{weight_mode}-{pw}-{logit_kind}-{target_kind}-{dtype}"
    return case_id, function, [x.astype(dtype), y.astype(dtype)], kwargs, g


def grid_cases(out, rng):
    """The main grids: every combination of the main options; minor options drawn from rng."""
    for function, dtype, ndim in itertools.product(("softmax", "log_softmax"), DTYPES, SOFTMAX_SHAPES):
        for axis in SOFTMAX_AXES[ndim]:
            out.add(*draw_softmax(rng, function, ndim, axis, dtype))
    yes_no = (False, True)
    ignore_modes = ("default", "class", "neg1")
    weight_modes = ("now", "wfull", "wbcast")
    for opts in itertools.product(SHAPE_KINDS, REDUCTIONS, yes_no, ignore_modes, LABEL_SMOOTHINGS, DTYPES):
        out.add(*draw_cross_entropy_index(rng, *opts))
    for kind, reduction, weighted, ls, dtype in itertools.product(
        SHAPE_KINDS, REDUCTIONS, yes_no, LABEL_SMOOTHINGS, DTYPES
    ):
        target_kind = str(rng.choice(PROBABILITY_TARGET_KINDS))
        ignore_index = int(rng.choice([-100, -1]))
        out.add(*draw_cross_entropy_probability(
            rng, kind, reduction, weighted, ls, target_kind, ignore_index, dtype))
    for opts in itertools.product(SHAPE_KINDS, REDUCTIONS, yes_no, ignore_modes, DTYPES):
        out.add(*draw_nll(rng, *opts))
    for opts in itertools.product(SHAPE_KINDS, REDUCTIONS, weight_modes, ("hard", "soft", "clamp"), DTYPES):
        out.add(*draw_bce(rng, *opts))
    for kind, reduction, weight_mode, pos_weighted, dtype in itertools.product(
        SHAPE_KINDS, REDUCTIONS, weight_modes, yes_no, DTYPES
    ):
        logit_kind = str(rng.choice(["normal", "large"]))
        target_kind = str(rng.choice(["hard", "mixed"]))
        out.add(*draw_bce_logits(
            rng, kind, reduction, weight_mode, pos_weighted, logit_kind, target_kind, dtype))


def softmax_special_cases(out, rng):
    specials = {
        "neginf": np.array([[0.5, -np.inf, 1.0, -2.0], [-np.inf, -np.inf, 3.0, 0.0]]),
        "pm1e4": np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1.0, -1e4 + 2.0]]),
        "confident": np.array([[50.0, 0.0, 0.0], [0.0, 0.0, -60.0]]),
        "scale30": rng.normal(0.0, 30.0, (3, 5)),
    }
    for function, dtype in itertools.product(("softmax", "log_softmax"), DTYPES):
        cases = dict(specials)
        if dtype == "float64":
            cases["pm1e300"] = np.array([[1e300, -1e300, 0.0], [-1e300, -1e300, 5.0]])
        for name, x in cases.items():
            x = x.astype(dtype)
            for axis in (-1, 0):
                if name == "neginf" and axis == 0:
                    continue  # column 1 would be all -inf: nan, not a case worth pinning
                g = grad_output_for(rng, x.shape, dtype)
                out.add(f"{function}-{name}-axis{axis}-{dtype}", function, [x], {"axis": axis}, g)


def edge_cases(out, rng):
    """Hand-picked cases: each id says what it pins down."""

    def ce(case_id, x, t, dtype, reduction="mean", **kwargs):
        x = np.asarray(x, dtype=dtype)
        t = np.asarray(t, dtype=np.int64 if np.asarray(t).dtype.kind in "iu" else dtype)
        weight = kwargs.pop("weight", None)
        kwargs = dict(
            weight=None if weight is None else np.asarray(weight, dtype=dtype),
            ignore_index=kwargs.pop("ignore_index", -100),
            reduction=reduction,
            label_smoothing=kwargs.pop("label_smoothing", 0.0),
        )
        loss_shape_ = (t.shape if t.shape != x.shape else target_shape(x.shape)) if reduction == "none" else ()
        g = grad_output_for(rng, loss_shape_, dtype)
        return out.add(f"cross_entropy-edge-{case_id}-{reduction}-{dtype}", "cross_entropy", [x, t], kwargs, g)

    for dtype in DTYPES:
        # Every target ignored: mean is 0/0 = nan and the gradient is zero.
        x2 = rng.normal(0.0, 2.0, (3, 4))
        x4 = rng.normal(0.0, 2.0, (2, 3, 2, 2))
        w4 = rng.uniform(0.2, 2.0, 4)
        for reduction in REDUCTIONS:
            ce("all_ignored_class", x2, [1, 1, 1], dtype, reduction, ignore_index=1)
            ce("all_ignored_w_ls0.1", x2, [1, 1, 1], dtype, reduction, ignore_index=1, weight=w4,
               label_smoothing=0.1)
            ce("all_ignored_4d_neg1", x4, -np.ones((2, 2, 2), np.int64), dtype, reduction, ignore_index=-1)
        loss, grad = ce("all_ignored_ls0.3", x4, -np.ones((2, 2, 2), np.int64), dtype, "mean",
                        ignore_index=-1, label_smoothing=0.3)
        assert np.isnan(loss) and not grad.any()

        # -inf logits off the target: finite loss; on the target: +inf loss, finite gradient.
        xinf = np.array([[-np.inf, 1.0, 2.0, 0.5], [0.0, -np.inf, 1.0, -np.inf], [3.0, 0.0, -np.inf, 1.0]])
        for reduction in REDUCTIONS:
            ce("neginf_off_target", xinf, [1, 2, 0], dtype, reduction)
            ce("neginf_off_target_w", xinf, [3, 0, 1], dtype, reduction, weight=w4)
            ce("neginf_on_target", xinf, [0, 2, 1], dtype, reduction)
        ce("neginf_off_target_1d", xinf[0], np.array(2), dtype, "none")

        # Confident predictions: the true loss is tiny (3.86e-22 for [50, 0, 0]).
        for reduction in REDUCTIONS:
            ce("confident", [[50.0, 0.0, 0.0], [0.0, 40.0, 0.0]], [0, 1], dtype, reduction)
            ce("confident_ls0.1", [[50.0, 0.0, 0.0], [0.0, 40.0, 0.0]], [0, 1], dtype, reduction,
               label_smoothing=0.1)
        ce("confident_1d", [50.0, 0.0, 0.0], np.array(0), dtype, "sum")
        ce("confident_prob", [[50.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]], dtype, "mean")

        # Huge logits.
        x1e4 = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, -1e4, -1e4 + 3.0]])
        for reduction in REDUCTIONS:
            ce("pm1e4", x1e4, [1, 2, 2], dtype, reduction)
            ce("pm1e4_w_ls0.1", x1e4, [1, 2, 0], dtype, reduction, weight=[0.5, 2.0, 1.0],
               label_smoothing=0.1)
            ce("pm1e4_prob_ls0.3", x1e4, softmax_np(rng.normal(0.0, 1.0, (3, 3)), 1), dtype,
               reduction, label_smoothing=0.3)

        # A zero class weight (samples of that class count for nothing, even in the denominator).
        for reduction in REDUCTIONS:
            ce("zero_weight", x2, [0, 2, 3], dtype, reduction, weight=[0.0, 1.0, 2.0, 0.5])

        # Segmentation with the common ignore_index 255, beyond the class range.
        t255 = rng.integers(0, 3, (2, 2, 2))
        t255[0, 0, 1] = t255[1, 1, 0] = 255
        for ls in (0.0, 0.1):
            ce(f"ignore255_ls{ls}", x4, t255, dtype, "mean", ignore_index=255, label_smoothing=ls,
               weight=[1.0, 2.0, 0.5])

        # Empty batch: mean is nan (0/0), sum is 0, none is empty.
        for reduction in REDUCTIONS:
            ce("empty_batch", np.zeros((0, 3)), np.zeros(0, np.int64), dtype, reduction)
        ce("empty_batch_prob", np.zeros((0, 3)), np.zeros((0, 3)), dtype, "mean")
        g0 = np.array(1.5, dtype=dtype)
        out.add(f"nll_loss-edge-empty_batch-mean-{dtype}", "nll_loss",
                [np.zeros((0, 3), dtype), np.zeros(0, np.int64)],
                dict(weight=None, ignore_index=-100, reduction="mean"), g0)
        out.add(f"binary_cross_entropy-edge-empty_batch-mean-{dtype}", "binary_cross_entropy",
                [np.zeros((0, 3), dtype), np.zeros((0, 3), dtype)], dict(weight=None, reduction="mean"), g0)

        # nll_loss: every target ignored, and -inf log-probabilities off the target.
        lp = log_probs(rng.normal(0.0, 2.0, (3, 4)).astype(dtype), 1)
        for reduction in REDUCTIONS:
            out.add(f"nll_loss-edge-all_ignored-{reduction}-{dtype}", "nll_loss",
                    [lp, np.array([2, 2, 2])], dict(weight=np.asarray(w4, dtype), ignore_index=2,
                                                    reduction=reduction),
                    grad_output_for(rng, (3,) if reduction == "none" else (), dtype))
        lpinf = log_probs(xinf.astype(dtype), 1)
        out.add(f"nll_loss-edge-neginf_off_target-mean-{dtype}", "nll_loss", [lpinf, np.array([1, 2, 0])],
                dict(weight=None, ignore_index=-100, reduction="mean"), np.array(0.7, dtype))

        # The worked examples of source document 001 (float32 there; both dtypes here).
        pred = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
        ce("doc001_ignore_index1", pred, [0, 1, 0], dtype, "mean", ignore_index=1)
        ce("doc001_weight", pred, [0, 1, 0], dtype, "mean", weight=[1.0, 2.0])
        pred3 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]
        ce("doc001_weight_ignore2", pred3, [2, 1, 0, 1], dtype, "mean", weight=[2.0, 1.0, 2.0], ignore_index=2)

        # BCE with a 0-d weight (broadcasts to everything).
        p = sigmoid_np(rng.normal(0.0, 2.0, (3, 4))).astype(dtype)
        y = rng.uniform(0.0, 1.0, (3, 4)).astype(dtype)
        out.add(f"binary_cross_entropy-edge-scalar_weight-sum-{dtype}", "binary_cross_entropy", [p, y],
                dict(weight=np.array(1.7, dtype), reduction="sum"), np.array(-0.6, dtype))
        # BCE with logits: pos_weight along the last axis of a 3-D input.
        x = rng.normal(0.0, 3.0, (2, 3, 4)).astype(dtype)
        y = rng.integers(0, 2, (2, 3, 4)).astype(dtype)
        out.add(f"binary_cross_entropy_with_logits-edge-pw_last_axis-mean-{dtype}",
                "binary_cross_entropy_with_logits", [x, y],
                dict(weight=None, pos_weight=rng.uniform(0.3, 4.0, 4).astype(dtype), reduction="mean"),
                np.array(1.3, dtype))

    # float64 only: logits of +-1e300 must neither overflow nor warn.
    x300 = [[1e300, -1e300, 0.0], [-1e300, -1e300, 5.0]]
    for reduction in REDUCTIONS:
        ce("pm1e300", x300, [1, 2], "float64", reduction)


# --------------------------------------------------------------------------- main


def build():
    torch.set_num_threads(1)  # one fixed summation order
    rng = np.random.default_rng(SEED)
    out = Cases()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torch warning means a deprecated or doubtful case
        for family in (grid_cases, softmax_special_cases, edge_cases):
            family(out, rng)
    return out.cases


def counts_by_function(cases):
    counts = {}
    for case in cases:
        counts[case["function"]] = counts.get(case["function"], 0) + 1
    return counts


def write(cases, path):
    header = {
        "format": "xent-ref torch golden fixtures, version 1",
        "generator": "scripts/make_torch_fixtures.py",
        "command": shlex.join([sys.executable, *sys.argv]),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "date": datetime.date.today().isoformat(),
        "seed": SEED,
        "schema": SCHEMA,
        "counts": counts_by_function(cases),
    }
    lines = json.dumps(header, indent=1)[:-2]  # reopen the object to append "cases"
    body = ",\n".join(json.dumps(c, separators=(",", ":"), allow_nan=False) for c in cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{lines},\n "cases": [\n{body}\n]\n}}\n', encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    if not torch.__version__.startswith(TORCH_SERIES):
        sys.exit(f"expected torch {TORCH_SERIES}x, found {torch.__version__}")
    cases = build()
    write(cases, args.output)
    size = args.output.stat().st_size
    print(f"wrote {len(cases)} cases ({size / 1e6:.2f} MB) to {args.output}")
    for function, n in counts_by_function(cases).items():
        print(f"  {function}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
