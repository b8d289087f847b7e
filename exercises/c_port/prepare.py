"""Write what the C port exercise reads and is judged against.

    uv run python exercises/c_port/prepare.py FOLDER

writes two files into FOLDER:

* ``corpus.json``: the golden cases the port answers, as a corpus file that
  ``xent-ref verify --results results.json --corpus FOLDER/corpus.json`` judges
  against: every ``cross_entropy`` case with class-index targets, a ``(C,)`` or
  ``(N, C)`` input in float32 or float64, and no option beyond ``weight``,
  ``ignore_index`` and ``reduction`` (144 cases: the systematic ones and the edge
  cases: logits of 1e4 and 1e30, ``-inf`` logits, every target ignored, a zero
  total weight, an empty batch);
* ``inputs.txt``: the same cases' inputs as plain whitespace-separated tokens, for a
  C program to read without a JSON parser (the layout is in ``xent.c``).

The expected values stay in ``corpus.json``; the C program never sees them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from xent_ref import golden

OPTIONS = {"weight", "ignore_index", "reduction", "label_smoothing"}
HEADER = "xent-ref-c-port 1"


def port_cases() -> list:
    """The golden cases a port of class-index cross_entropy without smoothing answers."""
    return [case for case in golden.build_corpus()
            if case.function == "cross_entropy"
            and case.inputs["target"].dtype.kind == "i"
            and case.inputs["input"].ndim <= 2
            and case.dtype in ("float32", "float64")
            and set(case.kwargs) <= OPTIONS and not case.kwargs.get("label_smoothing")
            and case.inputs["input"].size <= golden.LARGE_ARRAY]


def _numbers(values) -> str:
    """Values as tokens C's strtod reads back exactly: %.17g, inf, -inf, nan."""
    return " ".join(repr(float(v)) if np.isfinite(v) else ("nan" if np.isnan(v) else
                    ("inf" if v > 0 else "-inf")) for v in np.ravel(values).astype(np.float64))


def inputs_text(cases) -> str:
    """The cases' inputs, one block per case, in the layout ``xent.c`` reads."""
    lines = [HEADER, str(len(cases))]
    for case in cases:
        logits, target = case.inputs["input"], case.inputs["target"]
        n, c = (1, logits.shape[0]) if logits.ndim == 1 else logits.shape
        weight = case.kwargs.get("weight")
        lines.append(" ".join(["case", case.id, case.dtype, case.kwargs.get("reduction", "mean"),
                               str(case.kwargs.get("ignore_index", -100)), str(logits.ndim),
                               str(n), str(c), "1" if weight is not None else "0"]))
        lines.append(_numbers(logits))
        lines.append(" ".join(str(int(t)) for t in np.ravel(target)))
        if weight is not None:
            lines.append(_numbers(weight))
        lines.append(_numbers(case.grad_output))
    return "\n".join(lines) + "\n"


BEGIN, END = "/* ---- your port: begin ---- */", "/* ---- your port: end ---- */"


def splice(template: str, port: str) -> str:
    """``template`` (the text of xent.c) with its "your port" block replaced by ``port``."""
    start, stop = template.index(BEGIN) + len(BEGIN), template.index(END)
    return template[:start] + "\n\n" + port.strip("\n") + "\n\n" + template[stop:]


def write(folder: Path) -> tuple[Path, Path]:
    """Write ``corpus.json`` and ``inputs.txt`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = port_cases()
    corpus, inputs = folder / "corpus.json", folder / "inputs.txt"
    golden.write_corpus(corpus, cases)
    inputs.write_text(inputs_text(cases), encoding="ascii")
    return corpus, inputs


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: prepare.py FOLDER", file=sys.stderr)
        return 2
    corpus, inputs = write(Path(argv[0]))
    print(f"{len(port_cases())} cases: {corpus} (for verify --corpus), {inputs} (for the C program)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
