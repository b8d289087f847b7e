"""Check an implementation against the golden corpus: what matches, by how much, which
groups of cases fail, and which known convention explains them.

Three ways in, one engine (:func:`run` or :func:`compare_results`, then :class:`Report`):

* ``xent_ref.testing.check(fn, "cross_entropy")`` and friends, from Python or pytest;
* ``xent-ref verify --impl MODULE``: a Python module (a dotted name, or a path to a
  ``.py`` file) offering any of xent_ref's functions under the same names and
  signatures, NumPy in and NumPy out; the ``_grad`` twins are optional. ``torch`` is
  the built-in adapter around ``torch.nn.functional`` (:mod:`xent_ref.verify.torch_adapter`),
  ``xent_ref`` the reference itself.
* ``xent-ref verify --results FILE``: losses and gradients computed elsewhere (C, Rust,
  CUDA...) from the exported corpus and written as a results file
  (``docs/golden-format.md``).

The rule (:func:`compare`): dtype and shape must match; nan must be nan, an infinity the
same infinity; every finite expected value ``e`` needs ``|got - e| <= atol + rtol*|e|``
with the case's own ``rtol`` and ``atol``. A function that raises (anything, ``SystemExit``
included) fails the case, with its message. Failures are grouped by the options in the
case ids (:func:`group_failures`) and diagnosed against the catalogue of
:mod:`xent_ref.verify.conventions`. Exit status: 0 when every check passes, 1 when any fails,
2 when nothing could be checked (the module or torch is missing, a file is unreadable
or not what it claims to be).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import itertools
import json
import os
import sys
import textwrap
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, Mapping

import numpy as np

from xent_ref import golden
from xent_ref.verify import conventions as _conventions
from xent_ref.golden import schema as _schema
from xent_ref.golden.jsonio import is_float
from xent_ref.golden.schema import SchemaError, printable

RESULTS_FORMAT = "xent-ref-results"
RESULTS_SCHEMA = 1
EXIT_PASSED, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2
WIDTH = 96  # the widest line the report prints
REPORT_FORMAT = "xent-ref-verify-report"


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
    checks = []
    for name, want, have in zip(names, expected, got):
        if want is None or have is None:
            ok = want is None and have is None
            spelled = ["None" if part is None else "an array" for part in (want, have)]
            why = "" if ok else f"grad of {name}: expected {spelled[0]}, got {spelled[1]}"
            checks.append(Check(ok, why, 0.0 if ok else np.inf, 0.0 if ok else np.inf, ok))
            continue
        check = judge(_Part(case, want, len(checks)), function, have)
        checks.append(replace(check, why=f"grad of {name}: {check.why}" if check.why else ""))
    failing = [c for c in checks if not c.ok]
    return Check(not failing, failing[0].why if failing else "",
                 max(c.max_abs for c in checks), max(c.max_rel for c in checks),
                 all(c.exact for c in checks))


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


# ---------------------------------------------------------------------------
# Running an implementation
# ---------------------------------------------------------------------------


def _run_one(fn, case: golden.Case, function: str) -> Outcome:
    expected = case.grad if function.endswith("_grad") else case.loss
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


def functions_of(module) -> dict[str, Callable]:
    """The corpus functions (and ``_grad`` twins) a module offers, by name."""
    return {name: getattr(module, name) for name in function_order()
            if callable(getattr(module, name, None))}


def run(implementation: Mapping[str, Callable], cases) -> list[Outcome]:
    """Run every case through each function (and ``_grad`` twin) ``implementation`` maps."""
    outcomes = []
    for case in cases:
        for name in (case.function, case.grad_function):
            if name in implementation:
                outcomes.append(_run_one(implementation[name], case, name))
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
                                      ("grad", golden.decode_grad)) if key in entry}
        if case_id not in by_id:
            problems.append(f"result for an unknown case id {printable(repr(case_id), 80)}")
        elif case_id in results:
            problems.append(f"two results for case {printable(repr(case_id), 80)}")
        else:
            results[case_id] = dict(entry, **arrays)
    offered = {name for case_id, entry in results.items()
               for key, name in (("loss", by_id[case_id].function),
                                 ("grad", by_id[case_id].grad_function)) if key in entry}
    outcomes = []
    for case in cases:
        entry = results.get(case.id, {})
        for key, name in (("loss", case.function), ("grad", case.grad_function)):
            if name in offered:
                outcomes.append(_judge_entry(case, name, entry, key))
    return outcomes, problems


def _judge_entry(case, name: str, entry: dict, key: str) -> Outcome:
    """One decoded result array (``entry[key]``) against the expected one."""
    expected = case.grad if name.endswith("_grad") else case.loss
    if "error" in entry:
        return Outcome(case, name, expected, None,
                       _failed(f"the implementation reported: {printable(entry['error'])}"))
    if key not in entry:
        return Outcome(case, name, expected, None,
                       _failed(f"no {key!r} for this case in the results"))
    return Outcome(case, name, expected, entry[key], judge(case, name, entry[key]))


# ---------------------------------------------------------------------------
# Grouping the failures by the options in the case ids
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Failing cases of one function that share ``options`` (``{}``: no common option).

    ``total`` is how many checked cases of the function have those options and
    ``failing`` how many of those fail; ``cases`` are the ones this group accounts for
    (the groups of a function never share a case). When ``cases`` are all ``total`` the
    group is "all N cases with ..."."""

    function: str
    options: Mapping[str, str]
    cases: tuple[str, ...]
    total: int
    failing: int

    @property
    def all(self) -> bool:
        return len(self.cases) == self.total

    def describe(self) -> str:
        with_ = " with " + ", ".join(f"{k}={v}" for k, v in self.options.items())
        if not self.options:
            with_ = ""
        if self.all:
            return f"all {self.total} cases{with_}"
        if self.failing == self.total:
            return f"{len(self.cases)} more cases{with_} (all {self.total} of them fail)"
        return f"{len(self.cases)} of {self.total} cases{with_}"

    def to_json(self) -> dict:
        return {"function": self.function, "options": dict(self.options),
                "failed": len(self.cases), "total": self.total, "all": self.all,
                "description": self.describe(), "cases": list(self.cases)}


