"""Generate ``tests/fixtures/llm_golden.json``: PyTorch 2.13's answers for the LLM losses.

Run with any Python that has torch==2.13.0 and numpy (torch is not a dependency of xent_ref):

    python scripts/make_llm_fixtures.py

Two families of cases, every input drawn from one seeded NumPy generator:

* ``linear_cross_entropy``: ``torch.nn.functional.linear_cross_entropy`` itself, its loss
  and the autograd gradients with respect to ``input``, ``linear_weight`` and
  ``linear_bias``;
* ``cross_entropy`` with ``logit_scale`` / ``softcap`` / ``z_loss``: PyTorch has no such
  options, so the case is the composition the kernels document, built from torch ops --
  ``z = s * x``; ``z = c * tanh(z / c)``; ``F.cross_entropy(z, ...)`` plus
  ``z_loss * logsumexp(z)**2`` over the kept tokens (summed, divided by the number of
  kept tokens for ``mean``, per token for ``none``) -- and autograd's gradient.

A third family has float16 and bfloat16 inputs (``"reference": "float64"``): the arrays are
drawn in float64 and rounded to the dtype, PyTorch computes on their exact float64 values (the
same two compositions), and the expected values are those float64 answers; the test asks for
the nearest value of the dtype to them -- what xent_ref promises for low precision.

Case layout::

    {"id", "function", "dtype", "args": [arrays], "kwargs": {name: array or value},
     "grad_output": array, "expected": {"loss": array, "grads": [arrays or null]}}
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "llm_golden.json"
SEED = 20261123


# Only the array encoding comes from xent_ref (a file format, numpy alone): every
# expected value below is computed by PyTorch.
sys.path.insert(0, str(REPO))
from xent_ref.golden.jsonio import encode_array  # noqa: E402
from scripts.fixture_writer import write_fixture  # noqa: E402  (the shared file layout)
rng = np.random.default_rng(SEED)
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}
LOW = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


def _t(a, dtype=None, grad=False):
    t = torch.tensor(a, dtype=TORCH_DTYPE[dtype] if dtype else None)
    return t.requires_grad_(grad)


def _grad_output(loss: torch.Tensor, low: str | None = None) -> torch.Tensor:
    g = rng.uniform(0.5, 2.0, tuple(loss.shape))
    if low is not None:  # a value the low-precision dtype holds exactly
        g = np.asarray(g).astype(LOW[low]).astype(np.float64)
    return torch.tensor(g, dtype=loss.dtype)


def _targets(n: int, v: int, ignore: str) -> np.ndarray:
    t = rng.integers(0, v, n)
    if ignore == "some":
        t[:: 3] = -100
    elif ignore == "all":
        t[:] = -100
    return t


def linear_cases():
    shapes = [(6, 4, 7), (5, 3, 300)]  # V = 300: several vocabulary slices, V not 2**k
    for (n, h, v), dtype, bias, weighted, ignore, eps, reduction in itertools.product(
        shapes, ("float32", "float64"), (False, True), (False, True), ("none", "some", "all"),
        (0.0, 0.1), ("mean", "sum", "none"),
    ):
        if ignore == "all" and (weighted or eps):
            continue
        if v > 10 and not (bias and ignore == "some"):
            continue  # the large vocabulary once per option, not in every combination
        case_id = "/".join(["linear_cross_entropy", f"{n}x{h}x{v}", reduction,
                            "b" if bias else "no-b", "w" if weighted else "no-w",
                            f"ign={ignore}", f"ls={eps}", dtype])
        hidden = rng.normal(size=(n, h)).astype(dtype)
        weight_matrix = (rng.normal(size=(v, h)) / np.sqrt(h)).astype(dtype)
        target = _targets(n, v, ignore)
        kwargs = {"reduction": reduction}
        if bias:
            kwargs["linear_bias"] = rng.normal(size=v).astype(dtype)
        if weighted:
            kwargs["weight"] = rng.uniform(0.2, 3.0, v).astype(dtype)
        if eps:
            kwargs["label_smoothing"] = eps
        yield case_id, "linear_cross_entropy", dtype, [hidden, weight_matrix, target], kwargs
    # one row (H,) with a 0-d target, and probability targets
    for dtype in ("float32", "float64"):
        hidden = rng.normal(size=5).astype(dtype)
        weight_matrix = rng.normal(size=(9, 5)).astype(dtype)
        yield (f"linear_cross_entropy/one-row/{dtype}", "linear_cross_entropy", dtype,
               [hidden, weight_matrix, np.array(4)], {"linear_bias": rng.normal(size=9).astype(dtype)})
        probs = rng.dirichlet(np.ones(9), size=4).astype(dtype)
        yield (f"linear_cross_entropy/probs/{dtype}", "linear_cross_entropy", dtype,
               [rng.normal(size=(4, 5)).astype(dtype), weight_matrix, probs],
               {"label_smoothing": 0.2, "reduction": "sum"})


def more_linear_cases():
    """K-dimensional linear weights (V, d1, ..., dK, H) and ignore_index as PyTorch 2.13 takes
    it (None by default; a class; -1). Drawn after every other case, so adding them left the
    earlier cases' inputs unchanged."""
    for out, dtype, reduction, extra in itertools.product(
        ((7, 3), (6, 2, 3)), ("float32", "float64"), ("mean", "sum", "none"),
        ("plain", "b+w+ls", "probs"),
    ):
        n, h = 5, 4
        case_id = "/".join(["linear_cross_entropy", "kdim", "x".join(map(str, out)), reduction,
                            extra, dtype])
        hidden = rng.normal(size=(n, h)).astype(dtype)
        weight_matrix = (rng.normal(size=out + (h,)) / np.sqrt(h)).astype(dtype)
        kwargs = {"reduction": reduction}
        if extra == "probs":
            target = rng.dirichlet(np.ones(out[0]), size=(n,) + out[1:])
            target = np.moveaxis(target, -1, 1).astype(dtype)  # (n, V, d1, ...)
        else:
            target = rng.integers(0, out[0], (n,) + out[1:])
            target.flat[::4] = -100
        if extra == "b+w+ls":
            kwargs["linear_bias"] = rng.normal(size=out).astype(dtype)
            kwargs["weight"] = rng.uniform(0.2, 3.0, out[0]).astype(dtype)
            kwargs["label_smoothing"] = 0.1
        yield case_id, "linear_cross_entropy", dtype, [hidden, weight_matrix, target], kwargs
    for ignore_index, dtype in itertools.product((None, 2, -1), ("float32", "float64")):
        hidden = rng.normal(size=(6, 3)).astype(dtype)
        weight_matrix = rng.normal(size=(5, 3)).astype(dtype)
        target = rng.integers(0, 5, 6)
        target[[1, 4]] = -100 if ignore_index is None else ignore_index
        yield (f"linear_cross_entropy/ignore_index={ignore_index}/{dtype}", "linear_cross_entropy",
               dtype, [hidden, weight_matrix, target],
               {"ignore_index": ignore_index, "label_smoothing": 0.05})


