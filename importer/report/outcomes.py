"""Each input row's outcome: collected as answers arrive (`RowOutcomes`), then put on the row table for the
reports (`with_outcomes`).

Text columns of the row table are changed for many rows at once, in Arrow: a million rows' cells never become
Python strings, and the column is copied once. A row's `warnings` cell gathers every note about it, joined by
"; "; an outcome's values replace a row's own where it has them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.error_codes import ErrorCode, explain
from importer.prepare.stage import ProblemTally
from importer.send.pool import Outcome
from importer.status import Status

_SEPARATOR = pa.scalar("; ", pa.large_string())
#: The problem tally's column for the rows the API refused or never answered, by error code.
API_COLUMN = "(API)"


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


class RowOutcomes:
    """The outcome of each input row, written as its customer's answer arrives: per row, the number of its
    outcome; per outcome (one per customer), its texts in Arrow string columns, filled a block at a time.
    A million rows cost 4 MB of numbers and each customer about the length of its texts, where Python
    strings in per-row slots cost ~50 MB of slots and ~145 bytes a customer."""

    COLUMNS = ("status", "customer_uuid", "customer_id", "error_code", "error_message", "changes")
    #: outcomes held as Python tuples before they are packed into Arrow columns
    BLOCK = 50_000

    def __init__(self, index: pd.Index) -> None:
        self._first = int(index[0]) if len(index) else 0
        if not index.equals(pd.RangeIndex(self._first, self._first + len(index))):
            raise ValueError("row outcomes need the consecutive row numbers the reader gives")
        #: each row's outcome, as its place among the outcomes; -1 for none yet
        self._outcome_of = np.full(len(index), -1, dtype=np.int32)
        #: COLUMNS and then the API's warnings (null for none), one list of blocks each
        self._blocks: list[list[pa.Array]] = [[] for _ in range(len(self.COLUMNS) + 1)]
        self._unpacked: list[tuple[str | None, ...]] = []
        self._count = 0

    def set(self, rows: tuple[int, ...], outcome: Outcome, changes: str = "") -> None:
        """`changes`: what the customer's save changed (changes.words), empty when nothing was saved."""
        api_warnings = "API: " + ", ".join(outcome.warnings) if outcome.warnings else None
        self._unpacked.append((outcome.status.value, outcome.customer_uuid or "", outcome.customer_id or "",
                               outcome.error_code or "", outcome.detail, changes, api_warnings))
        for row in rows:
            self._outcome_of[row - self._first] = self._count
        self._count += 1
        if len(self._unpacked) >= self.BLOCK:
            self._pack()

    def _pack(self) -> None:
        if self._unpacked:
            for blocks, values in zip(self._blocks, zip(*self._unpacked, strict=True), strict=True):
                blocks.append(pa.array(values, pa.string()))  # 32-bit offsets: half the cost of pandas' 64
            self._unpacked = []

    @staticmethod
    def _taken(blocks: list[pa.Array], picks: pa.Array) -> pa.Array:
        """Each row's text of one column (null for a row without an outcome), with 64-bit offsets as pandas has
        them. The blocks are joined first: pyarrow's take over many chunks joins them anyway, at every call."""
        return pa.chunked_array(blocks, pa.string()).combine_chunks().take(picks).cast(pa.large_string())

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` (indexed like the rows given) with the outcome of every row that has one."""
        answered = self._outcome_of >= 0
        if not answered.any():
            return table
        self._pack()
        # Arrow all the way: a row's texts are taken from its outcome's without a Python string per row, a
        # column at a time so that the copies of one column are gone before the next is made.
        picks = pa.array(self._outcome_of, mask=~answered)
        columns = {name: given_else_own(table[name], self._taken(blocks, picks)) if name in table
                   # A column the rows do not have yet (`changes`): the outcomes' texts, "" for the others,
                   # without first making a column of a million empty texts to fill.
                   else pd.Series(self._taken(blocks, picks).fill_null(""), index=table.index, dtype="str")
                   for name, blocks in zip(self.COLUMNS, self._blocks[:-1], strict=True)}
        api = self._taken(self._blocks[-1], picks)
        if api.null_count < len(api):
            warned = api.is_valid()
            columns["warnings"] = append_notes(table["warnings"], warned.to_numpy(zero_copy_only=False),
                                               api.filter(warned))
        return table.assign(**columns)


def with_outcomes(table: pd.DataFrame, outcomes: RowOutcomes, unchanged: pd.DataFrame,
                  stop_reason: str | None, held: pd.Index | None = None, limit: int | None = None) -> pd.DataFrame:
    """The row table with every request's outcome on each of its rows, the customers the plan left unchanged
    (`unchanged`: key, customer_uuid, customer_id) on theirs, the rows of the customers a pilot held back
    (`held` keys, beyond `--limit`) not attempted with BEYOND_LIMIT, and the rows the run never reached not
    attempted, for `stop_reason`."""
    if not unchanged.empty:
        same = unchanged.set_index("key")
        where = same.index.get_indexer(pd.Index(table["customer_key"]))
        hit = (where >= 0) & (table["status"] == Status.VALID.value).to_numpy()
        picks = pa.array(where, mask=~hit)  # in Arrow: a million rows' uuids are no Python strings
        table = table.assign(status=table["status"].mask(hit, Status.UNCHANGED.value), **{
            name: given_else_own(table[name], pa.array(same[name]).take(picks))
            for name in ("customer_uuid", "customer_id")})
    table = outcomes.apply(table)
    if held is not None and len(held):
        mine = (pc.is_in(pa.array(table["customer_key"]).cast(pa.large_string()),
                         value_set=pa.array(held, pa.large_string())).to_numpy(zero_copy_only=False)
                & (table["status"] == Status.VALID.value).to_numpy())
        table = table.assign(
            status=table["status"].mask(mine, Status.NOT_ATTEMPTED.value),
            error_code=table["error_code"].mask(mine, ErrorCode.BEYOND_LIMIT.value),
            error_message=table["error_message"].mask(
                mine, f"beyond --limit {limit}: a pilot of the file's first {limit} customers; the next run "
                      "without --limit sends it"))
    # Rows of customers never reached (the run stopped before building their request).
    left = (table["status"] == Status.VALID.value).to_numpy()
    if left.any():
        table = table.assign(status=table["status"].mask(left, Status.NOT_ATTEMPTED.value),
                             error_message=table["error_message"].mask(left, stop_reason or ""))
    return table


def tally_failures(problems: ProblemTally, table: pd.DataFrame) -> None:
    """Rows the API refused or never answered, by error code, beside the data's own problems."""
    failed = table[table["status"] == Status.FAILED.value]
    for code, rows in failed.groupby("error_code", sort=False):
        problems.add(API_COLUMN, f"{code}: {explain(str(code)).meaning}", rows.index.to_numpy())
