"""Reports: results.csv (one line per input row), errors.csv (re-importable), summary.json, payloads.

Every file is created readable by its owner only (reports carry customer PII) and written under a
temporary name first, so a report that exists is a finished one.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import astuple
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from importer.error_codes import RETRIED_NEXT_RUN, ErrorCode
from importer.prepare.by_value import non_empty, text_of
from importer.read.formulas import defuse, defuse_text
from importer.read.reader import (
    EXPORT_KEY_COLUMN,
    KEY_QUOTE,
    ORIGINAL_ROW_COLUMN,
    RAW_LINE_COLUMN,
    REPORT_COLUMNS,
    SEEN_COLUMNS,
    InputFile,
    read_chunks,
)
from importer.report.folders import private_binary_file, private_file
from importer.report.known_problems import KnownProblems, subjects
from importer.report.workbook import Beside
from importer.send.timeline import COLUMNS as TIMELINE_COLUMNS
from importer.send.timeline import Second

#: errors.csv's columns after the input's own, before mk_raw_line.
ERRORS_REPORT_COLUMNS = (REPORT_COLUMNS[0], EXPORT_KEY_COLUMN, ORIGINAL_ROW_COLUMN, *REPORT_COLUMNS[1:], *SEEN_COLUMNS)
RESULT_COLUMNS = ("source_row", "status", "customer_key", "customer_uuid", "customer_id", "error_code",
                  "error_message", "warnings", "original_row", "changes")
#: Statuses whose rows go to errors.csv, to be fixed and imported again.
ERROR_STATUSES = ("invalid", "failed")
#: Statuses of rows that were (or would be) saved: such a row is to fix only if a value was dropped (or its
#: key names two people).
SAVED_STATUSES = ("success", "unchanged", "valid")
#: Marks an API failure that no change to the data can fix.
RETRIED_NEXT_RUN_NOTE = "nothing to fix: retried next run"


def error_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows to fix, with what errors.csv says about each: status, error_code, error_message, warnings.

    Besides the invalid and failed rows: rows saved (or to be sent) without a value a normalizer dropped
    for a reason the data can fix, marked SAVED_WITHOUT_FIELD, and rows of a key naming two people, marked
    TWO_PEOPLE_ONE_KEY: correcting the cell and importing the row again completes the customer. API failures
    that no data change can fix say so first.
    """
    picked, incomplete, mixed, dropped, two_people = _to_fix(table)
    # Only the columns said, taken and changed in Arrow, a column at a time: a copy of every column of a messy
    # million's rows to fix cost 240 MB, changing a frame's cells in place 180 MB, and pandas' string methods
    # (numpy's text, Python's) 300 MB; write_errors asks for a slice of rows at a time besides.
    where = pa.array(picked)
    status, code, message, warnings = (_texts(table, name).filter(where).combine_chunks()
                                       for name in ("status", "error_code", "error_message", "warnings"))
    saved_without = incomplete[picked]
    if saved_without.any():
        these = pa.array(saved_without)
        verbs = pc.if_else(pc.equal(status.filter(these), "valid"), _text("would be sent without "),
                           _text("saved without "))
        code = pc.if_else(these, _text(ErrorCode.SAVED_WITHOUT_FIELD.value), code)
        message = pc.replace_with_mask(message, these, _joined(
            verbs, dropped.filter(where).filter(these),
            ": correct it and import this row again to complete the customer"))
    named = mixed[picked]
    if named.any():
        these = pa.array(named)
        note = _joined("one customer key, two people: ", two_people.filter(where).filter(these),
                       ": give each person their own key (or correct the name) and import this row again")
        # A row also saved without a field says both; a row saved whole only this.
        also = pa.array(saved_without[named])
        message = pc.replace_with_mask(message, these, pc.if_else(
            also, _joined(message.filter(these), "; ", note), note))
        code = pc.if_else(pa.array(named & ~saved_without), _text(ErrorCode.TWO_PEOPLE_ONE_KEY.value), code)
    retried = pc.and_(pc.equal(status, "failed"), pc.is_in(code, pa.array([c.value for c in RETRIED_NEXT_RUN])))
    if pc.any(retried).as_py():
        message = pc.replace_with_mask(message, retried,
                                       _joined(RETRIED_NEXT_RUN_NOTE + " (", message.filter(retried), ")"))
    index = table.index[picked]
    return pd.DataFrame({name: text_of(values, index) for name, values in (
        ("status", status), ("error_code", code), ("error_message", message), ("warnings", warnings))})


