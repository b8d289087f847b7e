"""Low precision, once for every public function: float16 and bfloat16 calls are
computed in float64 and their results rounded once to the input's dtype
(:func:`computed_wide`, a decorator, so the policy is not code inside the math).
"""

from __future__ import annotations

import contextvars
import functools
import inspect

import numpy as np

from xent_ref._engine.blocks import library_errstate, row_blocks
from xent_ref._engine.checks import as_array, tensor_as_numpy

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
# The dtype the running public call's float64 result will be rounded to (None: the
# call is not a low-precision one); see rounding_to.
_ROUNDING_TO = contextvars.ContextVar("rounding_to", default=None)


def rounding_to() -> np.dtype | None:
    """The dtype (float16 or bfloat16) that :func:`computed_wide` will round the running
    call's result to, or ``None`` for a call in float32 or float64.

    A function whose float64 result may carry a *residue* -- a few float64 ulps of the
    magnitudes that cancelled in it, where the exact answer is 0 -- asks this to know
    that the residue would survive into the output (a bfloat16 holds 1e-17 as well as
    1): :mod:`xent_ref.linear` then returns such entries as 0.
    """
    return _ROUNDING_TO.get()


def low_precision_dtype(x) -> np.dtype | None:
    """The dtype of ``x`` if it is float16 or bfloat16, else ``None``.

    bfloat16 is recognised by its name (``ml_dtypes`` registers it with NumPy), so
    the library never needs to import ``ml_dtypes`` itself.
    """
    try:
        x = tensor_as_numpy(x, "input")
    except TypeError:  # a tensor that requires grad: the function's checks report it
        return None
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (ValueError, TypeError, RuntimeError):  # left for the function's checks to report
            return None
    if not isinstance(dtype, np.dtype):
        return None
    # (kind and size first: dtype.name is slow, and this runs on every call)
    if (dtype.kind == "f" and dtype.itemsize == 2 and dtype.isnative
            or dtype.kind == "V" and dtype.name == "bfloat16"):
        return dtype
    return None


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
    out = np.empty(values.shape, dtype)
    flat_values, flat_out = values.reshape(-1), out.reshape(-1)
    # a block at a time, into the output: the rounding's temporaries are a block's
    for block in row_blocks(flat_values.size, 1):
        flat_out[block] = _rounded_block(flat_values[block], dtype)
    return out


def _rounded_block(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """One block of :func:`round_once`."""
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
    ``linear_weight``), when they are arrays or tensors, must carry the input's dtype
    (byte order aside): PyTorch refuses to multiply float32 by float64 or by int64, and
    a silent cast would change the answer. (Lists are read in the input's dtype.)
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


def _array_dtype(x) -> np.dtype | None:
    """The native-order dtype of ``x`` when it is a numeric array or NumPy scalar (a
    tensor's is its NumPy twin's, bfloat16 included); ``None`` for lists and Python
    numbers. Byte order is not part of it: a big-endian array is read natively."""
    try:
        x = tensor_as_numpy(x, "input")
    except TypeError:  # a tensor that requires grad: the function's checks report it
        return None
    dtype = getattr(x, "dtype", None)
    if not isinstance(dtype, np.dtype) or (dtype.kind not in "biuf"
                                           and dtype.name != "bfloat16"):
        return None
    return dtype.newbyteorder("=")


def _check_same_dtype(signature, first, names, args, kwargs):
    try:
        arguments = signature.bind(*args, **kwargs).arguments
    except TypeError:  # a wrong call: the function itself says what is wrong
        return
    dtype = _array_dtype(arguments.get(first))
    if dtype is None or dtype.kind in "biu":  # (an integer input is read as float64)
        return
    for name in names:
        other = _array_dtype(arguments.get(name))
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
    # (straight to float64: a bfloat16 array read by as_array would pass through float32)
    arguments[first] = np.asarray(tensor_as_numpy(arguments[first], first)).astype(COMPUTE_DTYPE)
    for name in companions:
        if arguments.get(name) is not None:
            arguments[name] = _widened(arguments[name], dtype, name)
    token = _ROUNDING_TO.set(dtype)
    try:
        result = function(*bound.args, **bound.kwargs)
    finally:
        _ROUNDING_TO.reset(token)
    del bound, arguments  # the widened arguments, freed before the result is rounded
    return _rounded_result(result, dtype)


def _rounded_result(result, dtype: np.dtype):
    if isinstance(result, tuple):
        return tuple(_rounded_result(item, dtype) for item in result)
    if isinstance(result, np.ndarray) and result.dtype == COMPUTE_DTYPE:
        return round_once(result, dtype)
    return result
