"""The dtypes the library names: the four floating ones and the integer/bool ones a
target may have; ``bfloat16`` comes from ml_dtypes, imported only when named."""

from __future__ import annotations

import numpy as np

# The only dtypes written or read: a file cannot make NumPy allocate "U100000000".
DTYPES = ("float32", "float64", "int32", "int64", "bool", "float16", "bfloat16")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def dtype_named(name: str) -> np.dtype:
    """The NumPy dtype of an allowed name; ``bfloat16`` comes from ml_dtypes."""
    if name not in DTYPES:
        raise TypeError(f"dtype {name!r} is not one of {', '.join(DTYPES)}")
    if name != "bfloat16":
        return np.dtype(name)
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError("bfloat16 arrays need the ml_dtypes package (pip install ml_dtypes)") \
            from None
    return np.dtype(ml_dtypes.bfloat16)


def is_float(dtype) -> bool:
    """Whether ``dtype`` is one of the floating dtypes (NumPy calls bfloat16 kind 'V')."""
    return np.dtype(dtype).name in FLOAT_DTYPES