def rows_to_fix(table: pd.DataFrame) -> pd.Index:
    """The rows error_rows describes, without describing them."""
    return table.index[_to_fix(table)[0]]


def _to_fix(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.ChunkedArray, pa.ChunkedArray]:
    """(rows to fix, rows saved without a field, rows of a key naming two people, the fields dropped, the
    people named) of the table's rows."""
    saved = table["status"].isin(SAVED_STATUSES).to_numpy()
    dropped, two_people = (_texts(table, name) for name in ("dropped", "two_people"))
    incomplete = saved & non_empty(dropped)
    mixed = saved & non_empty(two_people)
    return table["status"].isin(ERROR_STATUSES).to_numpy() | incomplete | mixed, incomplete, mixed, dropped, two_people


def _texts(table: pd.DataFrame, name: str) -> pa.ChunkedArray:
    """A text column of the table as Arrow (its own buffers), empty where the table has no such column."""
    values = table[name] if name in table else pd.Series("", index=table.index, dtype="str")
    found = pa.array(values, pa.large_string(), from_pandas=True)
    return found if isinstance(found, pa.ChunkedArray) else pa.chunked_array([found], pa.large_string())


def _text(value: str) -> pa.Scalar:
    """A text as the columns hold theirs (Arrow's kernels take no mix of text types)."""
    return pa.scalar(value, pa.large_string())


def _joined(*parts: str | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Texts and columns joined value by value (a missing value makes a missing result)."""
    joined = pc.binary_join_element_wise(*(_text(p) if isinstance(p, str) else p for p in parts), _text(""))
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


#: The columns error_rows reads.
_REASON_SOURCES = ("status", "error_code", "error_message", "warnings", "dropped", "two_people")
#: The columns export_keys reads (a row's every column, taken for 20,000 rows at a time, cost 1.4 s of a messy
#: million's errors.csv).
_EXPORT_KEY_SOURCES = ("customer_key", "error_code", "legacy_key")


def export_keys(table: pd.DataFrame) -> pd.Series:
    """Each row's customer key as the export had it (errors.csv's mk_customer_key), "" where the row has none:
    where the key was derived from the row's identity (such a row has a legacy key) or could not be read."""
    keys = table["customer_key"].astype("str")
    own = table["error_code"].astype("str") != ErrorCode.KEY_UNREADABLE.value
    if "legacy_key" in table:
        own &= table["legacy_key"].astype("str") == ""
    return keys.where(own, "")


def write_results(path: Path, table: pd.DataFrame) -> None:
    """`table`: indexed by source row, with the other RESULT_COLUMNS (`changes` may be missing: none)."""
    columns = [c for c in RESULT_COLUMNS if c != "source_row"]
    with private_binary_file(path) as stream:
        # A slice of rows at a time: the defused text of every cell of a million rows, beside the table, took
        # 200 MB at once.
        for start in range(0, max(len(table), 1), _RESULT_ROWS_AT_A_TIME):
            part = table.iloc[start:start + _RESULT_ROWS_AT_A_TIME]
            if "changes" not in part:
                part = part.assign(changes="")
            frame = part[columns].reset_index(names="source_row")[list(RESULT_COLUMNS)]
            # Every cell of every CSV written here is defused (read/formulas.py), header cells included; the
            # reader strips exactly that quote when an error report is imported again.
            frame = frame.astype("str").apply(defuse)
            # pyarrow's writer: several times faster than DataFrame.to_csv on a million rows.
            pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), stream,
                             pa_csv.WriteOptions(include_header=start == 0))


