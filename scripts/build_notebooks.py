"""Build the teaching notebooks from their sources and execute them.

The source of each notebook is a plain Python file in ``notebooks/src/`` in the
"percent" layout: a line ``# %%`` starts a code cell, ``# %% [markdown]`` starts
a markdown cell whose lines are comments (``# `` is stripped). This script turns
each source into ``notebooks/NAME.ipynb``, runs it top to bottom in a fresh
``python3`` kernel (the project's virtual environment when run under ``uv run``)
and writes it back with its outputs, so readers see the results without running
anything.

One source can yield several variants of its notebook, so that they cannot
drift apart: ``en`` (the default, ``notebooks/NAME.ipynb``), ``zh`` (a Chinese
translation, ``notebooks/zh/NAME.ipynb``) and ``solutions`` (exercises filled
in, ``notebooks/solutions/NAME.ipynb``). A variant named after a language of
:mod:`xent_ref.teach.i18n` is written in that language; the others in English.

Text reaches a notebook in one of two ways, both per language:

* Prose: in a markdown cell a line ``<!-- en -->``, ``<!-- zh -->`` or
  ``<!-- solutions -->`` starts text for that variant only and ``<!-- both -->``
  returns to shared text.
* Printed labels: a code cell names a message of the text catalogues
  (``xent_ref/teach/locale/LANG.json``, the ones ``explain`` and ``xent-ref
  examples`` use) as ``_("nb.01.naive")``; the build writes the message of the
  variant's language in its place, as a string literal (an f-string when the
  message has ``{placeholders}``: they are the notebook's own expressions). A
  built notebook's code holds the words of its language only, and every variant
  runs the same code, so the numbers are the same.

In a code cell a line ending in the comment ``# [en]`` (``# [zh]``,
``# [solutions]``), or a comment line starting with that tag, belongs to that
variant only (the tag is dropped; a line holding only the tag is an empty line
of that variant): the solutions, and paths that depend on the notebook's folder.
A tag may name several variants, separated by spaces: ``<!-- en solutions -->``,
``# [en zh]``. Untagged lines belong to every variant. A source is built once
per variant it mentions, and always as ``en``.

    uv run python scripts/build_notebooks.py            # all notebooks
    uv run python scripts/build_notebooks.py 03_targets  # one (with its variants)

The tests import this module (``from scripts import build_notebooks``; pytest
puts the repository root on ``sys.path``) to run the notebooks the same way and
to check that the committed notebooks match their sources and outputs.
"""

from __future__ import annotations

import copy
import re
import string
import sys
import time
from pathlib import Path

from xent_ref.teach import i18n

# nbformat and nbclient (the notebooks extra) are imported where a notebook is
# built or run, so parse() works without them (tests/test_exercises.py uses it).

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
KERNEL = "python3"
CELL_TIMEOUT = 120  # seconds; a whole notebook takes a few seconds

VARIANTS = ("en", "zh", "solutions")  # the first is the default, built into notebooks/
_MARKER = re.compile(r"^# %%(?: \[(markdown)\])?\s*$")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NAMES = r"((?:en|zh|solutions)(?: (?:en|zh|solutions))*)"
_MD_TAG = re.compile(r"^<!-- (both|" + _NAMES[1:] + r" -->\s*$")
_CODE_TRAILING = re.compile(r"\s*# \[" + _NAMES + r"\]\s*$")
_CODE_LEADING = re.compile(r"^(\s*)# \[" + _NAMES + r"\] ?")
_TEXT = re.compile(r"""_\((["'])(nb\.[\w.]+)\1\)""")  # _("nb.01.naive"): a catalogue message


