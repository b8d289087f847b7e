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
from xent_ref._engine.i18n import width, wrap
from xent_ref.verify import messages
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

    def describe(self, lang: str = "en") -> str:
        left = ", ".join(f"{n} {dtype}" for dtype, n in self.left_out.items())
        return messages.say("full.selection", lang, dtypes=", ".join(self.dtypes),
                            count=sum(self.left_out.values()),
                            by_dtype=messages.say("full.selection_by_dtype", lang, left=left)
                            if left else "")

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
    lang: str = "en"  # the language of the text and HTML reports (verify/locale/)
    brief: bool = False  # str(): the learner's short form (cause, fix, one case)
    # {checked name: why}: offered but not checked (a *_grad without wrt=, for the
    # *_grad_target cases: xent_ref.verify.skipped)
    skipped: Mapping[str, str] = field(default_factory=dict)
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
        return self.text()

    def text(self, full: bool | None = None, lang: str | None = None) -> str:
        """The text report: the short form (at most :data:`SHORT_LINES` lines: the
        cause, its fix, one failing case) or, with ``full``, everything; in ``lang``
        (default: the report's own)."""
        full = not self.brief if full is None else full
        report = self if lang is None else _with_lang(self, lang)
        return "\n".join(_text_report(report) if full else _short_report(report))

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
            "skipped": dict(self.skipped),
        }

    def to_junit_xml(self) -> str:
        """One ``<testcase>`` per golden case and function; a failure carries the why
        and the diagnosis id."""
        return _junit(self)


SHORT_LINES = 12  # the learner's report: cause, fix, one failing case


def _with_lang(report: Report, lang: str) -> Report:
    from dataclasses import replace

    return replace(report, lang=messages.check_lang(lang), _cache=report._cache)


def _say(report: Report, key: str, **values) -> str:
    return messages.say(key, report.lang, **values)


def _label(text: str, columns: int = 16) -> str:
    """``text`` padded to ``columns`` display columns (a CJK character takes two)."""
    return text + " " * max(1, columns - width(text))


def _show_array(label: str, a, none: str = "(none)") -> list[str]:
    """``label dtype shape values``, the values on following lines when long."""
    if a is None:
        return [f"  {_label(label)}{none}"]
    a = np.asarray(a)
    head = f"  {_label(label)}{a.dtype} {a.shape}"
    text = np.array2string(a, max_line_width=WIDTH - 6, threshold=40, edgeitems=3,
                           floatmode="unique", separator=", ")
    if a.ndim == 0 or ("\n" not in text and len(head) + 1 + len(text) <= WIDTH):
        return [f"{head} {text}"]
    return [head] + ["      " + line for line in text.splitlines()]


def _show_case(report: Report, outcome: Outcome) -> list[str]:
    case, say = outcome.case, lambda key, **v: _say(report, key, **v)
    none = say("case.none")
    lines = [f"  {_label(say('case.case'))}{printable(case.id)}"]
    for name, a in case.inputs.items():
        lines += _show_parts(name, a, none, golden.signature_of(case.function).grads)
    for key, value in case.kwargs.items():
        lines += _show_array(key, value, none) if isinstance(value, np.ndarray) else [
            f"  {_label(key)}{value!r}"]
    if outcome.function.endswith("_grad") or case.kind != "loss" and case.grad_output is not None:
        lines += _show_array("grad_output", case.grad_output, none)
    names = golden.signature_of(case.function).grads
    for label, value in ((say("case.expected"), outcome.expected), (say("case.got"), outcome.got)):
        if isinstance(value, dict):  # the statistics, one by one
            for name, part in value.items():
                lines += _show_array(f"{label} {name}", part, none)
        else:
            lines += _show_parts(label, value, none, names, "d")
    rtol, atol = case.tolerance_for(outcome.function)
    lines.append(f"  {_label(say('case.tolerance'))}"
                 + say("case.tolerance_value", rtol=f"{rtol:.3g}", atol=f"{atol:.3g}"))
    lines += _wrapped(f"  {_label(say('case.why'))}"
                      + messages.why(outcome.check.why, report.lang), indent=18)
    if case.exact_only:
        lines += _wrapped(f"  {_label('exact_only')}{printable(case.exact_only)}", indent=18)
    return lines


