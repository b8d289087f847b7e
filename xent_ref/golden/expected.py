"""From inputs to cases: xent_ref writes the expected values (float32/float64: its own
answer, judged by the tolerance rule), or, for float16 and bfloat16, the float64
answer rounded once to the dtype, judged against that answer with PyTorch's recorded
error (the rule ``"reference-error"``).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Iterator

import numpy as np

from xent_ref import functions as lib
from xent_ref._engine.lowprec import finfo, round_once
from xent_ref.golden.cases import (LOW_PRECISION_DTYPES, Case, call_function, call_grad,
                                   call_second_order, parse_id,
                                   frozen, frozen_grad, grad_parts, tolerance)
from xent_ref.golden.family_inputs import family_low_precision_specs, family_specs
from xent_ref.golden.inputs import Spec, Stream, low_precision_inputs, rounded, standard_specs
from xent_ref.golden.jsonio import dtype_named, is_float
from xent_ref.golden.schema import SIGNATURES, signature_of
from xent_ref.golden.second_order_inputs import second_order_specs


def _scale(arrays) -> float:
    """The largest finite magnitude among the floating arrays (at least 1)."""
    magnitudes = [1.0]
    for a in arrays:
        if isinstance(a, np.ndarray) and is_float(a.dtype):
            finite = np.abs(a[np.isfinite(a)])
            magnitudes.append(float(finite.max()) if finite.size else 0.0)
    return max(magnitudes)


def _grad_output(spec: Spec, loss: np.ndarray) -> np.ndarray:
    """A non-trivial upstream gradient, shaped like ``loss``, in its dtype."""
    stream = Stream("grad_output:" + spec.id)
    return rounded(stream.uniform(0.5, 2.0, loss.shape), loss.dtype)


def _case(spec: Spec) -> Case:
    if _dtype_of(spec) in LOW_PRECISION_DTYPES:
        return _low_precision_case(spec)
    inputs = {name: frozen(a) for name, a in spec.inputs.items()}
    kwargs = {k: frozen(v) if isinstance(v, np.ndarray) else v for k, v in spec.kwargs.items()}
    loss = np.asarray(call_function(lib.named(spec.function), spec))
    spec.grad_output = frozen(_grad_output(spec, loss))
    grad = frozen_grad(call_grad(lib.named(spec.function + "_grad"), spec))
    scale = _scale(list(inputs.values()) + list(kwargs.values()) + [spec.grad_output])
    terms = max(a.size for a in inputs.values() if is_float(a.dtype))
    rtol, atol = tolerance(loss.dtype.name, scale, terms)
    grad_scale = _scale(grad_parts(grad))
    grad_atol = atol if spec.exact_only else tolerance(loss.dtype.name, grad_scale, terms)[1]
    return Case(id=spec.id, function=spec.function, inputs=inputs, kwargs=kwargs,
                grad_output=spec.grad_output, loss=frozen(loss), grad=grad,
                rtol=rtol, atol=atol, grad_atol=grad_atol, exact_only=spec.exact_only)


def _dtype_of(spec: Spec) -> str:
    """The dtype of the case's first positional input (its output's dtype)."""
    return spec.inputs[signature_of(spec.function).positional[0]].dtype.name


def float64_reference(case) -> tuple[np.ndarray, np.ndarray]:
    """``(loss, grad)`` of xent_ref in float64 on ``case``'s inputs, keyword arrays and
    ``grad_output`` widened exactly to float64: the answer a low-precision case is judged
    against (``case``: a :class:`Case`, or anything with the same fields)."""
    inputs, kwargs = widened(case.inputs), widened(case.kwargs)
    loss = call_function(lib.named(case.function), case, inputs, kwargs)
    grad = call_grad(lib.named(case.function + "_grad"), case, inputs, kwargs,
                     case.grad_output.astype(np.float64))
    return frozen(loss), frozen_grad(grad)


def widened(arrays: dict) -> dict:
    """``arrays`` with its floating arrays widened (exactly) to float64."""
    return {key: value.astype(np.float64) if isinstance(value, np.ndarray)
            and is_float(value.dtype) else value for key, value in arrays.items()}


TORCH_ERRORS = "data/torch_lowprec_errors.json"  # in the package


@functools.lru_cache(maxsize=1)
def torch_errors() -> dict:
    """The recorded PyTorch errors of the low-precision cases (``TORCH_ERRORS``, written
    by ``scripts/make_lowprec_reference.py``): ``{"torch_version": ..., "cases": {id:
    {"loss_error": ..., "grad_error": ...}}}``."""
    text = importlib.resources.files("xent_ref.golden").joinpath(TORCH_ERRORS).read_text("utf-8")
    return json.loads(text)


def _low_precision_case(spec: Spec) -> Case:
    """A float16/bfloat16 case, judged by the rule ``"reference-error"``: the error against
    the float64 answer may be PyTorch's own error there (recorded) plus one ulp of the
    dtype at the value's magnitude (``rtol`` = eps, ``atol`` = the smallest subnormal,
    the ulp below the normal range). ``loss`` and ``grad`` are the float64 answer rounded
    once to the dtype: the best values it can hold."""
    recorded = torch_errors()["cases"].get(spec.id)
    if recorded is None:
        raise RuntimeError(f"no PyTorch error recorded for the low-precision case {spec.id} "
                           f"in xent_ref/golden/{TORCH_ERRORS}: run scripts/make_lowprec_reference.py")
    dtype = dtype_named(_dtype_of(spec))
    _set_grad_output(spec)
    loss_reference, grad_reference = float64_reference(spec)
    info = finfo(dtype)
    ulp_below_normal = float(info.smallest_subnormal)
    # One error per gradient: several gradients (linear_cross_entropy) record a list.
    errors = {"loss_error": float(recorded["loss_error"]),
              "grad_error": _per_part(recorded["grad_error"], float)}
    pairs = [(errors["loss_error"], loss_reference)] + list(zip(
        as_parts(errors["grad_error"]), as_parts(grad_reference)))
    torch_loses_it = any(error >= 0.5 * float(np.abs(reference).max(initial=0.0))
                         for error, reference in pairs if reference is not None)
    return Case(id=spec.id, function=spec.function,
                inputs={name: frozen(a) for name, a in spec.inputs.items()},
                kwargs={k: frozen(v) if isinstance(v, np.ndarray) else v
                        for k, v in spec.kwargs.items()},
                grad_output=spec.grad_output, loss=frozen(round_once(loss_reference, dtype)),
                grad=frozen_grad(_per_part(grad_reference, lambda g: round_once(g, dtype))),
                rtol=float(info.eps),
                atol=ulp_below_normal, grad_atol=ulp_below_normal,
                exact_only=_TORCH_LOSES_IT if torch_loses_it else None,
                rule="reference-error",
                rule_params={"loss_reference": loss_reference, "grad_reference": grad_reference,
                             **errors})


def as_parts(grad) -> tuple:
    """A gradient's parts: ``(grad,)``, or the tuple of several (``None`` kept)."""
    return grad if isinstance(grad, (tuple, list)) else (grad,)


