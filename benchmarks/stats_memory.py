"""Peak memory of the per-token statistics (tracemalloc), against one ``(N, V)`` array.

    uv run python benchmarks/stats_memory.py            # the documented sizes (minutes, ~3 GB)
    uv run python benchmarks/stats_memory.py --small    # a quick look (seconds)

``linear_cross_entropy_stats`` answers every per-token statistic (``lse``, loss, z-loss
term, target log-probability, entropy, argmax, correct) from the hidden states and the
vocabulary weight, a chunk of rows at a time, so it never holds the ``(N, V)`` logits:
its peak is a chunk's few vocabulary-sized arrays and the ``(N,)`` outputs. The table is
that peak (tracemalloc sees NumPy's buffers) as a fraction of one float32 ``(N, V)``
array, for each LLM option set, beside ``cross_entropy_stats`` on logits it is given
(whose peak is over the logits it was handed, for comparison).
"""

from __future__ import annotations

import argparse

import numpy as np
from bench import peak_memory

import xent_ref as xr

OPTIONS = {"none": {}, "softcap": {"softcap": 30.0}, "z_loss": {"z_loss": 1e-4},
           "smoothing": {"label_smoothing": 0.1},
           "all": {"logit_scale": 0.5, "softcap": 30.0, "z_loss": 1e-4, "label_smoothing": 0.1}}


def rows(n: int, h: int, v: int):
    """``(option, linear peak / NV, cross_entropy_stats peak / NV)`` per option set."""
    rng = np.random.default_rng(0)
    hidden = (rng.standard_normal((n, h), dtype=np.float32) / np.sqrt(h)).astype(np.float32)
    w = rng.standard_normal((v, h), dtype=np.float32)
    target = rng.integers(0, v, n)
    target[::7] = -100  # some ignored tokens, as in a padded batch
    logits = hidden @ w.T
    nv_bytes = n * v * 4
    for option, kwargs in OPTIONS.items():
        linear = peak_memory(lambda: xr.linear_cross_entropy_stats(hidden, w, target, **kwargs),
                             nv_bytes)
        plain = peak_memory(lambda: xr.cross_entropy_stats(logits, target, **kwargs), nv_bytes)
        yield option, linear, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes, a quick look")
    small = parser.parse_args().small
    sizes = [(256, 64, 4096)] if small else [(4096, 512, 32000), (2048, 512, 128256)]
    print("| N, H, V | one (N, V) float32 | options | linear_cross_entropy_stats "
          "| cross_entropy_stats (given the logits) |")
    print("|---|---|---|---|---|")
    for n, h, v in sizes:
        mib = n * v * 4 / 2**20
        for option, linear, plain in rows(n, h, v):
            print(f"| {n}, {h}, {v} | {mib:.0f} MiB | {option} | {linear:.3f}x ({linear * mib:.0f} MiB)"
                  f" | {plain:.3f}x ({plain * mib:.0f} MiB) |")


if __name__ == "__main__":
    main()