MAX_TERMS = 3  # options in one group's description


def _conjunction(terms, masks) -> int:
    return functools.reduce(lambda m, term: m & masks[term], terms, -1)


def group_failures(outcomes) -> list[Group]:
    """Every failure, in groups per function, each failure in exactly one group; greedily
    the largest groups first, described by at most :data:`MAX_TERMS` options from the
    case ids. Preferred, in turn: options that select only cases not yet grouped, all
    failing ("all 52 cases with weight=yes, reduction=mean"); options that select only
    failing cases, some grouped already ("18 more cases with ..."); and, for what is
    left, the options most of it shares ("3 of 8 cases with ...")."""
    groups = []
    by_function: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_function.setdefault(outcome.function, []).append(outcome)
    for function, rows in by_function.items():
        every = (1 << len(rows)) - 1
        failing = sum(1 << i for i, o in enumerate(rows) if not o.check.ok)
        masks: dict[tuple, int] = {}
        for i, o in enumerate(rows):
            for item in o.case.options.items():
                masks[item] = masks.get(item, 0) | (1 << i)
        left = failing
        while left:
            items = sorted({item for i, o in enumerate(rows) if left >> i & 1
                            for item in o.case.options.items()})
            candidates = [(_conjunction(terms, masks) & every, terms)
                          for size in range(MAX_TERMS + 1)
                          for terms in itertools.combinations(items, size)]
            for allowed in (left, failing, every):  # the preferences, in turn
                # Most of what is left, then the fewest other cases, then the fewest terms.
                usable = [((m & left).bit_count(), -m.bit_count(), -len(t), m, t)
                          for m, t in candidates if m & ~allowed == 0 and m & left]
                if usable:  # (the empty conjunction always is, in the last round)
                    break
            *_, mask, terms = max(usable)
            ids = tuple(o.case.id for i, o in enumerate(rows) if (mask & left) >> i & 1)
            groups.append(Group(function, dict(terms), ids, mask.bit_count(),
                                (mask & failing).bit_count()))
            left &= ~mask
    return groups


