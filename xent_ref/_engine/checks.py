"""Argument validation, in one place, with messages that name the argument.

Every public function turns its arguments into clean NumPy arrays here before
any math runs, so a bad call fails with a ``ValueError`` or ``TypeError`` that
says which argument is wrong and why -- never with an ``IndexError`` from deep
inside NumPy or a silently wrong number. Nothing here modifies its arguments:
``np.asarray`` returns the caller's array itself when no conversion is needed,
and the math modules only ever read from what these functions return.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys

import numpy as np

from xent_ref._engine.dtypes import dtype_named

REDUCTIONS = ("none", "mean", "sum")
# The most dimensions an input may have: NumPy's own limit is 64, and gathering along
# an axis of a 64-d array (np.take_along_axis) needs one index array more than that.
MAX_DIMS = 63


def as_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)``, with an error that names the argument when that fails.

    A PyTorch tensor is read by :func:`tensor_as_numpy` (as the NumPy array of its
    dtype); a bfloat16 array (NumPy sees its dtype as kind ``"V"``) is widened,
    exactly, to float32, so that every later check sees an ordinary floating array; a
    big-endian array (``'>f8'``) is read in native byte order, so that NumPy's loops
    accept it and the answer comes back native.
    """
    x = tensor_as_numpy(x, name)
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists, for example
        raise TypeError(f"{name}: cannot be read as a numeric array ({err})") from None
    if array.dtype.kind == "V" and array.dtype.name == "bfloat16":  # (.name is slow: kind first)
        return array.astype(np.float32)
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def tensor_as_numpy(x, name: str):
    """A PyTorch tensor as the NumPy array of its own dtype (anything else as it is).

    The one place the library reads tensors, so a tensor behaves exactly as the NumPy
    array of its dtype: a float16 or bfloat16 tensor is computed wide and rounded once,
    and a float32 tensor next to a float64 one is refused where two such arrays are.
    CPU tensors are shared, not copied (``Tensor.numpy``); bfloat16, which NumPy knows
    only through ``ml_dtypes``, is read through its 16 bits. A tensor that requires grad
    is refused with the fix. Tensors are recognised by their type's module: torch is
    never imported (a tensor exists only if the caller imported it).
    """
    if not type(x).__module__.startswith("torch") or not hasattr(x, "numpy"):
        return x
    if getattr(x, "requires_grad", False) is True:
        raise TypeError(
            f"{name}: a tensor that requires grad cannot be read as a NumPy array; "
            f"pass {name}.detach().numpy()"
        )
    x = x.cpu()
    if str(x.dtype) == "torch.bfloat16":
        torch = sys.modules[type(x).__module__.split(".")[0]]
        return x.view(torch.int16).numpy().view(dtype_named("bfloat16"))
    return x.numpy()


