"""Generate ``tests/fixtures/second_order.json``: PyTorch 2.13's answers beyond the first
gradient -- gradients with respect to the target, double backward, per-token statistics.

Run with any Python that has torch==2.13.0 and numpy (torch is not a dependency of xent_ref):

    /work/torchvenv/bin/python scripts/make_second_order_fixtures.py

Every input comes from one seeded NumPy generator; every expected value is computed by torch:

* ``*_grad`` with ``wrt="target"``: autograd's ``target.grad`` of the loss (times a drawn
  ``grad_output``);
* ``*_hvp``: double backward, ``torch.autograd.grad(torch.autograd.grad(L, x, grad_output,
  create_graph=True), x, v)`` (``allow_unused``: an unused input is a zero); the LLM options
  as the composition the kernels document (``z = s x``; ``z = c tanh(z / c)``;
  ``F.cross_entropy(z) + z_loss * logsumexp(z)**2`` over kept tokens, the z-loss ``mean``
  over their number), ``linear_cross_entropy_hvp`` jointly over ``(input, linear_weight[,
  linear_bias])`` of ``F.linear`` then that composition;
* ``cross_entropy_hessian``: the diagonal ``(C, C)`` blocks of
  ``torch.autograd.functional.hessian`` of the whole loss (the script asserts that the blocks
  between different tokens are 0);
* ``*_stats``: ``torch.logsumexp``, ``torch.argmax`` (the first maximal index),
  ``-(softmax * log_softmax)`` summed (0 where p = 0, nan in a nan row), ``log_softmax`` at the target, and the
  losses, all on the transformed logits.

Case layout::

    {"id", "function" (a name of xent_ref.functions.BY_NAME), "dtype",
     "args": [arrays], "kwargs": {name: array, [arrays or null] or value},
     "expected": array | [arrays or null] | {field: array}}
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "second_order.json"
SEED = 20261204
TORCH_SERIES = "2.13."

# Only the array encoding comes from xent_ref (a file format, numpy alone).
sys.path.insert(0, str(REPO))
from xent_ref.golden.jsonio import encode_array  # noqa: E402
from scripts.fixture_writer import write_fixture  # noqa: E402  (the shared file layout)

rng = np.random.default_rng(SEED)
TORCH = {"float32": torch.float32, "float64": torch.float64}
OPTION_NAMES = ("logit_scale", "softcap", "z_loss")


def _t(a, dtype, grad=False):
    if isinstance(a, np.ndarray) and a.dtype.kind in "iu":
        return torch.tensor(a)
    return torch.tensor(np.asarray(a), dtype=TORCH[dtype]).requires_grad_(grad)


def _g(shape, dtype):
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# the losses in torch ops
# ---------------------------------------------------------------------------------------------


def transformed(x, kw):
    z = x * kw.get("logit_scale", 1.0)
    if kw.get("softcap") is not None:
        z = kw["softcap"] * torch.tanh(z / kw["softcap"])
    return z


def ce_parts(x, target, kw, dtype):
    """(ce per token, z-loss per token, kept, z) of the composition, reduction "none"."""
    z = transformed(x, kw)
    probabilities = not isinstance(target, torch.Tensor) or target.is_floating_point()
    extra = {k: kw[k] for k in ("ignore_index", "label_smoothing") if k in kw}
    if "weight" in kw:
        extra["weight"] = _t(kw["weight"], dtype)
    ce = F.cross_entropy(z, target, reduction="none", **extra)
    lse = torch.logsumexp(z, dim=0 if z.ndim == 1 else 1)
    kept = (torch.ones_like(lse, dtype=torch.bool) if probabilities
            else target != kw.get("ignore_index", -100))
    zl = torch.where(kept, kw.get("z_loss", 0.0) * lse * lse, torch.zeros_like(lse))
    return ce, zl, kept, z


def ce_loss(x, target, kw, dtype):
    reduction = kw.get("reduction", "mean")
    extra = {k: kw[k] for k in ("ignore_index", "label_smoothing") if k in kw}
    if "weight" in kw:
        extra["weight"] = _t(kw["weight"], dtype)
    ce_red = F.cross_entropy(transformed(x, kw), target, reduction=reduction, **extra)
    _, zl, kept, _ = ce_parts(x, target, kw, dtype)
    if reduction == "none":
        return ce_red + zl
    if reduction == "sum":
        return ce_red + zl.sum()
    return ce_red + zl.sum() / kept.sum()


def double_backward(loss, inputs, grad_output, v):
    grads = torch.autograd.grad(loss, inputs, grad_output, create_graph=True)
    hv = torch.autograd.grad(grads, inputs, v, allow_unused=True)
    return [torch.zeros_like(i) if h is None else h for i, h in zip(inputs, hv)]


# ---------------------------------------------------------------------------------------------
# cases: (id, function, dtype, args, kwargs, expected)
# ---------------------------------------------------------------------------------------------

CE_VARIANTS = [
    {}, {"weight": True}, {"label_smoothing": 0.2}, {"weight": True, "label_smoothing": 0.1},
    {"softcap": 2.5, "logit_scale": 1.3}, {"z_loss": 0.01},
    {"weight": True, "label_smoothing": 0.1, "softcap": 3.0, "logit_scale": 0.8,
     "z_loss": 0.02},
]


def _variant(v, c, dtype):
    kw = dict(v)
    if kw.get("weight"):
        kw["weight"] = rng.uniform(0.2, 3.0, c).astype(dtype)
    return kw


def target_grad_cases():
    for dtype in ("float32", "float64"):
        for i, variant in enumerate(CE_VARIANTS):
            for reduction in ("mean", "sum", "none"):
                x = (rng.normal(size=(4, 5)) * 2).astype(dtype)
                y = rng.dirichlet(np.ones(5), size=4).astype(dtype)
                kw = dict(_variant(variant, 5, dtype), reduction=reduction)
                if i == 3:
                    kw["ignore_index"] = -7  # no effect with probabilities
                yield ce_target_case(f"ce/target/v{i}/{reduction}/{dtype}", dtype, x, y, kw)
        x = rng.normal(size=(2, 3, 4, 2)).astype(dtype)
        y = rng.dirichlet(np.ones(3), size=(2, 4, 2)).transpose(0, 3, 1, 2).astype(dtype)
        yield ce_target_case(f"ce/target/4d/{dtype}", dtype, x, y, {"label_smoothing": 0.3})
        x = np.array([[0.0, -np.inf, 1.0], [2.0, 1.0, 0.0]], dtype)
        y = np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]], dtype)
        yield ce_target_case(f"ce/target/-inf-logit/{dtype}", dtype, x, y, {})
        for reduction in ("mean", "none"):
            p = rng.uniform(0.02, 0.98, (5, 3)).astype(dtype)
            y = rng.uniform(0, 1, (5, 3)).astype(dtype)
            kw = {"reduction": reduction, "weight": rng.uniform(0.5, 2, 3).astype(dtype)}
            yield binary_target_case(f"bce/target/{reduction}/{dtype}", "binary_cross_entropy",
                                     dtype, p, y, kw)
            x = (rng.normal(size=(5, 3)) * 3).astype(dtype)
            kw = {"reduction": reduction, "pos_weight": rng.uniform(0.5, 3, 3).astype(dtype),
                  "weight": rng.uniform(0.5, 2, 3).astype(dtype)}
            yield binary_target_case(f"bcel/target/{reduction}/{dtype}",
                                     "binary_cross_entropy_with_logits", dtype, x, y, kw)
        y = rng.uniform(0, 1, 4).astype(dtype)
        yield binary_target_case(f"bce/target/edges/{dtype}", "binary_cross_entropy", dtype,
                                 np.array([0.0, 1.0, 1e-30, 0.5], dtype), y, {"reduction": "sum"})
        x = np.array([np.inf, -np.inf, 40.0, -40.0], dtype)
        for kw in ({"reduction": "sum"}, {"reduction": "sum", "pos_weight": np.array(2.0, dtype)}):
            yield binary_target_case(f"bcel/target/edges/{len(kw)}/{dtype}",
                                     "binary_cross_entropy_with_logits", dtype, x, y, kw)


def ce_target_case(case_id, dtype, x, y, kw):
    yt = _t(y, dtype, grad=True)
    loss = ce_loss(_t(x, dtype), yt, kw, dtype)
    g = _g(tuple(loss.shape), dtype)
    loss.backward(_t(g, dtype))
    kwargs = dict(kw, grad_output=g, wrt="target")
    return case_id, "cross_entropy_grad", dtype, [x, y], kwargs, yt.grad.numpy()


def binary_target_case(case_id, function, dtype, x, y, kw):
    yt = _t(y, dtype, grad=True)
    extra = {k: _t(v, dtype) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    loss = getattr(F, function)(_t(x, dtype), yt, **extra)
    g = _g(tuple(loss.shape), dtype)
    loss.backward(_t(g, dtype))
    kwargs = dict(kw, grad_output=g, wrt="target")
    return case_id, function + "_grad", dtype, [x, y], kwargs, yt.grad.numpy()


def _index_target(n, c, shape=None, ignore=True):
    t = rng.integers(0, c, n if shape is None else shape)
    if ignore:
        t.flat[::3] = -100
    return t


def ce_hvp_cases():
    for dtype in ("float32", "float64"):
        for name, fn in (("softmax_hvp", torch.softmax), ("log_softmax_hvp", torch.log_softmax)):
            for axis in (-1, 0):
                x, g, v = (rng.normal(size=(3, 5)).astype(dtype) for _ in range(3))
                xt = _t(x, dtype, grad=True)
                (hv,) = double_backward(fn(xt, axis), [xt], _t(g, dtype), [_t(v, dtype)])
                yield (f"{name}/axis={axis}/{dtype}", name, dtype, [x, g, v], {"axis": axis},
                       hv.numpy())
        for i, variant in enumerate(CE_VARIANTS):
            for reduction in ("mean", "sum", "none"):
                x = (rng.normal(size=(6, 7)) * 2).astype(dtype)
                kw = dict(_variant(variant, 7, dtype), reduction=reduction)
                yield ce_hvp_case(f"ce/hvp/v{i}/{reduction}/{dtype}", dtype, x,
                                  _index_target(6, 7), kw)
        probs = rng.dirichlet(np.ones(6), size=5).astype(dtype)
        yield ce_hvp_case(f"ce/hvp/probs/{dtype}", dtype, (rng.normal(size=(5, 6)) * 3).astype(dtype),
                          probs, {"softcap": 4.0, "logit_scale": 1.3, "z_loss": 0.05,
                                  "label_smoothing": 0.1})
        yield ce_hvp_case(f"ce/hvp/4d/{dtype}", dtype, rng.normal(size=(2, 4, 3, 2)).astype(dtype),
                          _index_target(None, 4, (2, 3, 2)),
                          {"softcap": 2.0, "z_loss": 0.1, "label_smoothing": 0.2})
        yield ce_hvp_case(f"ce/hvp/1d/{dtype}", dtype, rng.normal(size=5).astype(dtype),
                          np.array(2), {"softcap": 1.5, "reduction": "sum"})
        confident = np.array([[30.0, 0.0, -5.0], [0.0, 25.0, 25.0]], dtype)
        yield ce_hvp_case(f"ce/hvp/confident/{dtype}", dtype, confident, np.array([0, 2]),
                          {"softcap": 20.0})
        yield ce_hvp_case(f"ce/hvp/all-ignored/{dtype}", dtype, rng.normal(size=(3, 4)).astype(dtype),
                          np.full(3, -100), {"z_loss": 0.1})
        x = rng.normal(size=(4, 5)).astype(dtype)
        t = _index_target(4, 5)
        xt, v = _t(x, dtype, grad=True), rng.normal(size=(4, 5)).astype(dtype)
        kw = {"weight": rng.uniform(0.5, 2, 5).astype(dtype)}
        loss = F.nll_loss(xt, torch.tensor(t), weight=_t(kw["weight"], dtype))
        g = _g((), dtype)
        (hv,) = double_backward(loss, [xt], _t(g, dtype), [_t(v, dtype)])
        yield (f"nll/hvp/{dtype}", "nll_loss_hvp", dtype, [x, t, v], dict(kw, grad_output=g),
               hv.numpy())
        for case in hessian_cases(dtype):
            yield case


def ce_hvp_case(case_id, dtype, x, target, kw):
    xt = _t(x, dtype, grad=True)
    tt = _t(target, dtype)
    loss = ce_loss(xt, tt, kw, dtype)
    g, v = _g(tuple(loss.shape), dtype), rng.normal(size=x.shape).astype(dtype)
    (hv,) = double_backward(loss, [xt], _t(g, dtype), [_t(v, dtype)])
    return case_id, "cross_entropy_hvp", dtype, [x, target, v], dict(kw, grad_output=g), hv.numpy()


def hessian_cases(dtype):
    for i, variant in enumerate(CE_VARIANTS[::3] + [CE_VARIANTS[-1]]):
        n, c = 3, 4
        x = (rng.normal(size=(n, c)) * 2).astype(dtype)
        t = _index_target(n, c)
        kw = dict(_variant(variant, c, dtype), reduction="mean")
        tt = torch.tensor(t)

        def f(flat):
            return ce_loss(flat.reshape(n, c), tt, kw, dtype)

        full = torch.autograd.functional.hessian(f, _t(x, dtype).reshape(-1)).reshape(n, c, n, c)
        blocks = torch.stack([full[r, :, r, :] for r in range(n)])
        off = full.clone()
        for r in range(n):
            off[r, :, r, :] = 0
        assert float(off.abs().max()) == 0.0, "tokens interact?"
        yield f"ce/hessian/v{i}/{dtype}", "cross_entropy_hessian", dtype, [x, t], kw, blocks.numpy()


def binary_hvp_cases():
    for dtype in ("float32", "float64"):
        for reduction in ("mean", "sum", "none"):
            p = rng.uniform(0.02, 0.98, (4, 3)).astype(dtype)
            y = rng.uniform(0, 1, (4, 3)).astype(dtype)
            yield binary_hvp_case(f"bce/hvp/{reduction}/{dtype}", "binary_cross_entropy", dtype,
                                  p, y, {"reduction": reduction,
                                         "weight": rng.uniform(0.5, 2, 3).astype(dtype)})
            x = (rng.normal(size=(4, 3)) * 3).astype(dtype)
            yield binary_hvp_case(f"bcel/hvp/{reduction}/{dtype}",
                                  "binary_cross_entropy_with_logits", dtype, x, y,
                                  {"reduction": reduction,
                                   "pos_weight": rng.uniform(0.5, 3, 3).astype(dtype),
                                   "weight": rng.uniform(0.5, 2, 3).astype(dtype)})
        y = np.array([0.5, 1.0, 0.0, 0.3], dtype)
        yield binary_hvp_case(f"bce/hvp/edges/{dtype}", "binary_cross_entropy", dtype,
                              np.array([0.0, 1.0, 1.0, 0.999], dtype), y, {"reduction": "sum"})
        yield binary_hvp_case(f"bcel/hvp/edges/{dtype}", "binary_cross_entropy_with_logits", dtype,
                              np.array([30.0, -30.0, 0.0, 5.0], dtype), y, {"reduction": "sum"})


def binary_hvp_case(case_id, function, dtype, x, y, kw):
    xt = _t(x, dtype, grad=True)
    extra = {k: _t(v, dtype) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    loss = getattr(F, function)(xt, _t(y, dtype), **extra)
    g, v = _g(tuple(loss.shape), dtype), rng.normal(size=x.shape).astype(dtype)
    (hv,) = double_backward(loss, [xt], _t(g, dtype), [_t(v, dtype)])
    return case_id, function + "_hvp", dtype, [x, y, v], dict(kw, grad_output=g), hv.numpy()


def linear_cases():
    for dtype in ("float32", "float64"):
        for i, variant in enumerate(CE_VARIANTS[::2]):
            for reduction, bias in (("mean", True), ("sum", False), ("none", True)):
                n, h, vocab = 5, 4, 7
                args = [rng.normal(size=(n, h)).astype(dtype),
                        (rng.normal(size=(vocab, h)) / 2).astype(dtype), _index_target(n, vocab)]
                kw = dict(_variant(variant, vocab, dtype), reduction=reduction)
                if bias:
                    kw["linear_bias"] = rng.normal(size=vocab).astype(dtype)
                yield linear_hvp_case(f"linear/hvp/v{i}/{reduction}/{dtype}", dtype, args, kw)
                yield linear_stats_case(f"linear/stats/v{i}/{reduction}/{dtype}", dtype, args, kw)


def linear_hvp_case(case_id, dtype, args, kw):
    h, w, t = args
    kw_ce = {k: v for k, v in kw.items() if k != "linear_bias"}
    inputs = [_t(h, dtype, True), _t(w, dtype, True)]
    if "linear_bias" in kw:
        inputs.append(_t(kw["linear_bias"], dtype, True))
    logits = F.linear(*inputs)
    loss = ce_loss(logits, torch.tensor(t), kw_ce, dtype)
    g = _g(tuple(loss.shape), dtype)
    v = [rng.normal(size=tuple(i.shape)).astype(dtype) for i in inputs]
    hv = double_backward(loss, inputs, _t(g, dtype), [_t(a, dtype) for a in v])
    return (case_id, "linear_cross_entropy_hvp", dtype, [h, w, t, v],
            dict(kw, grad_output=g, chunk_size=2), [a.numpy() for a in hv] +
            ([] if "linear_bias" in kw else [None]))


def stats_expected(z_from, target, kw, dtype):
    """Every statistic, from torch, of logits ``z_from`` (a tensor) and ``target``."""
    ce, zl, kept, z = ce_parts(z_from, target, kw, dtype)
    axis = 0 if z.ndim == 1 else 1
    logp, p = torch.log_softmax(z, axis), torch.softmax(z, axis)
    argmax = torch.argmax(z, dim=axis)  # torch: the first maximal index
    if target.is_floating_point():
        target_logprob = (target * logp).sum(axis)
        correct = argmax == torch.argmax(target, dim=axis)
    else:
        safe = torch.where(kept, target, 0)
        picked = logp.gather(axis, safe.unsqueeze(axis)).squeeze(axis)
        target_logprob = torch.where(kept, picked, torch.zeros_like(picked))
        correct = (argmax == target) & kept
    return {
        "lse": torch.logsumexp(z, dim=axis), "loss": ce + zl, "z_loss": zl,
        "target_logprob": target_logprob,
        "entropy": -torch.where(p == 0, torch.zeros_like(p), p * logp).sum(axis),
        "argmax": argmax, "correct": correct, "kept": kept,
        "reduced_loss": ce_loss(z_from, target, kw, dtype),
        "reduced_z_loss": {"none": zl, "sum": zl.sum(),
                           "mean": zl.sum() / kept.sum()}[kw.get("reduction", "mean")],
    }


def stats_cases():
    for dtype in ("float32", "float64"):
        for i, variant in enumerate(CE_VARIANTS):
            for reduction in ("mean", "sum", "none"):
                x = (rng.normal(size=(6, 9)) * 3).astype(dtype)
                t = _index_target(6, 9)
                kw = dict(_variant(variant, 9, dtype), reduction=reduction)
                yield stats_case(f"ce/stats/v{i}/{reduction}/{dtype}", dtype, x, t, kw)
        # a softcap rounds large logits to ties: the first of them is the argmax, and it is
        # not the raw logits' argmax
        ties = np.array([[50.0, 100.0, 0.0, -3.0], [0.0, 2.0, 2.0, 1.0], [7.0, 7.0, 7.0, 7.0]],
                        dtype)
        yield stats_case(f"ce/stats/ties/{dtype}", dtype, ties, np.array([1, 2, -100]),
                         {"softcap": 1.0, "z_loss": 0.1})
        yield stats_case(f"ce/stats/ties-unscaled/{dtype}", dtype, ties[1:], np.array([2, 0]), {})
        # an impossible class (p = 0 adds no entropy), a nan logit (nan everywhere, argmax
        # on it), a uniform row (entropy log C)
        edges = np.array([[1.0, -np.inf, 0.0], [np.nan, 1.0, 2.0], [0.0, 0.0, 0.0]], dtype)
        yield stats_case(f"ce/stats/edges/{dtype}", dtype, edges, np.array([0, 2, 1]),
                         {"reduction": "none", "z_loss": 0.1})
        probs = rng.dirichlet(np.ones(5), size=4).astype(dtype)
        yield stats_case(f"ce/stats/probs/{dtype}", dtype, (rng.normal(size=(4, 5)) * 2).astype(dtype),
                         probs, {"logit_scale": 2.0, "label_smoothing": 0.1, "z_loss": 0.01})
        yield stats_case(f"ce/stats/3d/{dtype}", dtype, rng.normal(size=(2, 5, 3)).astype(dtype),
                         _index_target(None, 5, (2, 3)), {"softcap": 2.0, "reduction": "sum"})


def stats_case(case_id, dtype, x, target, kw):
    expected = stats_expected(_t(x, dtype), _t(target, dtype), kw, dtype)
    return (case_id, "cross_entropy_stats", dtype, [x, target], kw,
            {k: v.detach().numpy() for k, v in expected.items()})


def linear_stats_case(case_id, dtype, args, kw):
    h, w, t = args
    kw_ce = {k: v for k, v in kw.items() if k != "linear_bias"}
    bias = _t(kw["linear_bias"], dtype) if "linear_bias" in kw else None
    expected = stats_expected(F.linear(_t(h, dtype), _t(w, dtype), bias), torch.tensor(t),
                              kw_ce, dtype)
    return (case_id, "linear_cross_entropy_stats", dtype, [h, w, t], dict(kw, chunk_size=2),
            {k: v.detach().numpy() for k, v in expected.items()})


def _encode(value):
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, (list, tuple)):
        return [None if a is None else encode_array(a) for a in value]
    if isinstance(value, dict):
        return {k: encode_array(np.asarray(a)) for k, a in value.items()}
    return value


def main() -> int:
    if not torch.__version__.startswith(TORCH_SERIES):
        print(f"torch {torch.__version__}: these fixtures are PyTorch {TORCH_SERIES}x's answers",
              file=sys.stderr)
        return 1
    cases = []
    for maker in (target_grad_cases, ce_hvp_cases, binary_hvp_cases, stats_cases, linear_cases):
        for case_id, function, dtype, args, kwargs, expected in maker():
            cases.append({"id": case_id, "function": function, "dtype": dtype,
                          "args": [_encode(a) for a in args],
                          "kwargs": {k: _encode(v) for k, v in kwargs.items()},
                          "expected": _encode(expected)})
    assert len({c["id"] for c in cases}) == len(cases), "duplicate case ids"
    write_fixture(OUT, cases, SEED, torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
