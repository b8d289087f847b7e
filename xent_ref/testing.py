"""Check your own implementation against the golden corpus, from Python or pytest.

>>> import xent_ref as xr
>>> from xent_ref import testing
>>> report = testing.check(xr.softmax, "softmax", grad=xr.softmax_grad)
>>> report.ok, len(report.failures)
(True, 0)
>>> [case.id for case in testing.cases("nll_loss", reduction="sum", weight=True, shape="C")]
['nll_loss/index/C/sum/w/ign=none/f32', 'nll_loss/index/C/sum/w/ign=none/f64']

* :func:`check` runs the golden cases of one function through your callable (same
  signature as xent_ref's, NumPy in, NumPy out) and its gradient if you give one, and
  returns a :class:`~xent_ref.verify.Report`: ``.ok``, ``.failures``, ``.groups``,
  ``.diagnoses`` (the known convention that explains a failure, by stable id), a
  readable ``str`` and an HTML view in Jupyter.
* :func:`assert_matches` raises ``AssertionError`` with that report as its message.
* :func:`cases` gives the golden cases themselves, filtered by the options in their
  ids; they name themselves by id in ``pytest.mark.parametrize``.

``xent-ref verify`` runs the same engine (:mod:`xent_ref.verify`).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from xent_ref import golden, verify
from xent_ref.golden import Case
from xent_ref.verify import Report

__all__ = ["check", "assert_matches", "cases", "Case", "Report"]

def _option_value(key: str, value) -> str:
    """A filter value as the ids spell it: True/False -> "yes"/"no", smoothing 0 ->
    "0.0", "f32" or np.float32 -> "float32", -1 -> "-1"."""
    if value is True or value is False:
        return "yes" if value else "no"
    if key == "smoothing" and isinstance(value, (int, float)):
        return str(float(value))
    if key in ("logit_scale", "softcap", "z_loss") and isinstance(value, (int, float)):
        return f"{value:g}"  # as the ids spell them: softcap=5, z=0.0001
    if key == "dtype" and not isinstance(value, str):
        return np.dtype(value).name
    if isinstance(value, str) and value in golden.DTYPE_SUFFIXES:
        return golden.DTYPE_SUFFIXES[value]
    return str(value)


def cases(name: str | None = None, **filters) -> list[Case]:
    """The golden cases of function ``name`` (all functions when ``None``) whose id
    options match every filter.

    Filters (keys of :func:`xent_ref.golden.parse_id`): ``dtype`` ("float32" or "f32"),
    ``shape`` ("C", "NxC", "NxCxd1", "NxCxd1xd2"), ``reduction``, ``target`` ("index",
    "probs"), ``weight`` (True/False, or "full"/"last-axis" for the binary losses),
    ``pos_weight``, ``ignore_index`` ("none", "default", 1, -1), ``smoothing`` (0.0, 0.1),
    ``axis``, ``kind`` ("systematic", "edge", "vocab", "lowprec", "llm", and the
    second-order "hvp", "grad_target", "stats"), ``classes``
    ("32000"), ``edge`` (an edge case's name, e.g. "all-ignored"), ``logit_scale``,
    ``softcap``, ``z_loss`` (5, 0.01), ``bias``, ``tokens``, ``hidden``, ``positions``
    (linear_cross_entropy's sizes) and ``detail`` (a configuration's name: "mixed",
    "microbatches"). A value may also be a collection of accepted values. A case without
    the option never matches a filter on it. Filters that select no case raise
    ``ValueError`` naming them: a misspelt value would otherwise leave a
    ``pytest.mark.parametrize`` empty, which pytest skips instead of failing.

    >>> len(cases("cross_entropy", target="probs", dtype="f64", kind="systematic"))
    48
    """
    if name is not None and name not in _NAMES:
        raise ValueError(f"name: unknown function {name!r}; expected one of "
                         f"{', '.join(_NAMES)}")
    known = set(golden.ID_KEYS)
    unknown = sorted(set(filters) - known)
    if unknown:
        raise TypeError(f"cases() got unknown filters {unknown}; expected some of "
                        f"{', '.join(golden.ID_KEYS)}")
    wanted = {key: {_option_value(key, v) for v in value}
              if isinstance(value, (list, tuple, set, frozenset))
              else {_option_value(key, value)} for key, value in filters.items()}
    if "weight" in wanted and "yes" in wanted["weight"]:
        wanted["weight"] |= {"full", "last-axis"}  # weight=True: any weight at all
    if "weight" in wanted and "no" in wanted["weight"]:
        wanted["weight"].add("none")
    selected = []
    for case in golden.build_corpus():
        if name is not None and case.function != name:
            continue
        options = case.options
        if all(options.get(key) in values for key, values in wanted.items()):
            selected.append(case)
    if not selected:
        spelled = ", ".join([repr(name)] * (name is not None)
                            + [f"{key}={value!r}" for key, value in filters.items()])
        raise ValueError(f"cases({spelled}) selects no golden case: no case id has "
                         f"{'these options' if filters else 'this function'}")
    return selected


_cases_of = cases  # check()'s parameter ``cases`` hides the function inside it
# The names check() and cases() take: the losses (and softmaxes), then the second-order
# kinds (``cross_entropy_hvp``, ``cross_entropy_grad_target``, ``cross_entropy_stats``...).
_NAMES = golden.FUNCTIONS + golden.SECOND_ORDER_FUNCTIONS


def _implementation(fn, name: str, grad) -> dict[str, Callable]:
    """The functions ``check`` runs, by the name the cases call them: a loss and its
    ``_grad``; for a second-order kind ``fn`` alone, as the function its cases call (a
    ``*_grad_target`` case calls ``fn`` as ``<loss>_grad(..., wrt="target")``)."""
    if name in golden.SECOND_ORDER:
        if grad is not None:
            raise TypeError(f"grad: {name} has no gradient twin to check; give fn alone")
        return {} if fn is None else {golden.signature_of(name).calls: fn}
    return {key: f for key, f in ((name, fn), (name + "_grad", grad)) if f is not None}


def check(fn: Callable | None, name: str, *, grad: Callable | None = None,
          dtypes: Iterable[str] | None = None, cases: Iterable[Case] | None = None,
          full: bool = False, lang: str = "en", seed: int | None = None) -> Report:
    """Run the golden cases of ``name`` through ``fn`` (and ``grad``, its gradient twin
    with xent_ref's ``<name>_grad`` signature) and return the :class:`Report`.

    ``str(report)`` is the learner's short form: the cause (the known mistake that
    explains most failures), its fix and one failing case, in at most 12 lines;
    ``full=True`` (or ``report.text(full=True)``) gives the whole report: the table
    per function, every group and diagnosis, the first failing case in full. ``lang``:
    the report's language ("en", "zh"), text and HTML. ``seed``: judge on inputs drawn
    afresh from it (every systematic float32/float64 case; the expected values computed
    by xent_ref at check time, :func:`xent_ref.golden.redrawn`), as an exercise's
    attempt is: nothing to copy from the corpus.

    ``dtypes``: only cases of these dtypes ("float32", "float64", "float16", "bfloat16",
    or "f32", np.float32...): an implementation without float16/bfloat16 leaves those
    cases out this way, and the report says how many it left out. ``cases``: only these
    cases (from :func:`cases`, e.g. one pytest parameter). ``fn`` may be ``None`` to
    check the gradient alone. Nothing raises: an exception from ``fn`` fails its case.

    The second-order kinds: ``check(my_hvp, "cross_entropy_hvp")``, ``check(my_stats,
    "cross_entropy_stats")`` (an object with the statistics as attributes, or a mapping),
    ``check(my_cross_entropy_grad, "cross_entropy_grad_target")`` (called with
    ``wrt="target"``; a function without a ``wrt`` parameter is reported skipped).
    """
    if name not in _NAMES:
        raise ValueError(f"name: unknown function {name!r}; expected one of "
                         f"{', '.join(_NAMES)}")
    if fn is None and grad is None:
        raise TypeError("check() needs fn or grad (or both)")
    verify.check_lang(lang)
    implementation = _implementation(fn, name, grad)
    for key, f in implementation.items():
        if not callable(f):
            raise TypeError(f"{'grad' if key == name + '_grad' else 'fn'} must be callable, "
                            f"not {type(f).__name__}")
    chosen = list(_cases_of(name) if cases is None else cases)
    for case in chosen:
        if not isinstance(case, Case) or case.function != name:
            raise ValueError(f"cases: {case!s} is not a golden case of {name}")
    if seed is not None:
        chosen = [golden.redrawn(case, seed) for case in chosen]
    selection = None
    if dtypes is not None:
        chosen, _, selection = verify.select_dtypes(chosen, dtypes)
    label = getattr(fn or grad, "__qualname__", None) or type(fn or grad).__name__
    outcomes = verify.run(implementation, chosen)
    attempt = "" if seed is None else f", seed={int(seed)}"
    scope = (name,) if name in golden.SECOND_ORDER else (name, name + "_grad")
    return Report(f"xent_ref.testing.check({label}, {name!r}{attempt})", verify.load_cases()[1],
                  tuple(outcomes), scope=scope, selection=selection, lang=lang,
                  brief=not full, skipped=verify.skipped(implementation, chosen))


def assert_matches(fn: Callable | None, name: str, **same) -> Report:
    """:func:`check`, raising ``AssertionError`` with the report when anything fails
    (or when nothing was checked); returns the report otherwise."""
    report = check(fn, name, **same)
    if not report.outcomes:
        raise AssertionError(f"no golden case of {name} was selected")
    if not report.ok:
        raise AssertionError("\n" + str(report))
    return report
