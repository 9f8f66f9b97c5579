"""errors.xlsx: errors.csv's rows in a workbook whose every cell is text, for people who fix rows in Excel.

Excel opening errors.csv turns `0000082` into 82 and long numbers into 8.2E+11; in this workbook every
cell is a text cell with the Text number format (so a value typed over it stays text too), nothing is a
formula, the header is frozen, the report columns are highlighted, and each cell a reason concerns is filled
and carries a note (a comment) saying what is wrong with it and what to change.
The values are the file's own: the quote errors.csv puts before a formula-like value is not needed here.
Past a worksheet's 1,048,575 data rows the rows go on in another sheet (errors 2, ...), each with the
header, so that every row to fix is in the workbook.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from importer.read.columns import EXPORT_KEY_COLUMN, KEY_QUOTE
from importer.read.formulas import undefuse_text
from importer.report.folders import private_binary_file
from importer.report.reasons import Reason, ReasonParser
from importer.report.xlsx_parts import CellFormat, NoteBox
from importer.report.xlsx_stream import Sheet, XlsxStream

#: Rows a worksheet holds, header included (Excel's limit).
MAX_SHEET_ROWS = 1_048_576
#: Cell notes (comments) written at most: each costs the workbook a shape, and Excel grows slow to open with
#: many more; past them the cells to fix keep their fill, and the reasons stay in the mk_ columns.
MAX_NOTES = 20_000
#: Who a note is from, and its box: wider and taller than Excel's default, to show a reason and its fix.
NOTE_BOX = NoteBox("mk-import", x_scale=2.2, y_scale=1.6)
TEXT = CellFormat()
HEAD = CellFormat(fill="#E8EAED", bold=True, bottom_border=True)
REASON = CellFormat(fill="#FFF2CC")
REASON_HEAD = CellFormat(fill="#FFD966", bold=True, bottom_border=True)
FLAGGED = CellFormat(fill="#F4CCCC")
#: Rows to fix from which errors.xlsx is written by a second process, beside the page (see beside()): at a
#: migration's 300,000 rows it takes 10 s, and the page and summary 4-5 s of them; for fewer rows a second
#: interpreter's start (half a second) costs more than it saves.
BESIDE_FROM = 50_000
#: Distinct sets of reasons whose notes are kept (the messy million's 296,439 rows to fix have 61).
_KEPT_NOTES = 10_000
log = logging.getLogger("mk_import.report")

#: What makes the workbook in a stream: XlsxStream, or a writer answering the same calls.
Book = Callable[[IO[bytes], NoteBox], XlsxStream]


def write_errors_xlsx(path: Path, errors_csv: Path, sheet_rows: int = MAX_SHEET_ROWS, book: Book = XlsxStream) -> int:
    """errors.csv's rows as errors.xlsx; the count of data rows written. `book` makes the workbook (another
    writer with the same calls can be given, as the test comparing with XlsxWriter does)."""
    with errors_csv.open(encoding="utf-8-sig", newline="") as source:
        return _write_lines(path, source, sheet_rows, book)


def _write_lines(path: Path, lines: Iterable[str], sheet_rows: int = MAX_SHEET_ROWS, book: Book = XlsxStream,
                 expected: int | None = None) -> int:
    """`expected`: the count of rows `lines` holds, when known (each sheet's XML is then written as it comes);
    if the lines hold another, ValueError and no workbook."""
    with private_binary_file(path) as stream:
        rows = csv.reader(lines)
        header = [undefuse_text(c) for c in next(rows, [])]
        with book(stream, NOTE_BOX) as workbook:
            written = _write_sheets(workbook, header, rows, sheet_rows - 1, expected)
    return written


def _write_sheets(book: XlsxStream, header: list[str], rows: Iterator[list[str]], per_sheet: int,
                  expected: int | None) -> int:
    is_report = [c.startswith("mk_") for c in header]
    formats = [REASON if report else TEXT for report in is_report]
    widths = [40 if report else min(60, max(10, len(column) + 2))
              for column, report in zip(header, is_report, strict=True)]
    head_formats = {i: REASON_HEAD if report else HEAD for i, report in enumerate(is_report)}
    originals = [c for c, report in zip(header, is_report, strict=True) if not report]
    parser = ReasonParser(originals)
    where = {c: i for i, c in enumerate(header)}
    code_at, message_at, warnings_at = (where.get(c) for c in ("mk_error_code", "mk_error_message", "mk_warnings"))
    key_at = where.get(EXPORT_KEY_COLUMN)

    notes_of: dict[tuple[Reason, ...], tuple[dict[int, str], dict[int, CellFormat]]] = {}

    def notes_for(code: str, message: str, warnings: str) -> tuple[dict[int, str], dict[int, CellFormat]]:
        """Each concerned column's note for a row's reasons, in column order (the order notes are counted in),
        and the fill of those cells. Rows with the same reasons (most of a messy file's) share them."""
        found = parser.reasons(code, message, warnings)
        shared = notes_of.get(tuple(found))
        if shared is None:
            concerned: dict[int, list[str]] = {}
            for r in found:
                if r.column is not None and r.column in where:
                    concerned.setdefault(where[r.column], []).append(f"{r.meaning}.\nTo fix: {r.fix}.")
            notes = {i: "\n\n".join(dict.fromkeys(concerned[i])) for i in sorted(concerned)}
            shared = (notes, dict.fromkeys(notes, FLAGGED))
            if len(notes_of) < _KEPT_NOTES:
                notes_of[tuple(found)] = shared
        return shared

    def new_sheet(number: int) -> Sheet:
        # errors.csv's rows are as long as its header, which is written in every column: with the count of
        # rows known, so is each sheet's range.
        data_rows = min(per_sheet, expected - per_sheet * (number - 1)) if expected is not None else 0
        extent = (data_rows + 1, len(header)) if data_rows > 0 and header else None
        sheet = book.add_sheet("errors" if number == 1 else f"errors {number}", widths, formats, TEXT, extent)
        sheet.write_row(header, head_formats)
        return sheet

    def field(values: list[str], at: int | None) -> str:
        return values[at] if at is not None and at < len(values) else ""

    sheets, sheet, line, written, notes = 1, new_sheet(1), 0, 0, 0
    for row in rows:
        if line == per_sheet:
            sheet.autofilter(line, max(len(header) - 1, 0))
            sheets += 1
            sheet, line = new_sheet(sheets), 0
        line += 1
        written += 1
        key = key_at if key_at is not None and key_at < len(row) else None
        # Only a cell that starts with a quote may have one to take off: most rows have none but the key's own,
        # and one search of the row finds them (a line break in a cell only sends a row the long way).
        if ("\n" + "\n".join(row)).count("\n'") > (key is not None and row[key][:1] == "'"):
            values = [undefuse_text(v) if v[:1] == "'" else v for v in row]
        else:
            values = row
            if key is not None:
                values[key] = undefuse_text(values[key])
        if key is not None:
            values[key] = values[key].removeprefix(KEY_QUOTE)  # a text cell needs no quote to stay text
        concerned, fills = notes_for(field(values, code_at), field(values, message_at), field(values, warnings_at))
        # A cell a reason concerns is filled (even when empty: the value to fill in is missing); other cells
        # take their column's format, and an empty one is not written, its column's format being Text already.
        # (A concerned column past a short row's values is not written.)
        sheet.write_row(values, fills)
        for i, text in concerned.items():
            if i < len(values) and notes < MAX_NOTES:  # the reason on the cell itself, where a person fixing it looks
                sheet.note(line, i, text)
                notes += 1
    sheet.autofilter(max(line, 1), max(len(header) - 1, 0))
    _log_sheets(written, per_sheet)
    return written


class Beside:
    """errors.xlsx by a second process that reads errors.csv while this one writes it (see beside()).

    errors.csv's writer hands over its open file and how many rows are to fix (`follow`), then the
    end of each slice of rows as it is written (`written`), and says when the file is whole (`whole`). The
    second process reads the file by a descriptor of its own with pread, up to the last end it was told (always
    between rows), so it works on the first rows while the later ones are being formatted, and this process
    never waits for it: the file is the buffer, the pipe carries only the ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.child: subprocess.Popen[str] | None = None

    def follow(self, stream: IO[bytes], rows_to_fix: int) -> None:
        if rows_to_fix < BESIDE_FROM or self.child is not None:
            return  # for fewer rows a second interpreter's start costs more than it saves
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "importer.report.workbook", "--follow", str(stream.fileno()), str(rows_to_fix),
                 str(self.path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                pass_fds=(stream.fileno(),))
        except OSError as exc:
            log.warning("errors.xlsx: no second process to write it (%s); written after the page", exc)

    def written(self, stream: IO[bytes]) -> None:
        """errors.csv is written up to where `stream` is, the end of a row: flushed to the file, and that end
        told to the second process."""
        if self.child is not None and self.child.stdin is not None:
            stream.flush()
            try:
                self.child.stdin.write(f"{stream.tell()}\n")
                self.child.stdin.flush()
            except OSError:  # it has ended: what it says when waited for decides (see beside)
                self._close_input()

    def whole(self) -> None:
        """errors.csv is whole: the second process reads to the last end it was told, then ends the workbook."""
        self._close_input()

    def _close_input(self) -> None:
        if self.child is not None and self.child.stdin is not None:
            with contextlib.suppress(OSError):
                self.child.stdin.close()
            self.child.stdin = None  # communicate() would flush it


@contextlib.contextmanager
def beside(path: Path, errors_csv: Path) -> Iterator[Beside]:
    """errors.xlsx written while the body of the `with` writes errors.csv, then the summary and the page: when
    the body's errors.csv has many rows to fix, by a second process following it (Beside), the two cores then
    working at once; else here, after the body.

    The second process writes the file as this one would (a private file under a temporary name, renamed
    when whole). Should it fail, the workbook is written here after the body from errors.csv, as it would
    have been; an error in the body stops it."""
    workbook = Beside(path)
    try:
        yield workbook
    except BaseException:
        if workbook.child is not None:
            workbook.child.kill()
            workbook.child.communicate()  # waited for, its pipes closed
        raise
    child = workbook.child
    if child is not None:
        written, problem = child.communicate()  # closes its input: errors.csv is whole by now
        if child.returncode == 0:
            _log_sheets(int(written or 0))
            return
        log.warning("errors.xlsx: its second process failed (%s); written here",
                    (problem.strip().splitlines() or [f"exit {child.returncode}"])[-1])
    write_errors_xlsx(path, errors_csv)


def _followed(descriptor: int, ends: Iterator[str]) -> Iterator[str]:
    """The lines of the CSV file at `descriptor`, read up to each end as it is told (Beside.written)."""
    done, encoding = 0, "utf-8-sig"  # the byte order mark, at the start only
    for end in ends:
        upto = int(end)
        parts = []
        while done < upto:
            part = os.pread(descriptor, upto - done, done)
            if not part:
                raise OSError(f"errors.csv ends at byte {done}, before {upto}")
            parts.append(part)
            done += len(part)
        # Each end is between rows: no character, nor quoted value, is cut in two.
        yield from io.StringIO(b"".join(parts).decode(encoding), newline="")
        encoding = "utf-8"


def _log_sheets(written: int, per_sheet: int = MAX_SHEET_ROWS - 1) -> None:
    if written > per_sheet:
        sheets = -(-written // per_sheet)
        log.info("errors.xlsx: %d rows in %d sheets (a worksheet holds %d)", written, sheets, per_sheet)


#: The interpreter's switch interval in Beside's second process, whose only other thread deflates the sheet
#: (xlsx_stream._Deflating): that thread takes the lock back after each zlib call, and at the default 5 ms it
#: waited longer than it deflated. Measured on the messy million's errors.csv (296,439 rows): 8.2 s spooled,
#: 8.1 s streamed at 5 ms, 6.5 s at 0.2 ms.
_SWITCH_INTERVAL = 0.0002

if __name__ == "__main__":  # Beside's second process: `--follow` errors.csv's descriptor, its rows, errors.xlsx's path
    sys.setswitchinterval(_SWITCH_INTERVAL)
    print(_write_lines(Path(sys.argv[4]), _followed(int(sys.argv[2]), sys.stdin), expected=int(sys.argv[3])))
