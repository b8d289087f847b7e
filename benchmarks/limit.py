"""How close xent_ref runs to the machine's limit, measured in the same run.

Run from the repository root, by hand (never as a test)::

    uv run python benchmarks/limit.py --quick                  # a few minutes
    PYTHONPATH=. /path/to/torch-venv/bin/python benchmarks/limit.py --write docs/benchmarks.md

The limit of a loss over logits of shape ``(N, C)`` is one single-threaded pass of
``np.exp(x, out=buf)`` over them (an already-touched ``buf``), with one ``np.copyto`` of
them beside it: a loss must read the logits at least once and exponentiate each one, and
a gradient must also write as many numbers. A workload's "exp-passes" is its time over
that pass. ``linear_cross_entropy`` is held against one matrix product of the logits'
shape, ``np.matmul(h, W.T, out=buf)`` at the BLAS library's default thread count; its
loss and three gradients need three such products, so its floor is about 3 "GEMMs".

Every size is timed on its own: the limit and the workloads take turns (the order
rotated each round) and each keeps its best of ``--repeats`` times, so a busy machine
slows a ratio's two sides alike as far as it can. Peak memory is tracemalloc's (NumPy
reports its buffers to it), above what was held before the call, as a multiple of the
logits (losses) or of the inputs plus gradients (linear). With PyTorch importable the
headline rows add torch's forward + backward in the same rounds. ``--write FILE``
replaces the section between ``<!-- limit:begin -->`` and ``<!-- limit:end -->`` of
FILE (or appends it) and writes the plots under ``docs/img/``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xent_ref as xr  # noqa: E402
from bench import peak_memory  # noqa: E402  (benchmarks/ is the script's folder)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the limits and xent_ref alone
    torch = None

BEGIN, END = "<!-- limit:begin -->", "<!-- limit:end -->"
LOSSES = {  # workload -> (function, with a target?)
    "cross_entropy": xr.cross_entropy,
    "cross_entropy_grad": xr.cross_entropy_grad,
    "cross_entropy_with_grad": xr.cross_entropy_with_grad,
    "softmax": lambda x, t: xr.softmax(x, axis=1),
    "bce_with_logits": xr.binary_cross_entropy_with_logits,
    "bce_with_logits_with_grad": xr.binary_cross_entropy_with_logits_with_grad,
    "bce": xr.binary_cross_entropy,
}
TARGETS = {"cross_entropy_with_grad": 2.5, "bce_with_logits_with_grad": 2.5,
           "linear_cross_entropy_with_grad": 3.5}


def best_times(runs: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each runner, the runners taking turns (rotated order)."""
    names = list(runs)
    best = {name: float("inf") for name in names}
    for name in names:  # warm-up (and first touch of every buffer)
        runs[name]()
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start = time.perf_counter()
            result = runs[name]()
            best[name] = min(best[name], time.perf_counter() - start)
            del result
    return best


def peak_bytes(run) -> int:
    """tracemalloc's peak during ``run()`` above what was held before (bench's measure)."""
    return peak_memory(run, 1)


def loss_inputs(rng, shape, workload):
    x = rng.standard_normal(shape, dtype=np.float32)
    if workload.startswith("bce"):
        t = (rng.random(shape) < 0.5).astype(np.float32)
        if workload == "bce":
            x = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
        return x, t
    t = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    return x, t


def measure_losses(rng, shape, workloads, repeats, kwargs=None, with_torch=False) -> list[dict]:
    """One size: the exp and copy limits and each workload, interleaved."""
    print(f"  {shape} {', '.join(workloads)}", file=sys.stderr, flush=True)
    kwargs = kwargs or {}
    x, t = loss_inputs(rng, shape, "cross_entropy")
    buf = np.empty_like(x)
    runs = {"exp": lambda: np.exp(x, out=buf), "copy": lambda: np.copyto(buf, x)}
    inputs = {}
    for w in workloads:
        inputs[w] = (x, t) if not w.startswith("bce") else loss_inputs(rng, shape, w)
        xi, ti = inputs[w]
        runs[w] = (lambda f, xi, ti: lambda: f(xi, ti, **({} if f is LOSSES["softmax"]
                                                         else kwargs)))(LOSSES[w], xi, ti)
    if with_torch and torch is not None:
        for w in workloads:
            if w in ("cross_entropy_with_grad", "bce_with_logits_with_grad"):
                runs["torch " + w] = torch_step(w, *inputs[w], kwargs)
    times = best_times(runs, repeats)
    rows = []
    for w in workloads:
        rows.append(dict(workload=w, shape=shape, elements=x.size, seconds=times[w],
                         exp=times["exp"], copy=times["copy"], ratio=times[w] / times["exp"],
                         torch=times.get("torch " + w),
                         memory=peak_bytes(runs[w]) / x.nbytes))
    return rows


