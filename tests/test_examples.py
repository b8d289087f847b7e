"""`xent-ref examples`: every worked example runs and shows exact beside document."""

from __future__ import annotations

import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import xent_ref as xr
from xent_ref import examples

EXPECTED = {
    # name: (document's figure, exact value as printed)
    "plain": ("0.6406", "0.6405346229"),
    "ignore-index": ("0.4421", "0.4420579592"),
    "weight-1-2": ("0.7396", "0.7397729548"),
    "weight-2-1": ("-", "0.5611439574"),
    "four-by-three": ("1.0400175", "1.040055599"),
    "label-smoothing": ("0.91", "3.003645712"),
    "binary": ("[0.8808, 0.2689, 0.6225]", "0.7054255577"),
}


def _display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def test_every_example_is_listed_and_checked():
    assert list(examples.EXAMPLES) == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_example_shows_document_and_exact(name):
    text = examples.run(name)
    document, exact = EXPECTED[name]
    assert document in text and exact in text
    assert all(_display_width(line) <= 80 for line in text.splitlines()), name
    assert examples.DOCUMENTS[examples.EXAMPLES[name].document][0] in text


def test_exact_figures_are_the_library_values():
    logits = examples.LOGITS_3X2
    labels = examples.LABELS_3X2
    assert f"{float(xr.cross_entropy(logits, labels)):.10g}" == EXPECTED["plain"][1]
    value = xr.cross_entropy(examples.LOGITS_4X3, examples.LABELS_4X3,
                             weight=[2.0, 1.0, 2.0], ignore_index=2)
    assert f"{float(value):.10g}" == EXPECTED["four-by-three"][1]


def test_four_by_three_explains_the_hand_calculation():
    text = examples.run("four-by-three")
    assert "ignored" in text and "1.040017359" in text  # rounded-probability replay
    assert "denominator = sum of weight[target] over kept rows = 4" in text


def test_weight_example_names_the_slip():
    text = examples.run("weight-1-2")
    assert "2.0752, not 2.0741" in text


def test_label_smoothing_class_equals_library():
    text = examples.run("label-smoothing")
    line = next(line for line in text.splitlines() if "class minus library" in line)
    assert abs(float(line.split()[-1])) < 1e-14


def test_main_list_and_one_name(capsys):
    assert examples.main([], list_only=True) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(EXPECTED)
    assert all(len(line) <= 80 for line in listed)
    assert examples.main(["binary"]) == 0
    out = capsys.readouterr().out
    assert out == examples.run("binary") and "plain:" not in out


def test_main_unknown_name(capsys):
    assert examples.main(["nope"]) == 2
    assert "unknown example nope" in capsys.readouterr().err


def test_main_all(capsys):
    assert examples.main([]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert f"\n{name}: " in "\n" + out


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


def test_console_script_equals_python_m():
    script = shutil.which("xent-ref", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the xent-ref console script is not installed in this environment")
    for args in (["examples"], ["examples", "--list"], ["examples", "four-by-three"]):
        assert _run(script, *args) == _run(sys.executable, "-m", "xent_ref", *args)
    assert _run(sys.executable, "-m", "xent_ref", "examples") == "\n".join(
        examples.run(name) for name in EXPECTED
    )
