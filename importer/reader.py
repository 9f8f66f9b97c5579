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
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from importer.errors import InputError
from importer.mapping import header_key
from importer.sources import as_text

DELIMITERS = (",", "\t", "|", ";")
#: Columns that the error report adds after the original ones; a re-import drops them.
REPORT_COLUMNS = ("mk_source_row", "mk_status", "mk_error_code", "mk_error_message", "mk_warnings")
#: Characters that make a spreadsheet read a cell as a formula; the error report defuses them with a quote.
FORMULA_TRIGGERS = "=+-@\t\r'"
_BLOCK = 1 << 20
#: How much pyarrow parses at a time: the size of the chunks on the fast path.
ARROW_BLOCK_BYTES = 8 << 20


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
    #: fast reader would accept one silently, so an odd count goes to the strict pandas reader)
    quotes_pair_up: bool = True


def _scan(path: Path, name: str) -> tuple[str, str, bool]:
    """(encoding, sha256, whether the quotes pair up) of the file, refusing empty and binary files."""
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
        candidates = [encoding] if encoding != "utf-8" else ["utf-8", "cp1252"]
        decoders = {e: codecs.getincrementaldecoder(e)() for e in candidates}
        offset = 0
        block = head
        while block:
            digest.update(block)
            quotes += block.count(b'"')
            nul = block.find(b"\0") if encoding != "utf-16" else -1
            if nul >= 0:
                raise InputError(f"{name}: not a text file (NUL byte at offset {offset + nul})")
            for enc in list(decoders):
                try:
                    decoders[enc].decode(block)
                except UnicodeDecodeError:
                    del decoders[enc]
            offset += len(block)
            block = stream.read(_BLOCK)
    for enc in list(decoders):
        try:
            decoders[enc].decode(b"", final=True)
        except UnicodeDecodeError:
            del decoders[enc]
    if not decoders:
        raise InputError(f"{name}: not readable as {' or '.join(candidates)} text; save it as UTF-8 CSV")
    # In UTF-16 a 0x22 byte need not be a quote, so parity says nothing there.
    return next(iter(decoders)), digest.hexdigest(), encoding != "utf-16" and quotes % 2 == 0


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


def _read_header(path: Path, name: str, encoding: str) -> tuple[str, list[str]]:
    with path.open(encoding=encoding, newline="") as stream:
        sample = stream.read(1 << 16)
    first_line = sample.splitlines()[0] if sample else ""
    delimiter = _sniff_delimiter(first_line)
    rows = csv.reader(io.StringIO(sample), delimiter=delimiter)
    try:
        header = next(rows)
        first = next(rows, [])
    except (csv.Error, StopIteration):
        raise InputError(f"{name}: cannot read the header row") from None
    # pandas would silently drop what a first data row has beyond the header; elsewhere it raises.
    if len(first) > len(header):
        raise InputError(f"{name}: broken CSV: data row 1 has {len(first)} fields, the header {len(header)}")
    seen: dict[str, int] = {}
    for position, column in enumerate(header, 1):
        key = header_key(column)
        if key and key in seen:
            raise InputError(f"{name}: duplicate column {column.strip()!r} (columns {seen[key]} and {position})")
        seen[key] = position
    return delimiter, header


@contextlib.contextmanager
def open_input(source: str, sheet: str | None = None) -> Iterator[InputFile]:
    """Check and describe the input; `-` spools standard input to a private temporary file.

    A workbook (its first sheet, or `sheet`) or an archive is read as the CSV text sources.as_text makes.
    """
    with contextlib.ExitStack() as stack:
        if source == "-":
            spool = stack.enter_context(tempfile.TemporaryDirectory(prefix="mk-import-"))
            path = Path(spool) / "stdin.csv"
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                shutil.copyfileobj(sys.stdin.buffer, out, _BLOCK)
        else:
            path = Path(source)
            if not path.exists():
                raise InputError(f"{source}: no such file")
            if not path.is_file():
                raise InputError(f"{source}: not a regular file")
        path, given_sha256 = as_text(path, source, stack, sheet)
        encoding, sha256, quotes_pair_up = _scan(path, source)
        delimiter, header = _read_header(path, source, encoding)
        is_report = {header_key(c) for c in REPORT_COLUMNS} <= {header_key(c) for c in header}
        positions = tuple(i for i, c in enumerate(header) if not (is_report and header_key(c) in REPORT_COLUMNS))
        yield InputFile(path, source, encoding, delimiter, tuple(header[i] for i in positions), positions,
                        tuple(header), given_sha256 or sha256, is_report, quotes_pair_up)


