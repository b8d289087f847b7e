"""The corpus's inputs for the rest of the family: ``kl_div``, ``sigmoid_focal_loss``,
``softmax_focal_loss`` and ``poly1_cross_entropy`` (:class:`xent_ref.golden.inputs.Spec`).

Drawn as every other input (:class:`~xent_ref.golden.inputs.Stream`, exactly rounded
operations, :func:`~xent_ref.golden.inputs.rounded`), and generated after every other
float32/float64 case (:func:`family_specs`) and after every other float16/bfloat16 case
(:func:`family_low_precision_specs`), so no earlier case's inputs move.

* ``kl_div``: every reduction (``batchmean`` too) and ``log_target`` both ways, on a
  single sample, a batch and a K-dimensional batch; the input is any negative numbers
  (``kl_div`` never checks that they normalise), the target a distribution with zeros
  planted in it (``0 log 0 = 0``), or, with ``log_target``, its logarithm's stand-in
  (negative numbers, no ``-inf``: PyTorch's ``exp(-inf) * (-inf - x)`` is ``nan``).
* ``sigmoid_focal_loss``: ``gamma`` 0, 0.5, 2, 5 against ``alpha`` 0.25 and -1 (none),
  every reduction, hard and soft targets; logits of 40 and 100 (float64: in float32
  ``sigmoid(-100)`` is subnormal) against both targets, where the loss is tiny but not 0.
* ``softmax_focal_loss`` (``gamma`` 0, 0.5, 2) and ``poly1_cross_entropy`` (``epsilon``
  1 and -1): class indices, with class weights and ignored targets, with smoothing and
  ignored targets, and probability targets; every reduction.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from xent_ref._engine.checks import KL_REDUCTIONS
from xent_ref.golden.cases import C, DTYPE_SUFFIXES, DTYPES, LOW_PRECISION_DTYPES, REDUCTIONS
from xent_ref.golden.cases import SHAPES
from xent_ref.golden.inputs import Spec, Stream, rounded

_SUFFIX = {dtype: suffix for suffix, dtype in DTYPE_SUFFIXES.items()}
_KL_SHAPES = ("C", "NxC", "NxCxd1")


def _kl_spec(case_id: str, shape: tuple, reduction: str, log_target: bool, dtype) -> Spec:
    stream = Stream(case_id)
    log_q = stream.uniform(-6.0, -0.05, shape)
    if log_target:
        target = stream.uniform(-6.0, -0.05, shape)
    else:
        axis = min(1, len(shape) - 1)
        target = stream.distributions(shape, axis=axis)
        target.reshape(-1)[::3] = 0.0  # zeros in the target: 0 log 0 = 0
    kwargs = {"reduction": reduction, "log_target": log_target}
    return Spec(case_id, "kl_div", {"input": rounded(log_q, dtype),
                                    "target": rounded(target, dtype)}, kwargs)


def _kl_specs() -> Iterator[Spec]:
    for shape_name, reduction, log_target, dtype in itertools.product(
            _KL_SHAPES, KL_REDUCTIONS, (False, True), DTYPES):
        case_id = "/".join(["kl_div", shape_name, reduction, f"log_target={log_target}",
                            _SUFFIX[dtype]])
        yield _kl_spec(case_id, SHAPES[shape_name], reduction, log_target, dtype)
    for reduction, dtype in itertools.product(KL_REDUCTIONS, DTYPES):
        # an all-zero target row, and a target equal to exp(input) (the loss 0) beside it
        target = np.array([[0.0] * C, [0.5, 0.25, 0.125, 0.0625, 0.0625]])
        log_q = np.array([[-1.0, -2.0, -0.5, -3.0, -3.5], [-1.0, -2.0, -3.0, -4.0, -4.0]])
        log_q[1] *= 0.6931471805599453  # log 2, rounded once: exp(log_q) ~ target
        yield Spec(f"edge/kl_div/zero-row-and-match/{reduction}/{_SUFFIX[dtype]}", "kl_div",
                   {"input": rounded(log_q, dtype), "target": rounded(target, dtype)},
                   {"reduction": reduction, "log_target": False})
        # probabilities passed where log-probabilities belong: kl_div takes them as logs
        # all the same (t (log t - input)); an implementation that takes their log is seen
        case_id = f"edge/kl_div/probabilities-as-input/{reduction}/{_SUFFIX[dtype]}"
        stream = Stream(case_id)
        yield Spec(case_id, "kl_div", {"input": rounded(stream.distributions((3, C)), dtype),
                                       "target": rounded(stream.distributions((3, C)), dtype)},
                   {"reduction": reduction})


def _binary_target(stream: Stream, shape: tuple) -> np.ndarray:
    """Hard labels and soft ones, mixed (as the binary losses' cases)."""
    hard = stream.uniform(0.0, 1.0, shape) < 0.5
    return np.where(hard, stream.integers(2, shape), stream.uniform(0.0, 1.0, shape))


def _sigmoid_focal_specs() -> Iterator[Spec]:
    fn = "sigmoid_focal_loss"
    grid = [(name, gamma, alpha) for name, gamma, alpha in itertools.product(
        ("NxC",), (0.0, 0.5, 2.0, 5.0), (0.25, -1.0))] + [("NxCxd1", 2.0, 0.25)]
    for (shape_name, gamma, alpha), reduction, dtype in itertools.product(
            grid, REDUCTIONS, DTYPES):
        case_id = "/".join([fn, shape_name, f"gamma={gamma:g}", f"alpha={alpha:g}",
                            reduction, _SUFFIX[dtype]])
        stream = Stream(case_id)
        shape = SHAPES[shape_name]
        inputs = {"input": rounded(stream.uniform(-6.0, 6.0, shape), dtype),
                  "target": rounded(_binary_target(stream, shape), dtype)}
        yield Spec(case_id, fn, inputs, {"alpha": alpha, "gamma": gamma,
                                         "reduction": reduction})
    for magnitude, gamma, alpha, reduction in itertools.product(
            (40.0, 100.0), (0.0, 0.5, 2.0, 5.0), (0.25, -1.0), ("none", "sum")):
        logits = [magnitude, -magnitude, magnitude, -magnitude, magnitude, -magnitude]
        target = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5]  # right, right, wrong, wrong, soft
        for dtype in DTYPES if magnitude < 100 else ("float64",):
            case_id = "/".join(["edge", fn, f"large-logits-{magnitude:g}", f"gamma={gamma:g}",
                                f"alpha={alpha:g}", reduction, _SUFFIX[dtype]])
            yield Spec(case_id, fn, {"input": rounded(np.array(logits), dtype),
                                     "target": rounded(np.array(target), dtype)},
                       {"alpha": alpha, "gamma": gamma, "reduction": reduction})


