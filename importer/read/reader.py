"""Input file → DataFrame chunks of text: encoding, delimiter, header and 1-based data row numbers.

Every value is read as text (ZIPs and customer numbers keep their leading zeros) into pyarrow-backed
strings, in chunks so memory stays flat however long the file is. Standard input is spooled to a private
temporary file first: the encoding check, the checksum and the reader each need a pass over the bytes.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc

from importer.errors import InputError
from importer.read.columns import EXPORT_KEY_COLUMN as EXPORT_KEY_COLUMN
from importer.read.columns import KEY_QUOTE as KEY_QUOTE
from importer.read.columns import ORIGINAL_ROW_COLUMN as ORIGINAL_ROW_COLUMN
from importer.read.columns import RAW_LINE_COLUMN as RAW_LINE_COLUMN
from importer.read.columns import REPORT_COLUMNS as REPORT_COLUMNS
from importer.read.columns import SEEN_COLUMNS as SEEN_COLUMNS
from importer.read.columns import header_key as header_key
from importer.read.containers import MAX_FIELD_CHARS as MAX_FIELD_CHARS  # the bound, read here too
from importer.read.containers import Bounds, as_text
from importer.read.formulas import undefuse, undefuse_text

DELIMITERS = (",", "\t", "|", ";")
_BLOCK = 1 << 20
#: How much pyarrow parses at a time: the size of the chunks on the fast path.
ARROW_BLOCK_BYTES = 8 << 20
#: A header row longer than this is refused rather than cut (a cut header misses every later column).
MAX_HEADER_CHARS = 1 << 20
#: A file in which more than this share of the data rows cannot be split into the header's columns is
#: refused as unreadable; below it, each such row is invalid and the rest is imported.
MAX_BROKEN_SHARE = 0.01
#: How much of a broken line errors.csv keeps.
MAX_RAW_CHARS = 1 << 14
# Python's csv module refuses fields over 128 KiB; an oversized field must reach the check above instead.
csv.field_size_limit(max(csv.field_size_limit(), 64 << 20))
log = logging.getLogger("mk_import.reader")


@dataclass(frozen=True, slots=True)
class BadLine:
    """A data row that could not be read as the header's columns, or holds a cell too long to be data."""

    #: 1-based data row number
    row: int
    #: MALFORMED_LINE or FIELD_TOO_LONG (see error_codes.py)
    code: str
    message: str
    #: the row as the export wrote it (cut to MAX_RAW_CHARS), to be fixed and imported again; "" if unknown
    raw: str = ""


@dataclass(frozen=True)
class InputFile:
    """A readable input: where its bytes are, how to decode and split them, and what its header says."""

    path: Path
    #: The name a person gave (`-` for standard input), used in every message.
    name: str
    encoding: str
    delimiter: str
    #: Header names exactly as the file spells them, report columns of an error report excluded.
    header: tuple[str, ...]
    #: 0-based positions of those columns in the file.
    positions: tuple[int, ...]
    #: the file's header row, every column
    file_header: tuple[str, ...]
    sha256: str
    #: True for an errors.csv written by mk-import: its cells are unescaped and its report columns dropped.
    is_error_report: bool
    #: an even number of quote characters: no quoted field can be left open at the end of the file (the
    #: fast reader would accept one silently, so an odd count goes to the line-by-line reader)
    quotes_pair_up: bool = True
    #: the encoding of the bytes at `path`, when `path` is a UTF-8 copy of a file with mixed encodings
    read_encoding: str = ""
    #: (size, mtime in ns) of the file when it was read, to tell whether it changed since
    stat: tuple[int, int] = (0, 0)
    #: the rows handed out, kept for the error report (see RowSpool); None when nothing is kept
    kept: RowSpool | None = None
    #: blank lines above the header row, skipped by every reader
    skip_lines: int = 0
    #: the lines the header row takes (more than one where a quoted name holds a line break)
    header_lines: int = 1
    #: names given to columns whose header cell is empty ("column 5"): ignored unless a mapping names them
    unnamed: frozenset[str] = frozenset()

    @property
    def text_encoding(self) -> str:
        """The encoding to read `path` with."""
        return self.read_encoding or self.encoding

    def changed_since_read(self) -> bool:
        """Whether the input file now differs from what was read (size and time first, then its SHA-256)."""
        if self.name == "-":
            return False  # read from a private copy
        path = Path(self.name)
        try:
            now = path.stat()
        except OSError:
            return True
        if (now.st_size, now.st_mtime_ns) == self.stat:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while block := stream.read(_BLOCK):
                digest.update(block)
        return digest.hexdigest() != self.sha256