def _show_parts(label: str, value, none: str, names, prefix: str = "") -> list[str]:
    """One array, or several (one per argument: ``label dinput``, ``label dlinear_weight``)."""
    if not isinstance(value, tuple):
        return _show_array(label, value, none)
    return [line for name, part in zip(names, value)
            for line in _show_array(f"{label} {prefix}{name}", part, none)]


def _format_error(value: float) -> str:
    return f"{value:12.3g}" if np.isfinite(value) else f"{'inf':>12}"


def _by_function(report: Report) -> dict[str, list[Outcome]]:
    by_function: dict[str, list[Outcome]] = {}
    for outcome in report.outcomes:
        by_function.setdefault(outcome.function, []).append(outcome)
    return by_function


def _text_report(report: Report) -> list[str]:
    """The text report: what was checked, a table per function, the inexact passes,
    each failing function's groups, diagnoses and first failing case, the verdict."""
    by_function = _by_function(report)
    order = [name for name in function_order() if name in by_function]
    lines = _text_header(report) + _text_table(report, by_function, order)
    missing = [name for name in report.scope or function_order()
               if name not in by_function and name not in report.skipped]
    if missing:
        lines += [""] + _wrapped(_say(report, "full.not_offered", names=", ".join(missing)))
    if report.skipped:
        lines += [""] + _wrapped(_say(report, "full.skipped", skipped="; ".join(
            f"{name} ({why})" for name, why in report.skipped.items())))
    lines += _text_inexact(report)
    for name in order:
        lines += _text_failures(report, name, by_function[name])
    for problem in report.problems[:20]:
        lines.append(_say(report, "full.problem", problem=problem))
    if len(report.problems) > 20:
        lines.append(_say(report, "full.problem", problem=f"... +{len(report.problems) - 20}"))
    return lines + ["", _verdict(report)]


def _verdict(report: Report) -> str:
    failures, total = report.failures, len(report.outcomes)
    if failures:
        return _say(report, "full.verdict_failed", failed=len(failures), total=total)
    return _say(report, "full.verdict_passed", total=total)


_ORIGINS = {"zh": (("generated afresh", "现场生成"), ("read from ", "读自 "))}


def _text_header(report: Report) -> list[str]:
    """What was checked against what, and the rule."""
    outcomes = report.outcomes
    checked = len({o.case.id for o in outcomes})
    of = "" if checked == report.corpus.cases else _say(report, "full.of", checked=checked)
    origin = report.corpus.origin
    for english, said in _ORIGINS.get(report.lang, ()):
        origin = origin.replace(english, said)
    lines = _wrapped(_say(report, "full.header", subject=report.subject, of=of,
                          cases=report.corpus.cases, version=report.corpus.version,
                          origin=origin, sha=report.corpus.sha256[:16]))
    if report.selection is not None:
        lines += _wrapped(report.selection.describe(report.lang))
    lines += _wrapped(_say(report, "full.rule"), indent=6)
    if any(o.case.rule == "reference-error" for o in outcomes):
        lines += _wrapped("      " + _say(report, "full.rule_lowprec"), indent=6)
    return lines + [""]


NAME_COLUMNS = 46  # binary_cross_entropy_with_logits_grad_target and a space


def _text_table(report: Report, by_function: dict[str, list[Outcome]],
                order: list[str]) -> list[str]:
    """One row per function: cases, passed, failed, the worst errors."""
    columns = _say(report, "full.columns").split("|")
    head = _label(columns[0], NAME_COLUMNS) + "".join(
        " " * max(1, w - width(c)) + c for c, w in zip(columns[1:], (6, 8, 8, 12, 12)))
    lines = [head, "-" * (NAME_COLUMNS + 46)]
    for name in order:
        rows = by_function[name]
        passed = sum(o.check.ok for o in rows)
        max_abs = max(o.check.max_abs for o in rows)
        max_rel = max(o.check.max_rel for o in rows)
        lines.append(f"{name:<{NAME_COLUMNS}}{len(rows):>6}{passed:>8}{len(rows) - passed:>8}"
                     f"{_format_error(max_abs)}{_format_error(max_rel)}")
    return lines


