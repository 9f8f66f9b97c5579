"""Workbooks (.xlsx/.xls) and archives (.gz, single-file .zip) → CSV text the reader reads like any export.

The reader makes several passes over a file by its path (encoding check, header, rows, the error report),
so a workbook's sheet or an archive's member is turned once into UTF-8 CSV text held in an anonymous
in-memory file (Linux memfd) that every pass can open by path: nothing is unpacked to disk, and no
customer data lands in a temporary folder. Where memfd does not exist, a private temporary file is used.

Kinds are told apart by their first bytes, not by the file's name (a renamed file still reads). Workbook
cells become the text a person sees in the cell: numbers without a trailing `.0`, leading zeros kept
where the cell holds text, dates as `M/D/YYYY` (Excel's default for the United States), booleans as
TRUE/FALSE. Every row of the sheet counts except blank rows (as blank lines of a CSV are skipped) and
title lines of one cell above the header, which report writers put there.

Nothing is unpacked whole before its size is known: a workbook's parts and an archive's member are checked
against Bounds (unpacked size, and compression ratio: real exports compress 5-15x, bombs 1000x) from the
zip directory, and every byte unpacked is counted as it comes, so a lying directory or a .gz (which has no
trustworthy size) stops at the bound instead of filling memory.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import gzip
import hashlib
import io
import itertools
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import python_calamine

from importer.config import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNPACKED_MB, PrepareConfig
from importer.errors import ConfigError, InputError

_GZIP = b"\x1f\x8b"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (BIFF8 in an OLE2 container)
#: Members a zip workbook (xlsx, xlsm, ods) always has; a plain archive has none of them.
_WORKBOOK_MEMBERS = ("[Content_Types].xml", "mimetype")
#: Entries an archiver adds beside the file itself (macOS resource forks).
_ARCHIVE_JUNK = ("__MACOSX/",)
_BLOCK = 1 << 20
#: Rows looked at for title lines above the header ("Customer list", "Printed 3/5/2026").
_TITLE_LOOKAHEAD = 10
#: A cell longer than this makes its row invalid and is never sent (nor kept): no name or address is
#: that long; an unclosed quote that swallowed thousands of lines is. A workbook's cells are cut just
#: past it as they are read, so that the reader still sees them too long.
MAX_FIELD_CHARS = 1 << 16
#: Below this many unpacked bytes the ratio is not checked: a small file of like lines packs very tightly.
_RATIO_FLOOR = 32 << 20


@dataclass(frozen=True)
class Bounds:
    """What a workbook or archive may unpack to: in all, and as a multiple of its packed size."""

    max_unpacked_mb: int = DEFAULT_MAX_UNPACKED_MB
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def of(cls, config: PrepareConfig) -> Bounds:
        return cls(config.max_unpacked_mb, config.max_ratio)

    @property
    def max_unpacked(self) -> int:
        return self.max_unpacked_mb << 20

    def check(self, name: str, unpacked: int, packed: int) -> None:
        """InputError when `unpacked` bytes (from `packed` ones) pass a bound."""
        if unpacked > self.max_unpacked:
            raise InputError(f"{name}: unpacks to more than {self.max_unpacked_mb:,} MB (--max-unpacked-mb "
                             f"{self.max_unpacked_mb}); raise it if the file is a genuine export")
        if unpacked > _RATIO_FLOOR and unpacked > self.max_ratio * max(packed, 1):
            raise InputError(f"{name}: unpacks to more than {self.max_ratio:g} times its packed size, as a zip "
                             f"bomb does (--max-compression-ratio {self.max_ratio:g}); raise it if the file is a "
                             "genuine export")


class _Counted(io.RawIOBase):
    """A readable stream that counts the bytes read through it (the packed side of a .gz)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream, self.count = stream, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        self.count += len(data)
        return len(data)


def kind_of(head: bytes) -> str:
    """'gzip', 'zip' (a workbook or an archive), 'xls' or 'text', from a file's first bytes."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZIP):
        return "zip"
    if head.startswith(_OLE2):
        return "xls"
    return "text"


def cell_text(value: Any) -> str:
    """A workbook cell as the text the dealer sees in it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel shows at most 15 significant digits; 2134.0 is "2134", never "2134.0".
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return f"{value.month}/{value.day}/{value.year}"
        seconds = f":{value.second:02d}" if value.second else ""
        return f"{value.month}/{value.day}/{value.year} {value.hour}:{value.minute:02d}{seconds}"
    if isinstance(value, datetime.date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, datetime.time):
        seconds = f":{value.second:02d}" if value.second else ""
        return f"{value.hour}:{value.minute:02d}{seconds}"
    return "" if value is None else str(value)


