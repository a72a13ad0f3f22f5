"""Give the memory that the C allocator keeps after a request back to the system (glibc's `malloc_trim`).

Why the server needs it: a generation allocates and frees tens of MiB (tensors, the live view's frames, the
trajectory picture) from Gradio's worker threads. glibc keeps what they free in per-thread arenas for reuse, and
once large blocks have been freed it raises its mmap threshold, so that later large blocks come from those arenas as
well; the free space is scattered between live blocks, so the heap's top is seldom free and nothing is returned.
Measured with tracemalloc during a load (benchmarks/serve_load.py --trace-memory), the Python objects still alive
grew by a few MiB while the server's resident memory grew by tens: the rest was free memory held by the allocator.
`malloc_trim(0)` hands every free page of every arena back (madvise), so resident memory follows what is live.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None under a C library without it (musl, macOS, Windows)."""
    try:
        library = ctypes.CDLL(None)
    except OSError:  # Windows: no handle to the program's own symbols
        return None
    trim = getattr(library, "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the system; True if it had any to return (glibc), False where it had
    none or the C library offers no way to ask (then nothing is done). Safe while other threads allocate."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