# ---------------------------------------------------------------------------
# Diagnosis: which known convention the implementation follows instead
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """A convention of :mod:`xent_ref.verify.conventions` that explains ``cases`` of ``function``
    (the implementation's output matches it there, within the case tolerance).
    ``failing`` is False for checks that pass but are not exact (``exact_only`` cases)."""

    id: str
    function: str
    cases: tuple[str, ...]
    explanation: str
    fix: str
    failing: bool = True

    def to_json(self) -> dict:
        return {"id": self.id, "function": self.function, "cases": list(self.cases),
                "explanation": self.explanation, "fix": self.fix, "failing": self.failing}


UNEXPLAINED = "unexplained"


def diagnose(outcomes) -> list[Diagnosis]:
    """Name the convention behind each failing (or inexact ``exact_only``) outcome.

    For each function, every convention of the catalogue that applies computes, with
    xent_ref's own functions, the value an implementation following it would return;
    the one matching most of the outcomes is named for those, and so on. What no
    convention explains is one :data:`UNEXPLAINED` diagnosis per function.
    """
    diagnoses = []
    by_function: dict[tuple[str, bool], list[Outcome]] = {}
    for o in outcomes:
        inexact = o.check.ok and o.case.exact_only and not o.check.exact
        if not o.check.ok or inexact:
            by_function.setdefault((o.function, not o.check.ok), []).append(o)
    for (function, failing), rows in by_function.items():
        matches = {o.case.id: [c.id for c in _conventions.CATALOGUE
                               if _conventions.explains(c, o, judge, exact=not failing)]
                   for o in rows}
        left = {o.case.id for o in rows}
        while left:
            counts = {c.id: sum(c.id in matches[i] for i in left) for c in _conventions.CATALOGUE}
            best = max(counts, key=counts.get)  # the catalogue's order breaks ties
            if not counts[best]:
                break
            explained = tuple(o.case.id for o in rows
                              if o.case.id in left and best in matches[o.case.id])
            convention = _conventions.BY_ID[best]
            diagnoses.append(Diagnosis(best, function, explained, convention.explanation,
                                       convention.fix, failing))
            left -= set(explained)
        if left:
            diagnoses.append(Diagnosis(
                UNEXPLAINED, function, tuple(o.case.id for o in rows if o.case.id in left),
                "no known convention explains these (see the first failing case)",
                "compare the case's numbers by hand; `xr.explain` shows the reference's steps",
                failing))
    return diagnoses


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def function_order() -> list[str]:
    """Every function the corpus checks, each followed by its gradient twin."""
    return [name for f in golden.FUNCTIONS for name in (f, f + "_grad")]


@dataclass(frozen=True)
class DtypeSelection:
    """The dtypes a run checks (``dtypes=`` of :func:`xent_ref.testing.check`, ``verify
    --dtypes``) and, by dtype, how many cases it left out."""

    dtypes: tuple[str, ...]
    left_out: Mapping[str, int]

    def describe(self) -> str:
        left = ", ".join(f"{n} {dtype}" for dtype, n in self.left_out.items())
        return (f"dtypes checked: {', '.join(self.dtypes)} only; left out: "
                f"{sum(self.left_out.values())} cases" + (f" ({left})" if left else ""))

    def to_json(self) -> dict:
        return {"checked": list(self.dtypes), "left_out": sum(self.left_out.values()),
                "left_out_by_dtype": dict(self.left_out)}


