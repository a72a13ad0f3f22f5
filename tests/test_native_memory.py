"""`release_freed_memory` hands free heap pages back to the system: memory freed between live blocks stays resident
until it is called (the server's growth per request), and leaves after."""

from pathlib import Path

import pytest

from discrete_diff.app.native_memory import _malloc_trim, release_freed_memory

BLOCKS, BLOCK_BYTES = 50_000, 2_000  # 100 MB in blocks far below glibc's mmap threshold: they come from the heap


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(_malloc_trim() is None or not Path("/proc/self/status").exists(), reason="needs glibc on Linux")
def test_heap_memory_freed_between_live_blocks_is_returned_only_when_released():
    release_freed_memory()
    start = resident_mib()
    blocks = [bytes(BLOCK_BYTES) for _ in range(BLOCKS)]
    filled = resident_mib()
    survivors = blocks[::16]  # one live block in 16: the free space lies between live blocks, as after a request
    del blocks
    kept = resident_mib()
    assert filled - start > 80
    assert kept - start > 80, "glibc gave the freed blocks back by itself: the situation the server is in is not made"
    assert release_freed_memory()
    released = resident_mib()
    assert released - start < 30, f"resident {start:.0f} -> {kept:.0f} MiB after the free, {released:.0f} after release"
    assert len(survivors) == BLOCKS // 16
