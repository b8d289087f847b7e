"""The wrong versions in tests/wrong_impls/family/: each names its diagnosis, and each gives
a different loss or gradient from xent_ref's on a small input that shows the mistake."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr

FOLDER = Path(__file__).parent / "wrong_impls" / "family"
LOG_Q = np.log(np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
P = np.array([[0.6, 0.3, 0.1], [0.0, 0.5, 0.5]])
LOGITS = np.array([[3.0, -1.0], [-2.0, 40.0], [0.5, -45.0]])
BINARY = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])

# diagnosis id -> (function, args, kwargs): a call on which the mistake shows
CALLS = {
    "kl-mean-not-batchmean": ("kl_div", (LOG_Q, P), {"reduction": "batchmean"}),
    "kl-log-target-ignored": ("kl_div", (LOG_Q, np.log([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])),
                              {"reduction": "sum", "log_target": True}),
    "kl-input-not-log": ("kl_div", (LOG_Q, P), {"reduction": "sum"}),
    "kl-args-swapped": ("kl_div", (LOG_Q, P), {"reduction": "batchmean"}),
    "focal-alpha-on-negatives": ("sigmoid_focal_loss", (LOGITS, BINARY),
                                 {"alpha": 0.25, "reduction": "sum"}),
    "focal-factor-not-differentiated": ("sigmoid_focal_loss", (LOGITS, BINARY),
                                        {"gamma": 2.0, "reduction": "sum"}),
    "focal-via-sigmoid": ("sigmoid_focal_loss", (LOGITS, BINARY),
                          {"gamma": 2.0, "reduction": "none"}),
}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"wrong_{path.stem.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRONG = sorted(p for p in FOLDER.glob("*.py") if p.name != "__init__.py")


def test_every_named_diagnosis_has_a_wrong_version():
    assert {p.stem for p in WRONG} == set(CALLS)


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_docstring_names_the_diagnosis(path):
    module = _load(path)
    assert re.search(rf"^Diagnosis: {re.escape(path.stem)}$", module.__doc__, re.M)
    assert "# BUG" in path.read_text()


def _differs(got, want) -> bool:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return True
    same = np.isclose(got, want, rtol=1e-9, atol=0) | (np.isnan(got) & np.isnan(want))
    return not same.all()


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_differs_from_the_right_answer(path):
    function, args, kwargs = CALLS[path.stem]
    module = _load(path)
    loss_differs = grad_differs = False
    if hasattr(module, function):
        loss_differs = _differs(getattr(module, function)(*args, **kwargs),
                                getattr(xr, function)(*args, **kwargs))
    if hasattr(module, function + "_grad"):
        grad_differs = _differs(getattr(module, function + "_grad")(*args, **kwargs),
                                getattr(xr, function + "_grad")(*args, **kwargs))
    assert loss_differs or grad_differs, f"{path.stem} agrees with xent_ref on its input"
