"""Speed and memory of linear_cross_entropy (loss + all three gradients) against PyTorch 2.13.

Run from the repository root, by hand (never as a test)::

    uv run python benchmarks/bench_linear.py                              # xent_ref alone
    PYTHONPATH=. /path/to/torch-venv/bin/python benchmarks/bench_linear.py

Case: N = 2048 tokens, H = 512 features, V = 32000 classes, float32, with a bias.
xent_ref: ``linear_cross_entropy_with_grad`` (one pass). PyTorch:
``F.linear_cross_entropy`` forward + ``backward()`` in the same process, at its default
thread count, with its chunked implementation (``options=LinearCrossEntropyOptions()``)
and with its reference path (``options=None``, which forms the logits). Times are medians of
interleaved runs. Memory: tracemalloc's peak above what was held before the xent_ref call
(NumPy reports its buffers to it), compared with the inputs plus the gradients, and with
the ``N x V`` logits that are never formed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import xent_ref as xr  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shape", default="2048,512,32000", help="N,H,V")
    args = parser.parse_args(argv)
    n, h, v = (int(s) for s in args.shape.split(","))
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((n, h), dtype=np.float32)
    weight = (rng.standard_normal((v, h), dtype=np.float32) / np.sqrt(h)).astype(np.float32)
    bias = rng.standard_normal(v, dtype=np.float32)
    target = rng.integers(0, v, n)

    def ours():
        return xr.linear_cross_entropy_with_grad(hidden, weight, target, linear_bias=bias)

    runs = {"xent_ref": ours}
    if torch is not None:
        def torch_run(options):
            def run():
                h_t = torch.from_numpy(hidden).requires_grad_()
                w_t = torch.from_numpy(weight).requires_grad_()
                b_t = torch.from_numpy(bias).requires_grad_()
                loss = F.linear_cross_entropy(h_t, w_t, torch.from_numpy(target),
                                              linear_bias=b_t, options=options)
                loss.backward()
                return loss
            return run
        runs["torch chunked"] = torch_run(torch.nn.LinearCrossEntropyOptions())
        runs["torch reference"] = torch_run(None)
    for run in runs.values():  # warm-up (first allocations, thread pools)
        run()
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}

    tracemalloc.start()
    ours()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    io_bytes = 2 * (hidden.nbytes + weight.nbytes + bias.nbytes)  # inputs plus their gradients
    logits_bytes = n * v * 4

    print(f"linear_cross_entropy N={n} H={h} V={v} float32, bias; numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ""))
    for name, t in medians.items():
        ratio = f"  xent_ref / this = {medians['xent_ref'] / t:.2f}" if name != "xent_ref" else ""
        print(f"  {name:<16} loss + 3 gradients {t:7.3f} s{ratio}")
    extra = peak - (hidden.nbytes + weight.nbytes + bias.nbytes)  # minus the gradients' outputs
    print(f"  xent_ref peak above the inputs: {peak / 2**20:.1f} MiB, of which the gradients "
          f"{(hidden.nbytes + weight.nbytes + bias.nbytes) / 2**20:.1f} MiB; extra "
          f"{extra / 2**20:.1f} MiB")
    print(f"  (inputs + gradients + extra) / (inputs + gradients) = "
          f"{(io_bytes + extra) / io_bytes:.3f}; the N x V logits would be "
          f"{logits_bytes / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
