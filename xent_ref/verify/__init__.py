"""Check an implementation against the golden corpus: what matches, by how much, which
groups of cases fail, and which known convention explains them.

Three ways in, one engine (:func:`run` or :func:`compare_results`, then :class:`Report`):

* ``xent_ref.testing.check(fn, "cross_entropy")`` and friends, from Python or pytest;
* ``xent-ref verify --impl MODULE``: a Python module (a dotted name, or a path to a
  ``.py`` file) offering any of xent_ref's functions under the same names and
  signatures, NumPy in and NumPy out; the ``_grad`` twins are optional, and so are the
  second-order functions (``*_hvp``, ``*_stats``; a ``_grad`` taking ``wrt`` answers
  the ``*_grad_target`` cases). ``torch`` is
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

# The modules: compare (judging one case, running an implementation), diagnose
# (grouping failures, naming conventions), conventions (the catalogue;
# second_order_conventions: its hvp and statistics mistakes), report (text,
# HTML, JSON, JUnit XML), command (``xent-ref verify``), torch_adapter (``--impl torch``).
from xent_ref.golden.schema import (  # noqa: F401
    SchemaError,
    printable,
)
from xent_ref.verify.compare import (  # noqa: F401
    RESULTS_FORMAT,
    RESULTS_SCHEMA,
    Check,
    Outcome,
    compare,
    judge,
    functions_of,
    run,
    run_module,
    skipped,
    accepts_wrt,
    expected_of,
    compare_results,
    function_order,
)
from xent_ref.verify.diagnose import (  # noqa: F401
    Group,
    MAX_TERMS,
    group_failures,
    Diagnosis,
    UNEXPLAINED,
    diagnose,
)
from xent_ref.verify.messages import check_lang, languages  # noqa: F401
from xent_ref.verify.report import (  # noqa: F401
    SHORT_LINES,
    WIDTH,
    REPORT_FORMAT,
    DtypeSelection,
    dtype_names,
    select_dtypes,
    CorpusInfo,
    Report,
)
from xent_ref.verify.command import (  # noqa: F401
    load_implementation,
    load_cases,
    main,
)
