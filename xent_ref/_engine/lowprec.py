"""Low precision, once for every public function: float16 and bfloat16 calls are
computed in float64 and their results rounded once to the input's dtype
(:func:`computed_wide`, a decorator, so the policy is not code inside the math).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from xent_ref._engine.blocks import library_errstate
from xent_ref._engine.checks import as_array

# ---------------------------------------------------------------------------------------------
# float16 and bfloat16: computed in float64, rounded once
# ---------------------------------------------------------------------------------------------

# The dtype every float16 or bfloat16 call is computed in. float32 would not do: its
# own rounding errors (a log-sum-exp, a sum over 65536 losses) are a few float32 ulps,
# often enough to move the result across a float16 or bfloat16 rounding boundary. In
# float64 they are some 2**-50 of the result: the answer can round the wrong way only
# when the exact value is that close to a midpoint between two float16 numbers, so the
# one rounding at the end is, in practice, the only error.
COMPUTE_DTYPE = np.dtype(np.float64)


def low_precision_dtype(x) -> np.dtype | None:
    """The dtype of ``x`` if it is float16 or bfloat16, else ``None``.

    bfloat16 is recognised by its name (``ml_dtypes`` registers it with NumPy), so
    the library never needs to import ``ml_dtypes`` itself.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (ValueError, TypeError, RuntimeError):  # left for the function's checks to report
            return None
    if not isinstance(dtype, np.dtype):
        return None
    return dtype if dtype == np.float16 or dtype.name == "bfloat16" else None


def round_once(values, dtype: np.dtype):
    """float64 ``values`` rounded once, to nearest (ties to even), into ``dtype``.

    NumPy rounds float64 to float16 directly. ``ml_dtypes`` rounds float64 to
    bfloat16 by way of float32, rounding twice (``1 + 2**-8 + 2**-30`` becomes 1.0
    where the nearest bfloat16 is 1.0078125), so here the float32 step rounds *to
    odd* (truncate, then set the last bit if anything was cut off): float32 keeps 16
    bits more than bfloat16, and a round-to-odd intermediate with at least two extra
    bits makes the second, round-to-nearest step give the correctly rounded result.
    Overflow gives +-inf, silently (the value is out of the dtype's range).
    """
    values = np.asarray(values, dtype=np.float64)
    # (its own error state: the corpus builder and the tests call it outside any
    # public function, so outside library_errstate)
    with np.errstate(over="ignore"):
        if dtype == np.float16:
            return values.astype(dtype)
        narrow = values.astype(np.float32)
        back = narrow.astype(np.float64)
        inexact = (back != values) & ~np.isnan(values)
        # (float32 rounded away from zero -- to inf, too -- step one back towards zero)
        away = inexact & (np.abs(back) > np.abs(values))
        narrow[away] = np.nextafter(narrow[away], np.float32(0))
        narrow.view(np.uint32)[inexact] |= np.uint32(1)
        return narrow.astype(dtype)


def finfo(dtype):
    """``np.finfo(dtype)`` (float64's for a non-floating dtype), bfloat16's too: from
    ``ml_dtypes``, imported only here, when a bfloat16 array says it is installed."""
    dtype = np.dtype(dtype)
    if dtype.name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(dtype)
    return np.finfo(dtype if dtype.kind == "f" else np.float64)


def _widened(value, dtype: np.dtype, name: str):
    """A companion of a low-precision input, rounded to its dtype, then widened to float64.

    Class indices (an integer ``target``) are left as they are; anything that is not
    a numeric array is left for the function's own checks to report.
    """
    try:
        array = as_array(value, name)
    except TypeError:
        return value
    if array.dtype.kind not in "biuf" or (name == "target" and array.dtype.kind in "biu"):
        return value
    return round_once(array, dtype).astype(COMPUTE_DTYPE)


def computed_wide(*companions: str, same_dtype: tuple[str, ...] = ()):
    """Decorator: a float16 or bfloat16 call is computed in float64, its result rounded once.

    The decorated function's first parameter is the input. When it is float16 or
    bfloat16, the input is widened (exactly) to float64; each parameter named in
    ``companions`` (weights, probability targets, ``grad_output``) is first rounded
    to the input's dtype -- PyTorch requires them in it -- and then widened; the
    function runs in float64; and every array it returns (a loss, a gradient, or a
    tuple of them, ``None`` entries kept) is rounded once to the input's dtype. The
    result is the nearest value the dtype can hold to the exact answer for the
    rounded arguments. Any other input dtype passes straight through, untouched.

    Every call, of any dtype, runs under the library's own floating-point error state
    (:func:`xent_ref._engine.blocks.library_errstate`), whatever the caller's.

    The parameters named in ``same_dtype`` (a layer's own parameters, such as
    ``linear_weight``) must not carry a floating dtype other than the input's: PyTorch
    refuses to multiply float32 by float64, and a silent cast would change the answer.
    The check comes first, before any widening or rounding.

    Usage, on every public entry point::

        @computed_wide("target", "weight", "grad_output")
        def cross_entropy_grad(input, target, weight=None, ..., grad_output=None): ...
    """

    def decorate(function):
        signature = inspect.signature(function)
        first = next(iter(signature.parameters))

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if same_dtype:
                _check_same_dtype(signature, first, same_dtype, args, kwargs)
            with library_errstate():
                return _call_wide(function, signature, first, companions, args, kwargs)

        return wrapper

    return decorate


def _floating_dtype(x) -> np.dtype | None:
    """The dtype of ``x`` when it is an array (or NumPy scalar) of floating point, bfloat16
    included; ``None`` for lists, Python numbers, integers."""
    dtype = getattr(x, "dtype", None)
    if not isinstance(dtype, np.dtype):
        return None
    return dtype if dtype.kind == "f" or dtype.name == "bfloat16" else None


def _check_same_dtype(signature, first, names, args, kwargs):
    try:
        arguments = signature.bind(*args, **kwargs).arguments
    except TypeError:  # a wrong call: the function itself says what is wrong
        return
    dtype = _floating_dtype(arguments.get(first))
    if dtype is None:
        return
    for name in names:
        other = _floating_dtype(arguments.get(name))
        if other is not None and other != dtype:
            raise TypeError(f"{name}: dtype {other} differs from the {first}'s {dtype}; "
                            f"cast one of them (PyTorch refuses mixed dtypes here too)")


def _call_wide(function, signature, first, companions, args, kwargs):
    """The decorated call: straight through, or widened to float64 and rounded once."""
    dtype = low_precision_dtype(args[0] if args else kwargs.get(first))
    if dtype is None:
        return function(*args, **kwargs)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:  # a wrong call: the function itself says what is wrong
        return function(*args, **kwargs)
    arguments = bound.arguments
    arguments[first] = np.asarray(arguments[first]).astype(COMPUTE_DTYPE)
    for name in companions:
        if arguments.get(name) is not None:
            arguments[name] = _widened(arguments[name], dtype, name)
    return _rounded_result(function(*bound.args, **bound.kwargs), dtype)


def _rounded_result(result, dtype: np.dtype):
    if isinstance(result, tuple):
        return tuple(_rounded_result(item, dtype) for item in result)
    if isinstance(result, np.ndarray) and result.dtype == COMPUTE_DTYPE:
        return round_once(result, dtype)
    return result