def dtype_names(dtypes) -> tuple[str, ...]:
    """The corpus's names of ``dtypes`` (one or several of "float32", "f32", np.float32,
    "bfloat16", ml_dtypes.bfloat16, ...), in the corpus's order; a ValueError names any
    dtype the corpus has no case of.

    >>> dtype_names(["f64", "float32"])
    ('float32', 'float64')
    """
    if isinstance(dtypes, str) or not isinstance(dtypes, Iterable):
        dtypes = [dtypes]
    known = golden.DTYPES + golden.LOW_PRECISION_DTYPES
    names = set()
    for value in dtypes:
        name = value if isinstance(value, str) else None
        if name is None:
            try:
                name = np.dtype(value).name
            except TypeError:
                name = repr(value)
        name = golden.DTYPE_SUFFIXES.get(name, name)
        if name not in known:
            raise ValueError(f"dtypes: {printable(name, 40)} is not a dtype of the corpus; "
                             f"expected some of {', '.join(known)} (or f32, f64, f16, bf16)")
        names.add(name)
    if not names:
        raise ValueError("dtypes: no dtype given")
    return tuple(name for name in known if name in names)


def select_dtypes(cases, dtypes) -> tuple[tuple, tuple, DtypeSelection]:
    """``(the cases of dtypes, the others, the selection)``; :func:`dtype_names` checks
    the names."""
    names = dtype_names(dtypes)
    kept = tuple(case for case in cases if case.dtype in names)
    others = tuple(case for case in cases if case.dtype not in names)
    counts = {name: sum(case.dtype == name for case in others)
              for name in golden.DTYPES + golden.LOW_PRECISION_DTYPES}
    return kept, others, DtypeSelection(names, {d: n for d, n in counts.items() if n})


@dataclass(frozen=True)
class CorpusInfo:
    origin: str  # "generated afresh" or "read from PATH"
    version: int
    sha256: str
    cases: int

    @classmethod
    def of(cls, cases, origin: str) -> CorpusInfo:
        return cls(origin, golden.SCHEMA_VERSION, golden.corpus_sha256(cases), len(cases))


@dataclass(frozen=True)
class Report:
    """What :func:`xent_ref.testing.check` returns and ``xent-ref verify`` prints.

    ``ok``: every check passed and the results had no problems; ``failures``: the
    failing :class:`Outcome` objects; ``groups`` and ``diagnoses``: see
    :func:`group_failures` and :func:`diagnose`. ``str(report)`` is the text report,
    ``_repr_html_`` its HTML form for Jupyter, :meth:`to_json` and :meth:`to_junit_xml`
    the machine-readable ones.
    """

    subject: str
    corpus: CorpusInfo
    outcomes: tuple[Outcome, ...]
    problems: tuple[str, ...] = ()
    known_inaccuracy: str | None = None
    scope: tuple[str, ...] = ()  # the functions that could have been offered (default: all)
    selection: DtypeSelection | None = None  # dtypes= / --dtypes: what was left out
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and not self.failures and not self.problems

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.check.ok]

    @property
    def groups(self) -> list[Group]:
        if "groups" not in self._cache:
            self._cache["groups"] = group_failures(self.outcomes)
        return self._cache["groups"]

    @property
    def diagnoses(self) -> list[Diagnosis]:
        if "diagnoses" not in self._cache:
            self._cache["diagnoses"] = diagnose(self.outcomes)
        return self._cache["diagnoses"]

    def diagnosis_of(self, outcome: Outcome) -> Diagnosis | None:
        for d in self.diagnoses:
            if d.function == outcome.function and outcome.case.id in d.cases:
                return d
        return None

    def counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            entry = counts.setdefault(o.function, {"passed": 0, "failed": 0})
            entry["passed" if o.check.ok else "failed"] += 1
        return {name: counts[name] for name in function_order() if name in counts}

    def __str__(self) -> str:
        return "\n".join(_text_report(self))

    def _repr_html_(self) -> str:
        return _html_report(self)

    def to_json(self) -> dict:
        """``{"ok", "corpus", "functions", "groups", "diagnoses", ...}`` (see
        docs/golden-format.md, "Reports")."""
        return {
            "format": REPORT_FORMAT,
            "ok": self.ok,
            "subject": self.subject,
            "corpus": {"version": self.corpus.version, "sha256": self.corpus.sha256,
                       "cases": self.corpus.cases, "origin": self.corpus.origin},
            "dtypes": self.selection.to_json() if self.selection else None,
            "functions": self.counts(),
            "groups": [g.to_json() for g in self.groups],
            "diagnoses": [d.to_json() for d in self.diagnoses],
            "problems": list(self.problems),
        }

    def to_junit_xml(self) -> str:
        """One ``<testcase>`` per golden case and function; a failure carries the why
        and the diagnosis id."""
        return _junit(self)


