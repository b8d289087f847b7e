"""Verification: an implementation's answers compared with the golden corpus, its
failures grouped and diagnosed against the catalogue of known conventions and
mistakes, reported as text, HTML, JSON or JUnit XML, and the ``verify`` command.
"""

from xent_ref.verify.engine import (  # noqa: F401
    SchemaError,
    printable,
    RESULTS_FORMAT,
    RESULTS_SCHEMA,
    WIDTH,
    REPORT_FORMAT,
    Check,
    Outcome,
    compare,
    judge,
    functions_of,
    run,
    run_module,
    compare_results,
    Group,
    MAX_TERMS,
    group_failures,
    Diagnosis,
    UNEXPLAINED,
    diagnose,
    function_order,
    DtypeSelection,
    dtype_names,
    select_dtypes,
    CorpusInfo,
    Report,
    load_implementation,
    load_cases,
    main,
)
