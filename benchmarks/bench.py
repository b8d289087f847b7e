"""Speed and memory of xent_ref at real scale, against PyTorch CPU when it is installed.

Run from the repository root::

    uv run python benchmarks/bench.py                      # xent_ref alone
    PYTHONPATH=. /path/to/torch-venv/bin/python benchmarks/bench.py   # with PyTorch

Cases (float32): class-index cross-entropy at LLM vocabulary sizes
(4096 x 32000 logits, 0.5 GB), a segmentation batch (8, 21, 256, 256) with
ignored pixels (``ignore_index=255``), and BCE with logits at (65536, 1000).

For each case it times, interleaved and repeated (medians reported), the loss
call, the gradient call, a fused loss-and-gradient function if xent_ref has one
(``<loss>_with_grad``), and PyTorch's forward + backward at its default thread
count and at one thread (xent_ref spreads its blocks over all cores). Peak
memory is tracemalloc's (NumPy reports its buffers to it): the peak *above* what
was held before the call, as a multiple of the logits' size. The gradient's own
output counts as 1x; targets are ratio <= 1.0 and memory <= 1.1x.

``--profile`` adds a line-by-line account (time and peak memory of each line of
xent_ref's code) of each xent_ref call, to find the step that misses a target.
``--write FILE`` writes the results as a markdown section.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xent_ref as xr  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still measures xent_ref alone
    torch = None

XENT_DIR = str(Path(xr.__file__).parent)
# The source as imported, for the profile's listing (the files may change while we run).
XENT_SOURCE = {str(f): f.read_text().splitlines() for f in Path(XENT_DIR).glob("*.py")}
SPEED_TARGET = 1.0
MEMORY_TARGET = 1.1


@dataclass
class Case:
    name: str
    func: str  # xent_ref's loss name; the gradient is func + "_grad"
    logits: np.ndarray
    target: np.ndarray
    kwargs: dict = field(default_factory=dict)

    def torch_loss(self):
        return getattr(F, self.func)


def make_cases(rng: np.random.Generator, only: set[str] | None) -> list[Case]:
    cases = []
    if not only or "llm" in only:
        logits = rng.standard_normal((4096, 32000), dtype=np.float32)
        target = rng.integers(0, 32000, size=4096)
        cases.append(Case("llm", "cross_entropy", logits, target))
    if not only or "llm128k" in only:  # Llama 3's vocabulary; 128256 is no power of two
        logits = rng.standard_normal((512, 128256), dtype=np.float32)
        target = rng.integers(0, 128256, size=512)
        cases.append(Case("llm128k", "cross_entropy", logits, target))
    if not only or "seg" in only:
        logits = rng.standard_normal((8, 21, 256, 256), dtype=np.float32)
        target = rng.integers(0, 21, size=(8, 256, 256))
        target[rng.random(target.shape) < 0.1] = 255  # 10% unlabelled pixels
        cases.append(Case("seg", "cross_entropy", logits, target, {"ignore_index": 255}))
    if not only or "bce" in only:
        logits = rng.standard_normal((65536, 1000), dtype=np.float32)
        target = (rng.random((65536, 1000)) < 0.5).astype(np.float32)
        cases.append(Case("bce", "binary_cross_entropy_with_logits", logits, target))
    return cases


# ---------------------------------------------------------------------------
# What is run


def xent_runners(case: Case) -> dict:
    forward = getattr(xr, case.func)
    backward = getattr(xr, case.func + "_grad")
    runners = {
        "xent loss": lambda: forward(case.logits, case.target, **case.kwargs),
        "xent grad": lambda: backward(case.logits, case.target, **case.kwargs),
    }
    fused = getattr(xr, case.func + "_with_grad", None)
    if fused is not None:
        runners["xent fused"] = lambda: fused(case.logits, case.target, **case.kwargs)
    return runners


def torch_runner(case: Case, threads: int):
    x = torch.from_numpy(case.logits)  # shares the NumPy buffer: no copy
    t = torch.from_numpy(case.target)
    loss_fn = case.torch_loss()

    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            leaf = x.detach().requires_grad_()
            loss = loss_fn(leaf, t, **case.kwargs)
            loss.backward()
            return loss.detach(), leaf.grad
        finally:
            torch.set_num_threads(before)

    return run


def runners(case: Case, torch_threads: list[int]) -> dict:
    out = xent_runners(case)
    for n in torch_threads:
        out[f"torch {n}t"] = torch_runner(case, n)
    return out


# ---------------------------------------------------------------------------
# Measuring


def time_interleaved(runs: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each runner, the runners taking turns (rotated order)."""
    times = defaultdict(list)
    names = list(runs)
    for name in names:  # warm-up
        runs[name]()
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            gc.collect()
            start = time.perf_counter()
            result = runs[name]()
            times[name].append(time.perf_counter() - start)
            del result
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_memory(run, nbytes: int) -> float:
    """Peak traced allocation during ``run()`` above what was held before, in units of ``nbytes``."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]
        result = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return (peak - held) / nbytes


def check_against_torch(case: Case) -> str:
    """Loss relative difference and largest gradient difference, xent_ref vs PyTorch (float32)."""
    loss_t, grad_t = torch_runner(case, torch.get_num_threads())()
    loss = xr_call(case, "")
    grad = xr_call(case, "_grad")
    rel = abs(float(loss) - float(loss_t)) / abs(float(loss_t))
    diff = float(np.max(np.abs(grad - grad_t.numpy())))
    scale = float(np.max(np.abs(grad)))
    return f"loss rel. diff {rel:.1e}, max |grad diff| {diff:.1e} (max |grad| {scale:.1e})"


def xr_call(case: Case, suffix: str):
    return getattr(xr, case.func + suffix)(case.logits, case.target, **case.kwargs)


def line_profile(run, nbytes: int, top: int = 8) -> list[str]:
    """Time and peak memory per line of xent_ref's code during ``run()``.

    A line's time runs until the next traced line starts (calls into NumPy are
    charged to the line that made them); its memory is the peak above the
    starting level while it ran, in units of ``nbytes``.
    """
    stats = defaultdict(lambda: [0.0, 0.0])  # (file, line) -> [seconds, peak]
    state = {"key": None, "t": 0.0}

    def charge():
        now = time.perf_counter()
        key = state["key"]
        if key is not None:
            stats[key][0] += now - state["t"]
            stats[key][1] = max(stats[key][1], (tracemalloc.get_traced_memory()[1] - base) / nbytes)
        tracemalloc.reset_peak()
        state["t"] = time.perf_counter()

    def local(frame, event, arg):
        if event in ("line", "return"):
            charge()
            state["key"] = (frame.f_code.co_filename, frame.f_lineno) if event == "line" else state["key"]
        return local

    def global_tracer(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(XENT_DIR) else None

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    sys.settrace(global_tracer)
    try:
        result = run()
    finally:
        sys.settrace(None)
        charge()
        tracemalloc.stop()
    del result
    lines = []
    for (filename, lineno), (seconds, peak) in sorted(stats.items(), key=lambda kv: -kv[1][0])[:top]:
        source = XENT_SOURCE[filename][lineno - 1].strip()
        lines.append(f"  {seconds:7.3f} s  peak {peak:5.2f}x  {Path(filename).name}:{lineno}  {source[:90]}")
    return lines


# ---------------------------------------------------------------------------
# Reporting


def machine() -> dict[str, str]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        cpu = f"{info.get('Model name', '?').strip()}, {info.get('CPU(s)', '?').strip()} CPUs"
    except (OSError, subprocess.CalledProcessError):
        cpu = platform.processor() or "?"
    facts = {
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": f"{torch.__version__}, {torch.get_num_threads()} threads by default" if torch else "not installed",
        "OPENBLAS_* set": ", ".join(k for k in os.environ if k.startswith("OPENBLAS")) or "none",
    }
    return facts


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(rows: list[dict], torch_threads: list[int]) -> str:
    head = ["case", "loss s", "grad s", "loss+grad s", "fused s"]
    for n in torch_threads:
        head += [f"torch {n}t s", f"ratio vs {n}t"]
    head += ["loss mem", "grad mem", "fused mem"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        t = row["times"]
        total = t["xent loss"] + t["xent grad"]
        cells = [row["title"], f"{t['xent loss']:.3f}", f"{t['xent grad']:.3f}", f"{total:.3f}",
                 f"{t['xent fused']:.3f}" if "xent fused" in t else "-"]
        for n in torch_threads:
            ref = t[f"torch {n}t"]
            best = min(total, t.get("xent fused", total))
            cells += [f"{ref:.3f}", fmt_ratio(best / ref)]
        mem = row["memory"]
        cells += [f"{mem['xent loss']:.2f}x", f"{mem['xent grad']:.2f}x",
                  f"{mem['xent fused']:.2f}x" if "xent fused" in mem else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


TITLES = {
    "llm": "cross_entropy (4096, 32000)",
    "llm128k": "cross_entropy (512, 128256)",
    "seg": "cross_entropy (8, 21, 256, 256), ignore_index=255",
    "bce": "bce_with_logits (65536, 1000)",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (default 7)")
    parser.add_argument("--cases", default="", help="comma-separated subset of: llm, llm128k, seg, bce")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--profile", action="store_true", help="line-by-line time and memory of xent_ref's calls")
    parser.add_argument("--write", metavar="FILE", help="also write the results as markdown to FILE")
    args = parser.parse_args(argv)

    use_torch = torch is not None and not args.no_torch
    torch_threads = sorted({torch.get_num_threads(), 1}, reverse=True) if use_torch else []
    facts = machine()
    for key, value in facts.items():
        print(f"{key}: {value}")

    rng = np.random.default_rng(0)
    rows, notes = [], []
    for case in make_cases(rng, set(filter(None, args.cases.split(","))) or None):
        title = TITLES[case.name]
        print(f"\n{title}: logits {case.logits.nbytes / 2**20:.0f} MiB", flush=True)
        runs = runners(case, torch_threads)
        times = time_interleaved(runs, args.repeats)
        memory = {name: peak_memory(run, case.logits.nbytes) for name, run in runs.items() if name.startswith("xent")}
        for name in runs:
            mem = f", peak {memory[name]:.2f}x logits" if name in memory else ""
            print(f"  {name:11s} {times[name]:8.3f} s{mem}")
        if use_torch:
            check = check_against_torch(case)
            print("  check:", check)
            notes.append(f"{title}: {check}")
        if args.profile:
            for name, run in xent_runners(case).items():
                print(f"  profile of {name} (slowest lines):")
                print("\n".join(line_profile(run, case.logits.nbytes)))
        rows.append({"title": title, "times": times, "memory": memory})

    text = table(rows, torch_threads)
    print("\n" + text)
    if args.write:
        write_markdown(Path(args.write), facts, text, notes, args, use_torch)
    return 0


def write_markdown(path: Path, facts: dict, text: str, notes: list[str], args, use_torch: bool) -> None:
    command = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
    command += "PYTHONPATH=. <torch-venv>/bin/python" if use_torch else "uv run python"
    command += f" benchmarks/bench.py --repeats {args.repeats}" + (f" --cases {args.cases}" if args.cases else "")
    lines = [
        "## Benchmarks",
        "",
        "Loss and gradient at real sizes, float32, xent_ref against PyTorch CPU in the same",
        "process (runs interleaved, medians of "
        f"{args.repeats}). Times in seconds; a ratio is xent_ref's best",
        "loss + gradient time (separate calls, or the fused call when there is one) over PyTorch's",
        "forward + backward; memory is tracemalloc's peak during the call above what was held",
        "before, as a multiple of the logits' size (the gradient itself is 1x). Targets: ratio <= 1.0,",
        "memory <= 1.1x. PyTorch's own memory is not visible to tracemalloc and is not shown.",
        "xent_ref runs its blocks on a thread per core; PyTorch is timed at its default thread",
        "count (the ratio that counts) and, for reference, at one thread.",
        "",
        *[f"- {k}: {v}" for k, v in facts.items()],
        "",
        text,
        "",
        *(["Agreement with PyTorch (float32) on the same inputs:", ""] if notes else []),
        *[f"- {n}" for n in notes],
        "",
        "Reproduce (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if set on the machine, slow a current",
        "NumPy, so they are unset for this command only):",
        "",
        "```console",
        command + " --write docs/benchmarks.md",
        "```",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
