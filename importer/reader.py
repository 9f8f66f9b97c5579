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

import pandas as pd

from importer.errors import InputError
from importer.mapping import header_key

DELIMITERS = (",", "\t", "|", ";")
#: Columns that the error report adds after the original ones; a re-import drops them.
REPORT_COLUMNS = ("mk_source_row", "mk_status", "mk_error_code", "mk_error_message", "mk_warnings")
#: Characters that make a spreadsheet read a cell as a formula; the error report defuses them with a quote.
FORMULA_TRIGGERS = "=+-@\t\r'"
_BLOCK = 1 << 20


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
    sha256: str
    #: True for an errors.csv written by mk-import: its cells are unescaped and its report columns dropped.
    is_error_report: bool


def _scan(path: Path, name: str) -> tuple[str, str]:
    """(encoding, sha256) of the file, refusing empty and binary files."""
    digest = hashlib.sha256()
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
    return next(iter(decoders)), digest.hexdigest()


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
def open_input(source: str) -> Iterator[InputFile]:
    """Check and describe the input; `-` spools standard input to a private temporary file."""
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
        encoding, sha256 = _scan(path, source)
        delimiter, header = _read_header(path, source, encoding)
        is_report = {header_key(c) for c in REPORT_COLUMNS} <= {header_key(c) for c in header}
        positions = tuple(i for i, c in enumerate(header) if not (is_report and header_key(c) in REPORT_COLUMNS))
        yield InputFile(path, source, encoding, delimiter, tuple(header[i] for i in positions), positions,
                        sha256, is_report)


def _unescape(chunk: pd.DataFrame) -> pd.DataFrame:
    """Undo the error report's formula defusing: a leading quote before a trigger character goes."""
    pattern = "^'([" + FORMULA_TRIGGERS.replace("-", r"\-") + "])"
    unescaped: pd.DataFrame = chunk.apply(lambda column: column.str.replace(pattern, r"\1", regex=True))
    return unescaped


def read_chunks(source: InputFile, chunk_rows: int = 100_000) -> Iterator[pd.DataFrame]:
    """The data rows as text DataFrames, columns named as in the header, indexed by 1-based row number."""
    columns = list(source.header)
    first_row = 1
    try:
        reader = pd.read_csv(
            source.path, sep=source.delimiter, encoding=source.encoding, dtype=str, header=0, index_col=False,
            keep_default_na=False, na_filter=False, chunksize=chunk_rows, engine="c", skip_blank_lines=True,
        )
        with reader:
            for chunk in reader:
                chunk = chunk.iloc[:, list(source.positions)]
                chunk.columns = pd.Index(columns)
                chunk.index = pd.RangeIndex(first_row, first_row + len(chunk), name="source_row")
                first_row += len(chunk)
                chunk = chunk.fillna("")
                yield _unescape(chunk) if source.is_error_report else chunk
    except pd.errors.ParserError as exc:
        detail = str(exc).split("C error: ", 1)[-1].strip().rstrip(".")
        raise InputError(f"{source.name}: broken CSV near data row {first_row}: {detail}") from None
