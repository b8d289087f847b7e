"""Execute every teaching notebook in a fresh kernel and check the committed
copy is current: same cells as its source in notebooks/src/, same text output.

Marked ``notebooks`` so it can be selected (``-m notebooks``) or skipped
(``-m "not notebooks"``); the plain ``pytest`` run includes it.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest

# The notebook packages are an extra (`pip install -e ".[test,notebooks]"`); without
# them these tests skip instead of failing the whole collection.
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
build_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_notebooks)

SOURCES = build_notebooks.sources()

pytestmark = pytest.mark.notebooks


def test_there_are_at_least_five_notebooks():
    assert len(SOURCES) >= 5
    committed = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert committed == [s.stem for s in SOURCES]


def test_kernel_is_this_environment():
    """The python3 kernel nbclient starts is this interpreter's environment."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    build_notebooks.execute(nb)
    assert nb.cells[0].outputs[0].text.strip() == sys.prefix


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_notebook_runs_and_is_current(source):
    committed = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    fresh = build_notebooks.build(source)
    stale = "rebuild with: uv run python scripts/build_notebooks.py " + source.stem
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in fresh.cells
    ], "the committed notebook's cells differ from its source; " + stale
    assert committed.metadata.kernelspec.name == "python3"

    executed = build_notebooks.execute(copy.deepcopy(fresh))  # raises on any cell error
    fresh_text = build_notebooks.text_outputs(executed)
    assert not any(t.startswith("error") for cell in fresh_text for t in cell)
    assert build_notebooks.text_outputs(committed) == fresh_text, "outputs are stale; " + stale
    images = sum("image/png" in out.get("data", {}) for c in committed.cells
                 for out in c.get("outputs", []))
    assert images == sum("image/png" in out.get("data", {}) for c in executed.cells
                         for out in c.get("outputs", []))


def test_at_least_three_plots_in_all():
    plots = 0
    for source in SOURCES:
        nb = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
        plots += sum("image/png" in out.get("data", {}) for c in nb.cells
                     for out in c.get("outputs", []))
    assert plots >= 3
