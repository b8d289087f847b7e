"""Execute every teaching notebook in a fresh kernel and check the committed
copy is current: same cells as its source in notebooks/src/, same text output.
A source may yield variants (notebooks/zh/NAME.ipynb in Chinese,
notebooks/solutions/NAME.ipynb with the exercises done); each is checked, and a
translation's outputs must show the same numbers as the original's.

Marked ``notebooks`` so it can be selected (``-m notebooks``) or skipped
(``-m "not notebooks"``); the plain ``pytest`` run includes it.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest

from xent_ref.teach import i18n

# The notebook packages are an extra (`pip install -e ".[test,notebooks]"`); without
# them these tests skip instead of failing the whole collection.
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from scripts import build_notebooks  # noqa: E402 (after the skips: it needs nbformat to build)

ROOT = Path(__file__).resolve().parent.parent

SOURCES = build_notebooks.sources()
TARGETS = [(source, variant) for source in SOURCES for variant in build_notebooks.variants(source)]
BILINGUAL = [source for source in SOURCES if "zh" in build_notebooks.variants(source)]

pytestmark = pytest.mark.notebooks


def test_there_are_at_least_five_notebooks():
    assert len(SOURCES) >= 5
    committed = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert committed == [s.stem for s in SOURCES]
    for variant in build_notebooks.VARIANTS[1:]:
        committed = sorted(p.stem for p in (ROOT / "notebooks" / variant).glob("*.ipynb"))
        assert committed == [s.stem for s in SOURCES if variant in build_notebooks.variants(s)]
    assert "zh" in build_notebooks.variants(ROOT / "notebooks" / "src" / "02_worked_examples.py")


def test_kernel_is_this_environment():
    """The python3 kernel nbclient starts is this interpreter's environment."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    build_notebooks.execute(nb)
    assert nb.cells[0].outputs[0].text.strip() == sys.prefix


@pytest.mark.parametrize(
    ("source", "variant"), TARGETS,
    ids=[s.stem if variant == "en" else f"{variant}/{s.stem}" for s, variant in TARGETS])
def test_notebook_runs_and_is_current(source, variant):
    path = build_notebooks.target(source, variant)
    committed = nbformat.read(path, as_version=4)
    fresh = build_notebooks.build(source, variant)
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
    for lang in ("en", "zh"):
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


def test_variant_tags_leave_nothing_behind():
    """No variant marker survives into a built notebook."""
    for source, variant in TARGETS:
        for kind, body in build_notebooks.parse(source.read_text(encoding="utf-8"), variant):
            for tag in build_notebooks.VARIANTS:
                assert f"<!-- {tag} -->" not in body and f"# [{tag}]" not in body, (source, variant)


# CJK ideographs, CJK punctuation, full-width forms
_CJK = re.compile("[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")


def test_english_notebooks_have_no_chinese_in_their_code():
    """The English notebooks' code holds English words only (the catalogues hold the rest)."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    paths += sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
    assert len(paths) >= 7
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for number, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not _CJK.search(cell.source), (path.name, number, cell.source)


def test_sources_name_their_labels_and_the_catalogue_has_them():
    """A source's code cells carry no Chinese (no pair of translations); every ``_("nb...")`` key is in the catalogue, and every notebook
    key of the catalogue is used by some source."""
    used = set()
    for source in SOURCES:
        for kind, lines in build_notebooks.split(source.read_text(encoding="utf-8")):
            if kind == "code":
                body = "\n".join(lines)
                assert not _CJK.search(body), (source.name, body)
                used |= build_notebooks.keys(body)
    keys = {key for key in i18n.catalogue("en") if key.startswith("nb.")}
    assert used == keys


def test_zh_labels_come_from_the_catalogue():
    source = ROOT / "notebooks" / "src" / "01_softmax.py"
    cells = {lang: [body for kind, body in build_notebooks.parse(
        source.read_text(encoding="utf-8"), lang) if kind == "code"] for lang in ("en", "zh")}
    naive = {lang: '"' + i18n.text("nb.01.naive", lang) + '"' for lang in ("en", "zh")}
    assert naive["en"] == '"naive   :"' and naive["zh"] != naive["en"]
    assert any(f"print({naive['zh']}, naive_softmax(row))" in cell for cell in cells["zh"])
    assert not any(naive["en"] in cell for cell in cells["zh"])
    assert any(f"print({naive['en']}, naive_softmax(row))" in cell for cell in cells["en"])
    assert not any("_(" in cell and "nb." in cell for cell in cells["en"] + cells["zh"])
