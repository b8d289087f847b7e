"""The kill table of the wrong-implementation catalogue: for each function, how many of
``tests/wrong_impls/`` (subfolders included) ``xent-ref verify`` catches, names right,
misnames, or lets pass.

    uv run python scripts/kill_table.py          # print it and write it into the docs
    uv run python scripts/kill_table.py --check  # exit 1 when the docs' table is stale

Each wrong implementation states the diagnosis it must get on a ``Diagnosis: <id>`` line
of its docstring (several ids: all of them, nothing unexplained). *Named right*: the
stated id explains the most failing checks and every other failing diagnosis is
``low-precision-arithmetic`` on float16/bfloat16 cases only (what the bug's own NumPy
code does in those dtypes); *misnamed*: another known id explains the most; the rest of
the caught ones are *unexplained*. A module counts under the first corpus function it
defines. The table goes into docs/golden-format.md between its two markers.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "tests" / "wrong_impls"
DOC = ROOT / "docs" / "golden-format.md"
START, END = "<!-- kill-table: start -->", "<!-- kill-table: end -->"
# Wrong, but passing by design: PyTorch makes the same error and the low-precision rule
# allows it; verify names it in a note (tests/test_verify.py, PASSES_NAMED).
PASSES_BY_DESIGN = {"grad_true_class_rounded"}
_LINE = re.compile(r"^Diagnosis:\s*(.+?)\s*$", re.MULTILINE)


def catalogue() -> list[Path]:
    return sorted(p for p in FOLDER.rglob("*.py") if not p.name.startswith("_"))


def name_of(path: Path) -> str:
    return path.relative_to(FOLDER).with_suffix("").as_posix()


def stated(path: Path) -> tuple[str, ...]:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    found = _LINE.search(doc)
    return tuple(i.strip() for i in found.group(1).split(",")) if found else ()


def verdict(expected: tuple[str, ...], document: dict) -> str:
    """"passed", "named", "misnamed" or "unexplained" for one verify JSON report."""
    from xent_ref import golden

    if document["ok"]:
        return "passed"
    failing = [d for d in document["diagnoses"] if d["failing"]]
    ids = {d["id"] for d in failing}
    if len(expected) > 1:
        return "named" if ids == set(expected) else (
            "unexplained" if "unexplained" in ids else "misnamed")
    top = max(failing, key=lambda d: len(d["cases"]), default=None)
    if top is None or top["id"] == "unexplained":
        return "unexplained"
    if top["id"] != expected[0] and len(top["cases"]) > max(
            (len(d["cases"]) for d in failing if d["id"] == expected[0]), default=0):
        return "misnamed"
    for d in failing:
        if d["id"] == expected[0]:
            continue
        low = {golden.parse_id(c)["dtype"] for c in d["cases"]} <= {"float16", "bfloat16"}
        if d["id"] == "unexplained":
            return "unexplained"
        if not (d["id"] == "low-precision-arithmetic" and low):
            return "misnamed"
    return "named"


def function_of(path: Path) -> str | None:
    """The first corpus function the module offers, as verify loads it (in the order the
    module made them: some come from a loop, ``globals().update(...)``)."""
    from xent_ref import verify

    offered = set(verify.function_order())
    defined = vars(verify.load_implementation(str(path)))
    return next((name for name in defined if name in offered), None)


def run_one(path: Path) -> dict:
    from xent_ref import verify

    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        with contextlib.redirect_stdout(io.StringIO()):
            verify.main(impl=str(path), json_path=str(report))
        return json.loads(report.read_text())


def rows(documents: dict[str, dict]) -> list[tuple[str, str, str]]:
    """``(module, function, verdict)`` for every module with a report in ``documents``."""
    found = []
    for path in catalogue():
        name = name_of(path)
        if name in documents and name not in PASSES_BY_DESIGN:
            found.append((name, function_of(path), verdict(stated(path), documents[name])))
    return found


def table(found) -> str:
    by_function: dict[str, dict[str, int]] = {}
    for _, function, result in found:
        counts = by_function.setdefault(function.removesuffix("_grad"), {})
        counts[result] = counts.get(result, 0) + 1
    head = ["| function | wrong impls | caught | named right | misnamed | unexplained "
            "| passed |", "|---|---:|---:|---:|---:|---:|---:|"]

    def line(label, c):
        total = sum(c.values())
        return (f"| {label} | {total} | {total - c.get('passed', 0)} | {c.get('named', 0)} "
                f"| {c.get('misnamed', 0)} | {c.get('unexplained', 0)} "
                f"| {c.get('passed', 0)} |")
    body = [line(f"`{f}`", c) for f, c in sorted(by_function.items())]
    totals: dict[str, int] = {}
    for c in by_function.values():
        for key, n in c.items():
            totals[key] = totals.get(key, 0) + n
    total = sum(totals.values())
    named = totals.get("named", 0)
    share = f"{100 * named / total:.0f}%" if total else "-"
    lines = head + body + [line("**all**", totals), "",
                           f"{named} of {total} named right ({share}); "
                           f"{totals.get('misnamed', 0)} misnamed; "
                           f"{totals.get('passed', 0)} passed. Not counted: "
                           + ", ".join(f"`{n}`" for n in sorted(PASSES_BY_DESIGN))
                           + " (passes as PyTorch does, named in a note)."]
    problems = [f"`{n}` ({f}): {r}" for n, f, r in found if r != "named"]
    if problems:
        lines += ["", "Not named right: " + "; ".join(problems) + "."]
    return "\n".join(lines)


def with_table(text: str, rendered: str) -> str:
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{rendered}\n{END}{after}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    documents = {name_of(p): run_one(p) for p in catalogue()
                 if function_of(p) and name_of(p) not in PASSES_BY_DESIGN}
    rendered = table(rows(documents))
    print(rendered)
    text = DOC.read_text(encoding="utf-8")
    if "--check" in argv:
        return 0 if with_table(text, rendered) == text else 1
    DOC.write_text(with_table(text, rendered), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