def _sheet(book: python_calamine.CalamineWorkbook, name: str, sheet: str | None) -> python_calamine.CalamineSheet:
    if sheet is None:
        if not book.sheet_names:
            raise InputError(f"{name}: the workbook has no sheet")
        return book.get_sheet_by_index(0)
    if sheet not in book.sheet_names:
        raise InputError(f"{name}: no sheet {sheet!r} (sheets: {', '.join(map(repr, book.sheet_names))})")
    return book.get_sheet_by_name(sheet)


def _without_title_rows(rows: Iterator[list[str]]) -> Iterator[list[str]]:
    """Rows from the header on: a report's title lines above it (one cell each) are dropped."""
    head = list(itertools.islice(rows, _TITLE_LOOKAHEAD))
    widest = max((sum(1 for c in row if c) for row in head), default=0)
    start = 0
    while widest >= 3 and start < len(head) and sum(1 for c in head[start] if c) == 1:
        start += 1
    yield from head[start:]
    yield from rows


def workbook_rows(source: str | Path | IO[bytes], name: str, sheet: str | None = None) -> Iterator[list[str]]:
    """The rows of a workbook's first sheet (or `sheet`) as text, blank rows and title lines skipped."""
    try:
        book = python_calamine.CalamineWorkbook.from_object(source)
        try:
            rows = _sheet(book, name, sheet).iter_rows()
            cut = MAX_FIELD_CHARS + 1
            cells = ([v[:cut] if type(v) is str else cell_text(v)[:cut] for v in row] for row in rows)
            yield from _without_title_rows(row for row in cells if any(row))
        finally:
            book.close()
    except InputError:
        raise
    except Exception as exc:  # calamine's errors have no common base class beyond Exception
        raise InputError(f"{name}: cannot read the workbook ({exc.__class__.__name__}: {str(exc)[:200]})") from None


def _write_csv(rows: Iterable[list[str]], stream: IO[bytes]) -> int:
    """Rows as UTF-8 CSV; the header row fully quoted so that no delimiter in a header name is sniffed."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
    count = 0
    try:
        rows = iter(rows)
        header = next(rows, None)
        if header is None:
            return 0
        csv.writer(text, quoting=csv.QUOTE_ALL).writerow(header)
        writer = csv.writer(text)
        for row in rows:
            writer.writerow(row)
            count += 1
    finally:
        text.flush()
        text.detach()
    return count


@contextlib.contextmanager
def _memory_file() -> Iterator[Path]:
    """A file in memory that can be opened by path many times (memfd), else a private temporary file."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        descriptor = memfd("mk-import", getattr(os, "MFD_CLOEXEC", 0))
        try:
            path = Path(f"/proc/self/fd/{descriptor}")
            if path.exists():
                yield path
                return
        finally:
            os.close(descriptor)
    with tempfile.TemporaryDirectory(prefix="mk-import-") as folder:
        path = Path(folder) / "input.csv"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        yield path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _zip_member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith(_ARCHIVE_JUNK)]
    if len(members) != 1:
        listed = ", ".join(m.filename for m in members[:5]) or "none"
        raise InputError(f"{name}: a .zip must hold exactly one file; it holds {len(members)} ({listed})")
    return members[0]


def _is_zip_workbook(archive: zipfile.ZipFile) -> bool:
    names = set(archive.namelist())
    return any(member in names for member in _WORKBOOK_MEMBERS)


def _check_directory(archive: zipfile.ZipFile, name: str, bounds: Bounds,
                     members: list[zipfile.ZipInfo] | None = None) -> None:
    """The sizes the zip directory declares, against the bounds: before anything is unpacked."""
    members = archive.infolist() if members is None else members
    bounds.check(name, sum(m.file_size for m in members), sum(m.compress_size for m in members))
    for member in members:
        bounds.check(f"{name}:{member.filename}", member.file_size, member.compress_size)