class RowSpool:
    """Rows as read, in a private Arrow file: the error report takes the original cells of the rows the
    API refused from here, never from the input again, which may have changed during the run (and would
    then attach another customer's cells to these row numbers)."""

    def __init__(self, path: Path, width: int) -> None:
        self._path, self._width = path, width
        self._writer: pa_ipc.RecordBatchFileWriter | None = None
        self._written = False
        self._schema = pa.schema([("row", pa.int64()), *((f"c{i}", pa.string()) for i in range(width))])

    def add(self, chunk: pd.DataFrame) -> None:
        if chunk.empty:
            return
        if self._writer is None:
            self._writer = pa_ipc.new_file(str(self._path), self._schema)
            self._written = True
        arrays = [pa.array(chunk.index.to_numpy(), pa.int64()),
                  *(pa.array(chunk.iloc[:, i], pa.string(), from_pandas=True) for i in range(self._width))]
        self._writer.write_batch(pa.record_batch(arrays, schema=self._schema))

    def rows(self, wanted: pd.Index, header: tuple[str, ...]) -> Iterator[pd.DataFrame]:
        """The kept rows among `wanted`, columns named as `header`, indexed by row number."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._written:
            return
        # Read, not mapped: mapped, every batch read would stay resident until the end (the file of a million
        # rows, 150 MB and more, counted in the process's memory).
        with pa.OSFile(str(self._path)) as stream, pa_ipc.open_file(stream) as kept:
            for i in range(kept.num_record_batches):
                batch = kept.get_batch(i).to_pandas(types_mapper=_arrow_string)
                batch.index = pd.Index(batch.pop("row"), name="source_row")
                batch.columns = pd.Index(list(header))
                batch = batch.loc[batch.index.intersection(wanted)]
                if len(batch):
                    yield batch


def _scan(path: Path, name: str) -> tuple[str, str, bool]:
    """(encoding, sha256, whether the quotes pair up) of the file, refusing empty and binary files.

    The encoding is utf-16 or utf-8-sig by their BOM, else utf-8 if every byte decodes as UTF-8, else
    "mixed": some lines need another encoding (see _transcode).
    """
    digest = hashlib.sha256()
    quotes = 0
    with path.open("rb") as stream:
        head = stream.read(_BLOCK)
        if not head.strip():
            raise InputError(f"{name}: the file is empty")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            encoding = "utf-8"
        decoder: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder(encoding)()
        offset = 0
        block = head
        while block:
            digest.update(block)
            quotes += block.count(b'"')
            nul = block.find(b"\0") if encoding != "utf-16" else -1
            if nul >= 0:
                raise InputError(f"{name}: not a text file (NUL byte at offset {offset + nul})")
            if decoder is not None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    decoder = None
            offset += len(block)
            block = stream.read(_BLOCK)
    if decoder is not None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            decoder = None
    if decoder is None:
        if encoding == "utf-16":
            raise InputError(f"{name}: not readable as UTF-16 text; save it as UTF-8 CSV")
        encoding = "mixed"
    # In UTF-16 a 0x22 byte need not be a quote, so parity says nothing there.
    return encoding, digest.hexdigest(), encoding != "utf-16" and quotes % 2 == 0


def _transcode(path: Path, name: str, target: Path) -> tuple[str, bool]:
    """Decode a file that is not all UTF-8 line by line into a UTF-8 copy at `target`: UTF-8 where a line
    is valid UTF-8, Windows-1252 where it is not. (its encoding, whether the copy is needed)

    Decoding the whole file as Windows-1252 because one line is would garble every UTF-8 name
    (`José` → `JosÃ©`). A file without a single UTF-8 line beyond ASCII is plain Windows-1252 and
    is read as such, without the copy.
    """
    utf8_lines, legacy = 0, []
    with path.open("rb") as stream, open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        skip_bom = True
        for number, line in enumerate(stream, 1):
            if skip_bom:
                line, skip_bom = line.removeprefix(codecs.BOM_UTF8), False
            try:
                text = line.decode("utf-8")
                utf8_lines += not line.isascii()
            except UnicodeDecodeError:
                try:
                    text = line.decode("cp1252")
                except UnicodeDecodeError:
                    raise InputError(f"{name}: line {number} is not readable as UTF-8 or Windows-1252 text; "
                                     "save the file as UTF-8 CSV") from None
                legacy.append(number)
            out.write(text.encode("utf-8"))
    if not utf8_lines:
        target.unlink()
        return "cp1252", False
    shown = ", ".join(str(n) for n in legacy[:10]) + (", ..." if len(legacy) > 10 else "")
    log.warning("%s: %d line(s) are not UTF-8 and were read as Windows-1252 (line %s); check their accented "
                "letters", name, len(legacy), shown)
    return "utf-8+cp1252", True


def _sniff_delimiter(first_line: str) -> str:
    """The candidate delimiter that occurs most often outside quotes in the header line."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


