"""Generate ``tests/fixtures/parity.json``: PyTorch's answers at the edges.

Run it with the PyTorch 2.13 CPU environment (torch is not a dependency of xent_ref):

    PYTHONPATH=. /work/torchvenv/bin/python scripts/make_parity_fixtures.py

Each case is a call whose answer is an edge of PyTorch's semantics: class weights whose
kept total is 0, infinite weights and upstream gradients, 0-d and empty inputs,
big-endian arrays, arguments PyTorch refuses. Torch computes the loss and (by autograd,
``loss.backward(grad_output)``) the gradient with respect to the input, or records the
exception it raises. Arrays are stored with ``xent_ref.golden.jsonio.encode_array`` (exact,
non-finite values as strings). ``tests/test_parity.py`` replays every case against
xent_ref without torch; its torch-marked test regenerates the answers live.

Case layout::

    {"id": "...", "function": "cross_entropy",   # the xent_ref loss; its gradient is <name>_grad
     "args": [input, target], "kwargs": {...},     # arrays encoded; "label_smoothing" may be
                                                   # {"fraction": [1, 10]}
     "byteorder": ">" | "=" | "<=>",               # ">": the arrays are passed big-endian;
                                                   # "<=>": all but the first one (the input)
     "grad_output": array or null,
     "torch": {"loss": array, "grad": array} or {"error": "RuntimeError"},
     "error": null or {"type": "TypeError", "match": "^target:"}}   # xent_ref's, when it refuses

Later cases (appended, so the earlier ones stay byte for byte) add: ``"function":
"linear_cross_entropy"`` with ``"args": [input, linear_weight, target]`` (its torch answer
also records ``"grad_weight"``); the LLM options in ``kwargs`` (``logit_scale``,
``softcap``, ``z_loss``: PyTorch's answer is the composition of
``xent_ref.verify.torch_adapter``, autograd for the gradient); a ``label_smoothing`` of
``{"float": "nan"}``; float16 arrays; and ``"documented": true`` on a case that PyTorch
answers and xent_ref refuses (a difference the README's parity list names).
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xent_ref.golden.jsonio import decode_array, encode_array  # noqa: E402

OUTPUT = REPO / "tests" / "fixtures" / "parity.json"

LOG_Q = np.log([[0.25, 0.75], [0.5, 0.5]])
RNG_LOGITS = np.array([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7], [-0.2, 0.9, 0.5]])


def case(id, function, input, target, grad_output=None, error=None, byteorder="=", **kwargs):
    def enc(value):
        return encode_array(value) if isinstance(value, np.ndarray) else value
    return {"id": id, "function": function, "args": [enc(input), enc(target)],
            "kwargs": {k: enc(v) for k, v in kwargs.items()}, "byteorder": byteorder,
            "grad_output": None if grad_output is None else enc(np.asarray(grad_output,
                                                                           input.dtype)),
            "error": error}


def linear_case(id, input, linear_weight, target, documented=False, **kwargs):
    """A ``linear_cross_entropy`` case: three positional arrays."""
    entry = case(id, "linear_cross_entropy", input, target, **kwargs)
    entry["args"].insert(1, encode_array(linear_weight))
    if documented:
        entry["documented"] = True
    return entry


def documented(entry):
    """A case PyTorch answers and xent_ref refuses (named in the README's parity list)."""
    entry["documented"] = True
    return entry


def f64(x):
    return np.asarray(x, np.float64)


def i64(x):
    return np.asarray(x, np.int64)


CASES = [
    # class weights of both signs whose kept total is 0: PyTorch divides by it
    case("nll-mixed-weights-zero-total", "nll_loss", LOG_Q, i64([0, 1]), weight=f64([1, -1])),
    case("ce-mixed-weights-zero-total", "cross_entropy", LOG_Q, i64([0, 1]), weight=f64([1, -1])),
    case("ce-mixed-weights-zero-total-smoothing", "cross_entropy", LOG_Q, i64([0, 1]),
         weight=f64([1, -1]), label_smoothing=0.1),
    case("ce-mixed-weights-three-classes-smoothing", "cross_entropy", RNG_LOGITS, i64([0, 1, 2]),
         weight=f64([2, -1, -1]), label_smoothing=0.2),
    case("ce-mixed-weights-three-classes-sum", "cross_entropy", RNG_LOGITS, i64([0, 1, 2]),
         weight=f64([2, -1, -1]), reduction="sum"),
    case("ce-zero-weight-kept-smoothing", "cross_entropy", f64([[0.0, 1.0]]), i64([0]),
         weight=f64([0, 1]), label_smoothing=0.1),
    case("ce-all-ignored-smoothing", "cross_entropy", f64([[0.0, 1.0]]), i64([-100]),
         weight=f64([1, -1]), label_smoothing=0.1),
    case("ce-all-ignored", "cross_entropy", f64([[0.0, 1.0], [2.0, 1.0]]), i64([-100, -100])),
    case("nll-all-ignored", "nll_loss", LOG_Q, i64([-100, -100])),
    # infinities
    case("ce-grad-output-inf", "cross_entropy", f64([[1, 2, 3]]), i64([0]), reduction="sum",
         grad_output=np.inf),
    case("ce-inf-weight-off-target", "cross_entropy", f64([[1, 2, 3]]), i64([0]),
         weight=f64([1, np.inf, 1])),
    case("ce-inf-weight-on-target", "cross_entropy", f64([[1, 2, 3]]), i64([1]),
         weight=f64([1, np.inf, 1])),
    case("bcel-inf-pos-weight-none", "binary_cross_entropy_with_logits", f64([0.5, -1, 3]),
         f64([1, 0.5, 0]), pos_weight=f64(np.inf), reduction="none"),
    case("bcel-inf-pos-weight-mean", "binary_cross_entropy_with_logits", f64([0.5, -1, 3]),
         f64([1, 0.5, 0]), pos_weight=f64(np.inf)),
    case("ce-inf-probability-target", "cross_entropy", f64([[1, 2]]), f64([[np.inf, 0]])),
    case("bcel-overflowing-sum", "binary_cross_entropy_with_logits",
         np.full((2, 2), -3e38, np.float32), np.ones((2, 2), np.float32), reduction="sum"),
    # 0-d and empty inputs
    case("bce-0d", "binary_cross_entropy", f64(0.3), f64(1.0)),
    case("bce-0d-none", "binary_cross_entropy", f64(0.3), f64(1.0), reduction="none",
         grad_output=2.0),
    case("bcel-0d-weighted", "binary_cross_entropy_with_logits", f64(0.3), f64(1.0),
         weight=f64(2.0), pos_weight=f64(3.0), reduction="none"),
    case("ce-0x0-mean", "cross_entropy", np.zeros((0, 0)), i64(np.zeros(0))),
    case("ce-0x0-sum", "cross_entropy", np.zeros((0, 0)), i64(np.zeros(0)), reduction="sum"),
    case("ce-0x0-none", "cross_entropy", np.zeros((0, 0)), i64(np.zeros(0)), reduction="none",
         grad_output=np.zeros(0)),
    case("ce-0x0-smoothing", "cross_entropy", np.zeros((0, 0)), i64(np.zeros(0)),
         label_smoothing=0.1),
    case("ce-0x0-probabilities", "cross_entropy", np.zeros((0, 0)), np.zeros((0, 0))),
    case("nll-0x0", "nll_loss", np.zeros((0, 0)), i64(np.zeros(0))),
    # big-endian arrays: the same answer, in native byte order
    case("ce-big-endian-f8", "cross_entropy", RNG_LOGITS, i64([2, 0, 1]), byteorder=">",
         weight=f64([1, 2, 3])),
    case("ce-big-endian-f4", "cross_entropy", RNG_LOGITS.astype(np.float32), i64([2, 0, 1]),
         byteorder=">"),
    case("nll-big-endian-f8", "nll_loss", LOG_Q, i64([1, 0]), byteorder=">"),
    case("bce-big-endian-f4", "binary_cross_entropy", np.float32([0.2, 0.7]),
         np.float32([0, 1]), byteorder=">"),
    case("bcel-big-endian-f8", "binary_cross_entropy_with_logits", f64([0.2, -0.7]),
         f64([0, 1]), byteorder=">", pos_weight=f64(2.0)),
    # arguments PyTorch refuses: xent_ref refuses them too, naming the argument
    case("bcel-bool-target", "binary_cross_entropy_with_logits", f64([0.5, -1.0]),
         np.array([True, False]), error={"type": "TypeError", "match": "^target: "}),
    case("bce-bool-target", "binary_cross_entropy", f64([0.5, 0.25]),
         np.array([True, False]), error={"type": "TypeError", "match": "^target: "}),
    case("ce-ignore-index-2-63", "cross_entropy", f64([[0, 1]]), i64([0]), ignore_index=2**63,
         error={"type": "ValueError", "match": "^ignore_index: "}),
    case("ce-fraction-smoothing", "cross_entropy", f64([[0, 1]]), i64([0]),
         label_smoothing={"fraction": [1, 10]},
         error={"type": "TypeError", "match": "^label_smoothing: "}),
]

H2 = f64([[1.0, 2.0], [0.5, -1.0]])  # (N, H) = (2, 2): with W3 the logits of RNG-like rows
W3 = f64([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (V, H) = (3, 2)
CASES += [
    # smoothing over a zero kept weight total, through every path: PyTorch divides the NLL
    # and smoothing parts separately (0/0 + M/0)
    linear_case("lce-smoothing-zero-kept-weight", H2, W3, i64([0, 0]), weight=f64([0, 1, 1]),
                label_smoothing=0.1),
    linear_case("lce-smoothing-mixed-weights-zero-total", H2, W3, i64([0, 1]),
                weight=f64([1, -1, 2]), label_smoothing=0.2),
    case("ce-z-loss-smoothing-zero-kept-weight", "cross_entropy",
         RNG_LOGITS, i64([0, 0, 0]),
         weight=f64([0, 1, 1]), label_smoothing=0.1, z_loss=1e-3),
    case("ce-softcap-smoothing-mixed-weights-zero-total", "cross_entropy",
         RNG_LOGITS, i64([0, 1, 0]),
         weight=f64([1, -2, 2]), label_smoothing=0.3, softcap=1.5),
    # big-endian layer parameters next to a native input
    linear_case("lce-big-endian-weight-and-bias", H2, W3, i64([2, 0]), byteorder="<=>",
                linear_bias=f64([0.5, -0.5, 0.0])),
    # empty dimensions of linear CE: no features (logits 0: log V), no positions (mean nan)
    linear_case("lce-no-features", np.zeros((3, 0)), np.zeros((5, 0)), i64([0, 3, 4])),
    linear_case("lce-no-features-sum", np.zeros((3, 0)), np.zeros((5, 0)), i64([0, 3, 4]),
                reduction="sum", linear_bias=f64([1, 0, 0, 0, 2])),
    linear_case("lce-no-positions", H2, np.zeros((3, 0, 2)), i64(np.zeros((2, 0)))),
    linear_case("lce-no-positions-sum", H2, np.zeros((3, 0, 2)), i64(np.zeros((2, 0))),
                reduction="sum"),
    # infinities against the maximum: x - max = 0 there, and 0 * inf is not PyTorch's term
    case("ce-inf-weight-top-class-smoothing", "cross_entropy",
         f64([[1, 2, 3]]), i64([0]),
         weight=f64([1, 1, np.inf]), label_smoothing=0.1),
    linear_case("lce-inf-weight-top-class-smoothing", f64([[1, 2]]), W3, i64([0]),
                weight=f64([1, 1, np.inf]), label_smoothing=0.1),
    case("ce-inf-probability-target-at-max", "cross_entropy",
         f64([[2, 1]]), f64([[np.inf, 0]])),
    case("ce-grad-output-inf-negative-weights-smoothing", "cross_entropy",
         f64([[1, 2, 3]]), i64([0]),
         weight=f64([1, -1, 1]), label_smoothing=0.1, reduction="sum", grad_output=np.inf),
    case("ce-grad-output-inf-negative-weights-smoothing-none", "cross_entropy",
         RNG_LOGITS, i64([0, 1, 2]),
         weight=f64([1, -1, 1]), label_smoothing=0.1, reduction="none",
         grad_output=f64([np.inf, 1.0, -np.inf])),
    case("ce-grad-output-inf-probabilities", "cross_entropy",
         f64([[1, 2, 3]]), f64([[0.2, 0.3, 0.5]]),
         reduction="sum", grad_output=np.inf),
    # PyTorch accepts label_smoothing=nan (every loss nan); xent_ref refuses it, by name
    documented(case("ce-label-smoothing-nan", "cross_entropy",
         f64([[0, 1]]), i64([0]),
                    label_smoothing={"float": "nan"},
                    error={"type": "ValueError", "match": "^label_smoothing: "})),
    # float16: computed wide, so a mean whose sum passes 65504 does not overflow
    case("bcel-float16-mean-whose-sum-passes-65504", "binary_cross_entropy_with_logits",
         np.full((4, 1), 60000.0, np.float16), np.zeros((4, 1), np.float16)),
]


def decode(value):
    """A stored argument as xent_ref (and torch) take it."""
    if isinstance(value, dict) and "fraction" in value:
        return Fraction(*value["fraction"])
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, dict):
        return decode_array(value)
    return value


LLM_OPTIONS = ("logit_scale", "softcap", "z_loss")


def torch_answer(entry: dict) -> dict:
    """PyTorch's loss and input gradient for a stored case, or the exception it raises."""
    import torch
    import torch.nn.functional as F

    if entry["function"] == "linear_cross_entropy" or set(entry["kwargs"]) & set(LLM_OPTIONS):
        return _composed_answer(entry)
    x, t = (decode(a) for a in entry["args"])
    kwargs = {k: decode(v) for k, v in entry["kwargs"].items()}
    dtype = {np.dtype(np.float32): torch.float32,
             np.dtype(np.float16): torch.float16}.get(x.dtype, torch.float64)
    try:
        inp = torch.tensor(x, dtype=dtype, requires_grad=True)
        tgt = torch.from_numpy(np.array(t)) if t.dtype != np.float64 else torch.tensor(t)
        if t.dtype.kind == "f":
            tgt = tgt.to(dtype)
        for name in ("weight", "pos_weight"):
            if name in kwargs:
                kwargs[name] = torch.tensor(kwargs[name], dtype=dtype)
        loss = getattr(F, entry["function"])(inp, tgt, **kwargs)
        g = entry["grad_output"]
        g = torch.ones_like(loss) if g is None else torch.tensor(decode(g), dtype=dtype)
        loss.backward(g)
    except Exception as err:  # noqa: BLE001 -- the exception is the answer recorded
        return {"error": type(err).__name__}
    grad = inp.grad if inp.grad is not None else torch.zeros_like(inp)
    return {"loss": encode_array(loss.detach().numpy()), "grad": encode_array(grad.numpy())}


def _composed_answer(entry: dict) -> dict:
    """PyTorch's answer through ``xent_ref.verify.torch_adapter``: ``F.linear_cross_entropy``,
    or the LLM options composed in torch (autograd gives every gradient)."""
    from xent_ref.verify import torch_adapter

    args = [decode(a) for a in entry["args"]]
    kwargs = {k: decode(v) for k, v in entry["kwargs"].items()}
    g = entry["grad_output"]
    g = None if g is None else decode(g)
    loss_fn = getattr(torch_adapter, entry["function"])
    grad_fn = getattr(torch_adapter, entry["function"] + "_grad")
    try:
        loss = loss_fn(*args, **kwargs)
        grads = grad_fn(*args, grad_output=g, **kwargs)
    except Exception as err:  # noqa: BLE001 -- the exception is the answer recorded
        return {"error": type(err).__name__}
    if entry["function"] != "linear_cross_entropy":
        return {"loss": encode_array(loss), "grad": encode_array(grads)}
    return {"loss": encode_array(loss), "grad": encode_array(grads[0]),
            "grad_weight": encode_array(grads[1])}


def main() -> None:
    import torch

    entries = json.loads(json.dumps(CASES))
    for entry in entries:
        entry["torch"] = torch_answer(entry)
    document = {"torch_version": torch.__version__, "numpy_version": np.__version__,
                "generator": "scripts/make_parity_fixtures.py", "cases": entries}
    OUTPUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {len(entries)} cases to {OUTPUT.relative_to(REPO)} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