def _check_workbook(archive: zipfile.ZipFile, name: str, bounds: Bounds) -> None:
    """A zip workbook's parts, within the bounds, before the workbook library reads any of them whole.

    The directory's sizes are checked first; then every part is unpacked once as a stream and counted, and
    its checksum checked: a directory that understates a part (so that the library, trusting it, would
    unpack far more) is refused as damaged. Python's zip reader never gives more than the declared size.
    """
    _check_directory(archive, name, bounds)
    packed = sum(m.compress_size for m in archive.infolist())
    total = 0
    for member in archive.infolist():
        with archive.open(member) as stream:
            while block := stream.read(_BLOCK):
                total += len(block)
                bounds.check(name, total, packed)


def _counted_blocks(stream: io.BufferedIOBase | IO[bytes], name: str, bounds: Bounds, first: int,
                    packed: Callable[[], int]) -> Iterator[bytes]:
    """The stream's blocks, stopped at the bounds: `first` bytes already read, `packed()` the packed size so far."""
    total = first
    while block := stream.read(_BLOCK):
        total += len(block)
        bounds.check(name, total, packed())
        yield block


def _copy_text(head: bytes, stream: io.BufferedIOBase | IO[bytes], name: str, sheet: str | None,
               out: IO[bytes], bounds: Bounds, packed: Callable[[], int]) -> None:
    """Copy an archive member to `out` as text: a workbook is converted, text copied as it is; every
    byte unpacked is counted against the bounds (`packed()`: the packed bytes read so far)."""
    kind = kind_of(head)
    if kind == "text":
        if sheet is not None:
            raise ConfigError(f"{name}: --sheet {sheet!r} given, but the file is not a workbook")
        out.write(head)
        for block in _counted_blocks(stream, name, bounds, len(head), packed):
            out.write(block)
        return
    if kind == "gzip":
        raise InputError(f"{name}: an archive inside an archive; give the inner file")
    # A workbook is read at random places, so it is held in memory (it is compressed: a few MB).
    data = io.BytesIO()
    data.write(head)
    for block in _counted_blocks(stream, name, bounds, len(head), packed):
        data.write(block)
    data.seek(0)
    if kind == "zip":
        with zipfile.ZipFile(data) as inner:
            if not _is_zip_workbook(inner):
                raise InputError(f"{name}: an archive inside an archive; give the inner file")
            _check_workbook(inner, name, bounds)
        data.seek(0)
    _write_csv(workbook_rows(data, name, sheet), out)


def _convert(path: Path, name: str, kind: str, sheet: str | None, out: IO[bytes], bounds: Bounds) -> None:
    if kind == "xls":
        _write_csv(workbook_rows(path, name, sheet), out)
        return
    if kind == "gzip":
        # A .gz says its unpacked size modulo 4 GiB only: the bytes are counted as they come instead.
        with path.open("rb") as raw:
            counted = _Counted(raw)
            with gzip.GzipFile(fileobj=io.BufferedReader(counted, _BLOCK), mode="rb") as stream:
                _copy_text(stream.read(8), stream, name, sheet, out, bounds, lambda: counted.count)
        return
    with zipfile.ZipFile(path) as archive:
        if _is_zip_workbook(archive):
            _check_workbook(archive, name, bounds)
            _write_csv(workbook_rows(path, name, sheet), out)
            return
        member = _zip_member(archive, name)
        where = f"{name}:{member.filename}"
        _check_directory(archive, where, bounds, [member])
        with archive.open(member) as stream:
            _copy_text(stream.read(8), stream, where, sheet, out, bounds, lambda: member.compress_size)


def as_text(path: Path, name: str, stack: contextlib.ExitStack, sheet: str | None = None,
            bounds: Bounds | None = None) -> tuple[Path, str | None]:
    """(a path to CSV text, the SHA-256 of the file as given) for a workbook or an archive.

    A text file is returned as it is, with None: the reader hashes it on its own pass.
    """
    with path.open("rb") as stream:
        kind = kind_of(stream.read(8))
    if kind == "text":
        if sheet is not None:
            raise ConfigError(f"{name}: --sheet {sheet!r} given, but the file is not a workbook")
        return path, None
    text = stack.enter_context(_memory_file())
    try:
        with text.open("wb") as out:
            _convert(path, name, kind, sheet, out, bounds or Bounds())
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: a damaged {kind} archive ({exc.__class__.__name__})") from None
    return text, _sha256(path)
