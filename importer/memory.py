"""Memory handed back between a run's phases: a million rows are read, sent and reported in turn, and each
phase frees most of what it needed; the next should find it returned to the system, not still mapped."""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

#: mallopt's parameter for the size from which malloc maps memory of its own (glibc's M_MMAP_THRESHOLD).
_M_MMAP_THRESHOLD = -3
#: Allocations from 1 MiB up get their own mapping, handed back to the system the moment they are freed.
_OWN_MAPPING_FROM = 1 << 20


def use_system_allocator() -> None:
    """Take pyarrow's buffers from the C library's malloc instead of its bundled allocator (mimalloc or
    jemalloc), from now on. A run reads a million rows in chunks and frees most of what each chunk
    needed: the bundled allocators keep much of that mapped, while malloc gives it back to the system
    when release_memory() trims it. Buffers allocated before the switch are freed by their own pool."""
    pa.set_memory_pool(pa.system_memory_pool())
    _map_large_blocks()


def _map_large_blocks() -> None:
    """Fix glibc's threshold for mapped allocations at 1 MiB. Left to itself glibc raises it (up to 32 MiB)
    each time a mapped block is freed, so the large blocks of one chunk after another (pyarrow's buffers,
    numpy's arrays) come from the heap, which gives back only what is free at its top: reading a 150 MB
    errors.csv in 8 MB blocks then held 360 MB at its peak with 34 MB in use, and 209 MB with the threshold
    fixed. Without glibc (another C library) this does nothing."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(_M_MMAP_THRESHOLD, _OWN_MAPPING_FROM)
    except OSError:  # no C library to load: nothing to tune
        return


def release_memory() -> None:
    """Hand back to the system what has been freed (after a phase that allocated much and kept little):
    pyarrow's pool releases its unused memory, which for the system pool trims malloc's heap where the
    C library can (glibc), so Python's and numpy's freed memory goes back too."""
    pa.default_memory_pool().release_unused()