def _per_part(grad, fn):
    """``fn`` applied to a gradient, or to each part of several (``None`` kept)."""
    if isinstance(grad, (tuple, list)):
        return tuple(None if part is None else fn(part) for part in grad)
    return fn(grad)


def _set_grad_output(spec: Spec) -> None:
    """Draw the case's ``grad_output`` (shaped like the loss, in the input's dtype)."""
    loss = np.asarray(call_function(lib.named(spec.function), spec,
                                    widened(spec.inputs), widened(spec.kwargs)))
    spec.grad_output = frozen(_grad_output(spec, loss.astype(dtype_named(_dtype_of(spec)))))


_TORCH_LOSES_IT = (
    "PyTorch's own error here is at least half the largest expected value (its CPU kernels "
    "round p_t to 1 in this dtype, so the loss and the true class's gradient of a peaked "
    "row become 0): the reference-error rule lets an implementation doing the same pass, "
    "and verify reports it"
)


def _every_standard_spec() -> Iterator[Spec]:
    """The float32/float64 specs in corpus order: the relatives (kl_div, the focal losses,
    poly-1) last, so no earlier case's inputs moved when they joined."""
    yield from standard_specs()
    yield from family_specs()


def _every_low_precision_spec() -> Iterator[Spec]:
    """The float16/bfloat16 specs in corpus order, the relatives last."""
    yield from low_precision_inputs()
    yield from family_low_precision_specs()


def low_precision_specs() -> list[Spec]:
    """The low-precision cases before their expected values are computed (inputs, keyword
    arguments, and ``grad_output`` drawn as the corpus draws it), for
    ``scripts/make_lowprec_reference.py``."""
    specs = list(_every_low_precision_spec())
    for spec in specs:
        _set_grad_output(spec)
    return specs


