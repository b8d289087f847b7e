"""The ``xent-ref verify`` command: an implementation (``--impl MODULE``) or its results
(``--results FILE``) checked against the corpus, and the report printed.

Exit status: 0 when every check passes, 1 when any fails, 2 when nothing could be
checked (the module or torch is missing, a file is unreadable or not what it claims to
be).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

from xent_ref import golden
from xent_ref.golden import schema as _schema
from xent_ref.golden.schema import SchemaError, printable
from xent_ref.verify.compare import (compare_results, function_order, functions_of, run,
                                     skipped)
from xent_ref.verify.messages import check_lang
from xent_ref.verify.report import CorpusInfo, Report, select_dtypes

EXIT_PASSED, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2


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


class _Unavailable(Exception):
    """Nothing could be checked (exit status 2); the message says why."""


def main(impl: str | None = None, results: str | None = None, corpus: str | None = None,
         json_path: str | None = None, junit_path: str | None = None,
         max_bytes: int | None = None, max_elements: int | None = None,
         dtypes=None, short: bool = False, lang: str = "en") -> int:
    """``xent-ref verify``: exactly one of ``impl`` and ``results``; returns the exit status.
    ``json_path`` / ``junit_path``: also write the JSON / JUnit XML report (``-``: stdout,
    which then carries only the JSON); ``dtypes``: check only the cases of these dtypes
    (:func:`dtype_names`; the report says what was left out); ``short``: print the
    learner's short form (the cause, its fix, one failing case); ``lang``: the text
    report's language ("en", "zh")."""
    try:
        check_lang(lang)
        report = _report(impl, results, corpus, max_bytes, max_elements, dtypes)
        if json_path != "-":
            print(report.text(full=not short, lang=lang))
        _write_reports(report, json_path, junit_path)
    except _Unavailable as error:
        print(f"xent-ref verify: {error}", file=sys.stderr if json_path == "-" else sys.stdout)
        return EXIT_UNAVAILABLE
    return EXIT_PASSED if report.ok else EXIT_FAILED


def _report(impl, results, corpus, max_bytes, max_elements, dtypes) -> Report:
    """The report of one run of the command (:class:`_Unavailable` if there is none)."""
    if (impl is None) == (results is None):
        raise _Unavailable("give exactly one of --impl MODULE and --results FILE")
    try:
        limits = _schema.Limits.from_env(max_bytes, max_elements)
    except SchemaError as error:
        raise _Unavailable(str(error)) from None
    try:
        cases, info = load_cases(corpus, limits)
    except SchemaError as error:
        raise _Unavailable(f"cannot read the corpus: {error}") from None
    selection, left_out = None, ()
    if dtypes is not None:
        try:
            cases, left_out, selection = select_dtypes(cases, dtypes)
        except ValueError as error:
            raise _Unavailable(str(error)) from None
    known, problems, left = None, [], {}
    if impl is not None:
        subject, outcomes, known, left = _run_impl(impl, cases)
    else:
        subject, outcomes, problems = _read_results(results, cases, limits, left_out)
    if not outcomes:
        raise _Unavailable(f"{printable(impl or results)} offers none of: "
                           f"{', '.join(function_order())}")
    return Report(subject, info, tuple(outcomes), tuple(problems), known,
                  selection=selection, skipped=left)


def _run_impl(impl: str, cases) -> tuple[str, list, str | None, dict]:
    """``(subject, outcomes, known inaccuracy, skipped)`` of the module ``impl`` on
    ``cases``."""
    try:
        module = load_implementation(impl)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - sys.exit() at import is no pass
        raise _Unavailable(f"cannot import {printable(repr(impl))}: "
                           f"{type(error).__name__}: {printable(error)}") from None
    unavailable = getattr(module, "UNAVAILABLE", None)
    if unavailable:
        raise _Unavailable(f"{printable(impl)} is not available: {printable(unavailable)}")
    description = getattr(module, "DESCRIPTION", module.__name__)
    subject = f"xent-ref verify --impl {printable(impl)} ({printable(description)})"
    offered = functions_of(module)
    return (subject, run(offered, cases), getattr(module, "KNOWN_INACCURACY", None),
            skipped(offered, cases))


def _read_results(results: str, cases, limits, left_out) -> tuple[str, list, list[str]]:
    """``(subject, outcomes, problems)`` of the results file ``results``."""
    try:
        document = _schema.read_json(results, "results", limits)
        outcomes, problems = compare_results(document, cases, limits,
                                             os.path.dirname(os.path.abspath(results)),
                                             left_out)
    except SchemaError as error:
        raise _Unavailable(f"cannot read the results: {error}") from None
    name = document.get("implementation", "unnamed")
    return (f"xent-ref verify --results {printable(results)} ({printable(name)})",
            outcomes, problems)


def _write_reports(report: Report, json_path: str | None, junit_path: str | None) -> None:
    """The JSON and JUnit XML reports, when asked for (``-``: stdout)."""
    try:
        if json_path is not None:
            _write_output(json_path, json.dumps(report.to_json(), indent=1) + "\n")
        if junit_path is not None:
            _write_output(junit_path, report.to_junit_xml())
    except OSError as error:
        raise _Unavailable(f"cannot write the report: {printable(error)}") from None