def _text_inexact(report: Report) -> list[str]:
    """The ``exact_only`` checks that pass only through atol (reported, not failed)."""
    inexact = [o for o in report.outcomes
               if o.check.ok and o.case.exact_only and not o.check.exact]
    if not inexact:
        return []
    label = report.known_inaccuracy or _say(report, "full.inexact_label")
    lines = [""] + _wrapped(_say(report, "full.inexact", count=len(inexact),
                                 label=printable(label, 400)))
    for d in report.diagnoses:
        if not d.failing and d.id != UNEXPLAINED:
            lines += _wrapped(f"  [{d.id}] {d.function}: "
                              + messages.convention_text(d, "explanation", report.lang), 4)
    for o in inexact[:8]:
        lines.append(f"  {printable(o.case.id)} ({o.function})")
        got = np.asarray(o.got)[o.check.worst]
        lines.append("    " + _say(report, "short.expected_got",
                                   expected=str(o.expected[o.check.worst]), got=str(got)))
    if len(inexact) > 8:
        lines.append(f"  ... +{len(inexact) - 8}")
    return lines


def _text_failures(report: Report, name: str, rows: list[Outcome]) -> list[str]:
    """A failing function: its groups, its diagnoses with their fixes, the first case."""
    failed = [o for o in rows if not o.check.ok]
    if not failed:
        return []
    parts = [g.describe(report.lang) for g in report.groups if g.function == name]
    shown = parts[:6] + ([_say(report, "full.more_groups", count=len(parts) - 6)]
                         if len(parts) > 6 else [])
    lines = [""] + _wrapped(_say(report, "full.fail", name=name, failed=len(failed),
                                 total=len(rows), groups=" + ".join(shown)), indent=4)
    for d in report.diagnoses:
        if d.function == name and d.failing:
            lines += _wrapped("  " + _say(report, "full.diagnosis", id=d.id, count=len(d.cases),
                                          explanation=messages.convention_text(
                                              d, "explanation", report.lang)), indent=4)
            if d.id != UNEXPLAINED:
                lines += _wrapped("      " + _say(report, "full.fix", fix=messages.convention_text(
                    d, "fix", report.lang)), indent=11)
            lines += [line for note in d.notes(report.lang)
                      for line in _wrapped("      " + _say(report, "short.note", note=note), 12)]
    return lines + ["  " + _say(report, "full.first_case")] + _show_case(report, failed[0])