def run_linear(dtype, args, kwargs, low=None):
    hidden, weight_matrix, target = args
    h = _t(hidden, dtype, grad=True)
    w = _t(weight_matrix, dtype, grad=True)
    torch_kwargs = {}
    b = None
    for key, value in kwargs.items():
        if key == "linear_bias":
            b = _t(value, dtype, grad=True)
            torch_kwargs[key] = b
        elif isinstance(value, np.ndarray):
            torch_kwargs[key] = _t(value, dtype)
        else:
            torch_kwargs[key] = value
    t = torch.tensor(target) if target.dtype.kind in "iu" else _t(target, dtype)
    loss = F.linear_cross_entropy(h, w, t, **torch_kwargs)
    g = _grad_output(loss, low)
    loss.backward(g)
    grads = [h.grad, w.grad, b.grad if b is not None else None]
    return loss, g, grads


def option_cases():
    options = [
        {"logit_scale": 0.5}, {"softcap": 2.0}, {"z_loss": 1e-2},
        {"logit_scale": 1.7, "softcap": 3.0, "z_loss": 1e-3},
    ]
    shapes = {"NxC": (5, 6), "NxCxd1": (3, 6, 4), "C": (6,)}
    for (shape_name, shape), dtype, opts, weighted, ignore, eps, reduction in itertools.product(
        shapes.items(), ("float32", "float64"), options, (False, True), ("none", "some", "all"),
        (0.0, 0.1), ("mean", "sum", "none"),
    ):
        if ignore != "none" and shape_name == "C":
            continue
        if ignore == "all" and (weighted or eps):
            continue
        option_id = ",".join(f"{k}={v}" for k, v in opts.items())
        case_id = "/".join(["cross_entropy", shape_name, option_id, reduction,
                            "w" if weighted else "no-w", f"ign={ignore}", f"ls={eps}", dtype])
        logits = (rng.normal(size=shape) * 3).astype(dtype)
        loss_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
        target = rng.integers(0, shape[0 if len(shape) == 1 else 1], loss_shape)
        if ignore != "none":
            flat = target.reshape(-1)
            flat[:: 1 if ignore == "all" else 3] = -100
        kwargs = dict(opts, reduction=reduction)
        if weighted:
            kwargs["weight"] = rng.uniform(0.2, 3.0, shape[0 if len(shape) == 1 else 1]).astype(dtype)
        if eps:
            kwargs["label_smoothing"] = eps
        yield case_id, "cross_entropy", dtype, [logits, target], kwargs
    for dtype in ("float32", "float64"):  # probability targets
        probs = rng.dirichlet(np.ones(6), size=5).astype(dtype)
        yield (f"cross_entropy/probs/z_loss+softcap/{dtype}", "cross_entropy", dtype,
               [rng.normal(size=(5, 6)).astype(dtype) * 3, probs],
               {"z_loss": 0.05, "softcap": 4.0, "logit_scale": 1.3, "label_smoothing": 0.1})


