"""The report of a run: what was checked (:class:`CorpusInfo`, :class:`DtypeSelection`)
and what came of it (:class:`Report`), rendered as text, HTML, JSON or JUnit XML.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html import escape
from typing import Iterable, Mapping

import numpy as np

from xent_ref import golden
from xent_ref.golden.schema import printable
from xent_ref.verify.compare import Outcome, function_order
from xent_ref.verify.diagnose import UNEXPLAINED, Diagnosis, Group, diagnose, group_failures

WIDTH = 96  # the widest line the report prints
REPORT_FORMAT = "xent-ref-verify-report"


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
    """The text report: what was checked, a table per function, the inexact passes,
    each failing function's groups, diagnoses and first failing case, the verdict."""
    by_function: dict[str, list[Outcome]] = {}
    for outcome in report.outcomes:
        by_function.setdefault(outcome.function, []).append(outcome)
    order = [name for name in function_order() if name in by_function]
    lines = _text_header(report) + _text_table(by_function, order)
    missing = [name for name in report.scope or function_order() if name not in by_function]
    if missing:
        lines += ["", _wrap("not offered (not checked): " + ", ".join(missing))]
    lines += _text_inexact(report)
    for name in order:
        lines += _text_failures(report, name, by_function[name])
    for problem in report.problems[:20]:
        lines.append(f"PROBLEM: {problem}")
    if len(report.problems) > 20:
        lines.append(f"PROBLEM: ... and {len(report.problems) - 20} more")
    failures = report.failures
    total = len(report.outcomes)
    lines += ["", f"FAILED: {len(failures)} of {total} checks failed" if failures
              else f"PASSED: all {total} checks"]
    return lines


def _text_header(report: Report) -> list[str]:
    """What was checked against what, and the rule."""
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
    return lines


def _text_table(by_function: dict[str, list[Outcome]], order: list[str]) -> list[str]:
    """One row per function: cases, passed, failed, the worst errors."""
    lines = [f"{'function':<38}{'cases':>6}{'passed':>8}{'failed':>8}"
             f"{'max abs err':>12}{'max rel err':>12}", "-" * 84]
    for name in order:
        rows = by_function[name]
        passed = sum(o.check.ok for o in rows)
        max_abs = max(o.check.max_abs for o in rows)
        max_rel = max(o.check.max_rel for o in rows)
        lines.append(f"{name:<38}{len(rows):>6}{passed:>8}{len(rows) - passed:>8}"
                     f"{_format_error(max_abs)}{_format_error(max_rel)}")
    return lines


def _text_inexact(report: Report) -> list[str]:
    """The ``exact_only`` checks that pass only through atol (reported, not failed)."""
    inexact = [o for o in report.outcomes
               if o.check.ok and o.case.exact_only and not o.check.exact]
    if not inexact:
        return []
    label = report.known_inaccuracy or "the implementation is not exact here"
    lines = ["", _wrap(f"{len(inexact)} exact_only checks pass only through atol "
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
    return lines


def _text_failures(report: Report, name: str, rows: list[Outcome]) -> list[str]:
    """A failing function: its groups, its diagnoses with their fixes, the first case."""
    failed = [o for o in rows if not o.check.ok]
    if not failed:
        return []
    parts = [g.describe() for g in report.groups if g.function == name]
    shown = parts[:6] + ([f"{len(parts) - 6} more groups"] if len(parts) > 6 else [])
    lines = ["", _wrap(f"FAIL {name}: {len(failed)} of {len(rows)} failing = "
                       + " + ".join(shown), indent=4)]
    for d in report.diagnoses:
        if d.function == name and d.failing:
            lines.append(_wrap(f"  [{d.id}] {len(d.cases)} cases: {d.explanation}", indent=4))
            if d.id != UNEXPLAINED:
                lines.append(_wrap(f"      fix: {d.fix}", indent=11))
            lines += [_wrap(f"      note: {note}", indent=12) for note in d.notes]
    return lines + ["  the first failing case:"] + _show_case(failed[0])


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
