"""Memory handed back between a run's phases: a million rows are read, sent and reported in turn, and each
phase frees most of what it needed; the next should find it returned to the system, not still mapped."""

from __future__ import annotations

import ctypes
import ctypes.util
import tempfile
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as pa_ipc

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


class ParkedFrame:
    """A frame kept in a private temporary file while a long phase runs, and read back after it: a run's row
    table (a status, a reason and the warnings of each input row, 127 MB for a messy million) is needed again
    only for the reports, and held through the plan and the sending it was most of what took a rerun's peak
    over 800 MB. Each column is written as an Arrow stream of its own and read back into a buffer of its own,
    text as it is held (no copy out), in the dtype it left with: columns read back from one stream would share
    its batches' buffers, and a column the reports drop would free nothing."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._columns, self._dtypes = frame.columns, list(frame.dtypes)
        self._index_name, self._index_dtype = frame.index.name, frame.index.dtype
        # Created owner-only and unlinked at once: nothing of it outlives the process, even a killed one.
        self._file = tempfile.TemporaryFile(prefix="mk-import-")  # noqa: SIM115 (closed by back())
        #: where each column's stream ends in the file (the index first)
        self._ends: list[int] = []
        for values in (frame.index, *(frame.iloc[:, i] for i in range(frame.shape[1]))):
            column = pa.table([pa.array(values)], names=["values"])
            with pa_ipc.new_stream(pa.PythonFile(self._file, mode="w"), column.schema) as writer:
                writer.write_table(column, max_chunksize=_PARKED_ROWS_AT_A_TIME)
            self._ends.append(self._file.tell())

    def back(self) -> pd.DataFrame:
        """The frame as it was parked (once: the file goes)."""
        with self._file:
            self._file.seek(0)
            start, columns = 0, []
            for end in self._ends:
                stream = pa.py_buffer(self._file.read(end - start))
                columns.append(pa_ipc.open_stream(stream).read_all().column(0))
                start = end
        index = pd.Index(_column(columns[0], self._index_dtype), name=self._index_name)
        frame = pd.DataFrame({i: _column(values, dtype) for i, (values, dtype) in enumerate(
            zip(columns[1:], self._dtypes, strict=True))}, index=index)
        frame.columns = self._columns
        return frame


#: Rows written to the file per record batch.
_PARKED_ROWS_AT_A_TIME = 100_000


def _column(values: pa.ChunkedArray, dtype: Any) -> Any:
    """A column read back in its dtype: pyarrow-backed text as it was read (no copy), numbers as numpy."""
    if hasattr(dtype, "__from_arrow__"):
        return dtype.__from_arrow__(values)
    return values.to_numpy().astype(dtype, copy=False)
