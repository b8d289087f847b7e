"""The corpus's inputs for the second-order kinds (:class:`xent_ref.golden.inputs.Spec`):
Hessian-vector products (``*_hvp``, a direction ``v`` among the inputs), gradients with
respect to the target (``*_grad_target``) and per-token statistics (``*_stats``).

Drawn as every other input (:class:`~xent_ref.golden.inputs.Stream`, exactly rounded
operations, :func:`~xent_ref.golden.inputs.rounded`), small (a few tokens of 5 classes:
the exported corpus stays small), in float32 and float64, and generated after every
other case (:func:`second_order_specs`), so no earlier case moves. Each function meets
the options that change its answer: class weights, ignored targets, label smoothing,
every reduction, probability targets, the LLM options (a softcap bends logits drawn in
[-8, 8); its second derivative is what a Gauss-Newton product leaves out), ties in the
argmax (a softcap of 1 rounds every large logit to the same 1.0).
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from xent_ref.golden.cases import C, DTYPE_SUFFIXES, DTYPES
from xent_ref.golden.inputs import Spec, Stream, rounded

_SUFFIX = {dtype: suffix for suffix, dtype in DTYPE_SUFFIXES.items()}
_TOKENS = 3
# The options of a cross-entropy case, as its id spells them: (flags, kwargs)
_CE_VARIANTS = (
    (("mean",), {}),
    (("sum", "w", "ign=default"), {"reduction": "sum"}),
    (("none", "ls=0.1", "ign=default"), {"reduction": "none", "label_smoothing": 0.1}),
    (("mean", "softcap=5"), {"softcap": 5.0}),
    (("mean", "scale=2.5"), {"logit_scale": 2.5}),
    (("sum", "w", "ign=default", "scale=0.5", "softcap=5", "z=0.01"),
     {"reduction": "sum", "logit_scale": 0.5, "softcap": 5.0, "z_loss": 0.01}),
)


def _index_target(stream: Stream, shape: tuple, ignored: bool) -> np.ndarray:
    """Class indices of the loss's shape, every third one -100 when ``ignored``."""
    target = stream.integers(C, shape)
    if ignored:
        target.reshape(-1)[::3] = -100
    return target


def _ce_inputs(case_id: str, shape: tuple, flags, kwargs, dtype, probabilities=False):
    """``(stream, inputs, kwargs)`` of a cross-entropy case: logits in [-8, 8), class
    indices or distributions, and the flags' class weights."""
    stream = Stream(case_id)
    logits = rounded(stream.uniform(-8.0, 8.0, shape), dtype)
    if probabilities:
        target = rounded(stream.distributions(shape), dtype)
    else:
        target = _index_target(stream, (shape[0],) + shape[2:], "ign=default" in flags)
    kwargs = dict(kwargs)
    if "w" in flags:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, (C,)), dtype)
    return stream, {"input": logits, "target": target}, kwargs


def _direction(stream: Stream, shape: tuple, dtype) -> np.ndarray:
    return rounded(stream.uniform(-1.0, 1.0, shape), dtype)


def _grad_target_specs() -> Iterator[Spec]:
    """cross_entropy with probability targets (the only kind with a target gradient),
    the binary losses (hard and soft targets)."""
    fn = "cross_entropy_grad_target"
    variants = ((("mean",), {}, (2, C)),
                (("sum", "w", "ls=0.1"), {"reduction": "sum", "label_smoothing": 0.1}, (2, C)),
                (("none", "scale=2.5", "softcap=5"),
                 {"reduction": "none", "logit_scale": 2.5, "softcap": 5.0}, (2, C)),
                (("mean", "z=0.1"), {"z_loss": 0.1}, (2, C, 2)))
    for (flags, kwargs, shape), dtype in itertools.product(variants, DTYPES):
        shape_name = "NxC" if len(shape) == 2 else "NxCxd1"
        case_id = "/".join(["grad_target/cross_entropy/probs", shape_name, *flags,
                            _SUFFIX[dtype]])
        _, inputs, kwargs = _ce_inputs(case_id, shape, flags, kwargs, dtype, True)
        yield Spec(case_id, fn, inputs, kwargs)
    for function, (reduction, options), dtype in itertools.product(
            ("binary_cross_entropy", "binary_cross_entropy_with_logits"),
            (("mean", ()), ("none", ("w=full",)), ("sum", ("w=last-axis", "pw"))), DTYPES):
        if function == "binary_cross_entropy" and "pw" in options:
            options = ("w=last-axis",)
        case_id = "/".join([f"grad_target/{function}", "NxC", reduction, *options,
                            _SUFFIX[dtype]])
        yield _binary_spec(case_id, function + "_grad_target", reduction, options, dtype)


