"""Blocking and threads: the batch is cut into blocks that stay in cache, and the
blocks run on all cores (NumPy releases the GIL inside its loops), always under the
library's own floating-point error state.
"""

from __future__ import annotations

import functools
import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Block sizes. The element-wise binary losses make several block-sized temporaries
# per block, so their blocks are small enough to stay in the CPU's cache (2**16
# elements, 256 KiB of float32). The cross-entropy makes at most one, and makes
# a few dozen small calls per block (the target, the top class): at 2**18 elements
# those calls cost it a third of its time, at 2**20 (4 MiB of float32) a tenth,
# while a larger block gains nothing more (docs/speed.md).
ELEMENTWISE_BLOCK = 1 << 16
CLASS_BLOCK = 1 << 20
# Each sample of a block also has its own few numbers (its target, the offsets of its
# target and top class, its scale and the top class's terms: about 100 bytes), which
# outweigh its logits when the classes are few (an image's 21): at most 2**14
# samples a block keeps them under 2 MiB.
SAMPLE_BLOCK = 1 << 14


def library_errstate() -> np.errstate:
    """The floating-point error state every computation of the library runs under.

    The losses' infinities and nans are answers (PyTorch's, for the same input), not
    accidents, so NumPy is told to say nothing about them: no ``RuntimeWarning``,
    and no ``FloatingPointError`` under a caller's ``np.errstate(all="raise")``.
    NumPy's error state is per thread, so the caller's never reaches the worker
    threads of :func:`run_blocks`; setting this one state on both sides (the public
    entry points, :func:`xent_ref._engine.lowprec.computed_wide`, and every block here) makes
    a call behave the same at every size.
    """
    return np.errstate(all="ignore")


def run_blocks(work, blocks) -> list:
    """``[work(block) for block in blocks]``, with the blocks spread over the CPU's cores.

    NumPy releases the GIL inside its loops, so threads do run blocks at the same
    time. Each core gets one task, which claims the next unclaimed block until none
    is left: a task per block would cost a future, a queue round trip and a thread
    wake-up per block, all under the GIL, and with hundreds of blocks a call spends
    that time with one core waiting for the other. Each block writes only its own
    part of the output and the results come back in order, so the answer is bit for
    bit that of a one-thread loop. When the pool cannot take work (the interpreter
    is shutting down: a call from an ``atexit`` handler), the blocks run on the
    calling thread instead.
    """
    blocks = list(blocks)
    results = [None] * len(blocks)
    # next() on an itertools.count is one bytecode-free C call: two tasks never
    # claim the same block
    claims = itertools.count()
    failures = []

    def task():
        with library_errstate():
            for i in claims:
                if i >= len(blocks) or failures:
                    return
                try:
                    results[i] = work(blocks[i])
                except BaseException as error:  # re-raised on the calling thread
                    failures.append(error)
                    return

    n_tasks = min(len(blocks), _n_cores())
    if n_tasks <= 1:
        task()
    else:
        try:
            futures = [_pool().submit(task) for _ in range(n_tasks - 1)]
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            futures = []
        task()  # the calling thread claims blocks too
        for future in futures:
            future.result()
    if failures:
        raise failures[0]
    return results


def _n_cores() -> int:
    return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_n_cores(), thread_name_prefix="xent_ref")


if hasattr(os, "register_at_fork"):
    # A forked child has none of the parent's threads: it must start its own pool.
    os.register_at_fork(after_in_child=_pool.cache_clear)