_CLASS_VARIANTS = (("index", "no-w", "ign=none"), ("index", "w", "ign=default"),
                   ("index", "no-w", "ign=default", "ls=0.1"), ("probs", "w", "ls=0.1"))


def _class_inputs(stream: Stream, shape: tuple, variant: tuple, dtype) -> tuple[dict, dict]:
    """``(inputs, kwargs)`` of a class-axis loss: logits in [-4, 4), the variant's target
    kind, class weights, ignored targets (the default -100, every third) and smoothing."""
    logits = rounded(stream.uniform(-4.0, 4.0, shape), dtype)
    kwargs = {}
    if variant[0] == "probs":
        target = rounded(stream.distributions(shape), dtype)
    else:
        target = stream.integers(C, (shape[0],) + shape[2:])
        if "ign=default" in variant:
            target.reshape(-1)[::3] = -100
    if "w" in variant:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, (C,)), dtype)
    if "ls=0.1" in variant:
        kwargs["label_smoothing"] = 0.1
    return {"input": logits, "target": target}, kwargs


def _class_family_specs(fn: str, option: str, values: tuple) -> Iterator[Spec]:
    """``fn`` (a loss on logits with cross_entropy's options) at each of ``values`` of its
    own ``option`` on a batch, and at the first of them on a K-dimensional one and on a
    single sample."""
    grid = [("NxC", value) for value in values] + [("NxCxd1", values[0])]
    for (shape_name, value), variant, reduction, dtype in itertools.product(
            grid, _CLASS_VARIANTS, REDUCTIONS, DTYPES):
        case_id = "/".join([fn, variant[0], shape_name, f"{option}={value:g}", reduction,
                            *variant[1:], _SUFFIX[dtype]])
        inputs, kwargs = _class_inputs(Stream(case_id), SHAPES[shape_name], variant, dtype)
        yield Spec(case_id, fn, inputs, {option: value, "reduction": reduction, **kwargs})
    for reduction, dtype in itertools.product(REDUCTIONS, DTYPES):
        case_id = f"{fn}/index/one-dim/{option}={values[0]:g}/{reduction}/{_SUFFIX[dtype]}"
        logits = rounded(Stream(case_id).uniform(-4.0, 4.0, (C,)), dtype)
        yield Spec(case_id, fn, {"input": logits, "target": np.asarray(3, dtype=np.int64)},
                   {option: values[0], "reduction": reduction})
    for reduction, dtype in itertools.product(REDUCTIONS, DTYPES):
        # logits of 1e4: a naive exp overflows
        logits = [[1e4, -1e4, 0.0, 1e4 - 1.0, 3.0], [-1e4, -1e4 + 0.5, -1e4, -2e4, -1e4 - 7.0]]
        yield Spec(f"edge/{fn}/large-1e4/{option}={values[-1]:g}/{reduction}/{_SUFFIX[dtype]}",
                   fn, {"input": rounded(np.array(logits), dtype),
                        "target": np.array([0, 1], dtype=np.int64)},
                   {option: values[-1], "reduction": reduction})