def _show_array(label: str, a) -> list[str]:
    """``label dtype shape values``, the values on following lines when long."""
    if a is None:
        return [f"  {label:<16}(none)"]
    a = np.asarray(a)
    head = f"  {label:<16}{a.dtype} {a.shape}"
    text = np.array2string(a, max_line_width=WIDTH - 6, threshold=40, edgeitems=3,
                           floatmode="unique", separator=", ")
    if a.ndim == 0 or ("\n" not in text and len(head) + 1 + len(text) <= WIDTH):
        return [f"{head} {text}"]
    return [head] + ["      " + line for line in text.splitlines()]


def _show_case(outcome: Outcome) -> list[str]:
    case = outcome.case
    lines = [f"  {'case':<16}{printable(case.id)}"]
    for name, a in case.inputs.items():
        lines += _show_array(name, a)
    for key, value in case.kwargs.items():
        lines += _show_array(key, value) if isinstance(value, np.ndarray) else [
            f"  {key:<16}{value!r}"]
    if outcome.function.endswith("_grad"):
        lines += _show_array("grad_output", case.grad_output)
    for label, value in (("expected", outcome.expected), ("got", outcome.got)):
        if isinstance(value, tuple):  # several gradients, one per argument
            names = golden.SIGNATURES[case.function].grads
            for name, part in zip(names, value):
                lines += _show_array(f"{label} d{name}", part)
        else:
            lines += _show_array(label, value)
    rtol, atol = case.tolerance_for(outcome.function)
    lines.append(f"  {'tolerance':<16}rtol {rtol:.3g}, atol {atol:.3g}")
    lines.append(_wrap(f"  {'why':<16}{outcome.check.why}", indent=18))
    if case.exact_only:
        lines.append(_wrap(f"  {'exact_only':<16}{printable(case.exact_only)}", indent=18))
    return lines


def _format_error(value: float) -> str:
    return f"{value:12.3g}" if np.isfinite(value) else f"{'inf':>12}"


