"""Judging an implementation's answers, case by case.

The rule (:func:`compare`): dtype and shape must match; nan must be nan, an infinity the
same infinity; every finite expected value ``e`` needs ``|got - e| <= atol + rtol*|e|``
with the case's own ``rtol`` and ``atol`` (:func:`judge` applies a case's rule, the
low-precision cases' ``"reference-error"`` too). A function that raises (anything,
``SystemExit`` included) fails the case, with its message. :func:`run` calls an
implementation's functions on the cases; :func:`compare_results` reads the answers of
one that ran elsewhere (a results file, ``docs/golden-format.md``).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Callable, Mapping

import numpy as np

from xent_ref import golden
from xent_ref.golden import schema as _schema
from xent_ref.golden.jsonio import is_float
from xent_ref.golden.schema import printable

RESULTS_FORMAT = "xent-ref-results"
RESULTS_SCHEMA = 1


@dataclass(frozen=True)
class Check:
    """The comparison of one produced array with the expected one."""

    ok: bool
    why: str  # empty when ok
    max_abs: float  # worst |got - expected| over finite expected values
    max_rel: float  # worst |got - expected| / |expected| where |expected| > atol
    exact: bool  # within rtol alone (what ``exact_only`` cases are reported by)
    worst: tuple = ()  # the element furthest outside (or least inside) its tolerance


@dataclass(frozen=True)
class Outcome:
    """One function (a loss or its gradient) run on one case."""

    case: golden.Case
    function: str  # "cross_entropy" or "cross_entropy_grad"
    expected: np.ndarray
    got: np.ndarray | None  # the produced array, or None when there is none
    check: Check


def _failed(why: str) -> Check:
    return Check(False, why, float("inf"), float("inf"), False)


def as_array(got) -> tuple[np.ndarray | None, str]:
    """``(array, "")`` for a numeric array-like, else ``(None, why not)``: a ragged list,
    an object array or a string is a failed case, never a crash of the report."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy < 1.24 only warns about ragged lists
            array = np.asarray(got)
    except Exception as error:  # noqa: BLE001 - whatever the implementation returned
        return None, f"returned something that is not an array: {printable(error)}"
    if not (array.dtype.kind in "biu" or is_float(array.dtype)):
        return None, f"returned an array of dtype {printable(array.dtype)}, not numbers"
    return array, ""


def _mismatch(expected: np.ndarray, got: np.ndarray) -> str:
    """Why ``got`` cannot be compared with ``expected`` (dtype or shape), or ``""``."""
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, expected {expected.dtype}"
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    return ""