def run_options(dtype, args, kwargs, low=None):
    """The composition the kernels document, in torch ops (see the module docstring)."""
    logits, target = args
    x = _t(logits, dtype, grad=True)
    kw = dict(kwargs)
    scale, softcap, z_loss = kw.pop("logit_scale", 1.0), kw.pop("softcap", None), kw.pop("z_loss", 0.0)
    reduction = kw.pop("reduction", "mean")
    if "weight" in kw:
        kw["weight"] = _t(kw["weight"], dtype)
    z = x * scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    probabilities = target.dtype.kind == "f"
    t = _t(target, dtype) if probabilities else torch.tensor(target)
    ce = F.cross_entropy(z, t, reduction=reduction, **kw)
    axis = 0 if z.ndim == 1 else 1
    lse = torch.logsumexp(z, dim=axis)
    kept = torch.ones_like(lse, dtype=torch.bool) if probabilities else (t != -100)
    zl = torch.where(kept, z_loss * lse * lse, torch.zeros_like(lse))
    if reduction == "none":
        loss = ce + zl
    elif reduction == "sum":
        loss = ce + zl.sum()
    else:
        loss = ce + zl.sum() / kept.sum()
    g = _grad_output(loss, low)
    loss.backward(g)
    return loss, g, [x.grad]


def low_precision_cases():
    """float16 and bfloat16 inputs for both compositions: linear_cross_entropy (options of
    cross_entropy, class weights, ignored tokens, smoothing, every reduction) and
    cross_entropy with the LLM options, including a peaked row (p_t = 0.999, where a
    low-precision softmax rounds the true class's gradient p_t - 1 away)."""
    for dtype in ("float16", "bfloat16"):
        low = LOW[dtype]
        for reduction, extra in itertools.product(("mean", "sum", "none"), ("plain", "b+w+ign+ls")):
            hidden = rng.normal(size=(6, 8)).astype(low)
            weight_matrix = (rng.normal(size=(50, 8)) / 3).astype(low)
            target = rng.integers(0, 50, 6)
            kwargs = {"reduction": reduction}
            if extra != "plain":
                target[[1, 4]] = -100
                kwargs["linear_bias"] = rng.normal(size=50).astype(low)
                kwargs["weight"] = rng.uniform(0.2, 3.0, 50).astype(low)
                kwargs["label_smoothing"] = 0.1
            yield (f"linear_cross_entropy/low/{reduction}/{extra}/{dtype}", "linear_cross_entropy",
                   dtype, [hidden, weight_matrix, target], kwargs)
        for reduction, opts in itertools.product(
            ("mean", "sum", "none"),
            ({"softcap": 30.0}, {"logit_scale": 0.5, "z_loss": 1e-3},
             {"logit_scale": 1.7, "softcap": 3.0, "z_loss": 1e-3}),
        ):
            option_id = ",".join(f"{k}={v}" for k, v in opts.items())
            logits = (rng.normal(size=(6, 40)) * 3).astype(low)
            target = rng.integers(0, 40, 6)
            target[2] = -100
            kwargs = dict(opts, reduction=reduction, label_smoothing=0.05)
            yield (f"cross_entropy/low/{option_id}/{reduction}/{dtype}", "cross_entropy", dtype,
                   [logits, target], kwargs)
        peaked = np.zeros((4, 1000))
        target = np.array([3, 10, 500, 999])
        peaked[np.arange(4), target] = np.log(0.999 * 999 / 0.001)  # p_t = 0.999
        yield (f"cross_entropy/low/peaked-p_t=0.999/{dtype}", "cross_entropy", dtype,
               [peaked.astype(low), target], {"z_loss": 1e-6, "reduction": "sum"})


def run_low_precision(runner):
    """``runner`` on the exact float64 values of low-precision arrays."""
    def widened(a):
        return a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype in LOW.values() else a

    def run(dtype, args, kwargs):
        return runner("float64", [widened(a) for a in args],
                      {k: widened(v) for k, v in kwargs.items()}, low=dtype)
    return run


def main() -> int:
    cases = []
    runners = {"linear_cross_entropy": run_linear, "cross_entropy": run_options}
    for maker in (linear_cases, option_cases, more_linear_cases, low_precision_cases):
        for case_id, function, dtype, args, kwargs in maker():
            runner = runners[function]
            if dtype in LOW:
                runner = run_low_precision(runner)
            loss, g, grads = runner(dtype, args, kwargs)
            g = g.detach().numpy()
            case = {"id": case_id, "function": function, "dtype": dtype}
            if dtype in LOW:
                case["reference"] = "float64"  # expected: PyTorch's float64 answer
                g = g.astype(LOW[dtype])  # exact: drawn in the dtype
            cases.append({
                **case,
                "args": [encode_array(a) for a in args],
                "kwargs": {k: encode_array(v) if isinstance(v, np.ndarray) else v
                           for k, v in kwargs.items()},
                "grad_output": encode_array(g),
                "expected": {"loss": encode_array(loss.detach().numpy()),
                             "grads": [None if gr is None else encode_array(gr.numpy())
                                       for gr in grads]},
            })
    write_fixture(OUT, cases, SEED, torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
