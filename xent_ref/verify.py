"""Check an implementation against the golden corpus and print what matches, by how much.

Two ways in:

* ``xent-ref verify --impl MODULE``: a Python module (a dotted name, or a path to a
  ``.py`` file) offering any of xent_ref's functions under the same names and
  signatures, NumPy in and NumPy out; the ``_grad`` twins are optional. ``torch`` is
  the built-in adapter around ``torch.nn.functional`` (:mod:`xent_ref._torch_adapter`),
  ``xent_ref`` the reference itself.
* ``xent-ref verify --results FILE``: losses and gradients computed elsewhere (C, Rust,
  CUDA...) from the exported corpus and written as a results file
  (``docs/golden-format.md``).

The rule (:func:`compare`): dtype and shape must match; nan must be nan, an infinity the
same infinity; every finite expected value ``e`` needs ``|got - e| <= atol + rtol*|e|``
with the case's own ``rtol`` and ``atol``. A function that raises fails the case, with
its message. Exit status: 0 when every check passes, 1 when any fails, 2 when nothing
could be checked (the module or torch is missing, the file is unreadable).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from xent_ref import golden
from xent_ref._jsonio import decode_array

RESULTS_FORMAT = "xent-ref-results"
RESULTS_SCHEMA = 1
EXIT_PASSED, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2
WIDTH = 96  # the widest line the report prints


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
    got: Any  # the produced array, or None when the function raised
    check: Check


def _failed(why: str) -> Check:
    return Check(False, why, float("inf"), float("inf"), False)


def compare(expected: np.ndarray, got, rtol: float, atol: float) -> Check:
    """Judge ``got`` against ``expected`` by the corpus's rule (see the module docstring).

    >>> compare(np.array([1.0, np.nan]), np.array([1.0 + 1e-14, np.nan]), 1e-12, 0.0).ok
    True
    >>> compare(np.array([1.0, -np.inf]), np.array([1.0, np.inf]), 1e-12, 0.0).why
    'at index (1,): expected -inf, got inf'
    """
    try:
        got = np.asarray(got)
    except Exception as error:  # noqa: BLE001 - whatever the implementation returned
        return _failed(f"returned something that is not an array: {error}")
    if got.dtype != expected.dtype:
        return _failed(f"dtype {got.dtype}, expected {expected.dtype}")
    if got.shape != expected.shape:
        return _failed(f"shape {got.shape}, expected {expected.shape}")
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


# ---------------------------------------------------------------------------
# Running an implementation
# ---------------------------------------------------------------------------


def _run_one(fn, caller, case: golden.Case, function: str, expected: np.ndarray) -> Outcome:
    try:
        with np.errstate(all="ignore"):  # the values are judged, not the warnings
            got = caller(fn, case)
    except Exception as error:  # noqa: BLE001 - an implementation's failure is a result
        return Outcome(case, function, expected, None,
                       _failed(f"raised {type(error).__name__}: {error}"))
    return Outcome(case, function, expected, got,
                   compare(expected, got, *case.tolerance_for(function)))


def run_module(module: ModuleType, cases) -> list[Outcome]:
    """Run every case for each function (and ``_grad`` twin) that ``module`` offers."""
    outcomes = []
    for case in cases:
        value_fn = getattr(module, case.function, None)
        if callable(value_fn):
            outcomes.append(_run_one(value_fn, golden.call_function, case,
                                     case.function, case.loss))
        grad_fn = getattr(module, case.grad_function, None)
        if callable(grad_fn):
            outcomes.append(_run_one(grad_fn, golden.call_grad, case,
                                     case.grad_function, case.grad))
    return outcomes


def compare_results(document: dict, cases) -> tuple[list[Outcome], list[str]]:
    """Judge a results document (see docs/golden-format.md); also return its problems.

    A function counts as offered when some result gives its ``loss`` (or ``grad``);
    then every case of that function must have one. ``error`` fails the case.
    """
    by_id = {case.id: case for case in cases}
    results, problems = {}, []
    for entry in document["results"]:
        if entry.get("id") not in by_id:
            problems.append(f"result for an unknown case id {entry.get('id')!r}")
        elif entry["id"] in results:
            problems.append(f"two results for case {entry['id']!r}")
        else:
            results[entry["id"]] = entry
    offered = set()
    for case_id, entry in results.items():
        case = by_id[case_id]
        for key, name in (("loss", case.function), ("grad", case.grad_function)):
            if key in entry:
                offered.add(name)
    outcomes = []
    for case in cases:
        entry = results.get(case.id, {})
        for key, name, expected in (("loss", case.function, case.loss),
                                    ("grad", case.grad_function, case.grad)):
            if name in offered:
                outcomes.append(_judge_entry(case, name, expected, entry, key))
    return outcomes, problems


def _judge_entry(case, name: str, expected: np.ndarray, entry: dict, key: str) -> Outcome:
    """One result array (``entry[key]``) against the expected one."""
    if "error" in entry:
        return Outcome(case, name, expected, None,
                       _failed(f"the implementation reported: {entry['error']}"))
    if key not in entry:
        return Outcome(case, name, expected, None,
                       _failed(f"no {key!r} for this case in the results"))
    try:
        got = decode_array(entry[key])
    except Exception as error:  # noqa: BLE001 - a malformed entry fails its case
        return Outcome(case, name, expected, None, _failed(f"cannot decode {key!r}: {error!r}"))
    return Outcome(case, name, expected, got, compare(expected, got, *case.tolerance_for(name)))


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def _function_order() -> list[str]:
    return [name for f in golden.FUNCTIONS for name in (f, f + "_grad")]


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
    lines = [f"  {'case':<16}{case.id}"]
    for name, a in case.inputs.items():
        lines += _show_array(name, a)
    for key, value in case.kwargs.items():
        lines += _show_array(key, value) if isinstance(value, np.ndarray) else [
            f"  {key:<16}{value!r}"]
    if outcome.function.endswith("_grad"):
        lines += _show_array("grad_output", case.grad_output)
    lines += _show_array("expected", outcome.expected)
    lines += _show_array("got", outcome.got)
    rtol, atol = case.tolerance_for(outcome.function)
    lines.append(f"  {'tolerance':<16}rtol {rtol:.3g}, atol {atol:.3g}")
    lines.append(_wrap(f"  {'why':<16}{outcome.check.why}", indent=18))
    if case.exact_only:
        lines.append(_wrap(f"  {'exact_only':<16}{case.exact_only}", indent=18))
    return lines


def _format_error(value: float) -> str:
    return f"{value:12.3g}" if np.isfinite(value) else f"{'inf':>12}"


def report(outcomes: list[Outcome], known_inaccuracy: str | None = None) -> tuple[str, bool]:
    """The text report and whether every check passed."""
    by_function: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_function.setdefault(outcome.function, []).append(outcome)
    order = [name for name in _function_order() if name in by_function]
    lines = [f"{'function':<38}{'cases':>6}{'passed':>8}{'failed':>8}"
             f"{'max abs err':>12}{'max rel err':>12}", "-" * 84]
    for name in order:
        rows = by_function[name]
        passed = sum(o.check.ok for o in rows)
        max_abs = max(o.check.max_abs for o in rows)
        max_rel = max(o.check.max_rel for o in rows)
        lines.append(f"{name:<38}{len(rows):>6}{passed:>8}{len(rows) - passed:>8}"
                     f"{_format_error(max_abs)}{_format_error(max_rel)}")
    missing = [name for name in _function_order() if name not in by_function]
    if missing:
        lines += ["", _wrap("not offered (not checked): " + ", ".join(missing))]

    inexact = [o for o in outcomes if o.check.ok and o.case.exact_only and not o.check.exact]
    if inexact:
        label = known_inaccuracy or "the implementation is not exact here"
        lines += ["", _wrap(f"{len(inexact)} exact_only checks pass only through atol "
                            f"(reported, not failed): {label}")]
        for o in inexact[:8]:
            lines.append(f"  {o.case.id} ({o.function})")
            got = np.asarray(o.got)[o.check.worst]
            lines.append(f"      expected {o.expected[o.check.worst]!s}, got {got!s}")
        if len(inexact) > 8:
            lines.append(f"  ... and {len(inexact) - 8} more")

    failures = [o for o in outcomes if not o.check.ok]
    for name in order:
        failed = [o for o in by_function[name] if not o.check.ok]
        if failed:
            lines += ["", f"FAIL {name}: {len(failed)} of {len(by_function[name])} cases; "
                          "the first:"]
            lines += _show_case(failed[0])
    total = len(outcomes)
    lines += ["", f"FAILED: {len(failures)} of {total} checks failed" if failures
              else f"PASSED: all {total} checks"]
    return "\n".join(lines), not failures


def _wrap(text: str, indent: int = 2) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent=" " * indent)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def load_implementation(name: str) -> ModuleType:
    """``torch``, ``xent_ref``, a path to a ``.py`` file, or an importable module name
    (looked up from the current directory too, as ``python -m`` would)."""
    if name == "torch":
        from xent_ref import _torch_adapter

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


def _load_cases(corpus) -> tuple[tuple[golden.Case, ...], str]:
    if corpus is None:
        return golden.build_corpus(), "generated afresh"
    return golden.read_corpus(corpus), f"read from {corpus}"


def main(impl: str | None = None, results: str | None = None, corpus: str | None = None) -> int:
    """``xent-ref verify``: exactly one of ``impl`` and ``results``; returns the exit status."""
    if (impl is None) == (results is None):
        print("xent-ref verify: give exactly one of --impl MODULE and --results FILE")
        return EXIT_UNAVAILABLE
    try:
        cases, origin = _load_cases(corpus)
    except (OSError, ValueError, KeyError) as error:
        print(f"xent-ref verify: cannot read the corpus: {error}")
        return EXIT_UNAVAILABLE
    known = None
    problems: list[str] = []
    if impl is not None:
        try:
            module = load_implementation(impl)
        except Exception as error:  # noqa: BLE001 - report any import failure plainly
            print(f"xent-ref verify: cannot import {impl!r}: {type(error).__name__}: {error}")
            return EXIT_UNAVAILABLE
        unavailable = getattr(module, "UNAVAILABLE", None)
        if unavailable:
            print(f"xent-ref verify: {impl} is not available: {unavailable}")
            return EXIT_UNAVAILABLE
        known = getattr(module, "KNOWN_INACCURACY", None)
        subject = f"--impl {impl} ({getattr(module, 'DESCRIPTION', module.__name__)})"
        outcomes = run_module(module, cases)
    else:
        try:
            with open(results, encoding="utf-8") as f:
                document = json.load(f)
            if document.get("format") != RESULTS_FORMAT:
                raise ValueError(f"no \"format\": \"{RESULTS_FORMAT}\"")
            if document.get("schema") != RESULTS_SCHEMA:
                raise ValueError(f"results schema {document.get('schema')}, "
                                 f"expected {RESULTS_SCHEMA}")
            outcomes, problems = compare_results(document, cases)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            print(f"xent-ref verify: cannot read the results {results}: {error}")
            return EXIT_UNAVAILABLE
        subject = f"--results {results} ({document.get('implementation', 'unnamed')})"
    if not outcomes:
        print(f"xent-ref verify: {subject} offers none of: {', '.join(_function_order())}")
        return EXIT_UNAVAILABLE
    print(_wrap(f"xent-ref verify {subject}: {len(cases)} golden cases, {origin}"))
    print("rule: |got - expected| <= atol + rtol*|expected| (atol: the case's, grad_atol for")
    print("      gradients); nan = nan; same-sign inf;")
    print("      dtype and shape must match (docs/golden-format.md)")
    print()
    text, passed = report(outcomes, known)
    print(text)
    for problem in problems[:20]:
        print(f"PROBLEM: {problem}")
    if len(problems) > 20:
        print(f"PROBLEM: ... and {len(problems) - 20} more")
    return EXIT_PASSED if passed and not problems else EXIT_FAILED