def as_float_array(x, name: str, dtype=None) -> np.ndarray:
    """``x`` as a floating-point array (integers, booleans and lists become float64).

    With ``dtype`` given, the result is cast to it (used for weights, which follow
    the input's dtype as in PyTorch).
    """
    array = as_array(x, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got an array of dtype {array.dtype}")
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype.kind != "f":
        return array.astype(np.float64)
    return array


def as_input(x, name: str = "input") -> np.ndarray:
    """The first argument of every function: a floating array of at least one dimension."""
    array = as_float_array(x, name)
    if array.ndim == 0:
        raise ValueError(f"{name}: expected at least 1 dimension, got a 0-d array (a scalar)")
    if array.ndim > MAX_DIMS:
        raise ValueError(f"{name}: at most {MAX_DIMS} dimensions are supported, got {array.ndim}")
    return array


def check_axis(axis, ndim: int) -> int:
    """``axis`` as a non-negative integer in ``range(ndim)``."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis: expected an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis: {axis} is out of range for an input with {ndim} dimension(s)")
    return int(axis) % ndim


def check_reduction(reduction) -> str:
    if not isinstance(reduction, str):
        raise TypeError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    return reduction


def check_label_smoothing(label_smoothing) -> float:
    """A float in [0, 1]. Stricter than PyTorch, which treats a negative value as 0.

    Python and NumPy floats and integers only: like PyTorch, a ``Fraction`` (a real
    number, but not a float) is a ``TypeError``.
    """
    if isinstance(label_smoothing, bool) or not isinstance(
            label_smoothing, (float, int, np.floating, np.integer)):
        raise TypeError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing: must be in [0, 1], got {label_smoothing!r}")
    return float(label_smoothing)


def check_ignore_index(ignore_index) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}")
    if not -(2**63) <= ignore_index < 2**63:
        raise ValueError(f"ignore_index: must fit in int64 (as in PyTorch), got {ignore_index!r}")
    return int(ignore_index)


def class_weight(weight, n_classes: int, dtype) -> np.ndarray | None:
    """The per-class ``weight``: ``None`` or an array of shape ``(C,)`` in the input's dtype."""
    if weight is None:
        return None
    weight = as_float_array(weight, "weight", dtype)
    if weight.shape != (n_classes,):
        raise ValueError(
            f"weight: expected shape ({n_classes},), one weight per class, got shape {weight.shape}"
        )
    return weight


def index_target(target, input_shape: tuple, ignore_index: int) -> np.ndarray:
    """Class-index targets, checked against an input of shape ``(C,)`` or ``(N, C, d1..dk)``.

    Returns the targets as an int64 array of shape ``()`` or ``(N, d1..dk)``. Every
    entry is a class in ``[0, C)`` or equal to ``ignore_index``.
    """
    target = as_array(target, "target")
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"target: class indices must be integers (an integer dtype), got dtype "
            f"{target.dtype} (float class indices, NaN included, are refused); probability targets "
            f"must have the input's shape {input_shape}"
        )
    expected = () if len(input_shape) == 1 else (input_shape[0],) + tuple(input_shape[2:])
    if target.shape != expected:
        raise ValueError(
            f"target: expected shape {expected} for an input of shape {input_shape} "
            f"(class indices) or {input_shape} (probabilities), got shape {target.shape}"
        )
    n_classes = input_shape[0 if len(input_shape) == 1 else 1]
    # (two reductions answer for the usual batch, every index in range; the mask only
    # when one is not -- an ignored target, or a bad one)
    in_range = target.size == 0 or (target.min() >= 0 and target.max() < n_classes)
    bad = None if in_range else (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if bad is not None and bad.any():
        value = int(target[bad].flat[0])
        raise ValueError(
            f"target: class index {value} is out of range for {n_classes} classes "
            f"(valid: 0..{n_classes - 1}, or ignore_index={ignore_index})"
        )
    return target.astype(np.int64, copy=False)


def probability_target(target: np.ndarray, ignore_index: int, dtype) -> np.ndarray:
    """Class-probability targets (same shape as the input): floating point, no ignore_index."""
    if target.dtype.kind != "f":
        raise TypeError(
            f"target: probability targets (shaped like the input) must be floating point, "
            f"got dtype {target.dtype}"
        )
    if ignore_index >= 0:
        raise ValueError(
            f"ignore_index: not supported with probability targets (got {ignore_index}); "
            "it must be negative, as in PyTorch"
        )
    return target.astype(dtype, copy=False)


def same_shape_target(target, input: np.ndarray, name: str = "target") -> np.ndarray:
    """A target of exactly the input's shape, cast to the input's dtype (binary losses).

    Booleans are refused, as PyTorch refuses them: a mask is not a probability until
    the caller says which float it means.
    """
    if as_array(target, name).dtype == np.bool_:
        raise TypeError(f"{name}: expected real numbers, got booleans; pass {name}.astype(float)")
    target = as_float_array(target, name, input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"{name}: expected the input's shape {input.shape}, got shape {target.shape}"
        )
    return target


def check_unit_interval(x: np.ndarray, name: str) -> None:
    """Every entry in [0, 1] (NaN fails too).

    Checked with two reductions (``min`` and ``max`` propagate nan), which allocate
    nothing: full-size boolean masks would cost half a float32 input. Only a call
    that fails builds a mask, to report the first bad element.
    """
    if x.size == 0 or (x.min() >= 0 and x.max() <= 1):
        return
    outside = ~((x >= 0) & (x <= 1))
    if outside.any():
        raise ValueError(
            f"{name}: every element must be in [0, 1], found {x[outside].flat[0]!r}"
        )


def broadcast_weight(weight, shape: tuple, name: str, dtype) -> np.ndarray | None:
    """``weight`` broadcast (right-aligned, read-only view) to ``shape``, or ``None``."""
    if weight is None:
        return None
    weight = as_float_array(weight, name, dtype)
    try:
        broadcast = np.broadcast_shapes(weight.shape, shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(shape):
        raise ValueError(
            f"{name}: shape {weight.shape} does not broadcast to the target's shape {tuple(shape)}"
        )
    return np.broadcast_to(weight, shape)


def binary_arguments(input, target, weight, pos_weight, reduction, probabilities: bool):
    """``(x, y, weight, pos_weight, reduction)`` of a binary cross-entropy call, checked:
    the input (a 0-d one as it is), a target of its shape, ``[0, 1]`` values for the
    probability form, the weights broadcast to the input's shape in its dtype."""
    x = as_float_array(input, "input")
    if x.ndim:
        x = as_input(x)
    reduction = check_reduction(reduction)
    y = same_shape_target(target, x)
    if probabilities:
        check_unit_interval(x, "input")
        check_unit_interval(y, "target")
    weight = broadcast_weight(weight, x.shape, "weight", x.dtype)
    pos_weight = broadcast_weight(pos_weight, y.shape, "pos_weight", x.dtype)
    return x, y, weight, pos_weight, reduction


def grad_output(grad_output, reduction: str, loss_shape: tuple, dtype) -> np.ndarray:
    """The upstream gradient: a scalar for ``mean``/``sum``, the loss's shape for ``none``."""
    if grad_output is None:
        return np.ones(loss_shape if reduction == "none" else (), dtype=dtype)
    grad_output = as_float_array(grad_output, "grad_output", dtype)
    expected = tuple(loss_shape) if reduction == "none" else ()
    if grad_output.shape != expected:
        kind = "the loss's shape" if reduction == "none" else "a scalar"
        raise ValueError(
            f"grad_output: expected {kind} {expected} for reduction={reduction!r}, "
            f"got shape {grad_output.shape}"
        )
    return grad_output


# The options of LLM loss kernels (see xent_ref.llm_options).


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return value


def check_count(value, name: str, minimum: int = 0) -> int:
    """An integer (not a bool) of at least ``minimum``: a size, a number of rows."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")
    return int(value)


def floating_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A floating dtype from a NumPy dtype, type or name ("bfloat16" through ml_dtypes)."""
    if isinstance(dtype, str) and dtype == "bfloat16":
        return dtype_named(dtype)
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: not a dtype: {dtype!r}") from None
    if resolved.kind != "f" and resolved.name != "bfloat16":
        raise TypeError(f"{name}: expected a floating dtype (float16, bfloat16, float32, "
                        f"float64), got {resolved}")
    return resolved


def check_logit_scale(logit_scale) -> float:
    """A finite number > 0 (the logits are multiplied by it)."""
    value = _real(logit_scale, "logit_scale")
    if value <= 0:
        raise ValueError(f"logit_scale: must be > 0, got {logit_scale!r}")
    return value


def check_softcap(softcap) -> float | None:
    """``None`` (no soft-capping) or a finite number > 0 (the cap c of c tanh(z / c))."""
    if softcap is None:
        return None
    value = _real(softcap, "softcap")
    if value <= 0:
        raise ValueError(f"softcap: must be > 0 (or None for no cap), got {softcap!r}")
    return value


def check_z_loss(z_loss) -> float:
    """A finite number >= 0 (the weight of lse(z)^2)."""
    value = _real(z_loss, "z_loss")
    if value < 0:
        raise ValueError(f"z_loss: must be >= 0, got {z_loss!r}")
    return value


# The options of the cross-entropy family's relatives (KL divergence, focal, poly-1).

KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def check_kl_reduction(reduction) -> str:
    """One of :data:`KL_REDUCTIONS` (``kl_div`` adds ``batchmean``, PyTorch's)."""
    if not isinstance(reduction, str):
        raise TypeError(f"reduction: expected one of {KL_REDUCTIONS}, got {reduction!r}")
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"reduction: unknown reduction {reduction!r}; "
                         f"expected one of {KL_REDUCTIONS}")
    return reduction


def check_flag(value, name: str) -> bool:
    """A ``bool`` (NumPy's too): a flag such as ``log_target``, never a number or a string."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_nonnegative(value, name: str) -> float:
    """A finite real number >= 0 (``gamma``, ``epsilon``)."""
    value = _real(value, name)
    if value < 0:
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    return value


def check_alpha(alpha) -> float:
    """``alpha`` of the sigmoid focal loss: in [0, 1], or negative to disable it (torchvision)."""
    value = _real(alpha, "alpha")
    if value > 1:
        raise ValueError(f"alpha: must be in [0, 1] (or negative: no weighting), got {alpha!r}")
    return value


def check_real(value, name: str) -> float:
    """A finite real number, of either sign (poly-1's ``epsilon``)."""
    return _real(value, name)
