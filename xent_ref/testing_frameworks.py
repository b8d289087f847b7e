"""Check a kernel where it runs: a torch or JAX callable against the golden corpus.

:func:`check_torch` and :func:`check_jax` take a callable with the *framework's*
signature -- ``torch.nn.functional.cross_entropy``, a Triton or CUDA kernel behind a
torch function, a JAX/Pallas function -- and run every golden case of a function
through it: the case's NumPy inputs become tensors (on ``device``), the loss comes
from the callable, and the gradients from the framework's autograd
(``backward(grad_output)``, ``jax.vjp``), never from a formula of ours. They return
the :class:`xent_ref.testing.Report` of :func:`xent_ref.testing.check`, so a failure
is grouped and its known convention named.

Arguments are passed **by name**, under xent_ref's names (PyTorch's, but ``dim``
for the softmaxes' ``axis`` and ``input`` for their ``x``); ``names`` renames more,
and :data:`PEER_NAMES` holds the renamings of known kernels (Liger's and
flash-attention's ``lse_square_scale`` is xent_ref's ``z_loss``). A case that sets
an argument the callable does not take (the LLM options, for
``torch.nn.functional.cross_entropy``) is left out. ``linear_cross_entropy`` gets
its three gradients (input, linear weight, bias). torch and jax stay optional:
without them these functions raise ``ImportError`` (tests skip).
"""

from __future__ import annotations

import inspect
from typing import Callable, Mapping

import numpy as np

from xent_ref import testing
from xent_ref.golden import SIGNATURES

__all__ = ["check_torch", "check_jax", "PEER_NAMES"]

# xent_ref's argument names as known kernels spell them.
PEER_NAMES: dict[str, dict[str, str]] = {
    "liger": {"z_loss": "lse_square_scale"},  # Liger-Kernel's cross-entropy
    "flash_attn": {"z_loss": "lse_square_scale"},  # flash-attention's cross_entropy_loss
    "cce": {},  # Cut Cross-Entropy says softcap, as xent_ref does
}
# Where torch.nn.functional's names differ from xent_ref's.
_FRAMEWORK_NAMES = {"softmax": {"x": "input", "axis": "dim"},
                    "log_softmax": {"x": "input", "axis": "dim"}}
# xent_ref's defaults that a framework's differ from, passed when a case leaves them out
# (torch's softmax without dim picks an axis by the number of dimensions).
_DEFAULTS = {"softmax": {"axis": -1}, "log_softmax": {"axis": -1}}


def _names(function: str, names: Mapping[str, str] | None) -> dict[str, str]:
    if function not in SIGNATURES:
        raise ValueError(f"function: unknown function {function!r}; expected one of "
                         f"{', '.join(SIGNATURES)}")
    return {**_FRAMEWORK_NAMES.get(function, {}), **dict(names or {})}


def _takes(fn: Callable, parameters) -> bool:
    """Whether ``fn`` accepts every keyword in ``parameters`` (True when it cannot tell)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return True
    return all(name in signature.parameters for name in parameters)


def _arguments(function: str, args, kwargs, with_grad: bool):
    """``(arguments by xent_ref name, grad_output)`` of a call made the corpus's way."""
    signature = SIGNATURES[function]
    args, kwargs, grad_output = list(args), dict(kwargs), None
    if with_grad:
        grad_output = args.pop() if signature.grad_output_positional and \
            len(args) > len(signature.positional) else kwargs.pop("grad_output", None)
    arguments = {**_DEFAULTS.get(function, {}), **dict(zip(signature.positional, args)),
                 **kwargs}
    return arguments, grad_output


def _leaves(function: str) -> tuple[str, ...]:
    """The arguments the gradient twin differentiates with respect to."""
    signature = SIGNATURES[function]
    return signature.grads or signature.positional[:1]


def _pair(function, names, call):
    """``(loss, grad)`` with xent_ref's signatures, from ``call(arguments, grad_output,
    with_grad)`` on xent_ref-named arguments."""
    leaves, several = _leaves(function), bool(SIGNATURES[function].grads)

    def loss(*args, **kwargs):
        arguments, _ = _arguments(function, args, kwargs, False)
        return call(arguments, None, False)

    def grad(*args, **kwargs):
        arguments, grad_output = _arguments(function, args, kwargs, True)
        grads = call(arguments, grad_output, True)
        got = [grads.get(name) for name in leaves]
        return tuple(got) if several else got[0]

    return loss, grad


def _selected(fn, function, names, cases):
    chosen = list(testing.cases(function) if cases is None else cases)
    return [case for case in chosen
            if _takes(fn, [names.get(key, key) for key in case.kwargs])]


def _checked(fn, function, names, grad, dtypes, cases, call):
    loss, grad_fn = _pair(function, names, call)
    label = getattr(fn, "__qualname__", None) or type(fn).__name__
    loss.__qualname__, grad_fn.__qualname__ = label, label + " (autograd)"
    return testing.check(loss, function, grad=grad_fn if grad else None, dtypes=dtypes,
                         cases=_selected(fn, function, names, cases))