def _binary_spec(case_id, function, reduction, options, dtype, with_v=False) -> Spec:
    """A binary loss's case on ``(2, 4)``: probabilities in [0.02, 0.98) or logits in
    [-6, 6), targets half hard and half soft, the options' weights."""
    stream = Stream(case_id)
    shape = (2, 4)
    if function.startswith("binary_cross_entropy_with_logits"):
        values = stream.uniform(-6.0, 6.0, shape)
    else:
        values = stream.uniform(0.02, 0.98, shape)
    hard = stream.uniform(0.0, 1.0, shape) < 0.5
    target = np.where(hard, stream.integers(2, shape), stream.uniform(0.0, 1.0, shape))
    inputs = {"input": rounded(values, dtype), "target": rounded(target, dtype)}
    kwargs = {"reduction": reduction}
    if "w=full" in options:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, shape), dtype)
    if "w=last-axis" in options:
        kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, shape[-1:]), dtype)
    if "pw" in options:
        kwargs["pos_weight"] = rounded(stream.uniform(0.2, 4.0, shape[-1:]), dtype)
    if with_v:
        inputs["v"] = _direction(stream, shape, dtype)
    return Spec(case_id, function, inputs, kwargs)


def _softmax_hvp_specs() -> Iterator[Spec]:
    for function, (shape_name, shape, axis), dtype in itertools.product(
            ("softmax_hvp", "log_softmax_hvp"),
            (("NxC", (2, C), -1), ("NxCxd1", (2, C, 2), 1)), DTYPES):
        case_id = f"hvp/{function.removesuffix('_hvp')}/{shape_name}/axis={axis}/" \
                  f"{_SUFFIX[dtype]}"
        stream = Stream(case_id)
        inputs = {"x": rounded(stream.uniform(-4.0, 4.0, shape), dtype),
                  "v": _direction(stream, shape, dtype)}
        yield Spec(case_id, function, inputs, {} if axis == -1 else {"axis": axis})


def _hvp_specs() -> Iterator[Spec]:
    yield from _softmax_hvp_specs()
    for (flags, kwargs), dtype in itertools.product(_CE_VARIANTS, DTYPES):
        case_id = "/".join(["hvp/cross_entropy/index/NxC", *flags, _SUFFIX[dtype]])
        stream, inputs, kwargs = _ce_inputs(case_id, (_TOKENS, C), flags, kwargs, dtype)
        inputs["v"] = _direction(stream, (_TOKENS, C), dtype)
        yield Spec(case_id, "cross_entropy_hvp", inputs, kwargs)
    for dtype in DTYPES:
        case_id = f"hvp/cross_entropy/probs/NxCxd1/mean/ls=0.1/softcap=5/z=0.1/{_SUFFIX[dtype]}"
        stream, inputs, kwargs = _ce_inputs(case_id, (2, C, 2), (), {
            "label_smoothing": 0.1, "softcap": 5.0, "z_loss": 0.1}, dtype, True)
        inputs["v"] = _direction(stream, (2, C, 2), dtype)
        yield Spec(case_id, "cross_entropy_hvp", inputs, kwargs)
        case_id = f"hvp/nll_loss/index/NxC/mean/w/ign=default/{_SUFFIX[dtype]}"
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-6.0, -0.05, (_TOKENS, C)), dtype),
                  "target": _index_target(stream, (_TOKENS,), True),
                  "v": _direction(stream, (_TOKENS, C), dtype)}
        yield Spec(case_id, "nll_loss_hvp", inputs,
                   {"weight": rounded(stream.uniform(0.2, 3.0, (C,)), dtype)})
    for function, (reduction, options), dtype in itertools.product(
            ("binary_cross_entropy", "binary_cross_entropy_with_logits"),
            (("none", ("w=full",)), ("mean", ("w=last-axis", "pw"))), DTYPES):
        if function == "binary_cross_entropy" and "pw" in options:
            options = ("w=last-axis",)
        case_id = "/".join([f"hvp/{function}", "NxC", reduction, *options, _SUFFIX[dtype]])
        yield _binary_spec(case_id, function + "_hvp", reduction, options, dtype, True)
    yield from _linear_specs("hvp")


