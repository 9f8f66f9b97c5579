"""A streaming .xlsx writer of text cells: a few cell formats, column widths, a frozen header, an autofilter, notes.

Written here rather than taken from a library because none was both fast and well kept enough for
errors.xlsx at a migration's size (a quarter of a million rows to fix x 27 columns). Measured earlier on
29,303 rows x 23 columns: XlsxWriter (constant_memory) 9.9 s, spending 7-20 us a cell in `write_string`;
pyexcelerate 5.2 s and without per-cell formats; rustpy-xlsxwriter 0.85 s, but a young binding kept by one
person that holds the whole sheet in memory as dicts, without per-cell formats. This writer makes a row's
XML with one f-string per cell. Measured with the same workbook.py on the 100,000-row benchmark's errors.csv
(29,303 rows x 27 columns, `python -m bench.bench_xlsx --workbook`): 1.1 s against XlsxWriter's 6.5 s, about
6 times faster; 296,439 rows (the messy million's) in about 10 s.

It writes what XlsxWriter writes in constant_memory mode for the same calls, part for part and byte for byte
(docProps' timestamps aside): inline strings, control characters as `_xHHHH_`, `xml:space="preserve"` for
leading or trailing space, strings cut at Excel's 32,767 UTF-16 units, cell formats numbered in the order
of their first use, notes as comments with their VML shapes. tests/report/test_xlsx_stream.py proves it
against XlsxWriter on generated text, which is the proof that Excel opens these files as it opens
XlsxWriter's. The parts around the rows are xlsx_parts.py's.

A worksheet's XML names its used range and its columns' formats before its rows. When the caller promises the
range (errors.xlsx's second process knows how many rows are to fix), the sheet's XML goes into its zip member
as the rows come, once the first rows have numbered the columns' formats, and a thread deflates it while the
next rows are formatted (zlib lets go of the interpreter's lock while it works): on the messy million, 1.7 s of
deflating is no longer added after the rows. Otherwise the rows are spooled to an unnamed temporary file (as
XlsxWriter's constant_memory mode does) and copied into the member when the sheet ends. Either way memory stays
flat whatever the number of rows. A sheet's member is written when the sheet ends, before the parts that
describe the workbook (a member is whole before the next begins); XlsxWriter writes those parts first, openpyxl
writes [Content_Types].xml last: a package's order is its central directory's business, not its readers'.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO

from importer.report.xlsx_parts import (
    DEFAULT_COLUMN_PX,
    MAIN_NS,
    MAX_ROWS,
    PACKAGE_REL_NS,
    REL_NS,
    ROOT_RELS,
    THEME,
    XML_DECLARATION,
    CellFormat,
    Formats,
    NoteBox,
    app_xml,
    cell_range,
    column_name,
    comments_xml,
    content_types,
    core_xml,
    escape,
    vml_xml,
    workbook_rels,
    workbook_xml,
)

#: Deflate level of the parts. Measured on the 100,000-row benchmark's errors.xlsx (29,303 rows x 27 columns,
#: 51 MB of sheet XML; bench/bench_xlsx.py --workbook): level 1 writes the workbook in 1.1 s and 7.1 MB,
#: zipfile's default 6 (XlsxWriter's) in 1.4 s and 5.7 MB. The sheets' XML is repetitive enough that level 1
#: already shrinks it 7 times; a fifth of the time is worth more to a migration than a quarter of the size.
COMPRESS_LEVEL = 1
#: Excel's limit of a cell's text, in UTF-16 units.
MAX_TEXT = 32_767
_DIGIT_PX, _PADDING_PX = 7, 5  #: how Excel turns a column's width in characters into pixels
#: Rows whose XML is joined and written at once (about a megabyte at 23 columns).
_ROWS_PER_WRITE = 512
#: XML handed to a sheet's deflating thread at once. The thread takes the interpreter's lock back after each
#: zlib call, waiting up to the switch interval while the rows are formatted (see workbook._SWITCH_INTERVAL):
#: the fewer pieces, the fewer waits.
_BYTES_PER_HANDOVER = 8 << 20
#: Pieces the thread may lag behind by.
_HANDOVERS_QUEUED = 2
#: A stand-in between a row's values when the row is searched once for anything a cell would need escaped:
#: neither a space nor a character escaped, so what the search finds is always in a real value.
_SEPARATOR = "\ue000"
#: Characters that send a row to the per-value check: those escaped, and every white space but the plain
#: space (str.isspace's, which `xml:space="preserve"` depends on), wherever they are; a plain space is looked
#: for at the values' edges only.
_ROW_SPECIAL = re.compile("[&<>\x00-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufffe\uffff]")
_EDGE_SPACES = (" " + _SEPARATOR, _SEPARATOR + " ")
#: Anything in one value that needs the slow path (_cell_text).
_CELL_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_|^\s|\s\Z")
_ESCAPE_OF_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut(text: str) -> str:
    """Text cut to Excel's limit without splitting a character beyond U+FFFF (XlsxWriter's rule)."""
    length = 0
    for index, char in enumerate(text):
        length += 2 if ord(char) > 0xFFFF else 1
        if length > MAX_TEXT:
            return text[:index]
    return text


def _cell_text(value: str) -> str:
    """The `<t>` element's text and opening for one value: the slow path, exact for any text."""
    if len(value) > MAX_TEXT // 2 and _utf16_len(value) > MAX_TEXT:
        value = _cut(value)
    value = _ESCAPE_OF_ESCAPE.sub(r"_x005F\1", value)  # a literal `_x0041_` must not read as an escape
    value = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", value)
    value = value.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    preserve = bool(value) and (value[0].isspace() or value[-1].isspace())
    return ('<t xml:space="preserve">' if preserve else "<t>") + escape(value)


