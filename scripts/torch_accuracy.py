"""Measure PyTorch's float64 accuracy on xent_ref's stress corpus, beside xent_ref's own.

Run it where torch is installed, from the repository root::

    PYTHONPATH=. /path/to/torch-venv/bin/python scripts/torch_accuracy.py

It scores both implementations with the oracle in ``tests/accuracy_oracle.py``
(the same corpus and measure as ``tests/test_accuracy.py``), prints the table
and writes it to ``docs/accuracy.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xent_ref  # noqa: E402
from tests.helpers import accuracy_oracle as oracle  # noqa: E402

COMMAND = "PYTHONPATH=. python scripts/torch_accuracy.py   # in an environment with torch and mpmath"


class TorchFloat64:
    """xent_ref's API answered by PyTorch in float64, gradients by autograd."""

    LOSSES = {
        "cross_entropy": F.cross_entropy,
        "nll_loss": F.nll_loss,
        "binary_cross_entropy": F.binary_cross_entropy,
        "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    }
    ACTIVATIONS = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}

    @staticmethod
    def tensor(a):
        a = np.asarray(a)
        return torch.from_numpy(a.astype(np.int64 if a.dtype.kind in "iu" else np.float64))

    def run(self, name, x, *args, **kwargs):
        """(value, gradient of value . seed) for one call; the seed is ones unless given."""
        x = self.tensor(x).requires_grad_()
        if name in self.ACTIVATIONS:
            (seed,) = args
            value = self.ACTIVATIONS[name](x, dim=-1)
            value.backward(self.tensor(seed))
        else:
            (target,) = args
            kwargs = {k: self.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
            value = self.LOSSES[name](x, self.tensor(target), **kwargs)
            value.backward(torch.ones_like(value))
        return value.detach().numpy(), x.grad.numpy()

    def __getattr__(self, name):
        if name.endswith("_grad"):
            return lambda *a, **k: self.run(name[: -len("_grad")], *a, **k)[1]
        if name in self.LOSSES or name in self.ACTIVATIONS:
            return lambda x, *a, **k: self.run(name, x, *a or (np.ones_like(x),), **k)[0]
        raise AttributeError(name)


def worst_cases(title: str, worst: dict) -> list[str]:
    lines = [f"Worst case per function, {title}:", ""]
    lines += [f"- {w.describe()}" for w in worst.values()]
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "accuracy.md"), help="markdown file to write ('-': none)")
    args = parser.parse_args(argv)

    cases = oracle.corpus()
    exacts = [oracle.exact(case) for case in cases]
    columns = {
        "xent_ref": oracle.measure(xent_ref, cases, exacts),
        "PyTorch": oracle.measure(TorchFloat64(), cases, exacts),
    }
    table = oracle.format_table(columns)
    text = "\n".join(
        [
            "## Accuracy (float64)",
            "",
            f"Worst error over a stress corpus ({len(cases)} calls, seed {oracle.SEED}: random logits at",
            "scales 1e-3 to 1e4, near-ties, confident rows such as [50, 0, 0, 0] and [745, 0, 0, 0],",
            "BCE logits of +-30 to +-700, soft targets, label smoothing, class weights, pos_weight,",
            "ignored targets; every reduction), against an mpmath oracle at",
            f"{oracle.DIGITS} digits. The unit is `eps * |exact| * (1 + max|x|)`, eps = 2.2e-16 and x the",
            "logits the value depends on; for a gradient, the row's largest error over its largest exact",
            "entry. (|exact| is floored at float64's smallest normal number, 2.2e-308.)",
            f"`tests/test_accuracy.py` holds xent_ref to {oracle.BOUND:g}.",
            "",
            table,
            "",
            "A PyTorch figure of 8.8e13 is a confident prediction whose loss (5.8e-22 for logits",
            "[50, 0, 0, 0]) or gradient PyTorch rounds to 0; 1.3e14 is a BCE-with-logits loss of 1.2e-15",
            "returned as 0; 1e214 is a BCE-with-logits gradient of -1e-217 returned as 1.1e-16.",
            "",
            f"Measured with numpy {np.__version__}, torch {torch.__version__}, Python {platform.python_version()}:",
            "",
            "```",
            COMMAND,
            "```",
            "",
            "### Worst cases",
            "",
            *worst_cases("PyTorch", columns["PyTorch"]),
            *worst_cases("xent_ref", columns["xent_ref"]),
        ]
    )
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