def row_blocks(n_rows: int, row_size: int, block_elements: int = ELEMENTWISE_BLOCK):
    """Slices that cut ``n_rows`` rows of ``row_size`` elements into blocks of about
    ``block_elements`` elements (at least one row each).

    The losses work through the batch a block at a time so that their temporaries
    are the size of a block, not of the whole input: at an LLM's vocabulary size
    (4096 x 32000 float32 logits, 0.5 GB) a full-size temporary doubles the memory.
    """
    step = max(1, block_elements // max(1, row_size))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def class_blocks(n_rows: int, n_classes: int, n_positions: int,
                 block_elements: int = CLASS_BLOCK, block_samples: int = SAMPLE_BLOCK):
    """``(rows, positions)`` slice pairs that cut an ``(N, C, S)`` array into blocks of at
    most about ``block_elements`` elements and ``block_samples`` samples (an ``(n, s)``
    block has ``n * s`` samples), never splitting the class axis.

    Whole samples are grouped while they are small (classification, ``S = 1``); a
    large sample (an image, ``S = H * W``) is cut along its positions instead.
    """
    samples = max(1, min(block_elements // max(1, n_classes), block_samples))
    if n_positions <= samples:
        for rows in row_blocks(n_rows, n_positions, samples):
            yield rows, slice(None)
        return
    for row in range(n_rows):
        for start in range(0, n_positions, samples):
            yield slice(row, row + 1), slice(start, min(start + samples, n_positions))


def along_axis(shape: tuple, index: np.ndarray, axis: int) -> tuple:
    """The index that picks ``index``'s entries along ``axis`` of an array of ``shape``:
    ``a[along_axis(a.shape, j, axis)]`` is ``np.take_along_axis(a, j, axis)``, and
    assigning to it is ``np.put_along_axis``.

    The same fancy index NumPy's two functions build (one ``arange`` per other axis), made
    without their checks: the losses pick a few entries per row (the target, the top
    class) several times a call, and a small call's time went mostly to those checks.
    An axis of size 1 is indexed by the scalar 0, which broadcasts the same way.
    """
    ndim = len(shape)
    fancy = []
    for dim, size in enumerate(shape):
        if dim == axis:
            fancy.append(index)
        elif size == 1:
            fancy.append(0)
        else:
            fancy.append(np.arange(size).reshape([-1 if d == dim else 1 for d in range(ndim)]))
    return tuple(fancy)



class Picks:
    """Fast reads and writes of the entries of one array ``a`` that indexes along
    ``axis`` pick: ``picks.view[picks.at(index)]`` is ``a[along_axis(a.shape, index, axis)]``.

    ``view`` is a one-dimensional view of the memory ``a`` spans and ``at(index)`` the
    picked entries' offsets in it. One array indexed by one integer array is NumPy's
    fast path: about three times faster to read than :func:`along_axis`'s index of one
    array per axis, twice to write, and the losses pick a target and a top class in
    every row of every block (in an image's ``(1, C, S)`` block, at every pixel). The
    offsets of the other axes are made once per array, so each index costs one or two
    small operations. An array that cannot be laid flat this way (a negative or
    unaligned stride) is indexed by :func:`along_axis`: the same entries.
    """

    def __init__(self, a: np.ndarray, axis: int):
        self.array, self.shape, self.axis = a, a.shape, axis
        steps = [stride // a.itemsize for stride in a.strides]
        self.base = None
        self.view = a
        if a.size == 0 or any(stride < 0 or stride % a.itemsize for stride in a.strides):
            return
        self.step, self.base = steps[axis], 0
        for dim, size in enumerate(a.shape):
            if dim != axis and size > 1:
                self.base = self.base + (np.arange(size) * steps[dim]).reshape(
                    [-1 if d == dim else 1 for d in range(a.ndim)])
        span = 1 + sum((size - 1) * step for size, step in zip(a.shape, steps))
        self.view = as_strided(a, shape=(span,), strides=(a.itemsize,))

    def at(self, index: np.ndarray):
        """The index into :attr:`view` of ``index``'s entries along the axis."""
        if self.base is None:
            return along_axis(self.shape, index, self.axis)
        at = index * self.step
        if at.shape == self.shape[:self.axis] + (1,) + self.shape[self.axis + 1:]:
            at += self.base  # (in place: an image's block has an index per pixel)
            return at
        return at + self.base
