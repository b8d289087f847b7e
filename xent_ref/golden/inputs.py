"""Deterministic inputs: the cases before xent_ref computes their expected values
(:class:`Spec`).

Every input is made from the raw bits of PCG64 (:class:`Stream`) with exactly rounded
operations only (``+ - * /`` on float64), never NumPy's ``exp`` or ``log``, whose last
bit may change with the NumPy version, and rounded to its dtype by :func:`rounded`, not
by a cast whose rounding may change with the ml_dtypes version: ``inputs_sha256`` is the
same under NumPy 1.23 to 2.x and ml_dtypes 0.3 to 0.7 (``tests/test_golden.py`` pins
it). (The peaked rows of the vocabulary-scale cases need one logarithm: Python's
``math``, the C library's, rounded to the case's dtype.)

The parts, in the corpus's order: every option against every shape and dtype
(systematic), the edge cases that break implementations, the vocabulary-scale cases
of a fused LLM loss kernel, the LLM options of cross_entropy, linear_cross_entropy;
then, apart, the float16 and bfloat16 cases (:func:`low_precision_inputs`).
"""

from __future__ import annotations

import functools
import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from xent_ref._engine.lowprec import round_once
from xent_ref.golden.cases import (C, DTYPE_SUFFIXES, DTYPES, LLM_TOGETHER,
                                   LOW_PRECISION_DTYPES, REDUCTIONS, SHAPES)
from xent_ref.golden.jsonio import dtype_named

SEED = 20240531


class Stream:
    """Uniform numbers from PCG64's raw 64-bit stream, seeded by (SEED, case id).

    NumPy keeps bit generator streams stable across versions, but not the algorithms of
    ``Generator.normal`` and friends, so we turn raw bits into numbers ourselves. Each
    case has its own stream: adding a case never changes the inputs of another.
    """

    def __init__(self, case_id: str):
        self._bits = np.random.PCG64([SEED, zlib.crc32(case_id.encode())])

    def uniform(self, low: float, high: float, shape=()) -> np.ndarray:
        count = math.prod(shape)
        raw = self._bits.random_raw(count)
        unit = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1), 53 bits
        return (low + (high - low) * unit).reshape(shape)

    def integers(self, n: int, shape=()) -> np.ndarray:
        return np.minimum(np.floor(self.uniform(0, n, shape)), n - 1).astype(np.int64)

    def distributions(self, shape, axis: int = 1) -> np.ndarray:
        """Non-negative rows that sum to 1 along ``axis`` (to rounding)."""
        mass = self.uniform(0.05, 1.0, shape)
        # Summed left to right by hand: np.sum's order (pairwise, SIMD) is NumPy's to change.
        total = functools.reduce(np.add, np.moveaxis(mass, axis, 0))
        return mass / np.expand_dims(total, axis)


