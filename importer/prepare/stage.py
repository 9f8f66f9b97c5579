"""The validate half of the pipeline: file → mapped, normalized, checked rows with their customer keys."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.config import PrepareConfig
from importer.error_codes import ErrorCode
from importer.errors import ConfigError, InputError
from importer.memory import release_memory
from importer.prepare.by_value import python_repr, text_of
from importer.prepare.customers import Requests, customer_keys, legacy_keys
from importer.prepare.mapping import MappingSpec, Unread, check_header, read_canonical
from importer.prepare.normalize import PLACEHOLDER_MESSAGE, FieldProblem, normalize_frame, text_column
from importer.prepare.rewritten import KEY_CHANGED, give_back_keys, report_columns, unreadable_keys
from importer.prepare.schema import ROW_RULES, row_errors
from importer.prepare.shared_contacts import PROBLEM as SHARED_PROBLEM
from importer.prepare.shared_contacts import ContactCollector
from importer.prepare.two_people import PROBLEM as TWO_PEOPLE_PROBLEM
from importer.prepare.two_people import NameCollector, name_column
from importer.read.formulas import is_formula
from importer.read.reader import RAW_LINE_COLUMN, BadLine, InputFile, read_chunks
from importer.status import Status

_T = TypeVar("_T")
_R = TypeVar("_R")


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


def _is_in(values: pd.Series, among: pd.Index | pd.Series) -> pd.Series:
    """values.isin(among), in pyarrow: pandas would make a Python string of every value first."""
    found = pc.is_in(pa.array(values.astype("str")).cast(pa.large_string()),
                     value_set=pa.array(among.astype("str")).cast(pa.large_string()))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


@dataclass
class Prepared:
    """Every input row accounted for, and what is needed to build the requests."""

    #: one line per input row, indexed by source row: status, customer_key, error_code, error_message, warnings,
    #: dropped (source columns of values a normalizer left out, with why, see _dropped_fields), original_row (see
    #: rewritten.report_columns), two_people (why the row is to fix when its key names two people, see two_people.py)
    rows: pd.DataFrame
    #: normalized canonical columns of the valid rows (only when requests are wanted)
    frame: pd.DataFrame | None
    problems: ProblemTally
    #: the invalid rows (and, unless the valid rows as read are kept in `source.kept`, those with a dropped
    #: field), as read: errors.csv without a second pass over the file
    #: (with RAW_LINE_COLUMN, the line as written, for rows that could not be split into columns)
    invalid_raw: pd.DataFrame

    def recognise_known_keys(self, known: pd.Index, key_column: str | None) -> None:
        """Keys that the state knows under another spelling: lost leading zeros (with a key column), and
        derived keys a state made before they were readable knows as `~` and a hash."""
        known = pd.Index(known.astype("str"))
        if key_column:
            self.restore_leading_zeros(known, key_column)
        legacy = self.rows.get("legacy_key")
        # Only a state that holds keys of the former shape needs the (whole-file) comparison.
        if legacy is not None and known.str.fullmatch("~[0-9a-f]{16}").any():
            keys = self.rows["customer_key"]
            old = (legacy != "") & _is_in(legacy, known) & ~_is_in(keys, known)
            if old.any():
                self.rows.loc[old, "customer_key"] = legacy[old]

    def restore_leading_zeros(self, known: pd.Index, key_column: str) -> int:
        """Give back the leading zeros a spreadsheet took from customer keys (`82` for `0000082`): a key
        the state does not know, all digits, that is exactly one known key without its zeros, and whose
        padded form the file does not use itself. Such rows are warned; how many there were.

        Otherwise a key-only customer would be created twice: the state could not tell it is known, nor
        could the server's matching without a phone, email or VIN.
        """
        keys = self.rows["customer_key"]
        known = pd.Index(known.astype("str"))
        valid = self.rows["status"] == Status.VALID.value
        # The keys that could have lost zeros first (all digits, none leading, unknown to the state): mostly
        # none, and the known keys are then not all stripped and put in a dict (150 MB for a million).
        candidates = valid & keys.str.fullmatch("[1-9][0-9]*").fillna(False).astype(bool) & ~_is_in(keys, known)
        if not candidates.any():
            return 0
        padded = known[known.str.fullmatch("0+[1-9][0-9]*")]
        if padded.empty:
            return 0
        bare = pd.Series(padded.str.lstrip("0"), dtype="str")
        # Only the known keys that a candidate could be; two of them stripping to the same key stay ambiguous.
        wanted = _is_in(bare, keys[candidates]).to_numpy()
        bare, padded = bare[wanted], padded[wanted]
        unique = ~bare.duplicated(keep=False)
        restore = dict(zip(bare[unique], padded[unique.to_numpy()], strict=True))
        target = keys[candidates].map(restore)
        hit = target.notna()
        if hit.any():
            hit &= ~_is_in(target.fillna("").astype("str"), keys[valid])
        if not hit.any():
            return 0
        hit, target = hit.reindex(keys.index, fill_value=False).astype(bool), target.reindex(keys.index)
        note = (key_column + ": " + keys[hit] + " read as " + target[hit].astype("str")
                + ", the customer the state knows (leading zeros lost in a spreadsheet?)")
        current = self.rows.loc[hit, "warnings"]
        self.rows.loc[hit, "warnings"] = current.where(current == "", current + "; ") + note
        self.rows.loc[hit, "customer_key"] = target[hit].astype("str")
        if self.frame is not None and "customerKey" in self.frame:
            rows = self.frame.index.intersection(keys.index[hit.to_numpy()])
            self.frame.loc[rows, "customerKey"] = target[rows].astype("str")
        return int(hit.sum())

    def requests(self, mapping: MappingSpec, validate_vin: bool) -> Requests:
        """The customers' requests. The normalized rows move into them: built once, and gone with them."""
        frame, self.frame = self.frame, None
        if frame is None:
            raise RuntimeError("prepared without keeping the rows, or its requests were built already")
        valid = self.rows["status"] == Status.VALID
        return Requests(frame, self.rows.loc[valid, "customer_key"], mapping, validate_vin=validate_vin)