#: Rows of results.csv formatted at a time.
_RESULT_ROWS_AT_A_TIME = 100_000


def _raw_chunks(source: InputFile, rows: pd.Index, known: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """The original cells of `rows`, in row order: from `known`, and for the rest from the rows kept as
    they were read (`source.kept`), or else from a pass over the file."""
    at_hand = rows.isin(known.index)
    if at_hand.all():
        yield known.loc[rows]
        return
    known = known.loc[rows[at_hand]].sort_index()
    rest = rows[~at_hand]
    kept = source.kept.rows(rest, source.header) if source.kept is not None else (
        chunk.loc[chunk.index.intersection(rest)] for chunk in read_chunks(source))
    done = 0  # rows of `known` handed out
    for part in kept:
        if part.empty:
            continue
        upto = int(known.index.searchsorted(part.index.max(), side="right"))
        yield pd.concat([known.iloc[done:upto], part]).sort_index() if upto > done else part
        done = upto
    if done < len(known):
        yield known.iloc[done:]


def write_errors(path: Path, source: InputFile, table: pd.DataFrame, known_raw: pd.DataFrame,
                 known: KnownProblems | None = None, workbook: Beside | None = None) -> int:
    """The input rows to look at (see error_rows), original columns first, then why. Row count.

    `known_raw` holds original cells already at hand (the invalid rows); the others (those the API
    refused, those saved without a field) come from the rows kept as they were read. `known`: the problems
    earlier runs reported, for each row's first seen and times seen (and it learns this run's). `workbook`:
    told of the file and of each slice of rows written, for errors.xlsx to follow it.
    """
    known = known if known is not None else KnownProblems()
    wanted = rows_to_fix(table)
    #: what is read of the table for each slice of rows: error_rows' columns, and the key's, the original row's
    sources = table[list(dict.fromkeys(c for c in (*_REASON_SOURCES, *_EXPORT_KEY_SOURCES, "original_row")
                                       if c in table))]
    written = 0
    with private_binary_file(path) as stream:
        header = [defuse_text(c) for c in (*source.header, *ERRORS_REPORT_COLUMNS, RAW_LINE_COLUMN)]
        stream.write(codecs.BOM_UTF8)  # so that Excel reads the file as UTF-8
        _write_csv_rows(stream, header, pd.DataFrame(columns=header, dtype="str"), with_header=True)
        if wanted.empty:
            return 0
        if workbook is not None:
            workbook.follow(stream, len(wanted))
            workbook.written(stream)
        for raw in _slices(_raw_chunks(source, wanted, known_raw)):
            these = _rows_of(sources, raw.index)
            why = error_rows(these[[c for c in _REASON_SOURCES if c in these]])
            out = raw[list(source.header)].astype("str")
            out["mk_source_row"] = raw.index.astype(str)
            # The row's number in the original export: its own, unless this file is itself an error file.
            original = (these["original_row"].astype("str") if "original_row" in these
                        else pd.Series("", index=raw.index, dtype="str"))
            out[ORIGINAL_ROW_COLUMN] = original.where(original != "", out["mk_source_row"])
            for column in ("status", "error_code", "error_message", "warnings"):
                out[f"mk_{column}"] = why[column].astype("str")
            out["mk_first_seen"], out["mk_times_seen"] = known.mark(
                subjects(these["customer_key"], raw[list(source.header)].astype("str")),
                why["error_code"].astype("str"))
            out[RAW_LINE_COLUMN] = (raw[RAW_LINE_COLUMN].fillna("").astype("str") if RAW_LINE_COLUMN in raw
                                    else pd.Series("", index=raw.index, dtype="str"))
            out = out.apply(defuse)
            # After the defusing: the quote is this column's own, and a cell it starts is never a formula.
            keys = export_keys(these[[c for c in _EXPORT_KEY_SOURCES if c in these]])
            out.insert(len(source.header) + 1, EXPORT_KEY_COLUMN, keys.where(keys == "", KEY_QUOTE + keys))
            _write_csv_rows(stream, header, out)
            written += len(out)
            if workbook is not None:
                workbook.written(stream)
        if workbook is not None:
            workbook.whole()
    return written


#: Rows to fix formatted at a time: hashing a row's cells (known_problems.subjects) makes Python strings of
#: them, 200 MB for the 100,000 rows a read chunk may hold.
_ROWS_AT_A_TIME = 20_000


def _rows_of(frame: pd.DataFrame, rows: pd.Index) -> pd.DataFrame:
    """`frame.loc[rows]` for rows near one another in the frame's order: taken from the stretch of the frame they
    lie in. pyarrow's take from a column joins all its chunks first, each time: 23 ms for 20,000 rows of a
    million-row column read in ten chunks, against half a millisecond from the one or two chunks they are in."""
    at = frame.index.get_indexer(rows)
    if len(at) == 0:
        return frame.iloc[:0]
    if at.min() < 0:
        raise KeyError(f"rows not in the table: {list(rows[at < 0][:5])}")
    start = int(at.min())
    return frame.iloc[start:int(at.max()) + 1].take(at - start)


def _slices(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        for start in range(0, len(chunk), _ROWS_AT_A_TIME):
            yield chunk.iloc[start:start + _ROWS_AT_A_TIME]


def _write_csv_rows(stream: IO[bytes], header: list[str], frame: pd.DataFrame, *, with_header: bool = False) -> None:
    """`frame`'s text cells as CSV lines, by pyarrow's writer: five times faster than DataFrame.to_csv for a
    migration's hundreds of thousands of rows to fix. Columns go by position (an input may repeat a name)."""
    arrow = pa.Table.from_arrays([pa.array(frame.iloc[:, i], type=pa.string(), from_pandas=True)
                                  for i in range(frame.shape[1])], names=header)
    pa_csv.write_csv(arrow, stream, pa_csv.WriteOptions(include_header=with_header))


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    with private_file(path) as stream:
        json.dump(summary, stream, indent=2, sort_keys=False)
        stream.write("\n")


def write_changes(path: Path, examples: dict[str, list[dict[str, Any]]]) -> None:
    """changes.json: per category, up to 20 customers with their old and new values (for the page). Private:
    it holds names, phones, emails and addresses."""
    with private_file(path) as stream:
        json.dump({"examples": examples}, stream, indent=1, ensure_ascii=False)
        stream.write("\n")


def read_changes(path: Path) -> dict[str, list[dict[str, Any]]]:
    """changes.json's examples; none for a run without it (validate, or an older run)."""
    try:
        examples = json.loads(path.read_text(encoding="utf-8")).get("examples", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return examples if isinstance(examples, dict) else {}


def write_payloads(path: Path, bodies: Iterable[str]) -> int:
    """The exact JSON bodies, one per line; the count written."""
    count = 0
    with private_file(path) as stream:
        for body in bodies:
            stream.write(body)
            stream.write("\n")
            count += 1
    return count


def write_timeline(path: Path, seconds: Iterable[Second]) -> None:
    with private_file(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([defuse_text(c) for c in TIMELINE_COLUMNS])
        writer.writerows([defuse_text(str(v)) for v in astuple(s)] for s in seconds)


def read_timeline(path: Path) -> list[Second]:
    """timeline.csv as written by write_timeline; [] when the run has none (validate, or an older run)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as stream:
        return [Second(int(row["second"]), int(row["attempts"]), int(row["successes"]), int(row["rate_limited"]),
                       int(row["retries"]), int(row["errors"]), float(row["latency_p50_ms"]),
                       float(row["latency_p95_ms"]))
                for row in csv.DictReader(stream)]