def _text_report(report: Report) -> list[str]:
    outcomes = report.outcomes
    checked = len({o.case.id for o in outcomes})
    of = "" if checked == report.corpus.cases else f"{checked} of "
    lines = [_wrap(f"{report.subject}: {of}{report.corpus.cases} golden cases (schema "
                   f"{report.corpus.version}, {report.corpus.origin}, "
                   f"sha256 {report.corpus.sha256[:16]})"),
             "rule: |got - expected| <= atol + rtol*|expected| (atol: the case's, grad_atol "
             "for", "      gradients); nan = nan; same-sign inf;",
             "      dtype and shape must match (docs/golden-format.md)", ""]
    if any(o.case.rule == "reference-error" for o in outcomes):
        lines[4:4] = ["      float16/bfloat16: |got - float64 answer| <= PyTorch's own error "
                      "+ one ulp"]
    if report.selection is not None:
        lines[1:1] = [_wrap(report.selection.describe())]
    by_function: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_function.setdefault(outcome.function, []).append(outcome)
    order = [name for name in function_order() if name in by_function]
    lines += [f"{'function':<38}{'cases':>6}{'passed':>8}{'failed':>8}"
              f"{'max abs err':>12}{'max rel err':>12}", "-" * 84]
    for name in order:
        rows = by_function[name]
        passed = sum(o.check.ok for o in rows)
        max_abs = max(o.check.max_abs for o in rows)
        max_rel = max(o.check.max_rel for o in rows)
        lines.append(f"{name:<38}{len(rows):>6}{passed:>8}{len(rows) - passed:>8}"
                     f"{_format_error(max_abs)}{_format_error(max_rel)}")
    missing = [name for name in report.scope or function_order() if name not in by_function]
    if missing:
        lines += ["", _wrap("not offered (not checked): " + ", ".join(missing))]

    inexact = [o for o in outcomes if o.check.ok and o.case.exact_only and not o.check.exact]
    if inexact:
        label = report.known_inaccuracy or "the implementation is not exact here"
        lines += ["", _wrap(f"{len(inexact)} exact_only checks pass only through atol "
                            f"(reported, not failed): {printable(label, 400)}")]
        for d in report.diagnoses:
            if not d.failing and d.id != UNEXPLAINED:
                lines.append(_wrap(f"  [{d.id}] {d.function}: {d.explanation}", indent=4))
        for o in inexact[:8]:
            lines.append(f"  {printable(o.case.id)} ({o.function})")
            got = np.asarray(o.got)[o.check.worst]
            lines.append(f"      expected {o.expected[o.check.worst]!s}, got {got!s}")
        if len(inexact) > 8:
            lines.append(f"  ... and {len(inexact) - 8} more")

    groups = report.groups
    for name in order:
        failed = [o for o in by_function[name] if not o.check.ok]
        if not failed:
            continue
        parts = [g.describe() for g in groups if g.function == name]
        shown = parts[:6] + ([f"{len(parts) - 6} more groups"] if len(parts) > 6 else [])
        lines += ["", _wrap(f"FAIL {name}: {len(failed)} of {len(by_function[name])} failing = "
                            + " + ".join(shown), indent=4)]
        for d in report.diagnoses:
            if d.function == name and d.failing:
                lines.append(_wrap(f"  [{d.id}] {len(d.cases)} cases: {d.explanation}",
                                   indent=4))
                if d.id != UNEXPLAINED:
                    lines.append(_wrap(f"      fix: {d.fix}", indent=11))
        lines += ["  the first failing case:"] + _show_case(failed[0])
    for problem in report.problems[:20]:
        lines.append(f"PROBLEM: {problem}")
    if len(report.problems) > 20:
        lines.append(f"PROBLEM: ... and {len(report.problems) - 20} more")
    failures = report.failures
    total = len(outcomes)
    lines += ["", f"FAILED: {len(failures)} of {total} checks failed" if failures
              else f"PASSED: all {total} checks"]
    return lines


def _html_report(report: Report) -> str:
    status = "PASSED" if report.ok else "FAILED"
    rows = "".join(f"<tr><td>{escape(name)}</td><td>{c['passed']}</td><td>{c['failed']}</td>"
                   "</tr>" for name, c in report.counts().items())
    diagnoses = "".join(
        f"<li><code>{escape(d.id)}</code> ({escape(d.function)}, {len(d.cases)} cases): "
        f"{escape(d.explanation)}<br><i>fix:</i> {escape(d.fix)}</li>"
        for d in report.diagnoses)
    groups = "".join(f"<li>{escape(g.function)}: {escape(g.describe())}</li>"
                     for g in report.groups)
    return (f"<div><p><b>{status}</b> &mdash; {escape(report.subject)}</p>"
            "<table><tr><th>function</th><th>passed</th><th>failed</th></tr>"
            f"{rows}</table>"
            + (f"<p>Failing groups:</p><ul>{groups}</ul>" if groups else "")
            + (f"<p>Diagnoses:</p><ul>{diagnoses}</ul>" if diagnoses else "")
            + f"<pre>{escape(str(report))}</pre></div>")


def _junit(report: Report) -> str:
    suite = ET.Element("testsuite", name="xent-ref verify", tests=str(len(report.outcomes)),
                       failures=str(len(report.failures)))
    for outcome in report.outcomes:
        testcase = ET.SubElement(suite, "testcase", classname=outcome.function,
                                 name=printable(outcome.case.id))
        if not outcome.check.ok:
            diagnosis = report.diagnosis_of(outcome)
            label = diagnosis.id if diagnosis else UNEXPLAINED
            failure = ET.SubElement(testcase, "failure", type=label,
                                    message=printable(f"[{label}] {outcome.check.why}", 1000))
            failure.text = printable(diagnosis.explanation if diagnosis else "", 1000)
    return ET.tostring(suite, encoding="unicode") + "\n"


