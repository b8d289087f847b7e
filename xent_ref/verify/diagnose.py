"""What the failures have in common: groups by the options in the case ids
(:func:`group_failures`), and the known convention of :mod:`xent_ref.verify.conventions`
an implementation follows instead (:func:`diagnose`).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Mapping

from xent_ref.verify import conventions as _conventions
from xent_ref.verify import messages as _messages
from xent_ref.verify.compare import Outcome, judge

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

    def describe(self, lang: str = "en") -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.options.items())
        with_ = _messages.say("group.with", lang, options=options) if options else ""
        if self.all:
            key = "group.all"
        elif self.failing == self.total:
            key = "group.more"
        else:
            key = "group.some"
        return _messages.say(key, lang, total=self.total, failed=len(self.cases), with_=with_)

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
    # (count, dtype returned, dtype of the inputs): the dtype, when a real cause is named
    promoted: tuple = ()

    def notes(self, lang: str = "en") -> tuple[str, ...]:
        """Secondary findings, as sentences in ``lang``."""
        if not self.promoted:
            return ()
        count, got, dtype = self.promoted
        return (f"[{DTYPE_NOTE}] " + _messages.say("note.dtype", lang, count=count, got=got,
                                                   dtype=dtype),)

    def to_json(self) -> dict:
        return {"id": self.id, "function": self.function, "cases": list(self.cases),
                "explanation": self.explanation, "fix": self.fix, "failing": self.failing,
                "notes": list(self.notes())}


UNEXPLAINED = "unexplained"
DTYPE_NOTE = "wrong-dtype"  # reported as a note beside a real cause, not as the cause


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
            promoted = [o for o in rows if o.case.id in explained
                        and _conventions.also_wrong_dtype(convention, o)]
            notes = (len(promoted), str(promoted[0].got.dtype),
                     promoted[0].case.dtype) if promoted else ()
            diagnoses.append(Diagnosis(best, function, explained, convention.explanation,
                                       convention.fix_for(function), failing, notes))
            left -= set(explained)
        if left:
            diagnoses.append(Diagnosis(
                UNEXPLAINED, function, tuple(o.case.id for o in rows if o.case.id in left),
                "no known convention explains these (see the first failing case)",
                "compare the case's numbers by hand; `xr.explain` shows the reference's steps",
                failing))
    return diagnoses
