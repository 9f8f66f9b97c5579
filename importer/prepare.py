"""The validate half of the pipeline: file → mapped, normalized, checked rows with their customer keys."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from importer.config import PrepareConfig
from importer.errors import ConfigError, InputError
from importer.mapping import MappingSpec, check_header, to_canonical
from importer.normalize import FieldProblem, normalize_frame
from importer.reader import RAW_LINE_COLUMN, BadLine, InputFile, read_chunks
from importer.records import Requests, customer_keys
from importer.schema import ROW_RULES, row_errors
from importer.status import Status


@dataclass
class ProblemTally:
    """How often each (column, problem) occurred, with the first row that showed it."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_row: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, column: str, problem: str, rows: np.ndarray) -> None:
        if len(rows):
            self.counts[(column, problem)] += len(rows)
            self.first_row.setdefault((column, problem), int(rows[0]))

    def most_common(self, n: int = 10) -> list[dict[str, object]]:
        return [{"column": column, "problem": problem, "rows": count, "example_row": self.first_row[(column, problem)]}
                for (column, problem), count in self.counts.most_common(n)]


@dataclass
class Prepared:
    """Every input row accounted for, and what is needed to build the requests."""

    #: one line per input row, indexed by source row: status, customer_key, error_code, error_message, warnings
    rows: pd.DataFrame
    #: normalized canonical columns of the valid rows (only when requests are wanted)
    frame: pd.DataFrame | None
    problems: ProblemTally
    #: the invalid rows as read, for errors.csv without a second pass over the file (with RAW_LINE_COLUMN,
    #: the line as written, for rows that could not be split into columns)
    invalid_raw: pd.DataFrame

    def requests(self, mapping: MappingSpec, validate_vin: bool) -> Requests:
        if self.frame is None:
            raise RuntimeError("prepared without keeping the rows")
        valid = self.rows["status"] == Status.VALID
        return Requests(self.frame, self.rows.loc[valid, "customer_key"], mapping, validate_vin=validate_vin)


def _warning_texts(problems: list[FieldProblem], mapping: MappingSpec, index: pd.Index,
                   tally: ProblemTally) -> pd.Series:
    texts: dict[int, list[str]] = {}
    for problem in problems:
        column = mapping.source_of(problem.field)
        positions = np.flatnonzero(problem.mask.to_numpy())
        tally.add(column, problem.message, index.to_numpy()[positions])
        values = problem.values.to_numpy(dtype=object)
        for position in positions.tolist():
            texts.setdefault(position, []).append(f"{column}: {problem.message}: {values[position]!r}")
    warnings = np.full(len(index), "", dtype=object)
    for position, items in texts.items():
        warnings[position] = "; ".join(items)
    return pd.Series(warnings, index=index, dtype="str")


def _row_table(frame: pd.DataFrame, warnings: pd.Series, mapping: MappingSpec, strict: bool,
               tally: ProblemTally) -> pd.DataFrame:
    codes = row_errors(frame)
    messages = codes.map(ROW_RULES).fillna("").astype("str")
    if mapping.fields.get("lastName"):
        messages = messages.where(codes != "MISSING_LAST_NAME", messages + f" ({mapping.fields['lastName']} is empty)")
    if strict:
        bad_field = (codes == "") & (warnings != "")
        codes = codes.mask(bad_field, "INVALID_FIELD")
        messages = messages.mask(bad_field, warnings)
    for code in codes[codes != ""].unique():
        tally.add("(row)", ROW_RULES.get(code, code), frame.index[(codes == code).to_numpy()].to_numpy())
    status = pd.Series(np.where(codes == "", Status.VALID.value, Status.INVALID.value), index=frame.index,
                       dtype="str")
    return pd.DataFrame({"status": status, "customer_key": customer_keys(frame).where(codes == "", ""),
                         "error_code": codes, "error_message": messages, "warnings": warnings})


def _mark_bad_lines(table: pd.DataFrame, raw: pd.DataFrame, bad: list[BadLine],
                    tally: ProblemTally) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows the reader could not read as the header's columns are invalid, with the line as written."""
    raw = raw.assign(**{RAW_LINE_COLUMN: ""})
    if not bad:
        return table, raw
    table = table.copy()
    for line in bad:
        earlier = str(table.at[line.row, "error_code"])
        if earlier:  # the empty cells' own problem (no last name) is not this row's: untally it
            key = ("(row)", ROW_RULES.get(earlier, earlier))
            tally.counts[key] -= 1
            if tally.counts[key] <= 0:
                del tally.counts[key]
                tally.first_row.pop(key, None)
        table.loc[line.row, ["status", "customer_key", "error_code", "error_message"]] = [
            Status.INVALID.value, "", line.code, line.message]
        raw.loc[line.row, RAW_LINE_COLUMN] = line.raw
        tally.add("(line)", "cannot be read as the header's columns" if line.code == "MALFORMED_LINE"
                  else "a field too long to be data", np.array([line.row]))
    return table, raw


def prepare(source: InputFile, mapping: MappingSpec, config: PrepareConfig, *, keep_rows: bool) -> Prepared:
    """Read, map, normalize and check every row; keep the normalized valid rows if requests are wanted.

    With `keep_rows`, the valid rows as read also go to `source.kept`, for errors.csv after the run.
    """
    header = check_header(mapping, source.header)
    if header.missing:
        missing = ", ".join(repr(c) for c in header.missing)
        raise ConfigError(f"{source.name}: column(s) {missing} of mapping {mapping.name} not in the header")
    tally = ProblemTally()
    tables, frames, invalid_raw = [], [], []
    bad: list[BadLine] = []
    for chunk in read_chunks(source, config.chunk_rows, bad):
        canonical = to_canonical(mapping, chunk, header.resolved)
        frame, problems = normalize_frame(canonical, mapping.customer_defaults.get("preferredLocale", ""))
        warnings = _warning_texts(problems, mapping, chunk.index, tally)
        table = _row_table(frame, warnings, mapping, config.strict, tally)
        table, raw = _mark_bad_lines(table, chunk, bad, tally)
        bad.clear()
        tables.append(table)
        valid = (table["status"] == Status.VALID).to_numpy()
        invalid_raw.append(raw[~valid])
        if keep_rows:
            frames.append(frame[valid])
            if source.kept is not None:
                source.kept.add(chunk[valid])
    rows = pd.concat(tables) if tables else pd.DataFrame(
        {c: pd.Series(dtype="str") for c in ("status", "customer_key", "error_code", "error_message", "warnings")},
        index=pd.RangeIndex(0, name="source_row"))
    if rows.empty and not config.allow_empty:
        raise InputError(f"{source.name}: empty export: a header and no data rows (--allow-empty accepts it)")
    if len(rows) < config.min_rows:
        raise InputError(f"{source.name}: {len(rows):,} data rows, fewer than --min-rows {config.min_rows:,}: "
                         "a truncated export? Nothing was sent")
    kept = None
    if keep_rows:
        kept = pd.concat(frames) if frames else pd.DataFrame(index=pd.RangeIndex(0, name="source_row"))
    raw = pd.concat(invalid_raw) if invalid_raw else pd.DataFrame(columns=[*source.header, RAW_LINE_COLUMN])
    return Prepared(rows, kept, tally, raw)
