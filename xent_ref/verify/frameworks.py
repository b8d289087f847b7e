"""Checking an implementation against another framework's semantics
(``xent-ref verify --convention NAME --impl MODULE``).

The implementation offers the framework's functions under the framework's names
and signatures, NumPy in and NumPy out (``sparse_categorical_crossentropy(y_true,
y_pred, from_logits=..., ...)`` for Keras), and optionally their ``_grad`` twins with
the signatures of :mod:`xent_ref.frameworks` (``grad_output=`` by keyword). It runs
on the framework's golden slice (:func:`xent_ref.golden.framework_cases.framework_cases`:
the corpus inputs in the framework's signature) and is judged by the corpus's rule
against the values :mod:`xent_ref.frameworks` computes -- not PyTorch's. A failing
loss that equals PyTorch's value for the source case is named so: the implementation
follows PyTorch where the framework does not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from xent_ref.golden.cases import Case
from xent_ref.golden.expected import build_corpus
from xent_ref.golden.framework_cases import FRAMEWORKS, FrameworkCase, framework_cases
from xent_ref.golden.schema import printable
from xent_ref.verify.compare import Check, as_array, compare

__all__ = ["FrameworkOutcome", "ConventionReport", "run_convention", "FRAMEWORKS"]


@dataclass(frozen=True)
class FrameworkOutcome:
    """One framework function (a loss or its ``_grad``) run on one framework case."""

    case: FrameworkCase
    function: str
    check: Check
    like_pytorch: bool = False  # a failing loss that is PyTorch's value for the source case


def _judge(case: FrameworkCase, expected, got, grad: bool) -> Check:
    """The corpus's rule; several gradients (a tuple or list) part by part."""
    atol = case.grad_atol if grad else case.atol
    if not isinstance(expected, (tuple, list)):
        return compare(expected, got, case.rtol, atol)
    if not isinstance(got, (tuple, list)) or len(got) != len(expected):
        return Check(False, f"returned {type(got).__name__}, expected {len(expected)} "
                     "gradients", np.inf, np.inf, False)
    checks = [compare(e, g, case.rtol, atol) if e is not None and g is not None else
              Check(e is None and g is None, "" if e is None and g is None else
                    f"expected {'None' if e is None else 'an array'}, got "
                    f"{'None' if g is None else 'an array'}", 0.0, 0.0, True)
              for e, g in zip(expected, got)]  # None: no bias, no gradient
    failing = [(i, c) for i, c in enumerate(checks) if not c.ok]
    why = f"gradient {failing[0][0]}: {failing[0][1].why}" if failing else ""
    return Check(not failing, why, max(c.max_abs for c in checks),
                 max(c.max_rel for c in checks), all(c.exact for c in checks))


def _run_one(fn, case: FrameworkCase, grad: bool, sources) -> FrameworkOutcome:
    function = case.function + ("_grad" if grad else "")
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the values are judged, not the warnings
            got = case.call(fn, grad=grad)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - a raise fails the case
        return FrameworkOutcome(case, function, Check(
            False, f"raised {type(error).__name__}: {printable(error)}", np.inf, np.inf,
            False))
    check = _judge(case, case.grad if grad else case.loss, got, grad)
    like_pytorch = False
    if not check.ok and not grad:
        source: Case = sources[case.source]
        array, _ = as_array(got)
        like_pytorch = array is not None and not np.array_equal(source.loss, case.loss,
                                                                equal_nan=True) and \
            compare(source.loss, array, source.rtol, source.atol).ok
    return FrameworkOutcome(case, function, check, like_pytorch)


def run_convention(module: ModuleType, name: str, dtypes=None) -> list[FrameworkOutcome]:
    """Every case of framework ``name``'s slice through the functions ``module`` offers
    (``dtypes``: only cases of these dtype names)."""
    cases = framework_cases(name)
    if dtypes is not None:
        cases = [case for case in cases if case.dtype in set(dtypes)]
    sources = {case.id: case for case in build_corpus()}
    outcomes = []
    for case in cases:
        for grad in (False, True):
            fn = getattr(module, case.function + ("_grad" if grad else ""), None)
            if callable(fn):
                outcomes.append(_run_one(fn, case, grad, sources))
    return outcomes


@dataclass(frozen=True)
class ConventionReport:
    """What ``xent-ref verify --convention NAME`` prints: a table per function, the first
    failures, the verdict; :meth:`to_json` for machines."""

    subject: str
    framework: str
    outcomes: tuple[FrameworkOutcome, ...]

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.check.ok for o in self.outcomes)

    @property
    def failures(self) -> list[FrameworkOutcome]:
        return [o for o in self.outcomes if not o.check.ok]

    def counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            entry = counts.setdefault(o.function, {"passed": 0, "failed": 0})
            entry["passed" if o.check.ok else "failed"] += 1
        return counts

    def __str__(self) -> str:
        lines = [f"{self.subject}: {len({o.case.id for o in self.outcomes})} cases of the "
                 f"{self.framework} slice (corpus inputs, expected values of "
                 f"xent_ref.frameworks.{self.framework})",
                 f"{'function':<48}{'passed':>8}{'failed':>8}", "-" * 64]
        for function, entry in self.counts().items():
            lines.append(f"{function:<48}{entry['passed']:>8}{entry['failed']:>8}")
        for o in self.failures[:10]:
            lines += ["", f"FAIL {o.case.id} ({o.function})", f"  {o.check.why}"]
            if o.like_pytorch:
                lines.append(f"  this is PyTorch's value for {o.case.source}: the "
                             f"implementation follows PyTorch where {self.framework} "
                             "does not (docs/frameworks.md)")
        if len(self.failures) > 10:
            lines.append(f"... and {len(self.failures) - 10} more failures")
        total = len(self.outcomes)
        lines += ["", f"FAILED: {len(self.failures)} of {total} checks failed"
                  if self.failures else f"PASSED: all {total} checks"]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"format": "xent-ref-convention-report", "ok": self.ok,
                "subject": self.subject, "framework": self.framework,
                "functions": self.counts(),
                "failures": [{"id": o.case.id, "function": o.function, "why": o.check.why,
                              "like_pytorch": o.like_pytorch} for o in self.failures]}