#: Values dropped for a reason the data cannot fix: a placeholder contact ("no email") is the customer having
#: none, so it stays a warning and the row is not to fix. Every other value a normalizer dropped (a phone,
#: email, VIN, state, ZIP, year, flag, mileage, formula-like text...) leaves a saved customer incomplete:
#: fixing the cell and importing the row again completes it.
_NOTHING_TO_FIX = frozenset({PLACEHOLDER_MESSAGE})


def _dropped_fields(problems: list[FieldProblem], mapping: MappingSpec, index: pd.Index) -> pd.Series:
    """The source columns of each row whose value a normalizer dropped for a fixable reason (a part of a column
    holding several fields included), each with why (`Email 1 (characters the API does not accept before the
    @)`), joined by ", "."""
    positions, texts = [], []
    for problem in problems:
        if problem.message in _NOTHING_TO_FIX:
            continue
        at = np.flatnonzero(problem.mask.to_numpy())
        positions.append(at)
        texts.append(_repeated(f"{mapping.source_of(problem.field)} ({problem.message})", len(at)))
    return _per_row(positions, texts, index, ", ", once=True)


def unread_problems(unread: list[Unread]) -> list[FieldProblem]:
    """Parts of columns holding several fields that could not be read, as dropped values to fix."""
    return [FieldProblem(u.field, u.message, u.mask, u.values, completable=True) for u in unread]


def _warn_two_people(rows: pd.DataFrame, people: NameCollector, mapping: MappingSpec, tally: ProblemTally) -> None:
    """Rows of a key that names two people: warned, and marked to fix (`two_people`), on every row involved."""
    warned, notes = people.warnings(rows, mapping)
    rows["two_people"] = ""
    if warned.empty:
        return
    current = rows.loc[warned.index, "warnings"]
    rows.loc[warned.index, "warnings"] = current.where(current == "", current + "; ") + warned
    rows.loc[notes.index, "two_people"] = notes
    tally.add(name_column(mapping), TWO_PEOPLE_PROBLEM, warned.index.to_numpy())




