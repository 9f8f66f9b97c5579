"""Memory handed back between a run's phases: a million rows are read, sent and reported in turn, and each
phase frees most of what it needed; the next should find it returned to the system, not still mapped."""

from __future__ import annotations

import pyarrow as pa


def use_system_allocator() -> None:
    """Take pyarrow's buffers from the C library's malloc instead of its bundled allocator (mimalloc or
    jemalloc), from now on. A run reads a million rows in chunks and frees most of what each chunk
    needed: the bundled allocators keep much of that mapped, while malloc gives it back to the system
    when release_memory() trims it. Buffers allocated before the switch are freed by their own pool."""
    pa.set_memory_pool(pa.system_memory_pool())


def release_memory() -> None:
    """Hand back to the system what has been freed (after a phase that allocated much and kept little):
    pyarrow's pool releases its unused memory, which for the system pool trims malloc's heap where the
    C library can (glibc), so Python's and numpy's freed memory goes back too."""
    pa.default_memory_pool().release_unused()