def family_specs() -> Iterator[Spec]:
    """The float32/float64 cases of the family, in the corpus's order."""
    yield from _kl_specs()
    yield from _sigmoid_focal_specs()
    yield from _class_family_specs("softmax_focal_loss", "gamma", (2.0, 0.0, 0.5))
    yield from _class_family_specs("poly1_cross_entropy", "epsilon", (1.0, -1.0))


def family_low_precision_specs() -> Iterator[Spec]:
    """One ``(16, 50)`` case per function and low-precision dtype (judged by the rule
    ``"reference-error"``, against PyTorch's recorded error)."""
    shape = (16, 50)
    for dtype in LOW_PRECISION_DTYPES:
        suffix = _SUFFIX[dtype]
        case_id = f"lowprec/kl_div/NxC/batchmean/{suffix}"
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-8.0, -0.05, shape), dtype),
                  "target": rounded(stream.distributions(shape), dtype)}
        yield Spec(case_id, "kl_div", inputs, {"reduction": "batchmean"})
        case_id = f"lowprec/sigmoid_focal_loss/NxC/mean/{suffix}"
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-8.0, 8.0, shape), dtype),
                  "target": rounded(_binary_target(stream, shape), dtype)}
        yield Spec(case_id, "sigmoid_focal_loss", inputs, {"reduction": "mean"})
        for fn in ("softmax_focal_loss", "poly1_cross_entropy"):
            case_id = f"lowprec/{fn}/index/NxC/mean/w/ign=default/{suffix}"
            stream = Stream(case_id)
            target = stream.integers(shape[1], shape[:1])
            target[::5] = -100
            inputs = {"input": rounded(stream.uniform(-8.0, 8.0, shape), dtype),
                      "target": target}
            yield Spec(case_id, fn, inputs, {
                "reduction": "mean", "weight": rounded(stream.uniform(0.2, 3.0, (50,)), dtype)})
