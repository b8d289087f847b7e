"""Generate ``tests/fixtures/family_golden.json``: PyTorch 2.13's answers for the relatives of
cross-entropy (KL divergence, the focal losses, poly-1).

Run with any Python that has torch==2.13.0 and numpy (torch is not a dependency of xent_ref):

    PYTHONPATH=. python scripts/make_family_fixtures.py

Every input is drawn from one seeded NumPy generator; each case records the loss and the
autograd gradient with respect to ``input`` for a random ``grad_output``:

* ``kl_div``: ``torch.nn.functional.kl_div`` itself, every reduction, ``log_target`` both
  ways, zeros in the target, float32 and float64.
* ``sigmoid_focal_loss``: torchvision's formula (``torchvision/ops/focal_loss.py``; torchvision
  is not needed) written in torch ops -- ``p = sigmoid(x)``, ``ce = BCE-with-logits``,
  ``p_t = p y + (1 - p)(1 - y)``, ``ce (1 - p_t)^gamma``, times
  ``alpha_t = alpha y + (1 - alpha)(1 - y)`` when ``alpha >= 0`` -- for gamma 0, 0.5, 2, 5,
  alpha 0.25 and -1, logits up to +-100. Where ``1 - p_t`` rounds to 0 (a confident, right
  logit) that formula's loss is 0 and its gradient 0; each such case also records
  ``"stable"``: the same loss with ``1 - p_t = y sigmoid(-x) + (1 - y) sigmoid(x)`` and
  ``ce = y softplus(-x) + (1 - y) softplus(x)`` (no ``1 - sigmoid``), differentiated by
  autograd too, in float64: the exact tiny values xent_ref must give.
* ``softmax_focal_loss``: ``-sum_c q_c (1 - p_c)^gamma log p_c`` with ``p = softmax(x)`` and
  ``q`` cross-entropy's target mass (class weights, label smoothing, ignore_index; class
  indices or probabilities), ``mean`` dividing by cross-entropy's denominator.
* ``poly1_cross_entropy``: ``F.cross_entropy(x, t, ...) + epsilon * sum_c q_c (1 - p_c)`` with the
  same ``q`` and denominator (optax's ``poly_loss_cross_entropy`` for one-hot or probability
  targets without weights or smoothing).

Appended after those, the same four functions in float16 and bfloat16 (``low_precision_cases``):
the inputs, targets, weights and ``grad_output`` drawn in float64 and rounded to the dtype, torch
computing in that dtype on CPU (as PyTorch does), its outputs stored in the dtype. They are
PyTorch's low-precision answers, not the best ones: tests/test_family_lowprec.py holds xent_ref
(the float64 answer rounded once) to being no further from the float64 answer than they are.

Case layout::

    {"id", "function", "dtype", "args": [input, target], "kwargs": {...},
     "grad_output": array, "expected": {"loss": array, "grad": array},
     "stable": {"loss": array, "grad": array} (sigmoid focal only, optional)}
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
sys.path.insert(0, str(REPO))
from xent_ref.golden.jsonio import encode_array  # noqa: E402  (numpy only)
from scripts.fixture_writer import write_fixture  # noqa: E402  (the shared file layout)
from xent_ref.verify.torch_adapter import target_mass  # noqa: E402  (shared with verify)

OUT = REPO / "tests" / "fixtures" / "family_golden.json"
SEED = 20261204
rng = np.random.default_rng(SEED)
LOW = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64,
               "float16": torch.float16, "bfloat16": torch.bfloat16}


def _tensor(a, dtype=None, grad=False):
    if dtype in LOW:  # torch takes no bfloat16 array: through float32, which holds it exactly
        t = torch.tensor(np.asarray(a).astype(np.float32), dtype=TORCH_DTYPE[dtype])
    else:
        t = torch.tensor(a) if dtype is None else torch.tensor(a, dtype=TORCH_DTYPE[dtype])
    return t.requires_grad_(grad)


def _numpy(t: torch.Tensor, dtype: str) -> np.ndarray:
    """A tensor as an array of ``dtype`` (a low-precision one through float32, exactly)."""
    t = t.detach()
    return t.float().numpy().astype(LOW[dtype]) if dtype in LOW else t.numpy()


def _autograd(loss_fn, x, dtype):
    """``(loss, grad_output, grad)`` of ``loss_fn(x)`` by autograd, for a random upstream
    (in a low-precision dtype: a value it holds, and torch computing in that dtype)."""
    xt = _tensor(x, dtype, grad=True)
    loss = loss_fn(xt)
    g = rng.uniform(0.5, 2.0, tuple(loss.shape))
    if dtype in LOW:
        g = np.asarray(g).astype(LOW[dtype]).astype(np.float64)
    g = torch.tensor(g, dtype=loss.dtype)
    (grad,) = torch.autograd.grad(loss, xt, g)
    return _numpy(loss, dtype), _numpy(g, dtype), _numpy(grad, dtype)


def _reduced(losses, reduction, denominator):
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / denominator


# ----------------------------------------------------------------------------------- kl_div


def kl_cases():
    for dtype, reduction, log_target, zeros in itertools.product(
            ("float32", "float64"), ("none", "sum", "mean", "batchmean"), (False, True),
            (False, True)):
        x = F.log_softmax(torch.tensor(rng.normal(size=(4, 5)) * 2), 1).numpy().astype(dtype)
        p = rng.dirichlet(np.ones(5), size=4)
        if zeros:
            p[0, :2] = 0.0
            p[2, 4] = 0.0
            p /= p.sum(axis=1, keepdims=True)
        target = (np.log(p) if log_target else p).astype(dtype) if not (zeros and log_target) \
            else np.where(p > 0, np.log(np.where(p > 0, p, 1)), -np.inf).astype(dtype)
        kwargs = {"reduction": reduction, "log_target": log_target}
        case_id = f"kl_div/{reduction}/log_target={log_target}/zeros={zeros}/{dtype}"
        tt = torch.tensor(target)
        yield case_id, "kl_div", dtype, [x, target], kwargs, \
            lambda xt, tt=tt, kw=kwargs: F.kl_div(xt, tt, **kw)
    # a 3-d input (batchmean divides by shape[0] alone), and a 0-d one
    for dtype in ("float32", "float64"):
        x = np.log(rng.dirichlet(np.ones(3), size=(2, 4))).astype(dtype)
        p = rng.dirichlet(np.ones(3), size=(2, 4)).astype(dtype)
        yield f"kl_div/batchmean/3d/{dtype}", "kl_div", dtype, [x, p], \
            {"reduction": "batchmean"}, \
            lambda xt, p=torch.tensor(p): F.kl_div(xt, p, reduction="batchmean")
    x, p = np.array(-1.2), np.array(0.4)
    yield "kl_div/batchmean/0d/float64", "kl_div", "float64", [x, p], \
        {"reduction": "batchmean"}, \
        lambda xt, p=torch.tensor(p): F.kl_div(xt, p, reduction="batchmean")


# -------------------------------------------------------------------------------- sigmoid focal


def torchvision_focal(x, y, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss, term by term."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduced(loss, reduction, loss.numel())


def stable_focal(x, y, alpha, gamma, reduction):
    """The same loss without ``1 - sigmoid`` anywhere (exact for confident logits)."""
    one_minus_p_t = y * torch.sigmoid(-x) + (1 - y) * torch.sigmoid(x)
    ce = y * F.softplus(-x, threshold=1000) + (1 - y) * F.softplus(x, threshold=1000)
    loss = ce * one_minus_p_t ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduced(loss, reduction, loss.numel())


def sigmoid_focal_cases():
    large = np.array([-100.0, -60.0, -30.0, -5.0, 5.0, 30.0, 60.0, 100.0])
    for dtype, gamma, alpha, reduction in itertools.product(
            ("float32", "float64"), (0.0, 0.5, 2.0, 5.0), (0.25, -1.0), ("none", "mean", "sum")):
        x = rng.normal(size=(3, 4)) * 3
        y = rng.integers(0, 2, size=(3, 4)).astype(np.float64)
        y[2, :2] = (0.3, 0.8)  # soft targets too
        x, y = x.astype(dtype), y.astype(dtype)
        kwargs = {"alpha": alpha, "gamma": gamma, "reduction": reduction}
        yield (f"sigmoid_focal_loss/random/g={gamma}/a={alpha}/{reduction}/{dtype}",
               "sigmoid_focal_loss", dtype, [x, y], kwargs,
               lambda xt, yt=torch.tensor(y), kw=kwargs: torchvision_focal(xt, yt, **kw))
    for gamma, alpha in itertools.product((0.0, 0.5, 2.0, 5.0), (0.25, -1.0)):
        # every large logit against both targets: right (tiny loss) and wrong
        x = np.concatenate([large, large])
        y = np.concatenate([np.ones(8), np.zeros(8)])
        kwargs = {"alpha": alpha, "gamma": gamma, "reduction": "none"}
        yield (f"sigmoid_focal_loss/large/g={gamma}/a={alpha}/none/float64",
               "sigmoid_focal_loss", "float64", [x, y], kwargs,
               lambda xt, yt=torch.tensor(y), kw=kwargs: torchvision_focal(xt, yt, **kw))


# ------------------------------------------------------------------ softmax focal and poly-1


def softmax_focal(x, target, gamma, weight, ignore_index, reduction, label_smoothing):
    log_p = F.log_softmax(x, 1)
    q, denominator = target_mass(x, target, weight, ignore_index, label_smoothing)
    losses = -(q * (1 - log_p.exp()) ** gamma * log_p).sum(1)
    return _reduced(losses, reduction, denominator)


def poly1(x, target, epsilon, weight, ignore_index, reduction, label_smoothing):
    ce = F.cross_entropy(x, target, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)
    q, denominator = target_mass(x, target, weight, ignore_index, label_smoothing)
    poly = (q * (1 - F.softmax(x, 1))).sum(1)
    return ce + epsilon * _reduced(poly, reduction, denominator)


def class_cases(function, values, name):
    for dtype, value, weighted, smoothing, kind, reduction in itertools.product(
            ("float32", "float64"), values, (False, True), (0.0, 0.1),
            ("index", "ignored", "probs", "image"), ("none", "mean", "sum")):
        if dtype == "float32" and (weighted or smoothing) and kind != "index":
            continue  # float32 once per option
        shape = (2, 4, 3) if kind == "image" else (5, 4)
        x = (rng.normal(size=shape) * 3).astype(dtype)
        if kind == "probs":
            target = rng.dirichlet(np.ones(4), size=5).astype(dtype)
        else:
            target = rng.integers(0, 4, size=(shape[0],) + shape[2:])
            if kind in ("ignored", "image"):
                target.flat[::3] = -100
        weight = rng.uniform(0.5, 2.0, 4).astype(dtype) if weighted else None
        kwargs = {name: value, "reduction": reduction, "label_smoothing": smoothing}
        if weighted:
            kwargs["weight"] = weight
        case_id = f"{function.__name__}/{kind}/{name}={value}/w={weighted}/ls={smoothing}/" \
                  f"{reduction}/{dtype}"
        tt = torch.tensor(target)
        wt = None if weight is None else torch.tensor(weight)

        def loss(xt, tt=tt, wt=wt, value=value, reduction=reduction, smoothing=smoothing):
            return function(xt, tt, value, wt, -100, reduction, smoothing)
        fname = "softmax_focal_loss" if function is softmax_focal else "poly1_cross_entropy"
        yield case_id.replace(function.__name__, fname), fname, dtype, [x, target], kwargs, loss


# --------------------------------------------------------------------- float16 and bfloat16


def _low(a, dtype):
    """``a`` (drawn in float64) rounded to the low-precision ``dtype``."""
    return np.asarray(a).astype(LOW[dtype])


def low_precision_cases():
    """The four functions in float16 and bfloat16, torch computing in the dtype (appended
    after every float32/float64 case, so those draw the same numbers as before)."""
    for dtype in LOW:
        yield from _low_kl(dtype)
        yield from _low_sigmoid_focal(dtype)
        for function, name, values in ((softmax_focal, "gamma", (0.0, 2.0)),
                                       (poly1, "epsilon", (1.0, -0.5))):
            yield from _low_class(function, name, values, dtype)


def _low_kl(dtype):
    for reduction, log_target in itertools.product(("none", "sum", "mean", "batchmean"),
                                                   (False, True)):
        x = _low(F.log_softmax(torch.tensor(rng.normal(size=(4, 5)) * 2), 1).numpy(), dtype)
        p = rng.dirichlet(np.ones(5), size=4)
        if not log_target:  # zeros in the target (0 log 0 = 0)
            p[0, :2] = 0.0
            p /= p.sum(axis=1, keepdims=True)
        target = _low(np.log(p) if log_target else p, dtype)
        kwargs = {"reduction": reduction, "log_target": log_target}
        yield f"kl_div/{reduction}/log_target={log_target}/{dtype}", "kl_div", dtype, \
            [x, target], kwargs, \
            lambda xt, tt=_tensor(target, dtype), kw=kwargs: F.kl_div(xt, tt, **kw)


def _low_sigmoid_focal(dtype):
    for gamma, alpha, reduction in itertools.product((0.0, 0.5, 2.0), (0.25, -1.0),
                                                     ("none", "mean", "sum")):
        x = rng.normal(size=(3, 4)) * 3
        x[0] = (-30.0, -12.0, 12.0, 30.0)  # confident logits, right and wrong
        y = rng.integers(0, 2, size=(3, 4)).astype(np.float64)
        y[0] = (0.0, 1.0, 1.0, 0.0)
        y[2, :2] = (0.25, 0.75)  # soft targets, held exactly
        x, y = _low(x, dtype), _low(y, dtype)
        kwargs = {"alpha": alpha, "gamma": gamma, "reduction": reduction}
        yield (f"sigmoid_focal_loss/random/g={gamma}/a={alpha}/{reduction}/{dtype}",
               "sigmoid_focal_loss", dtype, [x, y], kwargs,
               lambda xt, yt=_tensor(y, dtype), kw=kwargs: torchvision_focal(xt, yt, **kw))


def _low_class(function, name, values, dtype):
    fname = "softmax_focal_loss" if function is softmax_focal else "poly1_cross_entropy"
    for value, kind, (weighted, smoothing), reduction in itertools.product(
            values, ("index", "ignored", "probs"), ((False, 0.0), (True, 0.1)),
            ("none", "mean", "sum")):
        x = _low(rng.normal(size=(5, 4)) * 3, dtype)
        if kind == "probs":
            target = _low(rng.dirichlet(np.ones(4), size=5), dtype)
        else:
            target = rng.integers(0, 4, size=5)
            if kind == "ignored":
                target[::3] = -100
        weight = _low(rng.uniform(0.5, 2.0, 4), dtype) if weighted else None
        kwargs = {name: value, "reduction": reduction, "label_smoothing": smoothing}
        if weighted:
            kwargs["weight"] = weight
        tt = _tensor(target, dtype) if kind == "probs" else torch.tensor(target)
        wt = None if weight is None else _tensor(weight, dtype)

        def loss(xt, tt=tt, wt=wt, value=value, reduction=reduction, smoothing=smoothing):
            return function(xt, tt, value, wt, -100, reduction, smoothing)
        yield (f"{fname}/{kind}/{name}={value}/w={weighted}/ls={smoothing}/{reduction}/{dtype}",
               fname, dtype, [x, target], kwargs, loss)


# ------------------------------------------------------------------------------------- main


def _encoded(kwargs):
    return {k: encode_array(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def main() -> int:
    cases = []
    makers = (kl_cases(), sigmoid_focal_cases(),
              class_cases(softmax_focal, (0.0, 0.5, 2.0), "gamma"),
              class_cases(poly1, (0.0, 1.0, -0.5), "epsilon"), low_precision_cases())
    for case_id, function, dtype, args, kwargs, loss_fn in itertools.chain(*makers):
        loss, g, grad = _autograd(loss_fn, args[0], dtype)
        case = {"id": case_id, "function": function, "dtype": dtype,
                "args": [encode_array(a) for a in args], "kwargs": _encoded(kwargs),
                "grad_output": encode_array(g),
                "expected": {"loss": encode_array(loss), "grad": encode_array(grad)}}
        if function == "sigmoid_focal_loss" and dtype == "float64":
            xt = _tensor(args[0], dtype, grad=True)
            stable = stable_focal(xt, torch.tensor(args[1]), **kwargs)
            (stable_grad,) = torch.autograd.grad(stable, xt, torch.tensor(g))
            case["stable"] = {"loss": encode_array(stable.detach().numpy()),
                              "grad": encode_array(stable_grad.numpy())}
        cases.append(case)
    write_fixture(OUT, cases, SEED, torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
