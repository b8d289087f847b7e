"""Write notebooks/data/torch_values.json: PyTorch's losses and gradients for the
cases the gradients notebook checks (05_gradients.ipynb).

Run with a Python that has torch (the notebooks themselves never need torch):

    /path/to/python-with-torch scripts/make_notebook_torch_values.py

Every tensor is float64, so PyTorch's values and xent_ref's agree to rounding.
Arrays are stored with xent_ref's exact JSON encoding (xent_ref.golden.jsonio): an
object {"dtype", "shape", "data"} with the flat row-major values, which the
notebook reads back with plain json and numpy (every value here is finite).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xent_ref.golden.jsonio import encode_array  # noqa: E402

OUT = ROOT / "notebooks" / "data" / "torch_values.json"


def _case(name, fn, input, target, **kwargs):
    """Run one loss in PyTorch; return its inputs, value and d loss / d input."""
    x = torch.tensor(input, dtype=torch.float64, requires_grad=True)
    tensor_kwargs = {
        key: torch.tensor(value, dtype=torch.float64) if isinstance(value, np.ndarray) else value
        for key, value in kwargs.items()
    }
    loss = getattr(F, fn)(x, torch.as_tensor(target), **tensor_kwargs)
    loss.backward()
    return {
        "name": name,
        "function": fn,
        "input": encode_array(np.asarray(input, dtype=np.float64)),
        "target": encode_array(np.asarray(target)),
        "kwargs": {
            key: encode_array(value) if isinstance(value, np.ndarray) else value
            for key, value in kwargs.items()
        },
        "loss": float(loss.detach()),
        "grad": encode_array(x.grad.numpy()),
    }


def main() -> None:
    rng = np.random.default_rng(5)
    logits_4x3 = np.array([[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]])
    labels_4x3 = np.array([2, 1, 0, 1])
    logits_3x2 = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    seg_logits = rng.normal(size=(2, 3, 4, 4)).round(3)
    seg_labels = rng.integers(0, 3, size=(2, 4, 4))
    seg_labels[rng.random(size=(2, 4, 4)) < 0.25] = 255
    binary_logits = np.array([2.0, -1.0, 0.5])
    binary_targets = np.array([1.0, 0.0, 1.0])
    cases = [
        _case("4x3 weight ignore_index", "cross_entropy", logits_4x3, labels_4x3,
              weight=np.array([2.0, 1.0, 2.0]), ignore_index=2),
        _case("nll_loss 4x3 weight ignore_index", "nll_loss",
              torch.log_softmax(torch.tensor(logits_4x3), dim=1).numpy(), labels_4x3,
              weight=np.array([2.0, 1.0, 2.0]), ignore_index=2),
        _case("3x2 weight label_smoothing", "cross_entropy", logits_3x2, np.array([0, 1, 0]),
              weight=np.array([1.0, 2.0]), label_smoothing=0.1),
        _case("segmentation ignore 255", "cross_entropy", seg_logits, seg_labels,
              ignore_index=255),
        _case("binary with logits pos_weight", "binary_cross_entropy_with_logits",
              binary_logits, binary_targets, pos_weight=np.array([3.0])),
        _case("binary on probabilities", "binary_cross_entropy",
              1 / (1 + np.exp(-binary_logits)), binary_targets),
    ]
    payload = {"torch_version": torch.__version__, "cases": cases}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
