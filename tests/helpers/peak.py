"""The peak memory of one call, as the memory tests measure it (tracemalloc: NumPy
reports its buffers to it)."""

from __future__ import annotations

import tracemalloc


def peak_bytes(call) -> int:
    """The peak bytes traced while ``call()`` runs, after one unmeasured call (so that the
    worker threads and their pool exist before measuring)."""
    call()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