def _wrap(text: str, indent: int = 2) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent=" " * indent)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def load_implementation(name: str) -> ModuleType:
    """``torch``, ``xent_ref``, a path to a ``.py`` file, or an importable module name
    (looked up from the current directory too, as ``python -m`` would)."""
    if name == "torch":
        from xent_ref.verify import torch_adapter as _torch_adapter

        return _torch_adapter
    if name.endswith(".py") or os.sep in name:
        path = Path(name)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise ImportError(f"no Python file at {name}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def load_cases(corpus=None, limits: _schema.Limits | None = None):
    """``(cases, CorpusInfo)``: the generated corpus, or the one in the file ``corpus``."""
    if corpus is None:
        cases = golden.build_corpus()
        return cases, _generated_info()
    cases = golden.read_corpus(corpus, limits)
    return cases, CorpusInfo.of(cases, f"read from {printable(corpus)}")


@functools.lru_cache(maxsize=1)
def _generated_info() -> CorpusInfo:
    return CorpusInfo.of(golden.build_corpus(), "generated afresh")


def _write_output(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(impl: str | None = None, results: str | None = None, corpus: str | None = None,
         json_path: str | None = None, junit_path: str | None = None,
         max_bytes: int | None = None, max_elements: int | None = None,
         dtypes=None) -> int:
    """``xent-ref verify``: exactly one of ``impl`` and ``results``; returns the exit status.
    ``json_path`` / ``junit_path``: also write the JSON / JUnit XML report (``-``: stdout,
    which then carries only the JSON); ``dtypes``: check only the cases of these dtypes
    (:func:`dtype_names`; the report says what was left out)."""
    def fail(message: str) -> int:
        print(f"xent-ref verify: {message}", file=sys.stderr if json_path == "-" else sys.stdout)
        return EXIT_UNAVAILABLE

    if (impl is None) == (results is None):
        return fail("give exactly one of --impl MODULE and --results FILE")
    try:
        limits = _schema.Limits.from_env(max_bytes, max_elements)
    except SchemaError as error:
        return fail(str(error))
    try:
        cases, info = load_cases(corpus, limits)
    except SchemaError as error:
        return fail(f"cannot read the corpus: {error}")
    selection, left_out = None, ()
    if dtypes is not None:
        try:
            cases, left_out, selection = select_dtypes(cases, dtypes)
        except ValueError as error:
            return fail(str(error))
    known = None
    problems: list[str] = []
    if impl is not None:
        try:
            module = load_implementation(impl)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - sys.exit() at import is no pass
            return fail(f"cannot import {printable(repr(impl))}: "
                        f"{type(error).__name__}: {printable(error)}")
        unavailable = getattr(module, "UNAVAILABLE", None)
        if unavailable:
            return fail(f"{printable(impl)} is not available: {printable(unavailable)}")
        known = getattr(module, "KNOWN_INACCURACY", None)
        description = getattr(module, "DESCRIPTION", module.__name__)
        subject = f"xent-ref verify --impl {printable(impl)} ({printable(description)})"
        outcomes = run_module(module, cases)
    else:
        try:
            document = _schema.read_json(results, "results", limits)
            outcomes, problems = compare_results(document, cases, limits,
                                                 os.path.dirname(os.path.abspath(results)),
                                                 left_out)
        except SchemaError as error:
            return fail(f"cannot read the results: {error}")
        name = document.get("implementation", "unnamed")
        subject = f"xent-ref verify --results {printable(results)} ({printable(name)})"
    if not outcomes:
        return fail(f"{printable(impl or results)} offers none of: "
                    f"{', '.join(function_order())}")
    report = Report(subject, info, tuple(outcomes), tuple(problems), known,
                    selection=selection)
    if json_path != "-":
        print(report)
    try:
        if json_path is not None:
            _write_output(json_path, json.dumps(report.to_json(), indent=1) + "\n")
        if junit_path is not None:
            _write_output(junit_path, report.to_junit_xml())
    except OSError as error:
        return fail(f"cannot write the report: {printable(error)}")
    return EXIT_PASSED if report.ok else EXIT_FAILED