def rounded(values, dtype) -> np.ndarray:
    """float64 ``values`` in ``dtype``, rounded to nearest (ties to even) by the library's
    own rounding, so the corpus's inputs have the same bits under every NumPy and
    ml_dtypes: float16, float32 and float64 by NumPy's cast (one correct rounding);
    bfloat16 by way of float32, rounded there first and then once more by
    :func:`round_once`, as the corpus's bfloat16 inputs have always been made (ml_dtypes
    0.6 casts float64 so; 0.7 rounds once, directly, which changes a few of them).
    Integer arrays are cast as they are.

    >>> rounded([1 + 2**-8 + 2**-30], "bfloat16").astype(float).tolist()
    [1.0]
    """
    dtype = dtype_named(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    values = np.asarray(values)
    if dtype.name != "bfloat16":
        return values.astype(dtype)
    return round_once(values.astype(np.float64).astype(np.float32), dtype)


_SUFFIX = {dtype: suffix for suffix, dtype in DTYPE_SUFFIXES.items()}


def _loss_shape(input_shape: tuple) -> tuple:
    """The shape of an index target and of ``reduction="none"``: the class axis removed."""
    if len(input_shape) == 1:
        return ()
    return (input_shape[0],) + tuple(input_shape[2:])


@dataclass
class Spec:
    """What to call: a case before xent_ref has computed its expected values."""

    id: str
    function: str
    inputs: dict[str, np.ndarray]
    kwargs: dict[str, Any]
    exact_only: str | None = None
    grad_output: np.ndarray | None = None  # set once the loss's shape is known


def _class_weight(stream: Stream, dtype: str) -> np.ndarray:
    return rounded(stream.uniform(0.2, 3.0, (C,)), dtype)


# ---------------------------------------------------------------------------
# The systematic part: every option against every shape and dtype
# ---------------------------------------------------------------------------


def _softmax_specs() -> Iterator[Spec]:
    axes = [("C", 0), ("NxC", -1), ("NxC", 0), ("NxCxd1", 1), ("NxCxd1", -1)]
    axes += [("NxCxd1xd2", 1)]
    for function, (shape_name, axis), dtype in itertools.product(
        ("softmax", "log_softmax"), axes, DTYPES
    ):
        case_id = f"{function}/{shape_name}/axis={axis}/{_SUFFIX[dtype]}"
        x = rounded(Stream(case_id).uniform(-4.0, 4.0, SHAPES[shape_name]), dtype)
        kwargs = {} if axis == -1 else {"axis": axis}
        yield Spec(case_id, function, {"x": x}, kwargs)


# ignore_index variants: (label, kwargs, value planted in the targets or None)
_IGNORE = [
    ("ign=none", {}, None),  # the default -100, no target ignored
    ("ign=default", {}, -100),  # the default -100, some targets are -100
    ("ign=1", {"ignore_index": 1}, 1),  # a real class
    ("ign=-1", {"ignore_index": -1}, -1),
]


def _index_target(stream: Stream, input_shape: tuple, planted: int | None) -> np.ndarray:
    target = stream.integers(C, _loss_shape(input_shape))
    if planted is not None:
        flat = target.reshape(-1)  # a view
        chosen = np.zeros(flat.size, dtype=bool)
        chosen[:: max(2, flat.size // 3)] = True  # a few, never all
        flat[~chosen & (flat == planted)] = (planted + 1) % C  # a class that is kept
        flat[chosen] = planted
    return target


def _class_specs(function: str) -> Iterator[Spec]:
    """cross_entropy / nll_loss with class-index targets."""
    smoothings = (0.0, 0.1) if function == "cross_entropy" else (0.0,)
    for shape_name, reduction, weighted, ignore, eps, dtype in itertools.product(
        SHAPES, REDUCTIONS, (False, True), _IGNORE, smoothings, DTYPES
    ):
        label, ignore_kwargs, planted = ignore
        if shape_name == "C" and label != "ign=none":
            continue  # one target: ignoring it is an edge case of its own
        parts = [function, "index", shape_name, reduction, "w" if weighted else "no-w", label]
        parts += [f"ls={eps}"] if function == "cross_entropy" else []
        case_id = "/".join(parts + [_SUFFIX[dtype]])
        stream = Stream(case_id)
        shape = SHAPES[shape_name]
        if function == "cross_entropy":
            values = stream.uniform(-4.0, 4.0, shape)
        else:
            # nll_loss takes log-probabilities, but never checks that they normalise: any
            # negative numbers serve, and log_softmax would make the inputs' last bit
            # depend on the NumPy version's log and exp.
            values = stream.uniform(-6.0, -0.05, shape)
        kwargs = dict(ignore_kwargs, reduction=reduction)
        if weighted:
            kwargs["weight"] = _class_weight(stream, dtype)
        if eps:
            kwargs["label_smoothing"] = eps
        target = _index_target(stream, shape, planted)
        yield Spec(case_id, function, {"input": rounded(values, dtype), "target": target}, kwargs)


def _probability_specs() -> Iterator[Spec]:
    """cross_entropy with class-probability targets."""
    for shape_name, reduction, weighted, eps, dtype in itertools.product(
        SHAPES, REDUCTIONS, (False, True), (0.0, 0.1), DTYPES
    ):
        flags = ["w" if weighted else "no-w", f"ls={eps}", _SUFFIX[dtype]]
        case_id = "/".join(["cross_entropy", "probs", shape_name, reduction] + flags)
        stream = Stream(case_id)
        shape = SHAPES[shape_name]
        logits = rounded(stream.uniform(-4.0, 4.0, shape), dtype)
        target = rounded(stream.distributions(shape, axis=min(1, len(shape) - 1)), dtype)
        kwargs = {"reduction": reduction}
        if weighted:
            kwargs["weight"] = _class_weight(stream, dtype)
        if eps:
            kwargs["label_smoothing"] = eps
        yield Spec(case_id, "cross_entropy", {"input": logits, "target": target}, kwargs)


def _binary_weight(stream: Stream, shape: tuple, kind: str, dtype: str):
    """None, a weight broadcast along the last axis (right-aligned), or a full one."""
    if kind == "none":
        return None
    weight_shape = shape if kind == "full" else shape[-1:]
    return rounded(stream.uniform(0.2, 3.0, weight_shape), dtype)


def _binary_specs() -> Iterator[Spec]:
    for function, shape_name, reduction, weight_kind, dtype in itertools.product(
        ("binary_cross_entropy", "binary_cross_entropy_with_logits"),
        SHAPES,
        REDUCTIONS,
        ("none", "last-axis", "full"),
        DTYPES,
    ):
        shape = SHAPES[shape_name]
        pos_weights = ("no-pw", "pw") if function.endswith("logits") else ("no-pw",)
        for pos_weight in pos_weights:
            parts = [function, shape_name, reduction, f"w={weight_kind}"]
            parts += [pos_weight] if function.endswith("logits") else []
            case_id = "/".join(parts + [_SUFFIX[dtype]])
            stream = Stream(case_id)
            if function == "binary_cross_entropy":
                values = stream.uniform(0.02, 0.98, shape)
            else:
                values = stream.uniform(-6.0, 6.0, shape)
            # Hard labels and soft ones, mixed: both are allowed.
            hard = stream.uniform(0.0, 1.0, shape) < 0.5
            target = np.where(hard, stream.integers(2, shape), stream.uniform(0.0, 1.0, shape))
            kwargs = {"reduction": reduction}
            weight = _binary_weight(stream, shape, weight_kind, dtype)
            if weight is not None:
                kwargs["weight"] = weight
            if pos_weight == "pw":
                # pos_weight broadcasts right-aligned against the target, like weight.
                kwargs["pos_weight"] = rounded(stream.uniform(0.2, 4.0, shape[-1:]), dtype)
            inputs = {"input": rounded(values, dtype), "target": rounded(target, dtype)}
            yield Spec(case_id, function, inputs, kwargs)


# ---------------------------------------------------------------------------
# Edge cases that break implementations
# ---------------------------------------------------------------------------

_NEG_INF = -np.inf
_TINY_LOSS = (
    "the expected loss/gradient (about 2e^-50 = 3.86e-22) is far below the rounding of "
    "lse(x) = 50; an implementation computing lse(x) - x_t returns 0 and passes through atol"
)


def _edge(case_id, function, inputs, kwargs, exact_only=None, dtypes=DTYPES):
    """One edge case per dtype: ``inputs`` are nested lists (floats) or int arrays."""
    for dtype in dtypes:
        typed = {
            name: np.asarray(value, dtype=dtype) if not isinstance(value, np.ndarray) else value
            for name, value in inputs.items()
        }
        typed_kwargs = {
            key: np.asarray(value, dtype=dtype) if isinstance(value, list) else value
            for key, value in kwargs.items()
        }
        yield Spec(f"edge/{case_id}/{_SUFFIX[dtype]}", function, typed, typed_kwargs, exact_only)


def _index(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# The rows of the edge cases: values that overflow a naive exp, -inf logits, ties.
_LARGE = [[1e4, -1e4, 0.0, 1e4 - 1.0, 3.0], [-1e4, -1e4 + 0.5, -1e4, -2e4, -1e4 - 7.0]]
_HUGE = [[1e30, -1e30, 0.0, 1e30, 2.0]]
_WITH_INF = [[_NEG_INF, 0.0, 1.0, _NEG_INF, -2.0], [3.0, _NEG_INF, _NEG_INF, 0.5, 0.0]]
_NEAR_TIE = [[1.0, 1.0 + 2.0**-20, 1.0 - 2.0**-20, 1.0, 0.5]]
_MODERATE = [[1.0, -2.0, 0.5, 3.0, 0.0], [0.25, 1.5, -1.0, 2.0, -0.5]]  # a small atol
_WEIGHT = [0.5, 2.0, 1.0, 3.0, 0.25]

# softmax and log_softmax: (name, x)
_SOFTMAX_EDGES = (
    ("large-1e4", _LARGE), ("huge-1e30", _HUGE), ("neg-inf", _WITH_INF),
    ("near-tie", _NEAR_TIE), ("all-equal", [[0.0] * C, [7.0] * C]),
    ("one-class", [[2.0], [-3.0]]),
)

# cross_entropy at every reduction: (name, input, target, keyword arguments[, exact_only])
_CROSS_ENTROPY_EDGES = (
    ("large-1e4", _LARGE, _index([0, 1]), {}),
    ("huge-1e30", _HUGE, _index([1]), {}),
    ("neg-inf-off-target", _WITH_INF, _index([2, 0]), {}),
    ("neg-inf-off-target-weighted", _WITH_INF, _index([1, 4]), {"weight": _WEIGHT}),
    # -inf logits with smoothing: an infinite loss (the smoothing term sees -log 0)
    # but a finite gradient; with probability targets 0 * -inf makes the loss nan.
    ("neg-inf-label-smoothing", _WITH_INF, _index([2, 0]), {"label_smoothing": 0.2}),
    ("neg-inf-at-target", _WITH_INF, _index([0, 1]), {}),
    ("probs-neg-inf", _WITH_INF, [[0, 0.5, 0.5, 0, 0], [1, 0, 0, 0, 0]], {}),
    ("zero-total-weight", [[1.0, 2.0, 3.0, 4.0, 5.0]] * 2, _index([0, 0]),
     {"weight": [0.0, 1.0, 1.0, 1.0, 1.0]}),
    ("near-tie", _NEAR_TIE * 2, _index([1, 2]), {}),
    ("confident-tiny-loss", [[50.0, 0.0, 0.0], [0.0, 60.0, 10.0]], _index([0, 1]), {},
     _TINY_LOSS),
)

# nll_loss at every reduction, after cross_entropy's (same fields)
_NLL_EDGES = (
    ("all-ignored", [[-1.0, -2.0, -0.5]], _index([-100]), {}),
    ("neg-inf-at-target", [[-0.1, _NEG_INF, -3.0], [-1.0, -1.0, -1.0]], _index([1, 2]), {}),
    ("huge-1e30", [[-1e30, -2.0, -1e-30]], _index([0]), {"weight": [2.0, 1.0, 0.5]}),
)

# cross_entropy once each (the name carries the reduction when it is not the default)
_CROSS_ENTROPY_SINGLE_EDGES = (
    ("one-dim-ignored/mean", [1.0, 2.0, 3.0], _index(-100), {}),
    ("confident-tiny-loss/one-dim", [50.0, 0.0, 0.0], _index(0), {}, _TINY_LOSS),
    ("label-smoothing-1", _LARGE, _index([0, 3]), {"label_smoothing": 1.0}),
    ("one-class", [[2.0], [-3.0]], _index([0, 0]), {"reduction": "sum"}),
    ("probs-one-hot-large", _LARGE, [[0.0, 1.0, 0.0, 0.0, 0.0]] * 2, {"reduction": "sum"}),
    ("probs-unnormalised", [[0.5, -1.0, 2.0]], [[0.0, 2.0, 0.5]],
     {"weight": [1.0, 0.5, 3.0], "label_smoothing": 0.3}),
)

# binary_cross_entropy's probabilities at and next to the clamp, with their targets
_CLAMP_P = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
_CLAMP_Y = [0.0, 1.0, 0.5, 0.0, 1.0, 0.5]
_NEAR_CLAMP_P = [1e-30, 1e-30, 1.0 - 2.0**-24, 1.0 - 2.0**-24, 1e-7]
_NEAR_CLAMP_Y = [1.0, 0.0, 0.0, 1.0, 0.5]
# A (C,) weight or pos_weight on an input whose axis 1 and last axis both have C
# elements: the binary losses align it with the LAST axis (right-aligned, as in
# PyTorch), not with axis 1 as the class weight of cross_entropy would be.
_SQUARE = [[[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 1.0, 0.0]],
           [[0.1, 0.2, -0.3], [-1.1, 2.2, 0.7], [1.3, -0.4, 0.9]]]
_SQUARE_Y = [[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]],
             [[0.0, 1.0, 1.0], [1.0, 0.5, 0.0], [0.0, 0.25, 1.0]]]
# One magnitude per case: the loss's atol scales with the case's largest input, so
# mixing 40 with 1e30 would let a wrong answer at 40 through.
_LOGIT_MAGNITUDES = (40.0, 100.0, 1e4, 1e30)
_BIG_TARGET = [1.0, 0.0, 0.0, 1.0, 0.5, 0.25]
_BCE, _BCEL = "binary_cross_entropy", "binary_cross_entropy_with_logits"


def _table_edges(function: str, table, reduction: str | None = None) -> Iterator[Spec]:
    """The edge cases of ``table`` (``(name, input, target, kwargs[, exact_only])`` rows)
    for ``function``, at ``reduction`` (named in the id) or with the row's own kwargs."""
    for name, values, target, kwargs, *exact_only in table:
        if reduction is not None:
            name, kwargs = f"{name}/{reduction}", {"reduction": reduction, **kwargs}
        yield from _edge(f"{function}/{name}", function, {"input": values, "target": target},
                         kwargs, *exact_only)


def _softmax_edge_specs() -> Iterator[Spec]:
    for function in ("softmax", "log_softmax"):
        for name, x in _SOFTMAX_EDGES:
            yield from _edge(f"{function}/{name}", function, {"x": x}, {})
    yield from _edge("log_softmax/huge-1e300", "log_softmax", {"x": [[1e300, -1e300, 0.0]]}, {},
                     dtypes=("float64",))


def _all_ignored_specs(reduction: str) -> Iterator[Spec]:
    """Every target ignored (the default -100, or a real class), plain, weighted, smoothed."""
    ce = "cross_entropy"
    for ignore_kwargs, ignored in (({}, -100), ({"ignore_index": 1}, 1)):
        for extra in ({}, {"weight": _WEIGHT}, {"label_smoothing": 0.2}):
            name = "/".join(["all-ignored", str(ignored), *extra, reduction])
            yield from _edge(f"{ce}/{name}", ce,
                             {"input": _MODERATE, "target": _index([ignored, ignored])},
                             {"reduction": reduction, **ignore_kwargs, **extra})


def _binary_edge_specs() -> Iterator[Spec]:
    for magnitude in _LOGIT_MAGNITUDES:
        big_logits = [magnitude, -magnitude, magnitude, -magnitude, magnitude, -magnitude]
        for reduction in REDUCTIONS:
            kw = {"reduction": reduction}
            yield from _edge(f"{_BCEL}/large-logits-{magnitude:g}/{reduction}", _BCEL,
                             {"input": big_logits, "target": _BIG_TARGET}, kw)
            yield from _edge(f"{_BCEL}/large-logits-{magnitude:g}-pos-weight/{reduction}", _BCEL,
                             {"input": [big_logits], "target": [_BIG_TARGET]},
                             dict(kw, pos_weight=[3.0] * 3 + [0.5] * 3, weight=[[2.0]]))
    for reduction in REDUCTIONS:
        kw = {"reduction": reduction}
        yield from _edge(f"{_BCE}/p-0-and-1/{reduction}", _BCE,
                         {"input": _CLAMP_P, "target": _CLAMP_Y}, kw)
        yield from _edge(f"{_BCE}/p-near-0-and-1/{reduction}", _BCE,
                         {"input": _NEAR_CLAMP_P, "target": _NEAR_CLAMP_Y}, kw)
    yield from _edge(f"{_BCEL}/right-aligned-weights", _BCEL,
                     {"input": _SQUARE, "target": _SQUARE_Y},
                     {"weight": [0.5, 1.0, 3.0], "pos_weight": [4.0, 1.0, 0.25]})
    yield from _edge(f"{_BCE}/right-aligned-weight", _BCE,
                     {"input": [[[0.3, 0.6, 0.9]] * 3] * 2, "target": _SQUARE_Y},
                     {"weight": [0.5, 1.0, 3.0]})


def _empty_batch_specs() -> Iterator[Spec]:
    """Empty batches: mean is 0/0 = nan, sum is 0, the gradient is empty."""
    empty, no_targets = np.zeros((0, C)), _index(np.zeros(0))
    for reduction in REDUCTIONS:
        kw = {"reduction": reduction}
        for function, name, target in (
                ("cross_entropy", "empty-batch", no_targets),
                ("cross_entropy", "empty-batch-probs", empty),
                ("nll_loss", "empty-batch", no_targets),
                (_BCE, "empty-batch", empty), (_BCEL, "empty-batch", empty)):
            yield from _edge(f"{function}/{name}/{reduction}", function,
                             {"input": empty, "target": target}, kw)


def _edge_specs() -> Iterator[Spec]:
    """The edge cases, each in float32 and float64 (one in float64 alone)."""
    yield from _softmax_edge_specs()
    for reduction in REDUCTIONS:
        yield from _table_edges("cross_entropy", _CROSS_ENTROPY_EDGES, reduction)
        yield from _all_ignored_specs(reduction)
        yield from _table_edges("nll_loss", _NLL_EDGES, reduction)
    yield from _table_edges("cross_entropy", _CROSS_ENTROPY_SINGLE_EDGES)
    yield from _binary_edge_specs()
    yield from _empty_batch_specs()
    yield from _edge(f"{_BCE}/p-0-and-1/weighted", _BCE,
                     {"input": [_CLAMP_P, _CLAMP_P[::-1]], "target": [_CLAMP_Y, _CLAMP_Y]},
                     {"weight": [0.5, 2.0, 1.0, 0.0, 3.0, 1.5]})


# ---------------------------------------------------------------------------
# Vocabulary-scale cases: what a fused LLM loss kernel meets
# ---------------------------------------------------------------------------

# Real vocabularies (Llama 2: 32000, GPT-2: 50257, Llama 3: 128256). 50257 is odd, so no
# block of a power-of-two size divides it; 32000 and 128256 leave a partial last block
# for blocks of 512 and more.
VOCABULARIES = (32000, 50257, 128256)
# 1 - p_t of a peaked row: 1e-3 (p_t - 1 = -0.001 rounds to 0 in bfloat16 if p_t is
# rounded first) and 1e-6 (p_t rounds to 1 in float16 too).
PEAKS = (1e-3, 1e-6)
FINITE_TAIL = 64  # the finite logits at the end of a row of -inf


def _peaked_row(stream: Stream, n_classes: int, target: int, miss: float, dtype) -> np.ndarray:
    """Logits in [-2, 2) with the target's raised until ``1 - p_t = miss`` (to the rounding
    of the target logit in ``dtype``). The sum of the other classes' exponentials is
    Python's correctly summed ``math.fsum`` of ``math.exp`` (the C library's, not NumPy's,
    whose last bit may change between versions)."""
    row = rounded(stream.uniform(-2.0, 2.0, (n_classes,)), dtype_named(dtype))
    others = row.astype(np.float64).tolist()
    others.pop(target)
    lse_others = math.log(math.fsum(math.exp(v) for v in others))
    row[target] = rounded(lse_others + math.log((1.0 - miss) / miss), row.dtype)
    return row


def _vocab_rows(stream: Stream, n_classes: int, kinds, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, target)`` with one row per kind: ``("peak", miss)``, ``"plain"``
    (uniform in [-4, 4)), ``"neg-inf"`` (every logit -inf but the target's and the last
    :data:`FINITE_TAIL`: whole blocks of -inf, whatever the block size) and ``"ignored"``
    (a plain row whose target is -100)."""
    rows, targets = [], []
    for kind in kinds:
        target = int(stream.integers(n_classes - FINITE_TAIL))
        if kind[0] == "peak":
            row = _peaked_row(stream, n_classes, target, kind[1], dtype)
        else:
            row = rounded(stream.uniform(-4.0, 4.0, (n_classes,)), dtype_named(dtype))
        if kind == "neg-inf":
            keep = row[target]
            row[:-FINITE_TAIL] = -np.inf
            row[target] = keep
        rows.append(row)
        targets.append(-100 if kind == "ignored" else target)
    return np.stack(rows), np.asarray(targets, dtype=np.int64)


_MIXED = (("peak", PEAKS[0]), ("peak", PEAKS[1]), "neg-inf", "plain")


def _vocab_specs() -> Iterator[Spec]:
    """cross_entropy at C = 32000, 50257, 128256: peaked rows, rows of -inf, ignored
    tokens, label smoothing with ignored tokens; large arrays (``.npy`` on export).
    The logits of one configuration are shared by its reductions (one stream, keyed by
    the id without the reduction), so an exported corpus stores them once."""
    ce = "cross_entropy"
    configurations = [(32000, REDUCTIONS, "float32"), (50257, ("none", "mean"), "float32"),
                      (128256, ("none", "mean"), "float32"), (128256, ("mean",), "float64")]
    for n_classes, reductions, dtype in configurations:
        key = f"vocab/{ce}/C={n_classes}/mixed/{_SUFFIX[dtype]}"
        logits, target = _vocab_rows(Stream(key), n_classes, _MIXED, dtype)
        for reduction in reductions:
            yield Spec(f"vocab/{ce}/C={n_classes}/mixed/{reduction}/{_SUFFIX[dtype]}", ce,
                        {"input": logits, "target": target}, {"reduction": reduction})
    n_classes = VOCABULARIES[0]
    key = f"vocab/{ce}/C={n_classes}/all-ignored/f32"
    logits, target = _vocab_rows(Stream(key), n_classes, ("ignored", "ignored"), "float32")
    for reduction in REDUCTIONS:
        yield Spec(f"vocab/{ce}/C={n_classes}/all-ignored/{reduction}/f32", ce,
                    {"input": logits, "target": target}, {"reduction": reduction})
    # Smoothing with ignored tokens: the smoothing term of an ignored row must vanish
    # too, and the mean divides by the kept rows only (by their weight, when weighted).
    key = f"vocab/{ce}/C={n_classes}/ls=0.1/ign=default/f32"
    stream = Stream(key)
    kinds = (("peak", PEAKS[0]), "ignored", "plain", "ignored")
    logits, target = _vocab_rows(stream, n_classes, kinds, "float32")
    weight = rounded(stream.uniform(0.2, 3.0, (n_classes,)), "float32")
    for reduction, weighted in itertools.product(REDUCTIONS, (False, True)):
        kwargs = {"reduction": reduction, "label_smoothing": 0.1}
        if weighted:
            kwargs["weight"] = weight
        case_id = "/".join([f"vocab/{ce}/C={n_classes}/ls=0.1/ign=default", reduction,
                            "w" if weighted else "no-w", "f32"])
        yield Spec(case_id, ce, {"input": logits, "target": target}, kwargs)


# ---------------------------------------------------------------------------
# float16 and bfloat16: judged against the float64 answer and PyTorch's own error
# ---------------------------------------------------------------------------


def low_precision_inputs() -> Iterator[Spec]:
    """Every function in float16 and bfloat16, with inputs drawn as float64 and rounded
    to the dtype; peaked rows (the true-class gradient p_t - 1) at C = 1000 and 32000;
    a (256, 256) mean whose count (65536) float16 cannot hold."""
    for dtype in LOW_PRECISION_DTYPES:
        suffix, typed = _SUFFIX[dtype], dtype_named(dtype)
        for function in ("softmax", "log_softmax"):
            case_id = f"lowprec/{function}/NxC/{suffix}"
            x = rounded(Stream(case_id).uniform(-8.0, 8.0, (8, 40)), typed)
            yield Spec(case_id, function, {"x": x}, {})
        shape = (16, 50)
        for function, reduction, options in (
                ("cross_entropy", "none", ()), ("cross_entropy", "mean", ()),
                ("cross_entropy", "sum", ("w", "ign=default", "ls=0.1")),
                ("cross_entropy", "mean", ("w", "ign=default", "ls=0.1")),
                ("nll_loss", "mean", ("w", "ign=default"))):
            case_id = "/".join(["lowprec", function, "index", "NxC", reduction, *options, suffix])
            values = (-8.0, 8.0) if function == "cross_entropy" else (-10.0, -0.05)
            yield _low_precision_index_spec(case_id, function, typed, {"reduction": reduction},
                                            options, values)
        case_id = f"lowprec/cross_entropy/probs/NxC/mean/{suffix}"
        stream = Stream(case_id)
        yield Spec(case_id, "cross_entropy",
                    {"input": rounded(stream.uniform(-8.0, 8.0, shape), typed),
                     "target": rounded(stream.distributions(shape), typed)},
                    {"reduction": "mean"})
        for function in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
            case_id = f"lowprec/{function}/NxC/mean/{suffix}"
            stream = Stream(case_id)
            low, high = (0.01, 0.99) if function == "binary_cross_entropy" else (-8.0, 8.0)
            kwargs = {"reduction": "mean"}
            if function.endswith("logits"):
                kwargs["pos_weight"] = rounded(stream.uniform(0.2, 4.0, (16,)), typed)
            inputs = {"input": rounded(stream.uniform(low, high, (16, 16)), typed),
                      "target": rounded(stream.uniform(0.0, 1.0, (16, 16)), typed)}
            yield Spec(case_id, function, inputs, kwargs)
        zeros = np.zeros((256, 256), dtype=typed)
        yield Spec(f"lowprec/binary_cross_entropy_with_logits/zeros-256x256/mean/{suffix}",
                    "binary_cross_entropy_with_logits", {"input": zeros, "target": zeros},
                    {"reduction": "mean"})
        # Every row equally peaked: the gradient's largest entries are then the targets'
        # 1 - p_t, so PyTorch's error there (the rule's allowance) is an ulp of 1 - p_t.
        for miss, (n_classes, reduction) in itertools.product(
                PEAKS, ((1000, "none"), (1000, "mean"), (VOCABULARIES[0], "mean"))):
            name = f"lowprec/cross_entropy/C={n_classes}/peaked-{miss:g}"
            logits, target = _vocab_rows(Stream(f"{name}/{suffix}"), n_classes,
                                         [("peak", miss)] * 2, dtype)
            yield Spec(f"{name}/{reduction}/{suffix}", "cross_entropy",
                        {"input": logits, "target": target}, {"reduction": reduction})
        yield from _low_precision_llm_specs(dtype)
    yield from _low_precision_vocab_llm_specs()
    yield from _chunk_sweep_specs()


def _low_precision_index_spec(case_id, function, typed, kwargs, flags,
                              values=(-8.0, 8.0)) -> Spec:
    """A ``(16, 50)`` input of ``typed`` drawn in ``values`` with class-index targets;
    ``flags``: class weights ``"w"``, smoothing ``"ls=0.1"``, every fifth target
    ignored ``"ign=default"``."""
    shape = (16, 50)
    stream = Stream(case_id)
    kwargs = dict(kwargs)
    if "w" in flags:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, shape[1:]), typed)
    if "ls=0.1" in flags:
        kwargs["label_smoothing"] = 0.1
    target = stream.integers(shape[1], shape[:1])
    if "ign=default" in flags:
        target[::5] = -100
    inputs = {"input": rounded(stream.uniform(*values, shape), typed), "target": target}
    return Spec(case_id, function, inputs, kwargs)


def _low_precision_llm_specs(dtype: str) -> Iterator[Spec]:
    """The LLM losses in ``dtype``: cross_entropy with the options (a softcap alone; all
    three with class weights and ignored targets, where the two parts of the mean divide
    by different numbers; z-loss per token with smoothing) and linear_cross_entropy (with
    a bias; with the options), whose three gradients are sums over tokens or classes."""
    suffix, typed = _SUFFIX[dtype], dtype_named(dtype)
    for options, reduction, extra in (
            (LLM_OPTIONS[1], "mean", ()), (LLM_OPTIONS[-1], "mean", ("w", "ign=default")),
            (LLM_OPTIONS[2], "none", ("ls=0.1",))):
        spelled = [f"{_LLM_ID[key]}={value:g}" for key, value in options.items()]
        case_id = "/".join(["lowprec/llm/cross_entropy/index/NxC", *spelled, reduction, *extra,
                            suffix])
        yield _low_precision_index_spec(case_id, "cross_entropy", typed,
                                        dict(options, reduction=reduction), extra)
    for reduction, extra in (("mean", ("bias",)), ("sum", ("bias", "llm"))):
        case_id = "/".join(["lowprec/linear_cross_entropy/N=16/H=16/V=50", reduction, *extra,
                            suffix])
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (16, 16)), typed),
                  "linear_weight": rounded(stream.uniform(-0.5, 0.5, (50, 16)), typed),
                  "target": stream.integers(50, (16,))}
        kwargs = {"reduction": reduction,
                  "linear_bias": rounded(stream.uniform(-1.0, 1.0, (50,)), typed)}
        if "llm" in extra:
            kwargs.update(LLM_OPTIONS[-1])
        yield Spec(case_id, "linear_cross_entropy", inputs, kwargs)


# ---------------------------------------------------------------------------
# The LLM options of cross_entropy: logit_scale, softcap, z_loss
# ---------------------------------------------------------------------------

# Alone and all together; logits in [-8, 8) so that a softcap of 5 bends them.
LLM_OPTIONS = ({"logit_scale": 2.5}, {"softcap": 5.0}, {"z_loss": 0.1}, LLM_TOGETHER)
_LLM_ID = {"logit_scale": "scale", "softcap": "softcap", "z_loss": "z"}


def _llm_specs() -> Iterator[Spec]:
    """cross_entropy with the LLM options, with class weights and ignored targets (the
    z-loss mean divides by the kept count, the cross-entropy mean by the kept weight),
    with smoothing and ignored targets, and with probability targets; every reduction."""
    extras = (("no-w", "ign=none"), ("w", "ign=default"), ("no-w", "ign=default", "ls=0.1"),
              ("probs",))
    shape = (4, C, 2)
    for options, extra, reduction, dtype in itertools.product(
            LLM_OPTIONS, extras, REDUCTIONS, DTYPES):
        spelled = [f"{_LLM_ID[key]}={value:g}" for key, value in options.items()]
        target_kind = "probs" if "probs" in extra else "index"
        flags = [flag for flag in extra if flag != "probs"]
        case_id = "/".join(["llm/cross_entropy", target_kind, "NxCxd1", *spelled, reduction,
                            *flags, _SUFFIX[dtype]])
        stream = Stream(case_id)
        logits = rounded(stream.uniform(-8.0, 8.0, shape), dtype)
        kwargs = dict(options, reduction=reduction)
        if target_kind == "probs":
            target = rounded(stream.distributions(shape), dtype)
        else:
            target = _index_target(stream, shape, -100 if "ign=default" in extra else None)
        if "w" in extra:
            kwargs["weight"] = _class_weight(stream, dtype)
        if "ls=0.1" in extra:
            kwargs["label_smoothing"] = 0.1
        yield Spec(case_id, "cross_entropy", {"input": logits, "target": target}, kwargs)


# ---------------------------------------------------------------------------
# linear_cross_entropy: three gradients (input, linear_weight, linear_bias)
# ---------------------------------------------------------------------------


def _linear_specs() -> Iterator[Spec]:
    """``linear_cross_entropy(h, W, t)`` with h ``(4, 3)`` and W ``(V, 3)``: V = C (with
    and without a bias; weights, ignored targets, smoothing, the LLM options; every
    reduction), a vocabulary of 32000 with H = 8, and a K-dimensional W ``(V, 2, 3)``."""
    variations = (("bias",), ("no-bias",), ("bias", "w", "ign=default"),
                  ("no-bias", "ign=default", "ls=0.1"), ("bias", "llm"))
    for extra, reduction, dtype in itertools.product(variations, REDUCTIONS, DTYPES):
        case_id = "/".join(["linear_cross_entropy", f"V={C}", reduction, *extra,
                            _SUFFIX[dtype]])
        yield _linear_spec(case_id, C, 3, extra, reduction, dtype)
    for reduction in ("none", "mean"):
        case_id = f"vocab/linear_cross_entropy/C={VOCABULARIES[0]}/H=8/{reduction}/bias/f32"
        yield _linear_spec(case_id, VOCABULARIES[0], 8, ("bias",), reduction, "float32")
    # A K-dimensional weight (V, d1, H): logits (N, V, d1), a loss per token and position.
    for reduction, dtype in itertools.product(REDUCTIONS, DTYPES):
        case_id = "/".join(["linear_cross_entropy", f"V={C}xd1=2", reduction, "bias",
                            "ign=default", _SUFFIX[dtype]])
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (4, 3)), dtype),
                  "linear_weight": rounded(stream.uniform(-1.0, 1.0, (C, 2, 3)), dtype),
                  "target": _index_target(stream, (4, C, 2), -100)}
        kwargs = {"reduction": reduction,
                  "linear_bias": rounded(stream.uniform(-1.0, 1.0, (C, 2)), dtype)}
        yield Spec(case_id, "linear_cross_entropy", inputs, kwargs)


def _linear_spec(case_id, n_classes, hidden, extra, reduction, dtype) -> Spec:
    stream = Stream(case_id)
    inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (4, hidden)), dtype),
              "linear_weight": rounded(stream.uniform(-1.0, 1.0, (n_classes, hidden)), dtype)}
    planted = -100 if "ign=default" in extra else None
    inputs["target"] = np.minimum(_index_target(stream, (4, C), planted) * (n_classes // C),
                                  n_classes - 1)
    kwargs = {"reduction": reduction}
    if "bias" in extra:
        kwargs["linear_bias"] = rounded(stream.uniform(-1.0, 1.0, (n_classes,)), dtype)
    if "w" in extra:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, (n_classes,)), dtype)
    if "ls=0.1" in extra:
        kwargs["label_smoothing"] = 0.1
    if "llm" in extra:
        kwargs.update(LLM_OPTIONS[-1])
    return Spec(case_id, "linear_cross_entropy", inputs, kwargs)


def standard_specs() -> Iterator[Spec]:
    yield from _softmax_specs()
    yield from _class_specs("cross_entropy")
    yield from _probability_specs()
    yield from _class_specs("nll_loss")
    yield from _binary_specs()
    yield from _edge_specs()
    yield from _vocab_specs()
    yield from _llm_specs()
    yield from _linear_specs()
    yield from _separating_specs()


# ---------------------------------------------------------------------------
# Cases that separate the mistakes of LLM loss kernels (added last: the earlier cases'
# inputs stay as they were)
# ---------------------------------------------------------------------------

_SPELLED_LLM = "/".join(f"{_LLM_ID[key]}={value:g}" for key, value in LLM_OPTIONS[-1].items())


def _linear_option_spec(case_id, extra, reduction, dtype) -> Spec:
    """linear_cross_entropy at V = C with the options cross_entropy has: ``"ign=1"`` (a
    real class ignored), ``"probs"`` (probability targets), ``"w"``, ``"ls=0.1"``,
    ``"ign=default"`` and the three LLM options together (:data:`_SPELLED_LLM`)."""
    stream = Stream(case_id)
    inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (4, 3)), dtype),
              "linear_weight": rounded(stream.uniform(-1.0, 1.0, (C, 3)), dtype)}
    kwargs = {"reduction": reduction,
              "linear_bias": rounded(stream.uniform(-1.0, 1.0, (C,)), dtype)}
    if "probs" in extra:
        inputs["target"] = rounded(stream.distributions((4, C)), dtype)
    else:
        planted = 1 if "ign=1" in extra else -100 if "ign=default" in extra else None
        inputs["target"] = _index_target(stream, (4, C), planted)
    if "ign=1" in extra:
        kwargs["ignore_index"] = 1
    if "w" in extra:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, (C,)), dtype)
    if "ls=0.1" in extra:
        kwargs["label_smoothing"] = 0.1
    if _SPELLED_LLM in extra:
        kwargs.update(LLM_OPTIONS[-1])
    return Spec(case_id, "linear_cross_entropy", inputs, kwargs)


# Ignored positions per sample of the micro-batch cases: 0, 1, 3 and 5 of 6, so the
# samples' means weigh their tokens unequally.
_UNEVEN_IGNORED = (0, 1, 3, 5)


def _uneven_target(stream: Stream, n_classes: int) -> np.ndarray:
    target = stream.integers(n_classes, (len(_UNEVEN_IGNORED), 6))
    for row, count in enumerate(_UNEVEN_IGNORED):
        target[row, 6 - count:] = -100
    return target


def _separating_specs() -> Iterator[Spec]:
    """linear_cross_entropy with every cross_entropy option (a real class ignored,
    probability targets, weights with smoothing and ignored targets, the LLM options
    with ignored targets and with weights); then micro-batches: four sequences of six
    tokens, 0, 1, 3 and 5 of them ignored, whose mean is over all kept tokens, not the
    mean of each sequence's mean (cross_entropy ``(4, C, 6)``, and linear_cross_entropy
    with a weight ``(V, 6, H)``)."""
    variations = (("bias", "ign=1"), ("bias", "probs"), ("bias", "w", "ign=default", "ls=0.1"),
                  ("bias", _SPELLED_LLM, "ign=default"),
                  ("bias", _SPELLED_LLM, "w", "ign=default"))
    for extra, reduction, dtype in itertools.product(variations, REDUCTIONS, DTYPES):
        case_id = "/".join(["linear_cross_entropy", f"V={C}", reduction, *extra, _SUFFIX[dtype]])
        yield _linear_option_spec(case_id, extra, reduction, dtype)
    for weighted, dtype in itertools.product((False, True), DTYPES):
        case_id = "/".join(["llm/cross_entropy/index/microbatches/mean",
                            "w" if weighted else "no-w", "ign=default", _SUFFIX[dtype]])
        stream = Stream(case_id)
        logits = rounded(stream.uniform(-4.0, 4.0, (4, C, 6)), dtype)
        kwargs = {"reduction": "mean"}
        if weighted:
            kwargs["weight"] = _class_weight(stream, dtype)
        yield Spec(case_id, "cross_entropy",
                   {"input": logits, "target": _uneven_target(stream, C)}, kwargs)
    for dtype in DTYPES:
        case_id = f"linear_cross_entropy/V={C}xd1=6/microbatches/mean/bias/ign=default/" \
                  f"{_SUFFIX[dtype]}"
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (4, 3)), dtype),
                  "linear_weight": rounded(stream.uniform(-1.0, 1.0, (C, 6, 3)), dtype),
                  "target": _uneven_target(stream, C)}
        kwargs = {"reduction": "mean",
                  "linear_bias": rounded(stream.uniform(-1.0, 1.0, (C, 6)), dtype)}
        yield Spec(case_id, "linear_cross_entropy", inputs, kwargs)
    yield from _frequent_first_specs()


def _frequent_first_specs() -> Iterator[Spec]:
    """Smoothing at C = 32000 with the frequent tokens first, as a BPE vocabulary orders
    them: logits in [0, 4) on the first half of the vocabulary, [-4, 0) on the second,
    so a smoothing term taken over one half of the vocabulary (a shard) is far from the
    whole vocabulary's; one token of four ignored."""
    n_classes = VOCABULARIES[0]
    key = f"vocab/cross_entropy/C={n_classes}/frequent-first/ls=0.1/ign=default/f32"
    stream = Stream(key)
    half = np.where(np.arange(n_classes) < n_classes // 2, 2.0, -2.0)
    logits = rounded(stream.uniform(-2.0, 2.0, (4, n_classes)) + half, "float32")
    target = stream.integers(n_classes, (4,))
    target[2] = -100
    for reduction in REDUCTIONS:
        case_id = "/".join([f"vocab/cross_entropy/C={n_classes}/frequent-first/ls=0.1",
                            "ign=default", reduction, "no-w", "f32"])
        yield Spec(case_id, "cross_entropy", {"input": logits, "target": target},
                   {"reduction": reduction, "label_smoothing": 0.1})


# An LLM's options at vocabulary scale: Gemma 2's softcap of 30 and PaLM's z-loss 1e-4.
VOCAB_LLM_OPTIONS = {"softcap": 30.0, "z_loss": 1e-4}


def _low_precision_vocab_llm_specs() -> Iterator[Spec]:
    """cross_entropy with a softcap and a z-loss at C = 32000 and 128256 in bfloat16 and
    float16: four tokens (a peaked one and an ignored one among them) whose sums over
    the vocabulary a kernel must not accumulate in the dtype."""
    spelled = [f"{_LLM_ID[key]}={value:g}" for key, value in VOCAB_LLM_OPTIONS.items()]
    kinds = ("plain", ("peak", PEAKS[0]), "plain", "ignored")
    for n_classes, dtype in itertools.product((VOCABULARIES[0], VOCABULARIES[2]),
                                              LOW_PRECISION_DTYPES):
        case_id = "/".join([f"lowprec/llm/cross_entropy/C={n_classes}", *spelled, "mean",
                            "ign=default", _SUFFIX[dtype]])
        logits, target = _vocab_rows(Stream(case_id), n_classes, kinds, dtype)
        yield Spec(case_id, "cross_entropy", {"input": logits, "target": target},
                   dict(VOCAB_LLM_OPTIONS, reduction="mean"))


def _chunk_sweep_specs() -> Iterator[Spec]:
    """linear_cross_entropy in bfloat16 with 16, 64 and 256 tokens (H = 16, V = 256): a
    kernel that processes a chunk of tokens at a time meets more chunks as the batch
    grows, and if it adds each chunk's share of dW and db in bfloat16 their error grows
    with the count, where PyTorch's (one rounding) does not."""
    typed = dtype_named("bfloat16")
    for n_tokens in (16, 64, 256):
        case_id = f"lowprec/linear_cross_entropy/N={n_tokens}/H=16/V=256/mean/bias/bf16"
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (n_tokens, 16)), typed),
                  "linear_weight": rounded(stream.uniform(-0.5, 0.5, (256, 16)), typed),
                  "target": stream.integers(256, (n_tokens,))}
        kwargs = {"reduction": "mean",
                  "linear_bias": rounded(stream.uniform(-1.0, 1.0, (256,)), typed)}
        yield Spec(case_id, "linear_cross_entropy", inputs, kwargs)