class Sheet:
    """One worksheet: rows written in order, row 0 first, each row's cells as XML, into the package as they come
    or spooled until the sheet ends (see the module's docstring)."""

    def __init__(self, book: XlsxStream, number: int, name: str, widths: Sequence[float],
                 formats: Sequence[CellFormat], other_columns: CellFormat, extent: tuple[int, int] | None) -> None:
        self.number = number  #: the sheet's place in the workbook, 1 for the first
        self.name = name
        self._book = book
        if extent is not None and min(extent) < 1:
            raise ValueError("a sheet's promised rows and columns are at least 1 each")
        #: the range its cells will span, when promised (see the module's docstring)
        self._promised = cell_range(0, 0, extent[0] - 1, extent[1] - 1) if extent is not None else None
        self._column_xml = ""  #: the `<cols>` element, made once the columns' formats are numbered
        self._formats = list(formats)
        self._other = other_columns
        #: a column's width in pixels, as Excel converts a width in characters
        self._px = [int(w * _DIGIT_PX + 0.5) + _PADDING_PX for w in widths]
        self._prefixes: list[str] = []
        self._unsettled = 1  #: 0 once every column of `formats` has its middle part (see _settled)
        #: the `s=...` middle of a column's cells once its format has a number (numbered on first use)
        self._middles: list[str | None] = []
        self._spool: IO[bytes] | None = None  #: the rows' XML, when it cannot go to the member yet
        self._member: _Deflating | None = None  #: the sheet's zip member, when its XML goes there as it comes
        self._written = False  #: its member whole in the package
        self._lines: list[str] = []
        self._pending: tuple[int, Sequence[str], Mapping[int, CellFormat]] | None = None
        self._next_row = 0
        self.rows: tuple[int, int] | None = None  #: first and last row holding a cell
        self.columns: tuple[int, int] | None = None  #: first and last column holding a cell
        self.notes: dict[tuple[int, int], str] = {}  #: a note's text by its cell's (row, column)
        self.autofilter_range: tuple[int, int] | None = None

    def write_row(self, values: Sequence[str], special: Mapping[int, CellFormat] | None = None) -> int:
        """The next row: each value in its column's format, an empty value left out; a column in `special`
        takes that format instead and is written even when empty (a column past the values is not written).
        The row's number (0 for the first)."""
        row = self._next_row
        if row >= MAX_ROWS:
            raise ValueError(f"a worksheet holds {MAX_ROWS} rows")
        self._next_row += 1
        if special and max(special) >= len(values):
            special = {i: f for i, f in special.items() if i < len(values)}
        if not special and not any(values):
            return row  # nothing to write; nor does it end the previous row, as in XlsxWriter
        # The previous row's XML is made only now, as XlsxWriter makes it when the next row starts: the
        # formats are numbered in the order their cells are made, and the numbering must be the same.
        if self._pending is not None:
            self._render(*self._pending)
        self._pending = (row, values, special or {})
        return row

    def note(self, row: int, column: int, text: str) -> bool:
        """A note (comment) on a cell; False if its text is over Excel's limit, and nothing is written."""
        if _utf16_len(text) > MAX_TEXT:
            return False
        self.notes[row, column] = text
        self._extend(row, column)
        return True

    def autofilter(self, last_row: int, last_column: int) -> None:
        """An autofilter from A1 to the given cell."""
        self.autofilter_range = (last_row, last_column)

    def _extend(self, row: int, column: int) -> None:
        rows, columns = self.rows, self.columns
        self.rows = (row, row) if rows is None else (min(rows[0], row), max(rows[1], row))
        self.columns = (column, column) if columns is None else (min(columns[0], column), max(columns[1], column))

    def _settled(self, columns: int) -> bool:
        """Whether the formats of the first `columns` columns all have their numbers; if so, each of these
        columns has its cells' middle part at hand (making them now numbers nothing)."""
        if self._unsettled <= 0 and columns <= len(self._formats):
            return True
        known = self._book.middles
        if any(f not in known for f in self._formats) or (columns > len(self._formats) and self._other not in known):
            return False
        every = max(columns, len(self._formats))
        self._grow(every)
        for i in range(every):
            if self._middles[i] is None:
                self._column_middle(i)
        self._unsettled = 0
        return True

    def _grow(self, columns: int) -> None:
        """Cell-reference prefixes for this many columns; their formats are numbered on first use."""
        while len(self._prefixes) < columns:
            self._prefixes.append(f'<c r="{column_name(len(self._prefixes))}')
            self._middles.append(None)

    def _column_middle(self, column: int) -> str:
        middle = self._middles[column]
        if middle is None:
            own = self._formats[column] if column < len(self._formats) else self._other
            middle = self._middles[column] = self._book.middle(own)
        return middle

    def _render(self, row: int, values: Sequence[str], special: Mapping[int, CellFormat]) -> None:
        # The hot loop (once per cell of errors.xlsx): a list lookup for the cell's opening and one f-string;
        # the row is searched once for anything that needs escaping, and in the rare row that does, each
        # value is searched again to escape only those that need it.
        r = str(row + 1)
        middles, prefixes = self._middles, self._prefixes
        if len(values) > len(prefixes):
            self._grow(len(values))
        joined = _SEPARATOR.join(values)
        plain = (len(joined) <= MAX_TEXT // 2 and not _ROW_SPECIAL.search(joined) and "_x" not in joined
                 and joined[:1] != " " and joined[-1:] != " " and _EDGE_SPACES[0] not in joined
                 and _EDGE_SPACES[1] not in joined)
        mids: list[str | None] | None = None
        empty_special = False
        if plain and self._settled(len(values)):
            # Every format this row can use is numbered already (every row but the first few): no numbering
            # to do in cell order, so one comprehension makes the row.
            mids = middles
            if special:
                known = self._book.middles
                mids = middles.copy()
                for i, own in special.items():
                    middle = known.get(own)
                    if middle is None:  # a format first used here: numbered in cell order, below
                        mids = None
                        break
                    mids[i] = middle
                    empty_special = empty_special or not values[i]
        # (the prefixes and formats can run past the row's values: zip stops at its last value)
        if mids is not None and not empty_special:
            cells = [f"{p}{r}{m}<t>{v}</t></is></c>" for p, m, v in zip(prefixes, mids, values, strict=False) if v]
        elif mids is not None:  # a special cell is empty, and written all the same
            cells = [f"{p}{r}{m}<t>{v}</t></is></c>"
                     for i, (p, m, v) in enumerate(zip(prefixes, mids, values, strict=False)) if v or i in special]
        else:
            cells = []
            special_middle = self._book.middle
            for i, value in enumerate(values):
                cell_format = special.get(i)
                if cell_format is not None:
                    middle = special_middle(cell_format)
                elif value:
                    middle = middles[i] or self._column_middle(i)
                else:
                    continue
                if plain or (len(value) <= MAX_TEXT // 2 and not _CELL_SPECIAL.search(value)):
                    text = "<t>" + value
                else:
                    text = _cell_text(value)
                cells.append(f"{prefixes[i]}{r}{middle}{text}</t></is></c>")
        if not cells:
            return
        # The used range: only a row that could widen it is searched for its first and last cell.
        columns, rows = self.columns, self.rows
        if columns is None or columns[0] > 0:
            self._extend(row, next(i for i, v in enumerate(values) if v or i in special))
        if columns is None or len(values) - 1 > columns[1]:
            self._extend(row, next(i for i in range(len(values) - 1, -1, -1) if values[i] or i in special))
        elif rows is not None and row > rows[1]:  # rows come in order: only the last one moves
            self.rows = (rows[0], row)
        self._lines.append(f'<row r="{r}">{"".join(cells)}</row>')
        if len(self._lines) >= _ROWS_PER_WRITE:
            self._flush()

    def _flush(self) -> None:
        if self._member is None and self._spool is None:
            self._begin()
        data = "".join(self._lines).encode("utf-8")
        self._lines.clear()
        if self._member is not None:
            self._member.write(data)
        elif self._spool is not None:
            self._spool.write(data)

    def _begin(self) -> None:
        """Where the rows go: into the member at once, when the range is promised, the columns' formats are
        numbered already (the `<cols>` that heads the rows then numbers nothing out of XlsxWriter's order) and
        the sheets before are in the package; else to the spool, until the sheet is written."""
        if (self._promised is not None and self._numbers_nothing()
                and all(s._written for s in self._book.sheets[:self.number - 1])):  # one member at a time
            self._column_xml = self._cols_xml()
            self._member = _Deflating(self._book.member(self))
            self._member.write(self._head(self._promised, has_rows=True))
        else:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())

    def end(self) -> None:
        """No more rows: the sheet's member is written whole now, if that numbers no format out of XlsxWriter's
        order (it makes a sheet's last row and `<cols>` when the workbook closes, after the later sheets'
        rows); else when the workbook ends (finish)."""
        if not self._written and self._numbers_nothing():
            self.finish()

    def finish(self) -> None:
        """The last row's XML and the sheet's member written whole. Raises ValueError if the rows span other
        than the range promised."""
        if self._written:
            return
        try:
            if self._pending is not None:
                self._render(*self._pending)
                self._pending = None
            if self._lines or (self._member is None and self._spool is None):
                self._flush()
            if self._member is not None:
                if self._dimension() != self._promised:
                    raise ValueError(f"sheet {self.name!r}: its cells span {self._dimension()}, "
                                     f"not the {self._promised} promised")
                self._member.write(self._tail())
                self._member.close()
            else:
                self._column_xml = self._cols_xml()
                with self._book.member(self) as member:
                    member.write(self._head(self._dimension(), has_rows=self.rows is not None))
                    if self._spool is not None:
                        self._spool.seek(0)
                        shutil.copyfileobj(self._spool, member, 1 << 20)
                    member.write(self._tail())
            self._written = True
        finally:
            self.close()

    def _numbers_nothing(self) -> bool:
        """Whether the columns' formats, and those of the row not yet made, are all numbered already."""
        known = self._book.formats.index
        if any(f not in known for f in self._formats):
            return False
        if self._pending is None:
            return True
        _, values, special = self._pending
        return (all(f in known for f in special.values())
                and (self._other in known or not any(values[len(self._formats):])))

    def _cols_xml(self) -> str:
        if not self._px:
            return ""
        entries: list[str] = []
        start = 0
        for i in range(1, len(self._px) + 1):
            if i < len(self._px) and self._px[i] == self._px[start] and self._formats[i] == self._formats[start]:
                continue
            px = self._px[start]
            width = f"{(px * 256 // _DIGIT_PX) / 256.0:.16g}"
            style = self._book.formats.number(self._formats[start])
            custom = ' customWidth="1"' if px != DEFAULT_COLUMN_PX else ""
            entries.append(f'<col min="{start + 1}" max="{i}" width="{width}" style="{style}"{custom}/>')
            start = i
        return f"<cols>{''.join(entries)}</cols>"

    def _dimension(self) -> str:
        if self.rows is None or self.columns is None:
            return "A1"
        return cell_range(self.rows[0], self.columns[0], self.rows[1], self.columns[1])

    def _head(self, dimension: str, *, has_rows: bool) -> bytes:
        tab = ' tabSelected="1"' if self.number == 1 else ""
        return (f'{XML_DECLARATION}<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><dimension ref="{dimension}"/>'
                f'<sheetViews><sheetView{tab} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>'
                f'<sheetFormatPr defaultRowHeight="15"/>{self._column_xml}'
                f'{"<sheetData>" if has_rows else "<sheetData/>"}').encode()

    def _tail(self) -> bytes:
        tail = "</sheetData>" if self.rows is not None else ""
        if self.autofilter_range is not None:
            tail += f'<autoFilter ref="{cell_range(0, 0, *self.autofilter_range)}"/>'
        tail += '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
        if self.notes:
            tail += '<legacyDrawing r:id="rId1"/>'
        return f"{tail}</worksheet>".encode()

    def close(self) -> None:
        """Lets go of the spool, and of the member with its thread (the member is not whole unless finished)."""
        if self._spool is not None:
            self._spool.close()
        if self._member is not None:
            self._member.abandon()

    def column_px(self, column: int) -> int:
        return self._px[column] if column < len(self._px) else DEFAULT_COLUMN_PX