def _linear_specs(kind: str) -> Iterator[Spec]:
    """linear_cross_entropy with ``h (4, 3)`` and ``W (C, 3)``: with a bias and every
    option together (weights, ignored targets, the LLM options), and without a bias,
    smoothed; an hvp's directions for ``(input, linear_weight[, linear_bias])``."""
    variants = ((("mean", "bias", "w", "ign=default", "llm"),
                 {"logit_scale": 0.5, "softcap": 5.0, "z_loss": 0.01}),
                (("none", "no-bias", "ls=0.1"), {"reduction": "none", "label_smoothing": 0.1}))
    for (flags, options), dtype in itertools.product(variants, DTYPES):
        case_id = "/".join([f"{kind}/linear_cross_entropy", f"V={C}", *flags, _SUFFIX[dtype]])
        stream = Stream(case_id)
        inputs = {"input": rounded(stream.uniform(-2.0, 2.0, (_TOKENS, 3)), dtype),
                  "linear_weight": rounded(stream.uniform(-1.0, 1.0, (C, 3)), dtype),
                  "target": _index_target(stream, (_TOKENS,), "ign=default" in flags)}
        kwargs = dict(options)
        if "bias" in flags:
            kwargs["linear_bias"] = rounded(stream.uniform(-1.0, 1.0, (C,)), dtype)
        if "w" in flags:
            kwargs["weight"] = rounded(stream.uniform(0.2, 3.0, (C,)), dtype)
        if kind == "hvp":
            shapes = [(_TOKENS, 3), (C, 3)] + [(C,)] * ("bias" in flags)
            inputs["v"] = tuple(_direction(stream, shape, dtype) for shape in shapes) + (
                () if "bias" in flags else (None,))
        yield Spec(case_id, f"linear_cross_entropy_{kind}", inputs, kwargs)


def _ties(stream: Stream, dtype) -> np.ndarray:
    """Logits of 4 tokens where a softcap of 1 ties: 50 and 100 both become 1.0 (the
    first of them is the argmax, not the raw logits' argmax), then a raw tie, then a
    row of four equal logits (the fifth a little lower: no tie that only float32 makes)."""
    rows = np.array([[50.0, 100.0, 0.0, -3.0, 1.0], [0.0, 2.0, 2.0, 1.0, -1.0],
                     [7.0, 7.0, 7.0, 7.0, 6.0], [-20.0, 30.0, 40.0, 30.0, 0.5]])
    rows[:, 4] += stream.uniform(-0.25, 0.25, (4,))
    return rounded(rows, dtype)


def _stats_specs() -> Iterator[Spec]:
    fn = "cross_entropy_stats"
    # (logit_scale alone: the probability targets' case below has it)
    variants = [variant for variant in _CE_VARIANTS if variant[0] != ("mean", "scale=2.5")]
    for (flags, kwargs), dtype in itertools.product(variants, DTYPES):
        case_id = "/".join(["stats/cross_entropy/index/NxC", *flags, _SUFFIX[dtype]])
        _, inputs, kwargs = _ce_inputs(case_id, (_TOKENS, C), flags, kwargs, dtype)
        yield Spec(case_id, fn, inputs, kwargs)
    for dtype in DTYPES:
        for softcap in (1.0, None):
            spelled = ["softcap=1", "z=0.1"] if softcap else []
            case_id = "/".join(["stats/cross_entropy/index/NxC/mean", *spelled, "ties",
                                _SUFFIX[dtype]])
            stream = Stream(case_id)
            kwargs = {"softcap": softcap, "z_loss": 0.1} if softcap else {}
            yield Spec(case_id, fn, {"input": _ties(stream, dtype),
                                     "target": np.array([1, 2, -100, 3])}, kwargs)
        case_id = f"stats/cross_entropy/probs/NxCxd1/none/scale=2.5/z=0.1/{_SUFFIX[dtype]}"
        _, inputs, kwargs = _ce_inputs(case_id, (2, C, 2), (), {
            "reduction": "none", "logit_scale": 2.5, "z_loss": 0.1}, dtype, True)
        yield Spec(case_id, fn, inputs, kwargs)
    yield from _linear_specs("stats")


def second_order_specs() -> Iterator[Spec]:
    """The second-order cases, in the corpus's order (after every other case)."""
    yield from _grad_target_specs()
    yield from _hvp_specs()
    yield from _stats_specs()
