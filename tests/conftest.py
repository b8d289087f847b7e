"""pytest configuration shared by every test.

The tests folder is a package: ``helpers/`` holds the modules several test files share
(imported as ``tests.helpers.<name>``), ``fixtures/`` the values recorded from PyTorch,
``wrong_impls/`` and ``right_impls/`` the implementations ``verify`` must fail or pass.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def pytest_report_header(config) -> str:
    """Name the versions a run used: the corpus's bfloat16 inputs and some printed
    results depend on NumPy and ml_dtypes, and torch decides which tests skip."""
    torch = _version("torch") if importlib.util.find_spec("torch") else "not installed"
    return f"numpy {_version('numpy')}, ml_dtypes {_version('ml_dtypes')}, torch {torch}"