def _short_report(report: Report) -> list[str]:
    """The learner's report, at most :data:`SHORT_LINES` lines: first the cause (the
    diagnosis explaining most failures) and its fix, any note, one failing case that
    cause explains; then the other causes, the verdict, and how to get the full report."""
    failures = report.failures
    selection = _wrapped(report.selection.describe(report.lang)) if report.selection else []
    if not failures:
        return _wrapped(_say(report, "short.passed", subject=report.subject,
                             total=len(report.outcomes))) + selection
    verdict = _wrapped(_say(report, "short.failed", subject=report.subject,
                            failed=len(failures), total=len(report.outcomes))) + selection
    lines = []
    failing = [d for d in report.diagnoses if d.failing]
    named = [d for d in failing if d.id != UNEXPLAINED]
    cause = max(named or failing, key=lambda d: len(d.cases))
    explanation = messages.convention_text(cause, "explanation", report.lang)
    lines += _wrapped(_say(report, "short.cause", id=cause.id, count=len(cause.cases),
                           explanation=explanation))
    if cause.id == UNEXPLAINED:
        lines += _wrapped(_say(report, "short.unexplained"))
    else:
        lines += _wrapped(_say(report, "short.fix",
                               fix=messages.convention_text(cause, "fix", report.lang)))
    for note in cause.notes(report.lang):
        lines += _wrapped(_say(report, "short.note", note=note))
    outcome = next(o for o in failures if o.function == cause.function
                   and o.case.id in cause.cases)
    lines += _wrapped(_say(report, "short.case", function=outcome.function,
                           case=printable(outcome.case.id)))
    if outcome.got is not None and not isinstance(outcome.got, (tuple, dict)) \
            and not outcome.check.why.startswith("at index") \
            and not isinstance(outcome.expected, (tuple, dict)) \
            and outcome.check.worst is not None \
            and np.shape(outcome.got) == np.shape(outcome.expected):
        worst = outcome.check.worst
        lines.append(_say(report, "short.expected_got",
                          expected=str(np.asarray(outcome.expected)[worst]),
                          got=str(np.asarray(outcome.got)[worst])))
    lines += _wrapped(_say(report, "short.why", why=printable(
        messages.why(outcome.check.why, report.lang), 200)), indent=4)
    others = [d for d in failing if d is not cause]
    how = _say(report, "short.how_check" if report.subject.startswith("xent_ref.testing")
               else "short.how_verify")
    tail = verdict + _wrapped(_say(report, "short.more", how=how))
    room = SHORT_LINES - len(lines) - len(tail)
    for d in others[:max(0, room)]:
        lines += _wrapped(_say(report, "short.also", id=d.id, count=len(d.cases),
                               function=d.function))[:1]
    return lines[:SHORT_LINES - len(tail)] + tail  # (a long why is cut, never the verdict)


def _html_report(report: Report) -> str:
    say = lambda key: escape(_say(report, key))  # noqa: E731
    status = say("html.status_passed") if report.ok else say("html.status_failed")
    rows = "".join(f"<tr><td>{escape(name)}</td><td>{c['passed']}</td><td>{c['failed']}</td>"
                   "</tr>" for name, c in report.counts().items())
    diagnoses = "".join(
        f"<li><code>{escape(d.id)}</code> ({escape(d.function)}, {len(d.cases)} "
        f"{say('html.cases')}): "
        f"{escape(messages.convention_text(d, 'explanation', report.lang))}<br><i>"
        f"{say('html.fix')}</i> {escape(messages.convention_text(d, 'fix', report.lang))}</li>"
        for d in report.diagnoses)
    groups = "".join(f"<li>{escape(g.function)}: {escape(g.describe(report.lang))}</li>"
                     for g in report.groups)
    return (f"<div><p><b>{status}</b> &mdash; {escape(report.subject)}</p>"
            f"<table><tr><th>{say('html.function')}</th><th>{say('html.passed')}</th>"
            f"<th>{say('html.failed')}</th></tr>"
            f"{rows}</table>"
            + (f"<p>{say('html.groups')}</p><ul>{groups}</ul>" if groups else "")
            + (f"<p>{say('html.diagnoses')}</p><ul>{diagnoses}</ul>" if diagnoses else "")
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
    for name, why in report.skipped.items():
        testcase = ET.SubElement(suite, "testcase", classname=name, name=f"{name} (skipped)")
        ET.SubElement(testcase, "skipped", message=printable(why, 1000))
    suite.set("skipped", str(len(report.skipped)))
    suite.set("tests", str(len(report.outcomes) + len(report.skipped)))
    return ET.tostring(suite, encoding="unicode") + "\n"


def _wrap(text: str, indent: int = 2) -> str:
    return "\n".join(_wrapped(text, indent))


def _wrapped(text: str, indent: int = 2) -> list[str]:
    """``text`` in lines of at most :data:`WIDTH` display columns (CJK-aware)."""
    if width(text) == len(text):
        return textwrap.wrap(text, WIDTH, subsequent_indent=" " * indent) or [""]
    lead = len(text) - len(text.lstrip(" "))
    lines = wrap(text.strip(), WIDTH - indent)
    return [" " * lead + lines[0]] + [" " * indent + line for line in lines[1:]]
