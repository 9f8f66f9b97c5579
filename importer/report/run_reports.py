"""A run's reports read back from its folder, for the page: summary.json, results.csv, the rows to fix in
errors.csv, timeline.csv, changes.json and the department's recent runs."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from importer.errors import InputError
from importer.prepare.mapping import MappingSpec
from importer.read.formulas import undefuse_text
from importer.read.reader import TEXT_DTYPE, header_key
from importer.report.files import RESULT_COLUMNS, read_changes, read_timeline
from importer.report.trend import recent
from importer.send.timeline import Second


@dataclass
class RunReports:
    """What the page is drawn from."""

    summary: dict[str, Any]
    #: one line per input row, indexed by source row: status, error_code, error_message, warnings
    results: pd.DataFrame
    #: errors.csv's original header
    header: list[str]
    #: the original cells of the rows to fix in the columns the page shows, indexed by source row, as errors.csv
    #: has them (a formula-like value with its quote: read/formulas.undefuse gives the file's own)
    originals: pd.DataFrame
    timeline: list[Second]
    #: changes.json's examples: per category, customers with old → new values
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: the department's recent runs, oldest first (trend.recent)
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: per row to fix, how many runs reported its problem (errors.csv's mk_times_seen)
    times_seen: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    #: whether the folder has an errors.csv: its rows are the rows to fix (a folder without one, from an
    #: older version, has its invalid and failed rows taken instead)
    listed: bool = True


def read_results(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{path.parent}: no results.csv: not a report folder of mk-import")
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        column_types=dict.fromkeys(RESULT_COLUMNS, pa.string()), strings_can_be_null=False,
        quoted_strings_can_be_null=False)).to_pandas()
    table["source_row"] = table["source_row"].astype("int64")
    indexed: pd.DataFrame = table.set_index("source_row")
    return indexed


def read_originals(path: Path, mapping: MappingSpec | None = None) -> tuple[list[str], pd.DataFrame, pd.Series]:
    """errors.csv's original header (as the file had it); its rows' cells in the columns the page shows,
    indexed by source row; and each row's mk_times_seen (1 where an older errors.csv has none). Empty
    without one.

    Only the shown columns are read, by pyarrow into Arrow-backed text: a migration's errors.csv holds
    hundreds of thousands of rows, and the whole file as Python strings cost the page 400 MB."""
    none: tuple[list[str], pd.DataFrame, pd.Series] = ([], pd.DataFrame(index=pd.Index([], dtype="int64")),
                                                       pd.Series(dtype="int64"))
    if not path.exists():
        return none
    with path.open(encoding="utf-8-sig", newline="") as stream:
        names = next(csv.reader(stream), [])
    if "mk_source_row" not in names:
        return none
    header = [undefuse_text(c) for c in names if not c.startswith("mk_")]
    as_written = {undefuse_text(c): c for c in names}
    columns = shown_columns(header, mapping)
    extra = [c for c in ("mk_source_row", "mk_times_seen") if c in names]
    # A block at a time: read whole, the file's text (150 MB for a messy million) would be held at once.
    with pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=8 << 20, use_threads=False),
                         convert_options=pa_csv.ConvertOptions(
                             include_columns=[as_written[c] for c in columns] + extra,
                             column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                             quoted_strings_can_be_null=False)) as reader:
        table = reader.read_all()
    frame = table.to_pandas(types_mapper=lambda t: TEXT_DTYPE if pa.types.is_string(t) else None)
    del table
    frame.index = pd.Index(frame.pop("mk_source_row").astype("int64"), name="source_row")
    times_text = frame.pop("mk_times_seen") if "mk_times_seen" in frame else None
    times = (pd.to_numeric(times_text, errors="coerce").fillna(1).astype("int64")
             if times_text is not None else pd.Series(1, index=frame.index, dtype="int64"))
    frame.columns = pd.Index(columns)
    return header, frame, times[~times.index.duplicated()]


def read_reports(out: Path, results: pd.DataFrame | None = None, mapping: MappingSpec | None = None) -> RunReports:
    """A run's reports from its folder (`results` when the caller already holds them; `mapping` chooses
    the columns the page shows)."""
    summary_path = out / "summary.json"
    if not summary_path.exists():
        raise InputError(f"{out}: no summary.json: not a report folder of mk-import")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{summary_path}: not readable as JSON ({exc})") from None
    if results is None:
        results = read_results(out / "results.csv")
    errors = out / "errors.csv"
    header, originals, times_seen = read_originals(errors, mapping)
    runs = recent(Path(summary["state"]), summary.get("reports")) if summary.get("state") else []
    return RunReports(summary, results, header, originals, read_timeline(out / "timeline.csv"),
                      read_changes(out / "changes.json"), runs, times_seen, listed=errors.exists())


def shown_columns(header: Sequence[str], mapping: MappingSpec | None) -> list[str]:
    """The mapped columns in the file's order (every column, without the mapping)."""
    if mapping is None:
        return list(header)
    mapped = {header_key(c) for c in mapping.source_columns()}
    shown = [c for c in header if header_key(c) in mapped]
    return shown or list(header)
