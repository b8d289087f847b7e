"""Exact, language-neutral JSON encoding of NumPy arrays (one place, used by the
test fixtures and by the golden corpus).

An array is written as ``{"dtype": "float32", "shape": [2, 3], "data": [...]}``:
``data`` is the flat row-major list of values. Floats are written as JSON numbers
with Python's shortest round-trip ``repr`` of the value as a float64, so reading
them back with any correct float parser gives the identical bits (a float32 value
is exactly representable as a float64). JSON has no spelling for non-finite
numbers, so ``inf``, ``-inf`` and ``nan`` are written as those strings.
Integers are JSON integers; ``bool`` arrays use ``true``/``false``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# The only dtypes written or read: a file cannot make NumPy allocate "U100000000".
DTYPES = ("float32", "float64", "int32", "int64", "bool")


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
    flat = array.reshape(-1).tolist()
    if array.dtype.kind == "f":
        flat = [_encode_float(float(v)) for v in flat]
    return {"dtype": dtype, "shape": list(array.shape), "data": flat}


def decode_array(obj: dict) -> np.ndarray:
    """Inverse of :func:`encode_array`: the exact array, with its dtype and shape."""
    if obj["dtype"] not in DTYPES:
        raise TypeError(f"cannot decode arrays of dtype {obj['dtype']!r}; expected one of {DTYPES}")
    dtype = np.dtype(obj["dtype"])
    data = obj["data"]
    if dtype.kind == "f":
        data = [_NON_FINITE[v] if isinstance(v, str) else v for v in data]
    return np.array(data, dtype=dtype).reshape(obj["shape"])


def is_encoded_array(obj: Any) -> bool:
    """True when ``obj`` looks like the output of :func:`encode_array`."""
    return isinstance(obj, dict) and set(obj) == {"dtype", "shape", "data"}