#: Lines above the header that hold nothing but spaces and delimiters (a spreadsheet's empty rows).
_BLANK_LINES = re.compile(r"(?:[ \t,;|]*(?:\r\n|\n|\r))*")


def unnamed_column(position: int) -> str:
    """The name of a column whose header cell is empty, as messages and mappings call it (1-based)."""
    return f"column {position}"


def _read_header(path: Path, name: str, encoding: str) -> tuple[str, list[str], int, int, frozenset[str]]:
    """(delimiter, header names, blank lines above the header, lines of the header, names given to unnamed
    columns).

    Excel writes trailing columns with empty names (`CustNo,FirstName,,`): each is called "column N" by
    its position, so every column has a name of its own.
    """
    with path.open(encoding=encoding, newline="") as stream:
        sample = stream.read(MAX_HEADER_CHARS)
    blank = _BLANK_LINES.match(sample)
    start = blank.end() if blank else 0
    skip = len(re.findall(r"\r\n|\n|\r", sample[:start]))
    sample = sample[start:]
    first_line = sample.splitlines()[0] if sample else ""
    delimiter = _sniff_delimiter(first_line)
    buffer = io.StringIO(sample)
    rows = csv.reader(buffer, delimiter=delimiter)
    try:
        header = next(rows)
    except (csv.Error, StopIteration):
        raise InputError(f"{name}: cannot read the header row") from None
    if len(sample) >= MAX_HEADER_CHARS - start and buffer.tell() >= len(sample):
        raise InputError(f"{name}: the header row is longer than {MAX_HEADER_CHARS:,} characters")
    unnamed = {i: unnamed_column(i + 1) for i, column in enumerate(header) if not column.strip()}
    header = [unnamed.get(i, column) for i, column in enumerate(header)]
    seen: dict[str, int] = {}
    for position, column in enumerate(header, 1):
        key = header_key(column)
        if key in seen:
            raise InputError(f"{name}: duplicate column {column.strip()!r} (columns {seen[key]} and {position})")
        seen[key] = position
    return delimiter, header, skip, rows.line_num, frozenset(unnamed.values())


@contextlib.contextmanager
def open_input(source: str, sheet: str | None = None, *, keep_rows: bool = False,
               bounds: Bounds | None = None) -> Iterator[InputFile]:
    """Check and describe the input; `-` spools standard input to a private temporary file.

    A workbook (its first sheet, or `sheet`) or an archive is read as the CSV text sources.as_text makes.
    With `keep_rows`, the rows a caller hands to `InputFile.kept` are kept in a private temporary file
    for as long as the input is open.
    """
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mk-import-")))
        if source == "-":
            path = scratch / "stdin.csv"
            stdin = getattr(sys.stdin, "buffer", None)
            if stdin is None or stdin.closed:
                raise InputError("-: standard input is closed; give a file, or pipe the export in")
            try:
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                    shutil.copyfileobj(stdin, out, _BLOCK)
            except (OSError, ValueError) as exc:
                raise InputError(f"-: cannot read standard input ({exc.__class__.__name__})") from None
        else:
            path = Path(source)
            if not path.exists():
                raise InputError(f"{source}: no such file")
            if not path.is_file():
                raise InputError(f"{source}: not a regular file")
        stat = path.stat()  # of the file as given, to tell whether it changes during the run
        path, given_sha256 = as_text(path, source, stack, sheet, bounds)
        encoding, sha256, quotes_pair_up = _scan(path, source)
        read_encoding = ""
        if encoding == "mixed":
            encoding, transcoded = _transcode(path, source, scratch / "utf8.csv")
            if transcoded:
                path, read_encoding = scratch / "utf8.csv", "utf-8"
        delimiter, header, skip, header_lines, unnamed = _read_header(path, source, read_encoding or encoding)
        is_report = {header_key(c) for c in REPORT_COLUMNS} <= {header_key(c) for c in header}
        if is_report:  # errors.csv defuses its header cells too
            header = [undefuse_text(c) for c in header]
        dropped = ({header_key(c) for c in (*REPORT_COLUMNS, *SEEN_COLUMNS, ORIGINAL_ROW_COLUMN, RAW_LINE_COLUMN,
                                            EXPORT_KEY_COLUMN)}
                   if is_report else set())
        positions = tuple(i for i, c in enumerate(header) if header_key(c) not in dropped)
        kept = RowSpool(scratch / "rows.arrow", len(positions)) if keep_rows else None
        yield InputFile(path, source, encoding, delimiter, tuple(header[i] for i in positions), positions,
                        tuple(header), given_sha256 or sha256, is_report, quotes_pair_up, read_encoding,
                        (stat.st_size, stat.st_mtime_ns), kept, skip, header_lines, unnamed)


