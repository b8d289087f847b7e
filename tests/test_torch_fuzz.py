"""A differential fuzz against PyTorch run on the spot, aimed at the corners: non-finite
logits (-inf, +inf, nan), zero class weights, empty batches, every ignore_index and
label smoothing up to 1, 1-D to 4-D inputs (skipped when torch is absent).

Each seed draws a few hundred random calls; every one must match PyTorch's loss and
autograd gradient (values, nan positions, dtype, shape) with no NumPy warning and no
argument modified. Run it where torch is installed::

    PYTHONPATH=. python -m pytest tests/test_torch_fuzz.py -o addopts=""   (a Python with torch)
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from tests.helpers.torch_compare import assert_matches, call_xent  # noqa: E402

pytestmark = pytest.mark.torch
CALLS_PER_SEED = 200


def _tensor(a):
    return None if a is None else torch.tensor(a)


def _torch_case(torch_fn, x, args, kwargs, rng):
    """PyTorch's loss and gradient for ``torch_fn(x, *args, **kwargs)``, with a random upstream."""
    xt = torch.tensor(x, requires_grad=True)
    loss = torch_fn(xt, *args, **{k: _tensor(v) if isinstance(v, np.ndarray) else v
                                  for k, v in kwargs.items()})
    grad_output = rng.standard_normal(loss.shape).astype(x.dtype)
    loss.backward(torch.tensor(grad_output))
    return loss.detach().numpy(), xt.grad.numpy(), grad_output


def _logits(rng, shape, dtype):
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 4)
    for value, chance in ((-np.inf, 0.2), (np.inf, 0.03), (np.nan, 0.03)):
        if x.size and rng.random() < chance:
            x.flat[rng.integers(x.size)] = value
    return x.astype(dtype)


def _shape(rng):
    n_dims, n_classes = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    if n_dims == 1:
        return (n_classes,), n_classes
    spatial = tuple(int(d) for d in rng.integers(1, 4, n_dims - 2))
    return (int(rng.integers(0, 4)), n_classes) + spatial, n_classes


def _check(function, x, args, kwargs, torch_fn, torch_args, rng):
    loss, grad, grad_output = _torch_case(torch_fn, x, torch_args, kwargs, rng)
    what = f"{function} shape={x.shape} dtype={x.dtype} {kwargs}"
    assert_matches(call_xent(function, (x, *args), kwargs, grad_output, "loss"), loss,
                   x.dtype.name, what + " loss")
    assert_matches(call_xent(function, (x, *args), kwargs, grad_output, "grad"), grad,
                   x.dtype.name, what + " grad")


@pytest.mark.parametrize("seed", range(3))
def test_cross_entropy_and_nll_loss(seed):
    rng = np.random.default_rng(seed)
    for _ in range(CALLS_PER_SEED):
        dtype = (np.float32, np.float64)[rng.integers(2)]
        shape, n_classes = _shape(rng)
        x = _logits(rng, shape, dtype)
        weight = None if rng.random() < 0.5 else (rng.random(n_classes) * 2).astype(dtype)
        if weight is not None and rng.random() < 0.2:
            weight[rng.integers(n_classes)] = 0.0
        options = dict(weight=weight, reduction=("none", "mean", "sum")[rng.integers(3)])
        target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
        if rng.random() < 0.3:  # probability targets
            target = rng.random(shape).astype(dtype)
            options.update(ignore_index=-100, label_smoothing=float(rng.choice([0, 0.1, 1])))
        else:
            ignore_index = int(rng.choice([-100, -1, 0, n_classes - 1]))
            target = rng.integers(0, n_classes, target_shape)
            if np.size(target) and rng.random() < 0.5:
                target = np.where(rng.random(target_shape) < 0.3, ignore_index, target)
            options.update(ignore_index=ignore_index,
                           label_smoothing=float(rng.choice([0, 0, 0.1, 0.5, 1])))
            nll = {k: v for k, v in options.items() if k != "label_smoothing"}
            _check("nll_loss", x, (target,), nll, F.nll_loss, (torch.tensor(target),), rng)
        _check("cross_entropy", x, (target,), options, F.cross_entropy,
               (torch.tensor(target),), rng)


@pytest.mark.parametrize("seed", range(3))
def test_softmax_and_binary_losses(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(CALLS_PER_SEED):
        dtype = (np.float32, np.float64)[rng.integers(2)]
        shape, _ = _shape(rng)
        x = _logits(rng, shape, dtype)
        axis = int(rng.integers(-x.ndim, x.ndim))
        for function, torch_fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
            _check(function, x, (), dict(axis=axis), lambda t, axis: torch_fn(t, axis), (), rng)
        finite = (rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 3)).astype(dtype)
        target = (rng.random(shape) < 0.5).astype(dtype) if rng.random() < 0.5 \
            else rng.random(shape).astype(dtype)
        weight = None if rng.random() < 0.5 else (rng.random(shape[-1:]) * 2).astype(dtype)
        pos_weight = None if rng.random() < 0.5 else (rng.random(shape[-1:]) * 3).astype(dtype)
        reduction = ("none", "mean", "sum")[rng.integers(3)]
        _check("binary_cross_entropy_with_logits", finite, (target,),
               dict(weight=weight, pos_weight=pos_weight, reduction=reduction),
               F.binary_cross_entropy_with_logits, (torch.tensor(target),), rng)
        probs = (0.5 * (1 + np.tanh(finite.astype(np.float64) / 2))).astype(dtype)
        _check("binary_cross_entropy", probs, (target,),
               dict(weight=weight, reduction=reduction),
               F.binary_cross_entropy, (torch.tensor(target),), rng)
