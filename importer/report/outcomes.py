"""Text columns of the row table changed for many rows at once, in Arrow: a million rows' cells never become
Python strings, and the column is copied once. A row's `warnings` cell gathers every note about it, joined by
"; "; an outcome's values replace a row's own where it has them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_SEPARATOR = pa.scalar("; ", pa.large_string())


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def given_else_own(column: pd.Series, given: pa.Array | pa.ChunkedArray) -> pd.Series:
    """`column` with each row's value from `given` (one per row) where that has one; a null keeps the row's own."""
    own = pa.array(column).cast(pa.large_string())
    return pd.Series(pc.coalesce(given.cast(pa.large_string()), own), index=column.index, dtype="str")


def append_notes(warnings: pd.Series, rows: np.ndarray, notes: pa.Array | pa.ChunkedArray) -> pd.Series:
    """`warnings` with `notes` (one per row of the mask `rows`, in order) appended to those rows' cells.

    Done in Arrow on the rows concerned, then placed in one copy of the column: a masked assignment into a
    pandas column of a million rows copies it several times over, and Python strings would cost more."""
    mine = _one_array(pa.array(warnings)).cast(pa.large_string())
    picked = pa.array(rows)
    current = mine.filter(picked)
    notes = _one_array(notes).cast(pa.large_string())
    joined = pc.if_else(pc.equal(current, ""), notes, pc.binary_join_element_wise(current, notes, _SEPARATOR))
    return pd.Series(pc.replace_with_mask(mine, picked, joined), index=warnings.index, dtype="str")
