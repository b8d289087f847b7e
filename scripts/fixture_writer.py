"""The one writer of the torch fixture files ``tests/fixtures/{family_golden,llm_golden,
second_order}.json`` (used by ``scripts/make_family_fixtures.py``,
``make_llm_fixtures.py`` and ``make_second_order_fixtures.py``).

The layout is a one-line header -- the torch and numpy versions, the seed, the date, the
command -- then one case per line, so that ``git diff`` of a re-run shows the cases that
changed. The header's ``date`` is the day the cases were last *changed*: a re-run that
writes the same cases keeps the file's date, so the file stays byte-identical (only a new
torch or numpy version, or different cases, change it).

numpy and the standard library only: the scripts pass their torch version in.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_CASES = ', "cases": [\n'  # between the header object and the first case


def write_fixture(out: Path, cases: list[dict], seed: int, torch_version: str) -> None:
    """Write ``cases`` (JSON-ready dicts) to ``out`` under the header, and say so."""
    body = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases) + "\n]}\n"
    header = {
        "torch_version": torch_version, "numpy_version": np.__version__, "seed": seed,
        "date": _date(out, body),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    with open(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(header)[:-1] + _CASES + body)
    print(f"wrote {len(cases)} cases to {out.relative_to(REPO)} (torch {torch_version})")


def _date(out: Path, body: str) -> str:
    """The date of ``out`` if it already holds exactly these cases, else today's."""
    if out.exists():
        head, _, old_body = out.read_text(encoding="utf-8").partition(_CASES)
        if old_body == body:
            return json.loads(head + "}")["date"]
    return datetime.date.today().isoformat()