def check_torch(fn: Callable, function: str, *, device="cpu", dtypes=None, grad=True,
                names: Mapping[str, str] | None = None, cases=None) -> testing.Report:
    """Run the golden cases of ``function`` through the torch callable ``fn`` on ``device``.

    ``fn`` is called by keyword with tensors (targets int64, the other arrays in the
    input's dtype); with ``grad``, the gradients are the leaves' ``.grad`` after
    ``output.backward(grad_output)``. ``dtypes`` and ``cases`` select as in
    :func:`xent_ref.testing.check`; ``names`` renames arguments (see :data:`PEER_NAMES`).

    Typical use, in a test of a kernel::

        report = check_torch(torch.nn.functional.cross_entropy, "cross_entropy")
        assert report.ok, report
    """
    names = _names(function, names)
    import torch

    def tensor(value, dtype=None):
        a = np.asarray(value)
        if a.dtype.kind in "iub":
            return torch.as_tensor(a.astype(np.int64) if a.dtype.kind != "b" else a,
                                   device=device)
        # bfloat16 crosses through float32, which holds every bfloat16 exactly
        t = torch.as_tensor(a.astype(np.float32) if a.dtype.name == "bfloat16" else np.array(a))
        return t.to(device=device, dtype=torch.bfloat16 if a.dtype.name == "bfloat16" and
                    dtype is None else dtype or t.dtype)

    def array(t, like: np.dtype) -> np.ndarray:
        t = t.detach().to("cpu")
        return t.float().numpy().astype(like) if t.dtype == torch.bfloat16 else t.numpy()

    def call(arguments, grad_output, with_grad):
        first = SIGNATURES[function].positional[0]
        like = np.asarray(arguments[first]).dtype
        lead = tensor(arguments[first])
        values = {key: (tensor(value, None if np.asarray(value).dtype.kind in "iub"
                               else lead.dtype) if isinstance(value, np.ndarray) else value)
                  for key, value in arguments.items()}
        leaves = [n for n in _leaves(function) if values.get(n) is not None] if with_grad else []
        for name in leaves:
            values[name].requires_grad_(True)
        output = fn(**{names.get(key, key): value for key, value in values.items()})
        if not with_grad:
            return array(output, like)
        upstream = (torch.ones_like(output) if grad_output is None
                    else tensor(grad_output, output.dtype).expand_as(output))
        output.backward(upstream)
        return {name: array(values[name].grad if values[name].grad is not None
                            else torch.zeros_like(values[name]), like) for name in leaves}

    return _checked(fn, function, names, grad, dtypes, cases, call)


def check_jax(fn: Callable, function: str, *, dtypes=None, grad=True,
              names: Mapping[str, str] | None = None, cases=None) -> testing.Report:
    """Run the golden cases of ``function`` through the JAX callable ``fn``.

    ``fn`` is called by keyword with ``jax.numpy`` arrays, under ``jax.enable_x64``
    (so float64 cases stay float64); the gradients come from ``jax.vjp`` with the
    case's ``grad_output``. ``fn`` has xent_ref's semantics (a reduction, class axis
    1): a function with optax's per-example semantics needs a line of wrapping::

        def cross_entropy(input, target, reduction="mean"):
            losses = optax.losses.softmax_cross_entropy_with_integer_labels(
                jnp.moveaxis(input, 1, -1) if input.ndim > 1 else input, target)
            return {"mean": jnp.mean, "sum": jnp.sum}.get(reduction, lambda x: x)(losses)

        assert check_jax(cross_entropy, "cross_entropy",
                         cases=testing.cases("cross_entropy", kind="systematic", weight=False,
                                             ignore_index="none", smoothing=0.0,
                                             target="index")).ok
    """
    names = _names(function, names)
    import jax
    import jax.numpy as jnp

    def call(arguments, grad_output, with_grad):
        like = np.asarray(arguments[SIGNATURES[function].positional[0]]).dtype
        with jax.enable_x64(True):
            values = {key: jnp.asarray(value) if isinstance(value, np.ndarray) else value
                      for key, value in arguments.items()}
            if not with_grad:
                return np.asarray(fn(**{names.get(k, k): v for k, v in values.items()}))
            leaves = [n for n in _leaves(function) if values.get(n) is not None]

            def of_leaves(*leaf_values):
                given = {**values, **dict(zip(leaves, leaf_values))}
                return fn(**{names.get(k, k): v for k, v in given.items()})

            output, pullback = jax.vjp(of_leaves, *(values[n] for n in leaves))
            upstream = (jnp.ones_like(output) if grad_output is None else
                        jnp.broadcast_to(jnp.asarray(grad_output, output.dtype), output.shape))
            grads = pullback(upstream)
        return {name: np.asarray(g).astype(like, copy=False) for name, g in zip(leaves, grads)}

    return _checked(fn, function, names, grad, dtypes, cases, call)