def _unescape(chunk: pd.DataFrame) -> pd.DataFrame:
    """Undo the error report's formula defusing: a leading quote before a trigger character goes."""
    unescaped: pd.DataFrame = chunk.apply(undefuse)
    return unescaped


def _split_raw_lines(source: InputFile, chunk: pd.DataFrame, raw: pd.Series, bad: list[BadLine]) -> pd.DataFrame:
    """An error report imported again: a row whose cells are empty and whose mk_raw_line is not takes its
    cells from that line, fixed or not. It splits with whichever delimiter gives the header's columns;
    if none does, the row is still broken."""
    empty = (chunk == "").all(axis=1) & (raw.str.strip() != "")
    if not empty.any():
        return chunk
    chunk = chunk.copy()
    width = len(source.header)
    for row in chunk.index[empty.to_numpy()].tolist():
        line = str(raw[row])
        for delimiter in DELIMITERS:
            fields = next(csv.reader([line], delimiter=delimiter), [])
            if len(fields) == width:
                chunk.loc[row] = fields
                break
        else:
            bad.append(BadLine(int(row), "MALFORMED_LINE", f"data row {row}: its mk_raw_line still does not split "
                               f"into the header's {width} columns", line[:MAX_RAW_CHARS]))
    return chunk


def _finish(source: InputFile, chunk: pd.DataFrame, first_row: int, bad: list[BadLine]) -> pd.DataFrame:
    """Keep the data columns, name them as the header does, number the rows, empty oversized cells."""
    raw_at = [i for i, c in enumerate(source.file_header)
              if source.is_error_report and header_key(c) == RAW_LINE_COLUMN]
    raw = chunk.iloc[:, raw_at[0]].fillna("") if raw_at else None
    chunk = chunk.iloc[:, list(source.positions)]
    chunk.columns = pd.Index(list(source.header))
    chunk.index = pd.RangeIndex(first_row, first_row + len(chunk), name="source_row")
    chunk = chunk.fillna("")
    if raw is not None:
        raw.index = chunk.index
        chunk = _split_raw_lines(source, chunk, _unescape(raw.to_frame()).iloc[:, 0], bad)
    for column in chunk.columns:
        lengths = chunk[column].str.len()
        if lengths.max() > MAX_FIELD_CHARS:
            too_long = lengths > MAX_FIELD_CHARS
            over = lengths[too_long]
            for row, length in zip(over.index.tolist(), over.tolist(), strict=True):
                bad.append(BadLine(int(row), "FIELD_TOO_LONG",
                                   f"{column.strip()} holds {int(length):,} characters, more than a field can "
                                   f"({MAX_FIELD_CHARS:,}): an unclosed quote?"))
            chunk[column] = chunk[column].mask(too_long, "")
    return _unescape(chunk) if source.is_error_report else chunk


#: pandas 3's default "str" dtype, named outright: on pandas 2.3 "str" is object (None becomes the text "None")
TEXT_DTYPE: Any = pd.StringDtype("pyarrow", na_value=float("nan"))


def _arrow_string(dtype: pa.DataType) -> Any:
    return TEXT_DTYPE if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else None


def _arrow_chunks(source: InputFile) -> Iterator[pd.DataFrame]:
    """The fast path: pyarrow's multithreaded CSV reader, straight into pyarrow-backed strings.

    It is strict: a row with too many or too few fields is an error here, so read_chunks falls back.
    """
    encoding = source.text_encoding
    reader = pa_csv.open_csv(
        source.path,
        read_options=pa_csv.ReadOptions(encoding="utf8" if encoding.startswith("utf-8") else encoding,
                                        block_size=ARROW_BLOCK_BYTES,
                                        # pyarrow skips lines, not records: a header may take several
                                        skip_rows=source.skip_lines + source.header_lines,
                                        column_names=list(source.file_header)),
        parse_options=pa_csv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True,
                                          ignore_empty_lines=True),
        convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(source.file_header, pa.string()),
                                              strings_can_be_null=False, quoted_strings_can_be_null=False))
    for batch in reader:
        yield batch.to_pandas(types_mapper=_arrow_string)


