"""Reports: results.csv (one line per input row), errors.csv (re-importable), summary.json, payloads.

Every file is created readable by its owner only (reports carry customer PII) and written under a
temporary name first, so a report that exists is a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from importer.reader import FORMULA_TRIGGERS, REPORT_COLUMNS, InputFile, read_chunks

RESULT_COLUMNS = ("source_row", "status", "customer_key", "customer_uuid", "customer_id", "error_code",
                  "error_message", "warnings")
#: Statuses whose rows go to errors.csv, to be fixed and imported again.
ERROR_STATUSES = ("invalid", "failed")
_DEFUSE = "^([" + FORMULA_TRIGGERS.replace("-", r"\-") + "])"


def make_private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _private_path(path: Path) -> Iterator[int]:
    """A descriptor for a file only its owner can read, renamed into place once completely written."""
    temporary = path.with_name(f".{path.name}.partial")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        yield descriptor
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def private_file(path: Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A private text file (see _private_path)."""
    with _private_path(path) as descriptor, open(descriptor, "w", encoding=encoding, newline="") as stream:
        yield stream


@contextlib.contextmanager
def private_binary_file(path: Path) -> Iterator[IO[bytes]]:
    """A private binary file (see _private_path): for writers that want a stream, such as a workbook's."""
    with _private_path(path) as descriptor, open(descriptor, "wb") as stream:
        yield stream


def defuse_formulas(values: pd.Series) -> pd.Series:
    """Prefix a quote to cells a spreadsheet would evaluate (=, +, -, @, tab, CR, and a leading quote).

    The reader strips exactly that quote when it re-imports the error report, so values survive intact.
    """
    return values.str.replace(_DEFUSE, r"'\1", regex=True)


def write_results(path: Path, table: pd.DataFrame) -> None:
    """`table`: indexed by source row, with the other RESULT_COLUMNS."""
    frame = table.reset_index(names="source_row")[list(RESULT_COLUMNS)]
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    # pyarrow's writer: several times faster than DataFrame.to_csv on a million rows.
    with _private_path(path) as descriptor, open(descriptor, "wb") as stream:
        pa_csv.write_csv(arrow, stream)


def _raw_chunks(source: InputFile, rows: pd.Index, known: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """The original cells of `rows`: from `known` when it has them all, else from a pass over the file."""
    if rows.isin(known.index).all():
        yield known.loc[rows]
        return
    for chunk in read_chunks(source):
        yield chunk.loc[chunk.index.intersection(rows)]


def write_errors(path: Path, source: InputFile, table: pd.DataFrame, known_raw: pd.DataFrame) -> int:
    """The input rows whose status is invalid or failed, original columns first, then why. Row count.

    `known_raw` holds original cells already at hand (the invalid rows); the file is read again only for
    rows it lacks (those the API refused).
    """
    wanted = table[table["status"].isin(ERROR_STATUSES)]
    written = 0
    with private_file(path, encoding="utf-8-sig") as stream:
        pd.DataFrame(columns=[*source.header, *REPORT_COLUMNS]).to_csv(stream, index=False, lineterminator="\r\n")
        if wanted.empty:
            return 0
        for raw in _raw_chunks(source, wanted.index, known_raw):
            if raw.empty:
                continue
            why = wanted.loc[raw.index, ["status", "error_code", "error_message", "warnings"]]
            out = raw.astype("str")
            out["mk_source_row"] = raw.index.astype(str)
            for column in ("status", "error_code", "error_message", "warnings"):
                out[f"mk_{column}"] = why[column].astype("str")
            out = out.apply(defuse_formulas)
            out.to_csv(stream, index=False, header=False, lineterminator="\r\n")
            written += len(out)
    return written


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    with private_file(path) as stream:
        json.dump(summary, stream, indent=2, sort_keys=False)
        stream.write("\n")


def write_payloads(path: Path, bodies: Iterable[str]) -> int:
    """The exact JSON bodies, one per line; the count written."""
    count = 0
    with private_file(path) as stream:
        for body in bodies:
            stream.write(body)
            stream.write("\n")
            count += 1
    return count
