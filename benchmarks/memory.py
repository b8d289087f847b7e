"""Peak memory of the LLM paths, per dtype and option (tracemalloc).

    uv run python benchmarks/memory.py            # the documented sizes (minutes, ~3 GB)
    uv run python benchmarks/memory.py --small    # a quick look (seconds)

For each dtype (float32, float16, bfloat16) and each LLM option set (none, softcap,
z_loss, all three) it prints the peak that tracemalloc sees during one call (NumPy
reports its buffers to tracemalloc), as a multiple of the call's inputs:

* ``cross_entropy_grad``, ``softmax``, ``binary_cross_entropy_with_logits_grad``: peak /
  input bytes (the gradient, an output, is part of the peak);
* ``linear_cross_entropy_with_grad``: (inputs + peak) / (inputs + gradients), the
  documented ratio (at most 1.25 in float32 with every option).

The options apply to the cross-entropy functions only (``softmax`` and the binary loss
have none: their row repeats the same call).
"""

from __future__ import annotations

import argparse

import numpy as np
from bench import peak_memory

import xent_ref as xr
from xent_ref import linear
from xent_ref._engine.dtypes import dtype_named


def peak_of(call) -> float:
    """The peak bytes traced while ``call()`` runs (:func:`bench.peak_memory`)."""
    return peak_memory(call, 1)


OPTIONS = {"none": {}, "softcap": {"softcap": 30.0}, "z_loss": {"z_loss": 1e-4},
           "all": {"logit_scale": 0.5, "softcap": 30.0, "z_loss": 1e-4}}
DTYPES = ("float32", "float16", "bfloat16")


def rows(n: int, c: int, h: int, v: int):
    """``(function, dtype, option, ratio)`` for every measured call."""
    rng = np.random.default_rng(0)
    for name in DTYPES:
        dtype = dtype_named(name)
        x = rng.normal(0, 3, (n, c)).astype(np.float32).astype(dtype)
        t = rng.integers(0, c, n)
        y = rng.random((n, c)).astype(np.float32).astype(dtype)
        hidden = rng.normal(size=(n, h)).astype(np.float32).astype(dtype)
        w = (rng.normal(size=(v, h)) / 8).astype(np.float32).astype(dtype)
        targets = rng.integers(0, v, n)
        inputs = hidden.nbytes + w.nbytes
        for option, kwargs in OPTIONS.items():
            yield ("cross_entropy_grad", name, option,
                   peak_of(lambda: xr.cross_entropy_grad(x, t, **kwargs)) / x.nbytes)
            yield ("softmax", name, option, peak_of(lambda: xr.softmax(x, axis=1)) / x.nbytes)
            yield ("bce_with_logits_grad", name, option,
                   peak_of(lambda: xr.binary_cross_entropy_with_logits_grad(x, y)) / x.nbytes)
            peak = peak_of(lambda: xr.linear_cross_entropy_with_grad(hidden, w, targets,
                                                                     **kwargs))
            yield ("linear_ce_with_grad", name, option, (inputs + peak) / (2 * inputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes, a quick look")
    small = parser.parse_args().small
    if small:  # the rule of large vocabularies: a chunk is a quarter of linear_weight
        linear.CHUNK_BYTES = 1 << 16
    n, c, h, v = (256, 4096, 64, 4096) if small else (2048, 32000, 512, 32000)
    print(f"peak memory (tracemalloc), N={n} C={c}; linear: N={n} H={h} V={v}")
    table: dict = {}
    for function, dtype, option, ratio in rows(n, c, h, v):
        table.setdefault((function, option), {})[dtype] = ratio
    print(f"{'function':24} {'option':8} " + " ".join(f"{d:>9}" for d in DTYPES))
    for (function, option), ratios in table.items():
        print(f"{function:24} {option:8} " + " ".join(f"{ratios[d]:8.2f}x" for d in DTYPES))


if __name__ == "__main__":
    main()