def torch_step(workload, x, t, kwargs):
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    loss_fn = F.cross_entropy if workload.startswith("cross") else \
        F.binary_cross_entropy_with_logits

    def run():
        leaf = xt.detach().requires_grad_()
        loss = loss_fn(leaf, tt, **kwargs)
        loss.backward()
        return loss.detach(), leaf.grad
    return run


def measure_linear(rng, n, h_dim, v, repeats, chunk_sizes=(None,), with_torch=False) -> list[dict]:
    """One (N, H, V): one GEMM of the logits' shape and linear_cross_entropy_with_grad."""
    print(f"  linear {(n, h_dim, v)} chunks {chunk_sizes}", file=sys.stderr, flush=True)
    h = (rng.standard_normal((n, h_dim), dtype=np.float32) / np.sqrt(h_dim)).astype(np.float32)
    w = rng.standard_normal((v, h_dim), dtype=np.float32)
    b = rng.standard_normal(v, dtype=np.float32)
    t = rng.integers(0, v, size=n)
    buf = np.empty((n, v), np.float32)
    runs = {"gemm": lambda: np.matmul(h, w.T, out=buf)}
    for c in chunk_sizes:
        runs[f"chunk {c}"] = (lambda c: lambda: xr.linear_cross_entropy_with_grad(
            h, w, t, linear_bias=b, chunk_size=c))(c)
    if with_torch and torch is not None:
        ht, wt, bt, tt = (torch.from_numpy(a) for a in (h, w, b, t))

        def torch_run():
            hl, wl, bl = (a.detach().requires_grad_() for a in (ht, wt, bt))
            loss = F.cross_entropy(F.linear(hl, wl, bl), tt)
            loss.backward()
            return loss.detach(), hl.grad, wl.grad, bl.grad
        runs["torch"] = torch_run
    times = best_times(runs, repeats)
    inputs_and_grads = 2 * (h.nbytes + w.nbytes + b.nbytes)
    rows = []
    for c in chunk_sizes:
        run = runs[f"chunk {c}"]
        rows.append(dict(workload="linear_cross_entropy_with_grad", shape=(n, h_dim, v),
                         chunk=c, elements=n * v, seconds=times[f"chunk {c}"],
                         gemm=times["gemm"], ratio=times[f"chunk {c}"] / times["gemm"],
                         torch=times.get("torch"),
                         memory=(peak_bytes(run) + inputs_and_grads / 2) / inputs_and_grads))
    return rows


def measure_small(repeats: int) -> dict:
    """A (3, 5) cross_entropy call against its textbook twin's, interleaved (a teaching
    loop calls it thousands of times: its cost is the per-call overhead)."""
    import timeit
    from xent_ref import textbook
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((3, 5)), np.array([0, 2, 4])
    runs = {"xent_ref": lambda: xr.cross_entropy(x, t),
            "textbook": lambda: textbook.cross_entropy(x, t)}
    best = {name: float("inf") for name in runs}
    for _ in range(max(3, repeats)):
        for name, run in runs.items():
            best[name] = min(best[name], min(timeit.repeat(run, number=500, repeat=3)) / 500)
    return dict(best, ratio=best["xent_ref"] / best["textbook"])


def small_line(small: dict) -> str:
    return (f"A (3, 5) `cross_entropy` call: {1e6 * small['xent_ref']:.1f} us, its textbook "
            f"twin's {1e6 * small['textbook']:.1f} us: {small['ratio']:.2f}x (target <= 3x).")


