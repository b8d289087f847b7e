"""What a golden corpus or results file may contain, and how much of it we read: the one
place that knows the functions, their arguments, the size limits, every field of the two
file formats (:func:`check_case`, :func:`check_corpus`, :func:`check_results`) and how to
print a value that came from a file.

A verifier's input is untrusted by nature (a broken kernel's harness writes it; so
may a fuzzer), so every file goes through :func:`read_json` (a size cap before
parsing, strict JSON, a clear :class:`SchemaError`) and then through the checks
below, before any of it is used. ``verify`` answers a :class:`SchemaError` with exit
status 2 and one line.

Limits (``docs/golden-format.md``, "Limits"), overridable by the environment or by
``verify``/``golden`` flags:

* ``XENT_REF_MAX_BYTES`` (``--max-bytes``): the largest file read, default 64 MiB;
* ``XENT_REF_MAX_ELEMENTS`` (``--max-elements``): the most elements one array may
  declare, default 2**24 (16,777,216).

The default file size, 64 MiB, is 25 times the exported corpus JSON (2.5 MB; its large
arrays are .npy files beside it, each read with the same cap).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from xent_ref._engine.checks import KL_REDUCTIONS, REDUCTIONS
from xent_ref.golden.jsonio import DTYPES, FLOAT_DTYPES, dtype_named


class SchemaError(ValueError):
    """A file that is not what it claims to be; the message is one printable line."""


# ---------------------------------------------------------------------------
# The functions a case may name
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """How to call a function of the corpus and its gradient twin.

    ``positional``: the array inputs, in order (``linear_cross_entropy`` lists
    ``("input", "linear_weight", "target")``); ``grad_output_positional``: whether the
    ``_grad`` twin takes ``grad_output`` right after them (the softmaxes) or as a
    keyword (the losses); ``kwargs``: the keyword arguments a case may set, with the
    kind of value each takes (see :data:`_KWARG_KINDS`); ``grads``: empty when the twin
    returns one array (the gradient of the first input), else the arguments of the
    tuple it returns, in order (``linear_cross_entropy_grad``: ``input``,
    ``linear_weight``, ``linear_bias``; ``None`` for an absent bias).
    """

    positional: tuple[str, ...]
    grad_output_positional: bool
    kwargs: dict[str, str]
    grads: tuple[str, ...] = ()  # several gradients: the arguments they are with respect to
    # The second-order kinds (:data:`SECOND_ORDER`): "hvp", "grad_target" or "stats";
    # ``fields``: the case's expected fields; ``calls``: the implementation's function
    # the case calls (``cross_entropy_grad`` for ``cross_entropy_grad_target``, with
    # ``wrt="target"``); ``of``: the loss whose inputs and options the case takes.
    kind: str = "loss"
    fields: tuple[str, ...] = ()
    calls: str = ""
    of: str = ""


_LOSS_KWARGS = {"reduction": "reduction"}
# The LLM options of cross_entropy (xent_ref/llm_options.py).
_LLM_KWARGS = {"logit_scale": "positive", "softcap": "positive-or-null", "z_loss": "non-negative"}
SIGNATURES: dict[str, Signature] = {
    "softmax": Signature(("x",), True, {"axis": "int"}),
    "log_softmax": Signature(("x",), True, {"axis": "int"}),
    "cross_entropy": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, weight="array", ignore_index="int", label_smoothing="unit",
        **_LLM_KWARGS)),
    "nll_loss": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, weight="array", ignore_index="int")),
    "binary_cross_entropy": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, weight="array")),
    "binary_cross_entropy_with_logits": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, weight="array", pos_weight="array")),
    "linear_cross_entropy": Signature(
        ("input", "linear_weight", "target"), False,
        dict(_LOSS_KWARGS, linear_bias="array", weight="array", ignore_index="int",
             label_smoothing="unit", **_LLM_KWARGS),
        grads=("input", "linear_weight", "linear_bias")),
    # The rest of the family (xent_ref/kl.py, focal.py, poly.py).
    "kl_div": Signature(("input", "target"), False, dict(
        reduction="kl-reduction", log_target="bool")),
    "sigmoid_focal_loss": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, alpha="alpha", gamma="non-negative")),
    "softmax_focal_loss": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, gamma="non-negative", weight="array", ignore_index="int",
        label_smoothing="unit")),
    "poly1_cross_entropy": Signature(("input", "target"), False, dict(
        _LOSS_KWARGS, epsilon="real", weight="array", ignore_index="int",
        label_smoothing="unit")),
}
FUNCTIONS = tuple(SIGNATURES)

# The per-token statistics of :mod:`xent_ref.stats`, in their order (TokenStats' fields).
STATISTICS = ("lse", "loss", "z_loss", "target_logprob", "entropy", "argmax", "correct",
              "kept", "reduced_loss", "reduced_z_loss")
# The statistics that are not floating point, judged exactly.
EXACT_STATISTICS = ("argmax", "correct", "kept")


def _second_order(kind: str, of: str, extra=(), calls: str = "") -> Signature:
    """A second-order kind's signature: the loss ``of``'s inputs (and ``extra``: ``v``)
    and options; an hvp of the softmaxes takes ``grad_output`` positionally, as their
    gradients do."""
    loss = SIGNATURES[of]
    fields = {"hvp": ("hvp",), "grad_target": ("grad_target",), "stats": STATISTICS}[kind]
    return Signature(loss.positional + tuple(extra), loss.grad_output_positional and kind == "hvp",
                     dict(loss.kwargs), loss.grads if kind == "hvp" else (), kind, fields,
                     calls or f"{of}_{kind}", of)


# Second derivatives, gradients with respect to the target and per-token statistics
# (xent_ref/hvp.py, target_grad.py, stats.py): cases of their own kinds, after the others.
SECOND_ORDER: dict[str, Signature] = {
    **{f"{of}_grad_target": _second_order("grad_target", of, calls=f"{of}_grad")
       for of in ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits")},
    **{f"{of}_hvp": _second_order("hvp", of, ("v",))
       for of in ("softmax", "log_softmax", "cross_entropy", "nll_loss", "binary_cross_entropy",
                  "binary_cross_entropy_with_logits", "linear_cross_entropy")},
    **{f"{of}_stats": _second_order("stats", of)
       for of in ("cross_entropy", "linear_cross_entropy")},
}
SECOND_ORDER_FUNCTIONS = tuple(SECOND_ORDER)
# What a ``*_grad_target`` case passes besides the loss's own arguments.
GRAD_TARGET_KWARGS = {"wrt": "target"}


def signature_of(function: str) -> Signature:
    """The :class:`Signature` of a case's function, of either kind (a ``KeyError`` for
    any other name)."""
    return SIGNATURES[function] if function in SIGNATURES else SECOND_ORDER[function]


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """How much of a file we are willing to read (see the module docstring)."""

    max_bytes: int = 64 * 2**20
    max_elements: int = 2**24

    @classmethod
    def from_env(cls, max_bytes: int | None = None, max_elements: int | None = None) -> Limits:
        """The defaults, overridden by the environment, overridden by the arguments."""
        def pick(given, variable, default):
            text = os.environ.get(variable) if given is None else None
            if given is None and text is None:
                return default
            label = f"{variable}={printable(text, 40)}" if given is None else f"{given}"
            try:
                value = int(text) if given is None else given
            except ValueError:
                raise SchemaError(f"{label} is not an integer") from None
            if value <= 0:
                raise SchemaError(f"the limit {label} must be positive")
            return value

        return cls(pick(max_bytes, "XENT_REF_MAX_BYTES", cls.max_bytes),
                   pick(max_elements, "XENT_REF_MAX_ELEMENTS", cls.max_elements))


# ---------------------------------------------------------------------------
# Printing what came from a file
# ---------------------------------------------------------------------------

PRINT_LIMIT = 200  # characters of one value from a file shown in a report


def printable(value: Any, limit: int = PRINT_LIMIT) -> str:
    """``str(value)`` made safe for a terminal and a log: control characters (escape
    sequences included) spelled out as ``\\x1b``-style escapes, and at most ``limit``
    characters (a 20 MB string must not reach the report's line wrapping).

    >>> printable("red\\x1b[31m" + "x" * 300, limit=20)
    'red\\\\x1b[31mxxxxxxxxx... (308 characters)'
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        short = text[:limit].encode("unicode_escape").decode("ascii")[:limit]
        return f"{short}... ({len(text)} characters)"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


# ---------------------------------------------------------------------------
# Reading a JSON file
# ---------------------------------------------------------------------------


def _reject_constant(token: str):
    raise SchemaError(f"bare {token} is not JSON (write non-finite numbers as strings)")


def read_json(path, what: str, limits: Limits) -> Any:
    """The parsed JSON document at ``path``, or :class:`SchemaError` with the reason.

    At most ``limits.max_bytes`` are read (``/dev/zero`` stops there), the bytes must be
    UTF-8, the JSON strict (no ``NaN``/``Infinity``), and nesting that exhausts the
    parser's recursion is refused, not raised through.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(limits.max_bytes + 1)
    except OSError as error:
        raise SchemaError(f"cannot read {what} {printable(path)}: "
                          f"{printable(error.strerror or error)}") from None
    if len(data) > limits.max_bytes:
        raise SchemaError(f"{what} {printable(path)} is larger than {limits.max_bytes} bytes "
                          "(raise the limit with --max-bytes or XENT_REF_MAX_BYTES)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SchemaError(f"{what} {printable(path)} is not UTF-8 text "
                          f"(byte {error.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise SchemaError(f"{what} {printable(path)} is not JSON: {printable(error)}") from None
    except RecursionError:
        raise SchemaError(f"{what} {printable(path)} is nested too deeply") from None


# ---------------------------------------------------------------------------
# Checking the parsed values
# ---------------------------------------------------------------------------


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise SchemaError(f"{where}: {message}")


def check_number(value, where: str) -> float:
    """A finite, non-negative JSON number (a tolerance)."""
    ok = (is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0
    require(ok, where, f"must be a finite number >= 0, not {printable(repr(value), 40)}")
    return float(value)


NPY_NAME = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.npy")


def check_array(obj, where: str, limits: Limits) -> None:
    """``obj`` is an encoded array (``_jsonio``) small enough to decode: its values in
    ``data``, or in a ``.npy`` file named by ``npy`` (a relative path of letters, digits,
    ``_`` and ``-`` segments, so never outside the file's directory) whose ``sha256`` is
    given (``docs/golden-format.md``, "Large arrays")."""
    stored = isinstance(obj, dict) and "npy" in obj
    keys = {"dtype", "shape", "npy", "sha256"} if stored else {"dtype", "shape", "data"}
    require(isinstance(obj, dict) and set(obj) == keys, where,
            'must be {"dtype", "shape", "data"} or {"dtype", "shape", "npy", "sha256"}')
    dtype_of(obj["dtype"], where)
    shape = obj["shape"]
    require(isinstance(shape, list) and len(shape) <= 32
            and all(is_int(n) and n >= 0 for n in shape), where,
            "shape must be a list of at most 32 non-negative integers")
    size = math.prod(shape)
    require(size <= limits.max_elements, where,
            f"{size} elements is more than the limit {limits.max_elements} "
            "(--max-elements or XENT_REF_MAX_ELEMENTS)")
    if stored:
        require(isinstance(obj["npy"], str) and NPY_NAME.fullmatch(obj["npy"]) is not None,
                where, f"npy {printable(repr(obj['npy']), 80)} is not a relative .npy path "
                "of letters, digits, _ and -")
        require(isinstance(obj["sha256"], str) and re.fullmatch("[0-9a-f]{64}", obj["sha256"])
                is not None, where, "sha256 must be 64 lowercase hexadecimal digits")
        return
    data = obj["data"]
    require(isinstance(data, list) and len(data) == size, where,
            f"data must be a flat list of {size} values")
    if obj["dtype"] in FLOAT_DTYPES:
        allowed = lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
                             or v in ("nan", "inf", "-inf"))
    elif obj["dtype"] == "bool":
        allowed = lambda v: isinstance(v, bool)  # noqa: E731
    else:
        allowed = is_int
    bad = next((v for v in data if not allowed(v)), None)
    require(bad is None, where,
            f"value {printable(repr(bad), 40)} is not a valid {obj['dtype']}")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_grad(obj, where: str, limits: Limits, grads: tuple[str, ...]) -> None:
    """One encoded array, or (``grads`` given) a list of one array or ``null`` each."""
    if not grads:
        check_array(obj, where, limits)
        return
    require(isinstance(obj, list) and len(obj) == len(grads), where,
            f"must be a list of {len(grads)} arrays or nulls ({', '.join(grads)})")
    for i, part in enumerate(obj):
        if part is not None:
            check_array(part, f"{where}[{i}]", limits)


_KWARG_KINDS = {
    "int": lambda v: is_int(v),
    "unit": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) and 0 <= v <= 1),
    "reduction": lambda v: v in REDUCTIONS,
    "positive": lambda v: _finite(v) and v > 0,
    "positive-or-null": lambda v: v is None or _finite(v) and v > 0,
    "non-negative": lambda v: _finite(v) and v >= 0,
    "real": _finite,
    "alpha": lambda v: _finite(v) and v <= 1,  # in [0, 1], or negative: no weighting
    "bool": lambda v: isinstance(v, bool),
    "kl-reduction": lambda v: v in KL_REDUCTIONS,
}


def check_kwargs(function: str, kwargs, where: str, limits: Limits) -> None:
    require(isinstance(kwargs, dict), where, "kwargs must be an object")
    allowed = signature_of(function).kwargs
    for key, value in kwargs.items():
        require(key in allowed, where, f"{function} takes no keyword {printable(repr(key), 40)}")
        kind = allowed[key]
        if kind == "array":
            if not (isinstance(value, dict) and "generate" in value):  # a seed spec is
                check_array(value, f"{where}.{key}", limits)  # checked when regenerated
        else:
            require(_KWARG_KINDS[kind](value), f"{where}.{key}",
                    f"{printable(repr(value), 40)} is not a valid {key}")


def check_function(function, where: str) -> str:
    require(function in SIGNATURES or function in SECOND_ORDER, where,
            f"unknown function {printable(repr(function), 60)} "
            f"(this xent_ref knows {', '.join(FUNCTIONS)}, and "
            f"{len(SECOND_ORDER_FUNCTIONS)} second-order kinds: *_hvp, *_grad_target, *_stats)")
    return function


def check_list(value, where: str) -> list:
    require(isinstance(value, list), where, "must be a list")
    return value


def check_object(value, where: str, required=()) -> dict:
    require(isinstance(value, dict), where, "must be an object")
    missing = [key for key in required if key not in value]
    require(not missing, where, f"missing {', '.join(missing)}")
    return value


def check_id(value, where: str) -> str:
    require(isinstance(value, str) and 0 < len(value) <= 300, where,
            "id must be a string of 1 to 300 characters")
    return value


def check_input(obj, where: str, limits: Limits) -> None:
    """An encoded array, or a seed spec (``{"generate": ...}``, which
    :func:`xent_ref.golden.case_from_json` regenerates)."""
    if not (isinstance(obj, dict) and "generate" in obj):
        check_array(obj, where, limits)
        return
    check_object(obj, where, ("stream", "shape", "dtype"))
    shape = obj["shape"]
    require(isinstance(shape, list) and all(is_int(n) and n >= 0 for n in shape)
            and math.prod(shape) <= limits.max_elements, where,
            "shape must be a list of non-negative integers within --max-elements")
    require(isinstance(obj["stream"], str), where, "stream must be a string")
    dtype_of(obj["dtype"], where)
    if obj["generate"] == "uniform":
        low, high = obj.get("low"), obj.get("high")
        require(all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in (low, high)) and low < high, where,
                "low and high must be finite numbers, low < high")
    else:
        require(obj["generate"] == "integers", where,
                f"unknown generator {printable(repr(obj['generate']), 40)}")
        require(is_int(obj.get("n")) and obj["n"] > 0, where, "n must be a positive integer")


CASE_FIELDS = ("id", "function", "inputs", "kwargs", "grad_output", "loss", "grad", "rtol",
               "atol", "grad_atol")
RULES = {"tolerance": (), "reference-error": ("loss_reference", "grad_reference",
                                              "loss_error", "grad_error")}


def check_case(obj, where: str, limits: Limits) -> str:
    """Every field of a corpus case (docs/golden-format.md, section 2); returns the label
    the case's later messages should use."""
    check_object(obj, where, ("id", "function"))
    case_id = check_id(obj["id"], f"{where}.id")
    where = f"{where} ({printable(case_id, 80)})"
    function = check_function(obj["function"], where)
    signature = signature_of(function)
    if signature.kind != "loss":
        return _check_second_order(obj, where, limits, signature)
    check_object(obj, where, CASE_FIELDS)
    _check_inputs(obj, where, limits, function)
    for key in ("grad_output", "loss"):
        check_array(obj[key], f"{where}.{key}", limits)
    check_grad(obj["grad"], f"{where}.grad", limits, SIGNATURES[function].grads)
    for key in ("rtol", "atol", "grad_atol"):
        check_number(obj[key], f"{where}.{key}")
    exact_only = obj.get("exact_only")
    require(exact_only is None or isinstance(exact_only, str), where,
            "exact_only must be null or a string")
    rule = obj.get("rule", "tolerance")
    require(rule in RULES, where, f"rule must be one of {', '.join(RULES)}")
    params = check_object(obj.get("rule_params", {}), f"{where}.rule_params", RULES[rule])
    grads = SIGNATURES[function].grads
    for key, value in params.items():
        label = f"{where}.rule_params.{key}"
        if key == "grad_reference":
            check_grad(value, label, limits, grads)  # a list for several gradients
        elif key == "grad_error" and grads:
            require(isinstance(value, list) and len(value) == len(grads), label,
                    f"must be a list of {len(grads)} numbers or nulls ({', '.join(grads)})")
            for i, part in enumerate(value):
                if part is not None:
                    check_number(part, f"{label}[{i}]")
        elif isinstance(value, dict):
            check_input(value, label, limits)
        else:
            check_number(value, label)
    if grads and rule == "reference-error":
        # each gradient has a reference and an error exactly where the case has the gradient
        nulls = [[part is None for part in obj[key]] for key in ("grad",)] + [
            [part is None for part in params[key]] for key in ("grad_reference", "grad_error")
            if key in params]
        require(all(n == nulls[0] for n in nulls), f"{where}.rule_params",
                "grad_reference and grad_error must be null exactly where grad is null")
    return where


def _check_inputs(obj, where: str, limits: Limits, function: str) -> None:
    """A case's ``inputs`` (exactly the signature's positional arrays; the ``v`` of
    ``linear_cross_entropy_hvp`` a list of one direction or ``null`` per parameter) and
    ``kwargs``."""
    signature = signature_of(function)
    positional = signature.positional
    inputs = check_object(obj["inputs"], f"{where}.inputs", positional)
    require(set(inputs) == set(positional), f"{where}.inputs",
            f"must be exactly {', '.join(positional)}")
    for name in positional:
        if name == "v" and signature.grads:
            check_grad(inputs[name], f"{where}.inputs.v", limits, signature.grads)
        else:
            check_input(inputs[name], f"{where}.inputs.{name}", limits)
    check_kwargs(function, obj["kwargs"], f"{where}.kwargs", limits)


# The fields of a second-order case besides its expected ones (docs/golden-format.md).
SECOND_ORDER_CASE_FIELDS = ("id", "function", "inputs", "kwargs", "rtol", "atol", "grad_atol")


def _check_second_order(obj, where: str, limits: Limits, signature: Signature) -> str:
    """A case of a second-order kind: ``hvp`` (an array, or a list for several parameters),
    ``grad_target`` (an array), or ``stats`` (an object of one array per statistic); the
    first two with the ``grad_output`` they are taken at. Judged by the tolerance rule."""
    expected = {"hvp": "hvp", "grad_target": "grad_target", "stats": "stats"}[signature.kind]
    upstream = ("grad_output",) if signature.kind != "stats" else ()
    check_object(obj, where, SECOND_ORDER_CASE_FIELDS + upstream + (expected,))
    _check_inputs(obj, where, limits, obj["function"])
    for key in upstream:
        check_array(obj[key], f"{where}.{key}", limits)
    if signature.kind == "stats":
        stats = check_object(obj["stats"], f"{where}.stats", signature.fields)
        require(set(stats) == set(signature.fields), f"{where}.stats",
                f"must be exactly {', '.join(signature.fields)}")
        for name in signature.fields:
            check_array(stats[name], f"{where}.stats.{name}", limits)
    else:
        check_grad(obj[expected], f"{where}.{expected}", limits, signature.grads)
    for key in ("rtol", "atol", "grad_atol"):
        check_number(obj[key], f"{where}.{key}")
    require(obj.get("exact_only") is None and obj.get("rule", "tolerance") == "tolerance",
            where, "a second-order case is judged by the tolerance rule (no exact_only)")
    return where


def check_corpus(document, where: str, format: str, version: int) -> list:
    """The corpus document's header; returns its list of (unchecked) cases."""
    require(isinstance(document, dict) and document.get("format") == format, where,
            f'not an xent-ref golden corpus (no "format": "{format}")')
    require(document.get("schema") == version, where,
            f"schema {printable(repr(document.get('schema')), 20)}, "
            f"this xent_ref reads schema {version}")
    cases = check_list(document.get("cases"), f'{where}: "cases"')
    ids = [case.get("id") if isinstance(case, dict) else None for case in cases]
    require(len(set(ids)) == len(ids), where, "two cases share an id")
    return cases


def check_results(document, format: str, version: int, limits: Limits) -> list:
    """A results document (docs/golden-format.md, section 4); returns its entries."""
    check_object(document, "results", ("format", "schema", "results"))
    require(document["format"] == format, "results", f'no "format": "{format}"')
    require(document["schema"] == version, "results",
            f"schema {printable(repr(document['schema']), 20)}, expected {version}")
    entries = check_list(document["results"], 'results: "results"')
    for i, entry in enumerate(entries):
        where = f"results[{i}]"
        check_object(entry, where, ("id",))
        check_id(entry["id"], f"{where}.id")
        unknown = sorted(set(entry) - {"id", "loss", "grad", "error", *RESULT_FIELDS})
        require(not unknown, where, f"unknown key {printable(repr(unknown[:1]), 60)}")
        require(isinstance(entry.get("error", ""), str), f"{where}.error", "must be a string")
        if "loss" in entry:
            check_array(entry["loss"], f"{where}.loss", limits)
        for key in ("grad", "hvp", "grad_target"):
            if key in entry:
                several = isinstance(entry[key], list)  # checked against the case when judged
                check_grad(entry[key], f"{where}.{key}", limits,
                           ("",) * len(entry[key]) if several else ())
        if "stats" in entry:
            stats = check_object(entry["stats"], f"{where}.stats")
            for name, value in stats.items():
                require(name in STATISTICS, f"{where}.stats",
                        f"unknown statistic {printable(repr(name), 40)}")
                check_array(value, f"{where}.stats.{name}", limits)
    return entries


# A results entry's field for each second-order kind (docs/golden-format.md, section 4).
RESULT_FIELDS = ("hvp", "grad_target", "stats")


def dtype_of(name, where: str = "array") -> np.dtype:
    """The NumPy dtype of an allowed name (never of anything else: a file must not make
    NumPy allocate a "U100000000" array)."""
    require(isinstance(name, str) and name in DTYPES, where,
            f"dtype {printable(repr(name), 40)} is not one of {', '.join(DTYPES)}")
    try:
        return dtype_named(name)
    except TypeError as error:  # bfloat16 without ml_dtypes
        raise SchemaError(f"{where}: {error}") from None