def compare(expected: np.ndarray, got, rtol: float, atol: float) -> Check:
    """Judge ``got`` against ``expected`` by the corpus's rule (see the module docstring).

    >>> compare(np.array([1.0, np.nan]), np.array([1.0 + 1e-14, np.nan]), 1e-12, 0.0).ok
    True
    >>> compare(np.array([1.0, -np.inf]), np.array([1.0, np.inf]), 1e-12, 0.0).why
    'at index (1,): expected -inf, got inf'
    """
    got, why = as_array(got)
    why = why or _mismatch(expected, got)
    if why:
        return _failed(why)
    e = expected.astype(np.float64)
    g = got.astype(np.float64)
    finite = np.isfinite(e)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(g - e), 0.0)
    err[np.isnan(err)] = np.inf  # got nan where a number was expected
    same_non_finite = np.where(np.isnan(e), np.isnan(g), e == g)
    err[~finite & ~same_non_finite] = np.inf
    allowed = np.where(finite, atol + rtol * np.abs(e), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(err == 0, 0.0, err / allowed)  # above 1 fails
        rel = np.where(finite & (np.abs(e) > atol), err / np.abs(e), 0.0)
    worst = np.unravel_index(int(np.argmax(excess)), e.shape) if e.size else ()
    exact = bool(np.all(err <= rtol * np.abs(np.where(finite, e, 0.0))))
    check = Check(True, "", float(err.max(initial=0.0)), float(rel.max(initial=0.0)), exact,
                  tuple(int(i) for i in worst))
    if not (excess > 1).any():
        return check
    why = f"at index {check.worst}: expected {expected[worst]!s}, got {got[worst]!s}"
    if finite[worst]:
        why += (f"; |got - expected| = {err[worst]:.3g} > atol + rtol*|expected| "
                f"= {allowed[worst]:.3g}")
    return replace(check, ok=False, why=why)


def _judge_parts(case, function: str, expected: tuple, got) -> Check:
    """Several gradients (``case.grad`` a tuple): each part judged as one array would be
    (``None`` must be ``None``); the check fails with the first failing part's reason,
    named by its argument, and reports the worst errors of all."""
    names = golden.SIGNATURES[case.function].grads
    if not (isinstance(got, (tuple, list)) and len(got) == len(expected)):
        return _failed(f"returned {type(got).__name__}, expected a tuple of {len(expected)} "
                       f"gradients ({', '.join(names)})")
    return _combined([(f"grad of {name}", want, have,
                        lambda w, h, i=i: judge(_Part(case, w, i), function, h))
                       for i, (name, want, have) in enumerate(zip(names, expected, got))])


@dataclass(frozen=True)
class _Part:
    """One of a case's several gradients, as a case of its own for :func:`judge`."""

    case: golden.Case
    grad: np.ndarray
    index: int  # which of the gradients

    @property
    def rule_params(self):
        """The case's, with this part's reference and allowed error (rule
        ``"reference-error"`` records one of each per gradient)."""
        params = self.case.rule_params
        if not isinstance(params.get("grad_reference"), tuple):
            return params
        return {**params, "grad_reference": params["grad_reference"][self.index],
                "grad_error": params["grad_error"][self.index]}

    def __getattr__(self, name):
        return getattr(self.case, name)


def judge(case: golden.Case, function: str, got) -> Check:
    """``got`` for ``function`` (the loss or its ``_grad``) on ``case``, by the case's rule.

    ``"tolerance"``: :func:`compare` with the case's ``rtol`` and ``atol``.
    ``"reference-error"`` (for low-precision dtypes): the dtype and shape of the expected
    value, and, elementwise, an error against the float64 reference in
    ``case.rule_params`` no larger than the largest error a trusted implementation
    (PyTorch) makes there (``loss_error``/``grad_error``) plus ``atol + rtol * |reference|``
    (the corpus's low-precision cases: one ulp of the dtype at the value's magnitude).
    Such a check is ``exact`` when it holds without PyTorch's allowance.
    """
    if function in golden.SECOND_ORDER:
        return _judge_second_order(case, function, got)
    expected = case.grad if function.endswith("_grad") else case.loss
    if isinstance(expected, tuple):
        return _judge_parts(case, function, expected, got)
    rtol, atol = case.tolerance_for(function)
    if case.rule == "tolerance":
        return compare(expected, got, rtol, atol)
    array, why = as_array(got)
    why = why or _mismatch(expected, array)
    if why:
        return _failed(why)
    key = "grad" if function.endswith("_grad") else "loss"
    reference = np.asarray(case.rule_params[f"{key}_reference"], dtype=np.float64)
    got = array.astype(np.float64)
    check = compare(reference, got, rtol, float(case.rule_params[f"{key}_error"]) + atol)
    # "exact": within one ulp without PyTorch's allowance (what exact_only reports).
    return replace(check, exact=compare(reference, got, rtol, atol).ok)


def expected_of(case, function: str):
    """What ``function`` (a loss, its ``_grad``, or a second-order kind) should give on
    ``case``: an array, a tuple of them (several gradients or directions), or for the
    statistics ``{statistic: array}``."""
    if function in golden.SECOND_ORDER:
        signature = golden.signature_of(function)
        if signature.kind == "stats":
            return dict(case.expected)
        return case.expected[signature.fields[0]]
    return case.grad if function.endswith("_grad") else case.loss


def _judge_second_order(case, function: str, got) -> Check:
    """An hvp or a target's gradient by the gradients' tolerance (``grad_atol``), part by
    part for several parameters; the statistics field by field, the floating ones by the
    losses' tolerance (``atol``), ``argmax``, ``correct`` and ``kept`` exactly."""
    expected = expected_of(case, function)
    rtol, atol = case.tolerance_for(function)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return _failed(f"returned {type(got).__name__}, expected the statistics "
                           f"{', '.join(expected)}")
        exact = golden.EXACT_STATISTICS
        return _combined([(f"statistic {name}", want, got.get(name),
                           _by_tolerance(0.0, 0.0) if name in exact
                           else _by_tolerance(rtol, atol)) for name, want in expected.items()])
    if not isinstance(expected, tuple):
        return compare(expected, got, rtol, atol)
    names = golden.signature_of(function).grads
    if not (isinstance(got, (tuple, list)) and len(got) == len(expected)):
        return _failed(f"returned {type(got).__name__}, expected a tuple of {len(expected)} "
                       f"products ({', '.join(names)})")
    return _combined([(f"grad of {name}", want, have, _by_tolerance(rtol, atol))
                      for name, want, have in zip(names, expected, got)])


def _by_tolerance(rtol: float, atol: float) -> Callable:
    return lambda expected, got: compare(expected, got, rtol, atol)


def _combined(parts) -> Check:
    """``(label, expected, got, judging)`` judged one by one (``judging(expected, got)``;
    ``None`` must be ``None``): failing with the first failing part's reason, prefixed by
    its label, and reporting the worst errors of all."""
    checks = []
    for label, want, have, judging in parts:
        if want is None or have is None:
            ok = want is None and have is None
            spelled = ["None" if part is None else "an array" for part in (want, have)]
            why = "" if ok else f"{label}: expected {spelled[0]}, got {spelled[1]}"
            checks.append(Check(ok, why, 0.0 if ok else np.inf, 0.0 if ok else np.inf, ok))
            continue
        check = judging(want, have)
        checks.append(replace(check, why=f"{label}: {check.why}" if check.why else ""))
    failing = [c for c in checks if not c.ok]
    return Check(not failing, failing[0].why if failing else "",
                 max(c.max_abs for c in checks), max(c.max_rel for c in checks),
                 all(c.exact for c in checks))


# ---------------------------------------------------------------------------
# Running an implementation
# ---------------------------------------------------------------------------


def _run_one(fn, case: golden.Case, function: str) -> Outcome:
    expected = expected_of(case, function)
    if function in golden.SECOND_ORDER:
        caller = golden.call_second_order
    else:
        caller = golden.call_grad if function.endswith("_grad") else golden.call_function
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the values are judged, not the warnings
            got = caller(fn, case)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - even sys.exit() is the case's failure
        message = f"raised {type(error).__name__}: {printable(error)}"
        return Outcome(case, function, expected, None, _failed(message))
    if isinstance(expected, dict):
        got, why = _statistics(got, tuple(expected))
        check = judge(case, function, got) if not why else _failed(why)
        return Outcome(case, function, expected, got, check)
    if isinstance(expected, tuple) and isinstance(got, (tuple, list)):
        parts = [None if part is None else as_array(part) for part in got]
        why = next((part[1] for part in parts if part is not None and part[0] is None), "")
        if why:
            return Outcome(case, function, expected, None, _failed(why))
        got = tuple(None if part is None else part[0] for part in parts)
        return Outcome(case, function, expected, got, judge(case, function, got))
    array, why = as_array(got)
    if array is None:
        return Outcome(case, function, expected, None, _failed(why))
    return Outcome(case, function, expected, array, judge(case, function, array))


def _statistics(got, fields: tuple) -> tuple[dict | None, str]:
    """``({statistic: array}, "")`` from what a ``*_stats`` function returned (an object
    with the statistics as attributes, as :class:`xent_ref.stats.TokenStats`, or a
    mapping), else ``(None, why not)``; a missing statistic is ``None`` (it fails)."""
    stats = {}
    for name in fields:
        value = got.get(name) if isinstance(got, Mapping) else getattr(got, name, None)
        if value is not None:
            value, why = as_array(value)
            if value is None:
                return None, f"statistic {name}: {why}"
        stats[name] = value
    return stats, ""


def functions_of(module) -> dict[str, Callable]:
    """The corpus functions (``_grad`` twins, hvp and statistics functions) a module
    offers, by name."""
    return {name: getattr(module, name) for name in function_order()
            if callable(getattr(module, name, None))}


def _checks(case: golden.Case) -> list[tuple[str, str]]:
    """``(checked name, the implementation's function)`` of a case: the loss and its
    ``_grad``; a second-order kind, the function it calls (``*_grad_target``:
    ``*_grad``)."""
    if case.kind == "loss":
        return [(case.function, case.function), (case.grad_function, case.grad_function)]
    return [(case.function, golden.signature_of(case.function).calls)]


def accepts_wrt(fn: Callable) -> bool:
    """Whether ``fn`` names a ``wrt`` parameter (a ``**kwargs`` alone does not say that
    it differentiates with respect to the target)."""
    try:
        parameter = inspect.signature(fn).parameters.get("wrt")
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return parameter is not None and parameter.kind not in (parameter.VAR_POSITIONAL,
                                                             parameter.VAR_KEYWORD)


def skipped(implementation: Mapping[str, Callable], cases) -> dict[str, str]:
    """``{checked name: why}`` for what ``implementation`` offers but cannot be asked:
    a ``*_grad_target`` case needs a ``*_grad`` that takes ``wrt``."""
    found = {}
    for case in cases:
        if case.kind == "grad_target":
            calls = golden.signature_of(case.function).calls
            if calls in implementation and not accepts_wrt(implementation[calls]):
                found[case.function] = f"{calls} takes no wrt= argument"
    return found


def run(implementation: Mapping[str, Callable], cases) -> list[Outcome]:
    """Run every case through each function (and ``_grad`` twin, hvp, statistics)
    ``implementation`` maps; a ``*_grad_target`` case only when the ``_grad`` takes
    ``wrt`` (:func:`skipped`)."""
    outcomes = []
    left_out = skipped(implementation, cases)
    for case in cases:
        for name, calls in _checks(case):
            if calls in implementation and name not in left_out:
                outcomes.append(_run_one(implementation[calls], case, name))
    return outcomes


def run_module(module: ModuleType, cases) -> list[Outcome]:
    """:func:`run` with the functions ``module`` offers."""
    return run(functions_of(module), cases)


def compare_results(document, cases, limits: _schema.Limits | None = None, base=None,
                    left_out=()) -> tuple[list[Outcome], list[str]]:
    """Judge a results document (see docs/golden-format.md); also return its problems.
    ``base``: the results file's directory, where its ``.npy`` arrays are; ``left_out``:
    corpus cases not judged (``--dtypes``), whose results are passed over.

    A malformed document (any array included) raises :class:`SchemaError`. A function
    counts as offered when some result gives its ``loss`` (or ``grad``); then every case
    of that function must have one. ``error`` fails the case.
    """
    limits = limits or _schema.Limits.from_env()
    entries = _schema.check_results(document, RESULTS_FORMAT, RESULTS_SCHEMA, limits)
    by_id = {case.id: case for case in cases}
    skipped = {case.id for case in left_out}
    results, problems = {}, []
    for i, entry in enumerate(entries):
        case_id = entry["id"]
        if case_id in skipped:
            continue
        arrays = {key: decode(entry[key], f"results[{i}].{key}", base, limits)
                  for key, decode in (("loss", golden.decode_stored),
                                      ("grad", golden.decode_grad), ("hvp", golden.decode_grad),
                                      ("grad_target", golden.decode_grad),
                                      ("stats", _decode_statistics)) if key in entry}
        if case_id not in by_id:
            problems.append(f"result for an unknown case id {printable(repr(case_id), 80)}")
        elif case_id in results:
            problems.append(f"two results for case {printable(repr(case_id), 80)}")
        else:
            results[case_id] = dict(entry, **arrays)
    offered = {name for case_id, entry in results.items()
               for key, name in _result_keys(by_id[case_id]) if key in entry}
    outcomes = []
    for case in cases:
        entry = results.get(case.id, {})
        for key, name in _result_keys(case):
            if name in offered:
                outcomes.append(_judge_entry(case, name, entry, key))
    return outcomes, problems


def _result_keys(case) -> list[tuple[str, str]]:
    """``(results field, checked name)`` of a case: ``loss`` and ``grad``, or its
    second-order kind's own field (``hvp``, ``grad_target``, ``stats``)."""
    if case.kind == "loss":
        return [("loss", case.function), ("grad", case.grad_function)]
    return [(case.kind, case.function)]


def _decode_statistics(obj, where: str, base=None, limits=None) -> dict:
    """A checked ``stats`` object of a result: each statistic decoded."""
    return {name: golden.decode_stored(value, f"{where}.{name}", base, limits)
            for name, value in obj.items()}


def _judge_entry(case, name: str, entry: dict, key: str) -> Outcome:
    """One decoded result array (``entry[key]``) against the expected one."""
    expected = expected_of(case, name)
    if "error" in entry:
        return Outcome(case, name, expected, None,
                       _failed(f"the implementation reported: {printable(entry['error'])}"))
    if key not in entry:
        return Outcome(case, name, expected, None,
                       _failed(f"no {key!r} for this case in the results"))
    return Outcome(case, name, expected, entry[key], judge(case, name, entry[key]))


def function_order() -> list[str]:
    """Every function the corpus checks, each followed by its gradient twin, then the
    second-order kinds."""
    return [name for f in golden.FUNCTIONS for name in (f, f + "_grad")] + list(
        golden.SECOND_ORDER_FUNCTIONS)