def _unescape(chunk: pd.DataFrame) -> pd.DataFrame:
    """Undo the error report's formula defusing: a leading quote before a trigger character goes."""
    pattern = "^'([" + FORMULA_TRIGGERS.replace("-", r"\-") + "])"
    unescaped: pd.DataFrame = chunk.apply(lambda column: column.str.replace(pattern, r"\1", regex=True))
    return unescaped


def _finish(source: InputFile, chunk: pd.DataFrame, first_row: int) -> pd.DataFrame:
    """Keep the data columns, name them as the header does, number the rows."""
    chunk = chunk.iloc[:, list(source.positions)]
    chunk.columns = pd.Index(list(source.header))
    chunk.index = pd.RangeIndex(first_row, first_row + len(chunk), name="source_row")
    chunk = chunk.fillna("")
    return _unescape(chunk) if source.is_error_report else chunk


_STR: Any = pd.StringDtype("pyarrow", na_value=float("nan"))  # pandas' default "str" dtype


def _arrow_string(dtype: pa.DataType) -> Any:
    return _STR if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else None


def _arrow_chunks(source: InputFile) -> Iterator[pd.DataFrame]:
    """The fast path: pyarrow's multithreaded CSV reader, straight into pyarrow-backed strings.

    It is strict: a row with too few fields is an error here (pandas pads it), so read_chunks falls back.
    """
    reader = pa_csv.open_csv(
        source.path,
        read_options=pa_csv.ReadOptions(encoding="utf8" if source.encoding.startswith("utf-8") else source.encoding,
                                        block_size=ARROW_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True,
                                          ignore_empty_lines=True),
        convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(source.file_header, pa.string()),
                                              strings_can_be_null=False, quoted_strings_can_be_null=False))
    for batch in reader:
        yield batch.to_pandas(types_mapper=_arrow_string)


def _pandas_chunks(source: InputFile, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The tolerant path: pandas' C reader, which pads short rows and reports line numbers."""
    reader = pd.read_csv(
        source.path, sep=source.delimiter, encoding=source.encoding, dtype=str, header=0, index_col=False,
        keep_default_na=False, na_filter=False, chunksize=chunk_rows, engine="c", skip_blank_lines=True,
    )
    with reader:
        yield from reader


def read_chunks(source: InputFile, chunk_rows: int = 100_000) -> Iterator[pd.DataFrame]:
    """The data rows as text DataFrames, columns named as in the header, indexed by 1-based row number.

    pyarrow reads well-formed files several times faster than pandas; when it refuses a file, pandas
    takes over from the first row not yet handed out, so every row comes exactly once either way.
    """
    first_row = 1
    if source.quotes_pair_up:
        try:
            for chunk in _arrow_chunks(source):
                yield _finish(source, chunk, first_row)
                first_row += len(chunk)
            return
        except (pa.ArrowInvalid, UnicodeDecodeError):
            pass
    handed_out = first_row - 1
    row = 1
    try:
        for chunk in _pandas_chunks(source, chunk_rows):
            chunk = _finish(source, chunk, row)
            row += len(chunk)
            chunk = chunk[chunk.index > handed_out]
            if len(chunk):
                yield chunk
    except pd.errors.ParserError as exc:
        detail = str(exc).split("C error: ", 1)[-1].strip().rstrip(".")
        raise InputError(f"{source.name}: broken CSV near data row {row}: {detail}") from None
