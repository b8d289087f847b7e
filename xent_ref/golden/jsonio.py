"""Exact, language-neutral encoding of NumPy arrays (one place, used by the test
fixtures and by the golden corpus): JSON lists for small arrays, ``.npy`` files for
large ones.

An array is written as ``{"dtype": "float32", "shape": [2, 3], "data": [...]}``:
``data`` is the flat row-major list of values. Floats (float16, bfloat16, float32,
float64) are written as JSON numbers with Python's shortest round-trip ``repr`` of the
value as a float64, so reading them back with any correct float parser gives the
identical bits (every value of the narrower formats is exactly a float64). JSON has no
spelling for non-finite numbers, so ``inf``, ``-inf`` and ``nan`` are written as those
strings. Integers are JSON integers; ``bool`` arrays use ``true``/``false``.

A large array may instead live in a ``.npy`` file (:func:`npy_bytes`, :func:`read_npy`):
NumPy's format version 1.0, a 10-byte preamble, an ASCII header naming the dtype and the
shape, then the raw little-endian values in row-major order. ``bfloat16``, which the
format has no code for, is stored as its 16 raw bits (``<u2``): shifted left by 16 they
are the float32 of the same value.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from xent_ref._engine.dtypes import DTYPES, FLOAT_DTYPES, dtype_named, is_float  # noqa: F401

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# The .npy type code of each dtype (bfloat16: its raw bits, see the module docstring).
NPY_DESCR = {"float16": "<f2", "bfloat16": "<u2", "float32": "<f4", "float64": "<f8",
             "int32": "<i4", "int64": "<i8", "bool": "|b1"}
_NPY_MAGIC = b"\x93NUMPY\x01\x00"


def _encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def encode_array(array: Any) -> dict:
    """Return the JSON-ready dict for ``array`` (see the module docstring)."""
    array = np.asarray(array)
    dtype = array.dtype.name
    if dtype not in DTYPES:
        raise TypeError(f"cannot encode arrays of dtype {dtype}; expected one of {DTYPES}")
    if is_float(array.dtype):
        flat = [_encode_float(v) for v in array.astype(np.float64).reshape(-1).tolist()]
    else:
        flat = array.reshape(-1).tolist()
    return {"dtype": dtype, "shape": list(array.shape), "data": flat}


def decode_array(obj: dict) -> np.ndarray:
    """Inverse of :func:`encode_array`: the exact array, with its dtype and shape."""
    dtype = dtype_named(obj["dtype"])
    data = obj["data"]
    if is_float(dtype):
        data = [_NON_FINITE[v] if isinstance(v, str) else v for v in data]
        # Through float64: every value written is exactly one, so the cast is exact.
        return np.array(data, dtype=np.float64).astype(dtype).reshape(obj["shape"])
    return np.array(data, dtype=dtype).reshape(obj["shape"])


def is_encoded_array(obj: Any) -> bool:
    """True when ``obj`` looks like the output of :func:`encode_array`."""
    return isinstance(obj, dict) and set(obj) == {"dtype", "shape", "data"}


# ---------------------------------------------------------------------------
# .npy files
# ---------------------------------------------------------------------------


def npy_bytes(array: Any) -> bytes:
    """The ``.npy`` file of ``array`` (format 1.0; the header padded with spaces so the
    values start at a multiple of 64 bytes, as NumPy writes it)."""
    array = np.asarray(array)
    descr = NPY_DESCR[array.dtype.name]
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(array.shape)!r}, }}"
    padding = 64 - (len(_NPY_MAGIC) + 2 + len(header) + 1) % 64
    header = (header + " " * (padding % 64) + "\n").encode("ascii")
    values = np.ascontiguousarray(array).view(descr) if array.dtype.name == "bfloat16" \
        else np.ascontiguousarray(array, dtype=descr)
    return _NPY_MAGIC + len(header).to_bytes(2, "little") + header + values.tobytes()


def read_npy(data: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array in the ``.npy`` bytes ``data``, which must hold exactly ``dtype`` and
    ``shape`` (the JSON's): a ``ValueError`` saying what differs otherwise."""
    if data[:6] != _NPY_MAGIC[:6] or len(data) < 10:
        raise ValueError("not a .npy file (no \\x93NUMPY magic)")
    length_bytes = 2 if data[6] == 1 else 4
    start = 8 + length_bytes
    end = start + int.from_bytes(data[8:start], "little")
    try:
        header = ast.literal_eval(data[start:end].decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("the .npy header is not a Python literal") from None
    if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}):
        raise ValueError("the .npy header must hold exactly descr, fortran_order and shape")
    if header["descr"] != NPY_DESCR[dtype] or header["fortran_order"] is not False:
        raise ValueError(f"the .npy file holds {header['descr']!r} (fortran_order "
                         f"{header['fortran_order']!r}), expected {NPY_DESCR[dtype]!r} for "
                         f"{dtype} in C order")
    if tuple(header["shape"]) != tuple(shape):
        raise ValueError(f"the .npy file has shape {header['shape']}, expected {tuple(shape)}")
    values = data[end:]
    expected = math.prod(shape) * np.dtype(NPY_DESCR[dtype]).itemsize
    if len(values) != expected:
        raise ValueError(f"the .npy file has {len(values)} bytes of values, expected {expected}")
    array = np.frombuffer(values, dtype=NPY_DESCR[dtype]).reshape(shape)
    return array.view(dtype_named(dtype)) if dtype == "bfloat16" else array.astype(dtype)