def _warning_texts(problems: list[FieldProblem], mapping: MappingSpec, index: pd.Index,
                   tally: ProblemTally) -> pd.Series:
    """Each row's warnings, `Column: what: 'value'`, joined by "; " in the problems' order. Made in Arrow: a
    Python string per warning took a second of a messy million's checks."""
    positions, texts = [], []
    for problem in problems:
        column = mapping.source_of(problem.field)
        at = np.flatnonzero(problem.mask.to_numpy())
        tally.add(column, problem.message, index.to_numpy()[at])
        if len(at):
            positions.append(at)
            texts.append(pc.binary_join_element_wise(f"{column}: {problem.message}: ", python_repr(
                pa.array(problem.values.iloc[at], pa.large_string(), from_pandas=True)), ""))
    return _per_row(positions, texts, index, "; ")


def _per_row(positions: list[np.ndarray], texts: list[pa.Array], index: pd.Index, separator: str, *,
             once: bool = False) -> pd.Series:
    """Texts said of rows (texts[i][j] of the row at positions[i][j]), joined row by row in the lists' order, ""
    for a row without any; `once`: a text said twice of a row is kept the first time only."""
    if not any(len(p) for p in positions):
        return text_of(_repeated("", len(index)), index)
    rows = np.concatenate(positions)
    each = pa.concat_arrays([t.cast(pa.large_string()) for t in texts])
    if once:
        first = ~pd.DataFrame({"row": rows, "text": text_of(each)}).duplicated().to_numpy()
        rows, each = rows[first], each.filter(pa.array(first))
    # Sorted by row, each row's texts in the lists' order (a stable sort), then joined row by row.
    order = np.argsort(rows, kind="stable")
    rows, each = rows[order], each.take(pa.array(order))
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(np.r_[starts, len(rows)], pa.int64()), each),
                            pa.scalar(separator, pa.large_string()))
    said = np.zeros(len(index), dtype=bool)
    said[rows[starts]] = True
    return text_of(pc.replace_with_mask(_repeated("", len(index)), pa.array(said), joined), index)


def _repeated(text: str, count: int) -> pa.Array:
    """One text `count` times, without a Python or numpy object for each."""
    return pa.array([text], pa.large_string()).take(pa.array(np.zeros(count, dtype=np.int64)))


def _describe_last_name(mapping: MappingSpec, chunk: pd.DataFrame, resolved: dict[str, str]) -> pd.Series:
    """How the last-name cell reads to the person who typed it: empty, or a placeholder such as "N/A"."""
    column = mapping.fields["lastName"]
    typed = chunk[resolved[column]].fillna("").astype("str").str.strip()
    quoted = ("(\"" + typed + "\")").to_numpy(dtype=object)
    formula = is_formula(typed).to_numpy(dtype=bool)
    return pd.Series(np.where(typed == "", f"{column} is empty",
                              np.where(formula, f"{column} would run as a spreadsheet formula " + quoted,
                                       f"{column} is a placeholder " + quoted)),
                     index=chunk.index, dtype="str")


def _row_table(frame: pd.DataFrame, chunk: pd.DataFrame, resolved: dict[str, str], warnings: pd.Series,
               mapping: MappingSpec, strict: bool) -> pd.DataFrame:
    codes = row_errors(frame)
    messages = codes.map(ROW_RULES).fillna("").astype("str")
    missing = codes == "MISSING_LAST_NAME"
    if mapping.fields.get("lastName") and missing.any():
        described = _describe_last_name(mapping, chunk[missing.to_numpy()], resolved)
        messages[missing] = messages[missing] + " (" + described + ")"
    if strict:
        bad_field = (codes == "") & (warnings != "")
        codes = codes.mask(bad_field, "INVALID_FIELD")
        messages = messages.mask(bad_field, warnings)
    status = pd.Series(np.where(codes == "", Status.VALID.value, Status.INVALID.value), index=frame.index,
                       dtype="str")
    # Invalid rows keep their key too: the person fixing them sees which customer they belong to.
    return pd.DataFrame({"status": status, "customer_key": customer_keys(frame), "error_code": codes,
                         "error_message": messages, "warnings": warnings})


