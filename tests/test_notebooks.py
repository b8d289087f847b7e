"""Execute every teaching notebook in a fresh kernel and check the committed
copy is current: same cells as its source in notebooks/src/, same text output.
A source written in two languages yields two notebooks (notebooks/NAME.ipynb
and notebooks/zh/NAME.ipynb); both are checked, and their outputs must show
the same numbers.

Marked ``notebooks`` so it can be selected (``-m notebooks``) or skipped
(``-m "not notebooks"``); the plain ``pytest`` run includes it.
"""

from __future__ import annotations

import copy
import importlib.util
import re
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
TARGETS = [(source, lang) for source in SOURCES for lang in build_notebooks.languages(source)]
BILINGUAL = [source for source in SOURCES if len(build_notebooks.languages(source)) > 1]

pytestmark = pytest.mark.notebooks


def test_there_are_at_least_five_notebooks():
    assert len(SOURCES) >= 5
    committed = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert committed == [s.stem for s in SOURCES]
    translated = sorted(p.stem for p in (ROOT / "notebooks" / "zh").glob("*.ipynb"))
    assert translated == [s.stem for s in BILINGUAL]
    assert "02_worked_examples" in translated


def test_kernel_is_this_environment():
    """The python3 kernel nbclient starts is this interpreter's environment."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    build_notebooks.execute(nb)
    assert nb.cells[0].outputs[0].text.strip() == sys.prefix


@pytest.mark.parametrize(
    ("source", "lang"), TARGETS,
    ids=[s.stem if lang == "en" else f"{lang}/{s.stem}" for s, lang in TARGETS])
def test_notebook_runs_and_is_current(source, lang):
    path = build_notebooks.target(source, lang)
    committed = nbformat.read(path, as_version=4)
    fresh = build_notebooks.build(source, lang)
    stale = "rebuild with: uv run python scripts/build_notebooks.py " + source.stem
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in fresh.cells
    ], "the committed notebook's cells differ from its source; " + stale
    assert committed.metadata.kernelspec.name == "python3"

    executed = build_notebooks.execute(copy.deepcopy(fresh), path.parent)  # raises on a cell error
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


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@pytest.mark.parametrize("source", BILINGUAL, ids=[s.stem for s in BILINGUAL])
def test_translations_show_the_same_numbers(source):
    """Cell by cell, the Chinese notebook's outputs carry the English one's numbers.

    Both are built from one source, so only the words may differ; the test above
    proves each committed notebook's outputs are current.
    """
    outputs = {}
    for lang in build_notebooks.languages(source):
        nb = nbformat.read(build_notebooks.target(source, lang), as_version=4)
        outputs[lang] = [_NUMBER.findall("".join(cell))
                         for cell in build_notebooks.text_outputs(nb)]
    english, chinese = outputs["en"], outputs["zh"]
    zh = nbformat.read(build_notebooks.target(source, "zh"), as_version=4)
    headings = [c.source.splitlines()[0] for c in zh.cells if c.cell_type == "markdown"]
    # every heading is translated (CJK characters), not copied from the English
    assert all(re.search("[\u4e00-\u9fff]", h) for h in headings), headings
    assert len(english) == len(chinese)
    assert sum(map(len, english)) > 20  # the worked examples print many numbers
    for number, (en, zh) in enumerate(zip(english, chinese)):
        assert en == zh, f"code cell {number}: {en} != {zh}"


def test_translation_tags_leave_nothing_behind():
    """No language marker survives into a built notebook."""
    for source, lang in TARGETS:
        for kind, body in build_notebooks.parse(source.read_text(encoding="utf-8"), lang):
            assert "<!-- en -->" not in body and "<!-- zh -->" not in body, (source, lang)
            assert "# [en]" not in body and "# [zh]" not in body, (source, lang)