def sources() -> list[Path]:
    """The notebook sources, in reading order."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def variants(source: Path) -> tuple[str, ...]:
    """The variants ``source`` is built in: ``en``, and every other one it tags."""
    text = source.read_text(encoding="utf-8")
    tagged = set()
    for line in text.splitlines():
        match = _MD_TAG.match(re.sub(r"^# ?", "", line)) or _CODE_TRAILING.search(line) \
            or _CODE_LEADING.match(line)
        if match:
            tagged.update(match.group(match.lastindex).split())
    return tuple(v for v in VARIANTS if v == VARIANTS[0] or v in tagged)


def target(source: Path, variant: str = VARIANTS[0]) -> Path:
    """Where the notebook built from ``source`` as ``variant`` is committed."""
    folder = NOTEBOOKS if variant == VARIANTS[0] else NOTEBOOKS / variant
    return folder / f"{source.stem}.ipynb"


def _select(kind: str, lines: list[str], variant: str) -> list[str]:
    """Keep the shared lines and those tagged ``variant``; drop the tags."""
    kept = []
    if kind == "markdown":
        current = {"both"}
        for line in lines:
            match = _MD_TAG.match(line)
            if match:
                current = set(match.group(1).split())
            elif current & {"both", variant}:
                kept.append(line)
        return kept
    for line in lines:
        tag = _CODE_TRAILING.search(line)
        if tag:
            if variant in tag.group(1).split():
                kept.append(line[: tag.start()])
            continue
        tag = _CODE_LEADING.match(line)
        if tag:
            if variant in tag.group(2).split():
                kept.append(tag.group(1) + "# " + line[tag.end():])
            continue
        kept.append(line)
    return kept


def language(variant: str) -> str:
    """The catalogue language ``variant`` is written in."""
    return variant if variant in i18n.languages() else i18n.FALLBACK


def _literal(key: str, lang: str) -> str:
    """The message ``key`` of ``lang`` as Python source: an f-string if it has fields."""
    text = i18n.text(key, lang)
    parts = list(string.Formatter().parse(text))
    if any(field is not None for _, field, _, _ in parts):
        return "f" + _quoted(text)
    return _quoted("".join(literal for literal, _, _, _ in parts))


def _quoted(text: str) -> str:
    """``repr(text)``, in double quotes as the sources write strings, where it can be."""
    literal = repr(text)
    return literal if literal[0] == '"' or '"' in text else '"' + literal[1:-1] + '"'


def localize(code: str, lang: str) -> str:
    """``code`` with each ``_("KEY")`` replaced by the message ``KEY`` of ``lang``."""
    return _TEXT.sub(lambda match: _literal(match.group(2), lang), code)


def split(text: str) -> list[tuple[str, list[str]]]:
    """A percent-format source's cells, ``(kind, lines)``, every variant's lines still
    in, markdown uncommented, labels still catalogue keys."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match:
            cells.append(("markdown" if match.group(1) else "code", []))
        elif cells:
            cells[-1][1].append(line)
    return [(kind, [re.sub(r"^# ?", "", line) for line in lines] if kind == "markdown" else lines)
            for kind, lines in cells]


def keys(code: str) -> set[str]:
    """The catalogue keys ``code`` prints, ``_("KEY")``."""
    return {match.group(2) for match in _TEXT.finditer(code)}


def parse(text: str, variant: str = VARIANTS[0]) -> list[tuple[str, str]]:
    """Split a percent-format source into ``(kind, source)`` cells of ``variant``."""
    result = []
    for kind, lines in split(text):
        body = "\n".join(_select(kind, lines, variant)).strip("\n")
        if kind == "code":
            body = localize(body, language(variant))
        if body:
            result.append((kind, body))
    return result


def build(source: Path, variant: str = VARIANTS[0]) -> nbformat.NotebookNode:
    """The unexecuted notebook for one source file, as ``variant``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    for number, (kind, body) in enumerate(parse(source.read_text(encoding="utf-8"), variant)):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        # Fixed cell ids keep rebuilt notebooks byte-stable in version control.
        nb.cells.append(make(body, id=f"{source.stem[:2]}-{number:02d}"))
    return nb


def execute(nb: nbformat.NotebookNode, folder: Path = NOTEBOOKS) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel started in ``folder`` (where the
    notebook lives, so its relative paths work), in place; raises on a cell error."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        record_timing=False,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)
    return nb


def _coalesce_streams(outputs: list) -> list:
    """Join consecutive pieces of the same stream: how a cell's printing is cut
    into pieces depends on timing, and the committed text must not."""
    joined: list = []
    for out in outputs:
        previous = joined[-1] if joined else None
        if (out.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == out.name):
            previous.text += out.text
        else:
            joined.append(out)
    return joined


def text_outputs(nb: nbformat.NotebookNode) -> list[list[str]]:
    """Per code cell, the text a reader sees: streams, results, errors.

    Images are left out (PNG bytes vary between library versions), and so is
    the text stand-in of a figure; memory addresses are masked.
    """
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for out in _coalesce_streams(copy.deepcopy(cell.get("outputs", []))):
            if out.output_type == "stream":
                texts.append(f"{out.name}: {out.text}")
            elif out.output_type == "error":
                texts.append(f"error: {out.ename}: {out.evalue}")
            elif "image/png" not in out.get("data", {}):
                texts.append(f"{out.output_type}: {out.get('data', {}).get('text/plain', '')}")
        cells.append([_ADDRESS.sub(" at 0x...", text) for text in texts])
    return cells


def main(names: list[str]) -> int:
    import nbformat

    chosen = [s for s in sources() if not names or s.stem in names]
    if not chosen:
        print(f"no notebook source matches {names}", file=sys.stderr)
        return 2
    for source in chosen:
        for variant in variants(source):
            start = time.perf_counter()
            path = target(source, variant)
            path.parent.mkdir(exist_ok=True)
            nb = execute(build(source, variant), path.parent)
            nbformat.write(nb, path)
            print(f"{path.relative_to(ROOT)}: executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