def _refuse_unreadable_keys(table: pd.DataFrame, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows whose customer key a spreadsheet saved in scientific notation are invalid: sent, they would be
    saved under a key no export has (a new customer); which customer they belong to cannot be known."""
    keys = text_column(frame, "customerKey")
    unreadable = unreadable_keys(keys)
    if not unreadable.any():
        return table
    table = table.copy()
    message = (column + " " + keys[unreadable] + " is a number in scientific notation: a spreadsheet rewrote "
               "the customer key and its digits are lost")
    table.loc[unreadable, ["status", "error_code"]] = [Status.INVALID.value, ErrorCode.KEY_UNREADABLE.value]
    table.loc[unreadable, "error_message"] = message
    return table


def _names_per_customer(rows: pd.DataFrame, mapping: MappingSpec) -> pd.Series:
    """Rows refused only for a missing last name whose customer (same DMS key) has one on a valid row.

    A name is required per customer, not per row: such a row is valid, and its vehicles are sent.
    """
    if not mapping.customer_key:
        return pd.Series(False, index=rows.index)
    nameless = (rows["error_code"] == "MISSING_LAST_NAME") & ~rows["customer_key"].str.startswith("~")
    named = pd.Series(False, index=rows.index)
    if nameless.any():
        # Few nameless keys, many rows: test the rows against those keys in pyarrow, without Python strings.
        keys = pa.array(rows["customer_key"]).cast(pa.large_string())
        nameless_keys = pa.array(rows.loc[nameless, "customer_key"]).cast(pa.large_string())
        carried = pc.is_in(keys, value_set=pc.unique(nameless_keys)).to_numpy(zero_copy_only=False)
        valid = (rows["status"] == Status.VALID.value).to_numpy()
        having = pc.unique(keys.filter(pa.array(carried & valid)))
        named[nameless] = pc.is_in(nameless_keys, value_set=having).to_numpy(zero_copy_only=False)
    return named


#: How the problem summary names the lines the reader could not split into the header's columns.
_UNREADABLE_KEY_RULE = "a number in scientific notation: the customer key is lost"
_LINE_RULES = {"MALFORMED_LINE": "cannot be read as the header's columns",
               "FIELD_TOO_LONG": "a field too long to be data"}


@dataclass(frozen=True)
class _Mapped:
    """A chunk mapped and normalized (stage.prepare's `mapped`)."""

    frame: pd.DataFrame
    problems: list[FieldProblem]
    key_notes: pd.Series | None  #: each row's warning about a key given back (rewritten.give_back_keys)
    changed: pd.Series | None  #: rows whose key the person changed


def _with_bad_lines(chunks: Iterator[pd.DataFrame],
                    found: list[BadLine]) -> Iterator[tuple[pd.DataFrame, list[BadLine]]]:
    """Each chunk with the lines of it the reader could not split (which it adds to `found` as it reads)."""
    for chunk in chunks:
        bad = found.copy()
        found.clear()
        yield chunk, bad


def _one_ahead(work: Callable[[_T], _R], items: Iterator[_T]) -> Iterator[tuple[_T, _R]]:
    """Each item with `work` done on it, in order; the work on the next item done meanwhile, by a second
    thread. Most of a chunk's normalizing is pyarrow's, which lets go of the interpreter's lock: with the
    checks of one chunk beside the normalizing of the next, both cores work (on the messy million, reading and
    checking took 12.5 s on one core, 9.3 s so). One chunk more is held at a time."""
    with ThreadPoolExecutor(1, thread_name_prefix="mk-normalize") as pool:
        pending: tuple[_T, Future[_R]] | None = None
        try:
            for item in items:  # the next item is read while the second thread works on the one before
                done = (pending[0], pending[1].result()) if pending is not None else None
                pending = (item, pool.submit(work, item))
                if done is not None:
                    yield done
            if pending is not None:
                item, future = pending
                pending = None
                yield item, future.result()
        finally:
            if pending is not None:
                pending[1].cancel()


def _mark_bad_lines(table: pd.DataFrame, raw: pd.DataFrame, bad: list[BadLine]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows the reader could not read as the header's columns are invalid, with the line as written."""
    raw = raw.assign(**{RAW_LINE_COLUMN: ""})
    if not bad:
        return table, raw
    table = table.copy()
    for line in bad:
        # The cells of such a row are not in their columns: no key, nothing dropped, only the line's problem.
        table.loc[line.row, ["status", "customer_key", "error_code", "error_message", "dropped", "legacy_key"]] = [
            Status.INVALID.value, "", line.code, line.message, "", ""]
        raw.loc[line.row, RAW_LINE_COLUMN] = line.raw
    return table, raw


def _valid_only(frames: list[pd.DataFrame], valid_rows: pd.Index) -> pd.DataFrame:
    """The kept chunks' valid rows in one frame; `frames` is emptied. Joining chunks of Arrow strings
    copies none of them, and filtering the joined frame would copy every row: each chunk is filtered
    on its own instead, only if it holds rows that stayed invalid, and replaced by what is left of it."""
    if not frames:
        return pd.DataFrame(index=pd.RangeIndex(0, name="source_row"))
    for place, frame in enumerate(frames):
        valid = frame.index.isin(valid_rows)
        if not valid.all():
            frames[place] = frame[valid]
    kept = pd.concat(frames)
    frames.clear()
    # One Arrow chunk per column, a column at a time: the bodies are built from the rows of 20,000
    # customers at a time, and pyarrow's take over a column of many chunks joins the whole column first
    # (14x slower than over one chunk, and a column's worth of memory for every batch).
    for name in kept.columns:
        column = kept[name]
        if not isinstance(column.dtype, pd.StringDtype):
            continue
        values = pa.array(column)
        if isinstance(values, pa.ChunkedArray) and values.num_chunks > 1:
            kept[name] = pd.array(values.combine_chunks(), dtype=column.dtype)
            del column, values
            release_memory()  # the column's chunks, before the next column is copied
    return kept


def prepare(source: InputFile, mapping: MappingSpec, config: PrepareConfig, *, keep_rows: bool) -> Prepared:
    """Read, map, normalize and check every row; keep the normalized valid rows if requests are wanted.

    With `keep_rows`, the valid rows as read also go to `source.kept`, for errors.csv after the run.
    """
    header = check_header(mapping, source.header, source.unnamed)
    if header.missing:
        missing = ", ".join(repr(c) for c in header.missing)
        raise ConfigError(f"{source.name}: column(s) {missing} of mapping {mapping.name} not in the header")
    tally = ProblemTally()
    tables, frames, invalid_raw = [], [], []
    found: list[BadLine] = []  #: the reader's lines it could not split, since the last chunk
    contacts = ContactCollector()
    report = report_columns(source)
    people = NameCollector()
    spilled = keep_rows and source.kept is not None
    locale = mapping.customer_defaults.get("preferredLocale", "")

    def mapped(read: tuple[pd.DataFrame, list[BadLine]]) -> _Mapped:
        """A chunk's rows mapped and normalized: this needs nothing of the other chunks (see _one_ahead)."""
        chunk = read[0]
        canonical, unread = read_canonical(mapping, chunk, header.resolved)
        key_notes = changed = None
        if report is not None and mapping.customer_key:
            exported = report["export_key"].reindex(chunk.index, fill_value="")
            canonical["customerKey"], key_notes, changed = give_back_keys(canonical["customerKey"], exported,
                                                                          mapping.customer_key)
        frame, problems = normalize_frame(canonical, locale)
        return _Mapped(frame, [*unread_problems(unread), *problems], key_notes, changed)

    chunks = _with_bad_lines(read_chunks(source, config.chunk_rows, found), found)
    # What keeps the normalized rows (a run) does one chunk at a time: a chunk ahead took the messy million's
    # reading from 709 to 840 MB, past a run's 800 MB, while a run's time is the sending's.
    for (chunk, bad), done in (((c, mapped(c)) for c in chunks) if keep_rows else _one_ahead(mapped, chunks)):
        release_memory()  # the previous chunk's working copies: without this, the heap grows chunk by chunk
        frame, problems, key_notes = done.frame, done.problems, done.key_notes
        if done.changed is not None and mapping.customer_key:
            tally.add(mapping.customer_key, KEY_CHANGED, chunk.index.to_numpy()[done.changed.to_numpy()])
        warnings = _warning_texts(problems, mapping, chunk.index, tally)
        table = _row_table(frame, chunk, header.resolved, warnings, mapping, config.strict)
        if key_notes is not None:  # after the row rules: a key given back is no field problem, even --strict
            table["warnings"] = key_notes.where(warnings == "", key_notes + "; " + warnings).where(
                key_notes != "", warnings)
        if mapping.customer_key:
            table = _refuse_unreadable_keys(table, frame, mapping.customer_key)
        table["dropped"] = _dropped_fields(problems, mapping, chunk.index)
        table["legacy_key"] = legacy_keys(frame)
        table, raw = _mark_bad_lines(table, chunk, bad)
        tables.append(table)
        valid = (table["status"] == Status.VALID).to_numpy()
        # Rows without a last name may yet be valid, once every row of their customer is known.
        maybe = valid | (table["error_code"] == "MISSING_LAST_NAME").to_numpy()
        # errors.csv lists these rows too (saved without a field): keep them as read, no second pass; unless
        # the valid rows as read go to `source.kept` anyway (a run): a quarter of a messy million held here
        # cost the whole sending 130 MB.
        to_list = ~valid if spilled else ~valid | (table["dropped"] != "").to_numpy()
        invalid_raw.append(raw[to_list])
        contacts.add(frame, table["customer_key"], maybe)
        people.add(frame, table["customer_key"], maybe)
        if keep_rows:
            frames.append(frame[maybe])
            if source.kept is not None:
                source.kept.add(chunk[valid])
    rows = pd.concat(tables) if tables else pd.DataFrame(
        {c: pd.Series(dtype="str") for c in ("status", "customer_key", "error_code", "error_message", "warnings",
                                              "dropped")},
        index=pd.RangeIndex(0, name="source_row"))
    if rows.empty and not config.allow_empty:
        raise InputError(f"{source.name}: empty export: a header and no data rows (--allow-empty accepts it)")
    if len(rows) < config.min_rows:
        raise InputError(f"{source.name}: {len(rows):,} data rows, fewer than --min-rows {config.min_rows:,}: "
                         "a truncated export? Nothing was sent")
    rows["original_row"] = "" if report is None else report["original_row"].reindex(rows.index, fill_value="")
    named = _names_per_customer(rows, mapping)
    if named.any():
        rows.loc[named, ["status", "error_code", "error_message"]] = [Status.VALID.value, "", ""]
    valid_rows = rows.index[(rows["status"] == Status.VALID.value).to_numpy()]
    _warn_two_people(rows, people, mapping, tally)
    for code in map(str, rows.loc[rows["error_code"] != "", "error_code"].unique()):
        scope, rule = ("(line)", _LINE_RULES[code]) if code in _LINE_RULES else (
            (mapping.customer_key or "(row)", _UNREADABLE_KEY_RULE) if code == ErrorCode.KEY_UNREADABLE
            else ("(row)", ROW_RULES.get(code, code)))
        tally.add(scope, rule, rows.index[(rows["error_code"] == code).to_numpy()].to_numpy())
    kept = _valid_only(frames, valid_rows) if keep_rows else None
    shared = contacts.shared(mapping.shared_contact_limit, valid_rows)
    if shared:
        source_of = {c: mapping.source_of(c) for c in contacts.columns}
        extra = shared.warnings(source_of)
        current = rows.loc[extra.index, "warnings"]
        rows.loc[extra.index, "warnings"] = current.where(current == "", current + "; ") + extra
        for column, hits in shared.hits.groupby("column"):
            tally.add(source_of[str(column)], SHARED_PROBLEM, np.sort(hits["row"].unique()))
        if kept is not None:
            kept = shared.drop(kept)
    raw = pd.concat(invalid_raw) if invalid_raw else pd.DataFrame(columns=[*source.header, RAW_LINE_COLUMN])
    return Prepared(rows, kept, tally, raw)