def sizes(quick: bool):
    """The sweeps: C at a fixed number of elements, N at C = 1000, and the headline shapes."""
    budget = 1 << (18 if quick else 21)
    classes = [10, 100, 1000, 10000, 32000, 128256, 262144]
    c_sweep = [(max(1, budget // c), c) for c in classes]
    n_sweep = [(n, 1000) for n in ([1, 64, 1024, 8192] if quick else [1, 16, 256, 4096, 65536])]
    headline = [((4096, 32000), {}), ((512, 128256), {}), ((4096, 128256), {}),
                ((8, 21, 256, 256), {"ignore_index": 255})]
    if quick:
        headline = headline[:2] + headline[3:]
    return c_sweep, n_sweep, headline


def threadpool_info() -> str:
    try:
        from threadpoolctl import threadpool_info as info
        return "; ".join(f"{p.get('internal_api')} {p.get('version')} "
                         f"{p.get('num_threads')} threads" for p in info())
    except ImportError:
        config = np.show_config(mode="dicts") or {}
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '?')} (threadpoolctl not installed)"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> list[str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return [f"cpu: {cpu_name()}, {os.cpu_count()} CPUs",
            f"load average at the start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
            f"python {platform.python_version()}, numpy {np.__version__}, "
            f"torch {torch.__version__ if torch else 'not installed'}",
            f"threadpools: {threadpool_info()}",
            "OPENBLAS_* set: " + (", ".join(k for k in os.environ if k.startswith("OPENBLAS"))
                                  or "none")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweeps (a few minutes)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per size")
    parser.add_argument("--write", metavar="FILE", help="write the section and the plots")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--plot", metavar="JSON", help="only draw the plots from a run's JSON")
    parser.add_argument("--small", action="store_true", help="only the (3, 5) call's overhead")
    args = parser.parse_args(argv)
    if args.small:
        print(small_line(measure_small(args.repeats)))
        return 0
    if args.plot:
        plots(json.loads(Path(args.plot).read_text()), ROOT / "docs" / "img")
        return 0
    use_torch = torch is not None and not args.no_torch
    rng = np.random.default_rng(0)
    start = time.time()
    c_sweep, n_sweep, headline = sizes(args.quick)
    sweep_loads = ["cross_entropy", "cross_entropy_with_grad", "cross_entropy_grad", "softmax",
                   "bce_with_logits", "bce_with_logits_with_grad", "bce"]
    rows = {"C": [], "N": [], "headline": [], "linear": [], "chunks": [],
            "small": measure_small(args.repeats)}
    for shape in c_sweep:
        rows["C"] += measure_losses(rng, shape, sweep_loads, args.repeats)
    for shape in n_sweep:
        rows["N"] += measure_losses(rng, shape, sweep_loads, args.repeats)
    for shape, kwargs in headline:
        loads = ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"]
        rows["headline"] += measure_losses(rng, shape, loads, args.repeats, kwargs, use_torch)
    rows["headline"] += measure_losses(rng, (16384 if args.quick else 65536, 1000),
                                       ["bce_with_logits_with_grad"], args.repeats,
                                       with_torch=use_torch)
    linear_shapes = [(2048, 512, 32000), (1024, 512, 128256)]
    for n, hd, v in linear_shapes[:1] if args.quick else linear_shapes:
        rows["linear"] += measure_linear(rng, n, hd, v, max(2, args.repeats // 2),
                                         with_torch=use_torch)
    chunk_sizes = (128, 512, None) if args.quick else (64, 128, 256, 512, 1024, None)
    rows["chunks"] = measure_linear(rng, 2048, 512, 32000, max(2, args.repeats // 2), chunk_sizes)
    elapsed = time.time() - start
    text = report(rows, machine(), args, elapsed)
    print(text)
    if args.write:
        write(Path(args.write), text)
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        (img / "limit.json").write_text(json.dumps(rows, indent=1))
        try:
            plots(rows, img)
        except ImportError:  # e.g. a torch environment without matplotlib
            print("matplotlib missing: draw the plots with `uv run python benchmarks/limit.py "
                  f"--plot {img / 'limit.json'}`", file=sys.stderr)
    return 0


def report(rows, facts, args, elapsed) -> str:
    out = [BEGIN, "## Against the machine's limit", "",
           f"`benchmarks/limit.py{' --quick' if args.quick else ''} --repeats {args.repeats}` "
           f"({elapsed:.0f} s), best of {args.repeats} interleaved rounds per size, float32.", ""]
    out += [f"- {fact}" for fact in facts] + [""]
    out += ["| workload | shape | s | limit s | ratio to the limit | target | torch s | "
            "xent_ref / torch | peak memory |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows["headline"] + rows["linear"]:
        limit = r.get("gemm", r.get("exp"))
        unit = "GEMMs" if "gemm" in r else "exp-passes"
        target = TARGETS.get(r["workload"])
        torch_s = "-" if not r["torch"] else f"{r['torch']:.3f}"
        vs_torch = "-" if not r["torch"] else f"{r['seconds'] / r['torch']:.2f}"
        mem_unit = "inputs+grads" if "gemm" in r else "logits"
        out.append(f"| {r['workload']} | {r['shape']} | {r['seconds']:.3f} | {limit:.3f} | "
                   f"{r['ratio']:.2f} {unit} | {'-' if target is None else f'<= {target}'} | "
                   f"{torch_s} | "
                   f"{vs_torch} | {r['memory']:.2f}x {mem_unit} |")
    out += ["", small_line(rows["small"])]
    out += ["", "Chunk size of `linear_cross_entropy_with_grad` at (2048, 512, 32000) "
            "(`None`: the default policy):", "", "| chunk_size | s | GEMMs | peak memory |",
            "|---|---|---|---|"]
    for r in rows["chunks"]:
        out.append(f"| {r['chunk']} | {r['seconds']:.3f} | {r['ratio']:.2f} | "
                   f"{r['memory']:.2f}x |")
    for key, title in (("C", "classes C (about 2^21 elements each; --quick 2^18)"),
                       ("N", "samples N (C = 1000)")):
        out += ["", f"Sweep over {title}, exp-passes (peak memory over the logits):", ""]
        loads = list(dict.fromkeys(r["workload"] for r in rows[key]))
        out += ["| shape | exp s | copy s | " + " | ".join(loads) + " |",
                "|---" * (3 + len(loads)) + "|"]
        for shape in dict.fromkeys(r["shape"] for r in rows[key]):
            of = [r for r in rows[key] if r["shape"] == shape]
            out.append(f"| {shape} | {of[0]['exp']:.2e} | {of[0]['copy']:.2e} | " + " | ".join(
                f"{r['ratio']:.2f} ({r['memory']:.2f}x)" for r in of) + " |")
    out += ["", "![time per element](img/limit-time.png)",
            "![ratio to the limit](img/limit-ratio.png)",
            "![peak memory](img/limit-memory.png)", "", END]
    return "\n".join(out)


def write(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def plots(rows, img: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    img.mkdir(parents=True, exist_ok=True)
    panels = {"time": ("time per element (ns)", lambda r: 1e9 * r["seconds"] / r["elements"]),
              "ratio": ("time / one exp pass", lambda r: r["ratio"]),
              "memory": ("peak memory / logits", lambda r: r["memory"])}
    for name, (label, value) in panels.items():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, key, axis_name in ((axes[0], "C", "classes C (N C fixed)"),
                                   (axes[1], "N", "samples N (C = 1000)")):
            loads = dict.fromkeys(r["workload"] for r in rows[key])
            for w in loads:
                of = [r for r in rows[key] if r["workload"] == w]
                xs = [r["shape"][1] if key == "C" else r["shape"][0] for r in of]
                ax.plot(xs, [value(r) for r in of], marker="o", label=w)
            if name == "time":
                of = [r for r in rows[key] if r["workload"] == "cross_entropy"]
                xs = [r["shape"][1] if key == "C" else r["shape"][0] for r in of]
                ax.plot(xs, [1e9 * r["exp"] / r["elements"] for r in of], "k--", label="one exp pass")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(axis_name)
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
        axes[1].legend(fontsize=7)
        fig.suptitle(f"xent_ref float32: {label}")
        fig.tight_layout()
        fig.savefig(img / f"limit-{name}.png", dpi=90)
        plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