@functools.lru_cache(maxsize=1)
def low_precision_cases() -> tuple[Case, ...]:
    """The float16 and bfloat16 cases (judged by the rule ``"reference-error"``), the
    last part of :func:`build_corpus`."""
    return tuple(_case(spec) for spec in _every_low_precision_spec())


def _second_order_case(spec: Spec) -> Case:
    """A case of a second-order kind: xent_ref's hvp (at a drawn ``grad_output``, shaped
    like the loss's output), target gradient, or statistics; the tolerance rule of the
    gradients for the first two (``grad_atol`` scaled by the expected value), of the
    losses for the statistics (``atol``, by the inputs' scale)."""
    signature = signature_of(spec.function)
    inputs = {name: frozen_grad(a) for name, a in spec.inputs.items()}
    kwargs = {k: frozen(v) if isinstance(v, np.ndarray) else v for k, v in spec.kwargs.items()}
    if signature.kind != "stats":
        loss_args = [inputs[name] for name in SIGNATURES[signature.of].positional]
        output = np.asarray(lib.named(signature.of)(*loss_args, **kwargs))
        spec.grad_output = frozen(_grad_output(spec, output))
    value = call_second_order(lib.named(signature.calls), spec)
    if signature.kind == "stats":
        expected = {name: frozen(getattr(value, name)) for name in signature.fields}
    else:
        expected = {signature.fields[0]: frozen_grad(value)}
    floats = [part for a in inputs.values() for part in grad_parts(a) if is_float(part.dtype)]
    upstream = [] if spec.grad_output is None else [spec.grad_output]
    scale = _scale(floats + list(kwargs.values()) + upstream)
    dtype = _dtype_of(spec)
    rtol, atol = tolerance(dtype, scale, max(a.size for a in floats))
    grad_atol = atol
    if signature.kind != "stats":
        grad_atol = tolerance(dtype, _scale(grad_parts(value)), max(a.size for a in floats))[1]
    return Case(id=spec.id, function=spec.function, inputs=inputs, kwargs=kwargs,
                grad_output=spec.grad_output, loss=None, grad=None, rtol=rtol, atol=atol,
                grad_atol=grad_atol, expected=expected)


@functools.lru_cache(maxsize=1)
def second_order_cases() -> tuple[Case, ...]:
    """The float32/float64 cases of the second-order kinds (hvp, grad_target, stats), the
    last part of :func:`build_corpus`: after every other case, so none of those moved
    when they joined."""
    return tuple(_second_order_case(spec) for spec in second_order_specs())


@functools.lru_cache(maxsize=1)
def build_corpus() -> tuple[Case, ...]:
    """Every golden case, in a fixed order (cached: the corpus never changes in a run):
    the float32/float64 cases, then the float16/bfloat16 ones (the dtypes of the kernels
    the corpus serves; ``dtypes=`` in :func:`xent_ref.testing.check` and ``verify
    --dtypes`` leave them out for an implementation without them), then the second-order
    kinds (:func:`second_order_cases`)."""
    return (tuple(_case(spec) for spec in _every_standard_spec()) + low_precision_cases()
            + second_order_cases())


def redrawn(case: Case, seed: int) -> Case:
    """``case`` with its floating inputs drawn afresh from ``seed`` (an exercise's
    attempt): same shapes, dtypes and options, each array uniform over its own range
    (probability targets: new rows that sum to 1), index targets and keyword arrays kept,
    the expected values and tolerances computed by xent_ref now. Only a systematic
    float32/float64 case is redrawn; an edge, vocabulary-scale, low-precision or LLM
    case is returned as it is (its values are its point).

    >>> case = build_corpus()[0]
    >>> again = redrawn(case, 7)
    >>> again.id == case.id, bool((again.inputs["x"] != case.inputs["x"]).any())
    (True, True)
    """
    dtype = _dtype_of(case)
    if parse_id(case.id).get("kind") != "systematic" or dtype in LOW_PRECISION_DTYPES:
        return case
    stream = Stream(f"attempt {int(seed)}: {case.id}")
    inputs = {}
    for name, a in case.inputs.items():
        if not is_float(a.dtype) or a.size == 0 or not np.isfinite(a).all():
            inputs[name] = a
        elif name == "target" and case.function == "cross_entropy":
            inputs[name] = rounded(stream.distributions(a.shape, 0 if a.ndim == 1 else 1),
                                   a.dtype)
        else:
            low, high = float(a.min()), float(a.max())
            inputs[name] = rounded(stream.uniform(low, high, a.shape), a.dtype)
    spec = Spec(case.id, case.function, inputs, dict(case.kwargs), case.exact_only)
    return _case(spec)