def _recorded(stream: IO[str], raw: list[str]) -> Iterator[str]:
    """The stream's lines, each also noted in `raw`, so that a record's text as written is at hand."""
    for line in stream:
        raw.append(line)
        yield line


def _line_chunks(source: InputFile, chunk_rows: int, bad: list[BadLine]) -> Iterator[pd.DataFrame]:
    """The tolerant path, line by line: a row that does not split into the header's columns (an unquoted
    comma, a line cut short) becomes a BadLine with its text and line numbers, its cells left empty."""
    width = len(source.file_header)
    raw: list[str] = []
    with source.path.open(encoding=source.text_encoding, newline="") as stream:
        for _ in range(source.skip_lines):
            next(stream, None)
        records = csv.reader(_recorded(stream, raw), delimiter=source.delimiter)
        try:
            next(records)
            line = records.line_num + source.skip_lines
            text, first_line = "", line
            rows: list[list[str]] = []
            row = 0
            for record in records:
                first_line, line = line + 1, records.line_num + source.skip_lines
                text = "".join(raw)
                raw.clear()
                if not record:
                    continue  # a blank line is no row
                row += 1
                if len(record) != width:
                    where = f"line {first_line}" if line == first_line else f"lines {first_line}-{line}"
                    bad.append(BadLine(row, "MALFORMED_LINE",
                                       f"data row {row} has {len(record)} fields, the header {width} ({where}): "
                                       "a delimiter or quote out of place?", text.rstrip("\r\n")[:MAX_RAW_CHARS]))
                    record = [""] * width
                rows.append(record)
                if len(rows) == chunk_rows:
                    yield pd.DataFrame(rows, dtype=TEXT_DTYPE)
                    rows = []
            # A quote left open swallows the rest of the file into one last field: refuse rather than guess.
            if not source.quotes_pair_up and text.count('"') % 2:
                raise InputError(f"{source.name}: broken CSV: the quote opened on line {first_line} is never closed")
            if rows:
                yield pd.DataFrame(rows, dtype=TEXT_DTYPE)
        except csv.Error as exc:
            raise InputError(f"{source.name}: broken CSV near line {records.line_num + source.skip_lines}: {exc}") \
                from None


def read_chunks(source: InputFile, chunk_rows: int = 100_000,
                bad: list[BadLine] | None = None) -> Iterator[pd.DataFrame]:
    """The data rows as text DataFrames, columns named as in the header, indexed by 1-based row number.

    pyarrow reads well-formed files several times faster than Python's csv module; when it refuses a file,
    the line-by-line reader takes over from the first row not yet handed out, so every row comes exactly
    once either way. Rows that cannot be read as the header's columns are handed out with empty cells and
    described in `bad` (added to before their chunk is handed out); when more than MAX_BROKEN_SHARE of the
    rows are broken, the file is refused after the last chunk.
    """
    bad = [] if bad is None else bad
    first_row = 1
    if source.quotes_pair_up:
        try:
            for chunk in _arrow_chunks(source):
                yield _finish(source, chunk, first_row, bad)
                first_row += len(chunk)
            return
        except (pa.ArrowInvalid, UnicodeDecodeError):
            pass
    handed_out = first_row - 1
    found: list[BadLine] = []
    row, broken, first_broken = 1, 0, ""
    for chunk in _line_chunks(source, chunk_rows, found):
        chunk = _finish(source, chunk, row, found)
        row += len(chunk)
        for line in found:
            if line.code == "MALFORMED_LINE":
                broken += 1
                first_broken = first_broken or line.message
        bad.extend(line for line in found if line.row > handed_out)
        found.clear()
        chunk = chunk[chunk.index > handed_out]
        if len(chunk):
            yield chunk
    if broken > MAX_BROKEN_SHARE * (row - 1):
        raise InputError(f"{source.name}: broken CSV: {broken:,} of {row - 1:,} data rows do not split into the "
                         f"header's columns, more than {MAX_BROKEN_SHARE:.0%} (first: {first_broken})")