class XlsxStream:
    """An .xlsx workbook written into a binary stream: add sheets, write their rows, close."""

    def __init__(self, stream: IO[bytes], note_box: NoteBox, compress_level: int = COMPRESS_LEVEL) -> None:
        self._note_box = note_box
        self.formats = Formats()
        self.sheets: list[Sheet] = []
        self._zip = zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compress_level)
        #: the part of a cell's XML between its reference and its text, by format
        self.middles: dict[CellFormat, str] = {}

    def middle(self, cell_format: CellFormat) -> str:
        """The part of a cell's XML between its reference and its text; its format numbered on first use."""
        found = self.middles.get(cell_format)
        if found is None:
            found = self.middles[cell_format] = (
                f'" s="{self.formats.number(cell_format)}" t="inlineStr"><is>')
        return found

    def __enter__(self) -> XlsxStream:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.close()
        else:
            self._abandon()

    def _abandon(self) -> None:
        """After an error, which throws the stream away: what is open let go without a word."""
        for sheet in self.sheets:
            sheet.close()
        with contextlib.suppress(Exception):
            self._zip.close()

    def add_sheet(self, name: str, widths: Sequence[float], formats: Sequence[CellFormat],
                  other_columns: CellFormat, extent: tuple[int, int] | None = None) -> Sheet:
        """A sheet whose columns have these widths (in characters, each at least 1) and formats; columns
        past them take `other_columns` for the cells written in them and Excel's default width. `extent`: the
        rows and columns its cells will span from A1, if known (its XML is then written as its rows come).
        The sheet before it ends (see Sheet.end)."""
        if len(widths) != len(formats) or any(w < 1 for w in widths):
            raise ValueError("one width of at least 1 character and one format per column")
        if self.sheets:
            self.sheets[-1].end()
        sheet = Sheet(self, len(self.sheets) + 1, name, widths, formats, other_columns, extent)
        self.sheets.append(sheet)
        return sheet

    def member(self, sheet: Sheet) -> IO[bytes]:
        """The zip member a sheet's XML is written into."""
        # force_zip64: a sheet's XML can pass 4 GB, which a zip member's size field needs zip64 for.
        return self._zip.open(f"xl/worksheets/sheet{sheet.number}.xml", "w", force_zip64=True)

    def close(self) -> None:
        """Every part of the package: the sheets' (each written when it ended), then the others in XlsxWriter's
        order."""
        try:
            for sheet in self.sheets:
                sheet.finish()
        except BaseException:
            self._abandon()
            raise
        noted = [s for s in self.sheets if s.notes]
        with self._zip as z:
            def put(name: str, text: str) -> None:
                z.writestr(name, text.encode("utf-8"))

            def put_pieces(name: str, pieces: Iterator[str]) -> None:
                with z.open(name, "w") as member:
                    for piece in pieces:
                        member.write(piece.encode("utf-8"))

            put("[Content_Types].xml", content_types(len(self.sheets), len(noted)))
            put("_rels/.rels", ROOT_RELS)
            put("xl/_rels/workbook.xml.rels", workbook_rels(len(self.sheets)))
            put("xl/workbook.xml", workbook_xml([(s.name, s.autofilter_range) for s in self.sheets]))
            data_id, shape_id = 1, 1024
            for number, sheet in enumerate(noted, start=1):
                put_pieces(f"xl/drawings/vmlDrawing{number}.vml",
                    vml_xml(sheet.notes, sheet.column_px, data_id, shape_id, self._note_box))
                blocks = (1024 + len(sheet.notes)) // 1024
                data_id, shape_id = data_id + blocks, shape_id + 1024 * blocks
            for number, sheet in enumerate(noted, start=1):
                put_pieces(f"xl/comments{number}.xml", comments_xml(sheet.notes, self._note_box))
            put("xl/styles.xml", self.formats.styles_xml(notes=bool(noted)))
            put("xl/theme/theme1.xml", THEME)
            for number, sheet in enumerate(noted, start=1):
                put(f"xl/worksheets/_rels/sheet{sheet.number}.xml.rels",
                    f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE_REL_NS}">'
                    f'<Relationship Id="rId1" Type="{REL_NS}/vmlDrawing" Target="../drawings/vmlDrawing{number}.vml"/>'
                    f'<Relationship Id="rId2" Type="{REL_NS}/comments" Target="../comments{number}.xml"/>'
                    "</Relationships>")
            put("docProps/core.xml", core_xml(datetime.now(UTC)))
            put("docProps/app.xml", app_xml([s.name for s in self.sheets]))


class _Deflating:
    """A zip member written by a thread of its own: zlib deflates without the interpreter's lock, so the
    thread that formats the rows goes on meanwhile. An error of the thread (a full disk) is raised by the next
    write, or by close."""

    def __init__(self, member: IO[bytes]) -> None:
        self._member = member
        self._pieces: list[bytes] = []
        self._size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(_HANDOVERS_QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xlsx-deflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._member.write(data)
                except BaseException as exc:  # handed to the writing thread, which raises it
                    self._error = exc

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._pieces.append(data)
        self._size += len(data)
        if self._size >= _BYTES_PER_HANDOVER:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._pieces:
            self._queue.put(b"".join(self._pieces))
            self._pieces.clear()
            self._size = 0

    def _stop(self) -> None:
        """Waits for the thread to have written what it was given."""
        if self._thread.is_alive():
            self._hand_over()
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """The member whole: what is queued written, then its sizes and checksum."""
        self._stop()
        if self._error is not None:
            raise self._error
        self._member.close()

    def abandon(self) -> None:
        """The thread stopped and the member let go, whole or not (an error has ended the workbook)."""
        self._stop()
        with contextlib.suppress(Exception):
            self._member.close()
