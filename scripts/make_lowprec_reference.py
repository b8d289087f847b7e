"""Write ``xent_ref/golden/data/torch_lowprec_errors.json``: PyTorch's own error on every
float16/bfloat16 case of the golden corpus.

Run it with the PyTorch 2.13 CPU environment (torch is not a dependency of xent_ref):

    PYTHONPATH=. /work/torchvenv/bin/python scripts/make_lowprec_reference.py

A low-precision case of the corpus is judged by the rule "reference-error"
(docs/golden-format.md): an implementation passes when its error against the float64
answer is no worse than PyTorch's in that dtype plus one ulp. This script measures
PyTorch's error: for each case of ``golden.low_precision_specs()`` (exactly the
corpus's inputs, keyword arguments and ``grad_output``), it runs the
``torch.nn.functional`` function in the case's dtype (through
``xent_ref.verify.torch_adapter``, the adapter ``verify --impl torch`` uses, so autograd
gives the gradient) and records the largest ``|torch - float64 answer|`` over the
loss's elements and over the gradient's (a list of one per gradient for
``linear_cross_entropy``). The float64 answer is xent_ref's
(``golden.float64_reference``), the one ``verify`` judges against.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from xent_ref import golden
from xent_ref.verify import torch_adapter as _torch_adapter

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "xent_ref" / "golden" / golden.TORCH_ERRORS


def _max_error(got: np.ndarray, reference: np.ndarray) -> float:
    """The largest ``|got - reference|`` where the reference is finite; a non-finite
    reference must be matched exactly (the rule checks that separately)."""
    got, reference = got.astype(np.float64), reference.astype(np.float64)
    finite = np.isfinite(reference)
    if not np.array_equal(np.isnan(got[~finite]), np.isnan(reference[~finite])):
        raise SystemExit("torch disagrees with xent_ref on a non-finite value")
    return float(np.abs(got[finite] - reference[finite]).max(initial=0.0))


def main() -> int:
    cases = {}
    for spec in golden.low_precision_specs():
        loss_reference, grad_reference = golden.float64_reference(spec)
        loss = golden.call_function(getattr(_torch_adapter, spec.function), spec)
        grad = golden.call_grad(getattr(_torch_adapter, spec.function + "_grad"), spec)
        if isinstance(grad_reference, tuple):  # several gradients: one error each
            grad_error = [None if want is None else _max_error(got, want)
                          for got, want in zip(grad, grad_reference)]
        else:
            grad_error = _max_error(grad, grad_reference)
        cases[spec.id] = {"loss_error": _max_error(loss, loss_reference),
                          "grad_error": grad_error}
    document = {
        "description": "PyTorch's largest absolute error, in the case's dtype, against "
                       "xent_ref's float64 answer, for each low-precision golden case "
                       "(loss and gradient); written by scripts/make_lowprec_reference.py",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "cases": cases,
    }
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases (torch {torch.__version__}) to {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
