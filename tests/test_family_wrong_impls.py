"""The wrong versions in tests/wrong_impls/family/: each names its diagnosis, each gives
a different loss or gradient from xent_ref's on a small input that shows the mistake, and the
golden corpus fails each and names it by that diagnosis alone."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
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


# ---------------------------------------------------------------------------------------------
# Through the corpus: each wrong version fails and is named by its own diagnosis
# ---------------------------------------------------------------------------------------------

FAMILY_IDS = frozenset(CALLS)  # tests/test_verify.py counts them as seen in the catalogue


@pytest.fixture(scope="module")
def family_reports(tmp_path_factory):
    """Each wrong version through ``xent-ref verify --impl FILE`` once: status and JSON."""
    from xent_ref import verify

    folder = tmp_path_factory.mktemp("family-reports")
    reports = {}
    for path in WRONG:
        json_path = folder / f"{path.stem}.json"
        with contextlib.redirect_stdout(io.StringIO()) as out:
            status = verify.main(impl=str(path), json_path=str(json_path))
        reports[path.stem] = (status, out.getvalue(), json.loads(json_path.read_text()))
    return reports


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_verify_fails_it_and_names_its_diagnosis(path, family_reports):
    status, out, document = family_reports[path.stem]
    assert status == 1 and not document["ok"]
    failing = [d for d in document["diagnoses"] if d["failing"]]
    assert failing
    # every failing check, float16/bfloat16 too, is explained by the bug's own id
    assert {d["id"] for d in failing} == {path.stem}, [(d["id"], d["cases"][:3]) for d in failing]
    assert f"[{path.stem}]" in out


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_testing_check_fails_it_and_names_its_diagnosis(path):
    from xent_ref import testing

    function = CALLS[path.stem][0]
    module = _load(path)
    report = testing.check(getattr(module, function, None), function,
                           grad=getattr(module, function + "_grad", None))
    assert not report.ok
    assert path.stem in {d.id for d in report.diagnoses}


def test_the_right_answer_passes_with_no_diagnosis():
    from xent_ref import testing

    for function in ("kl_div", "sigmoid_focal_loss", "softmax_focal_loss",
                     "poly1_cross_entropy"):
        report = testing.check(getattr(xr, function), function,
                               grad=getattr(xr, function + "_grad"))
        assert report.ok and not report.diagnoses, function
