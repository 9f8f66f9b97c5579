"""A streaming .xlsx writer of text cells: a few cell formats, column widths, a frozen header, an autofilter, notes.

Written here rather than taken from a library because no library was both fast and well kept enough for
errors.xlsx at a migration's size (300,000 rows to fix x 23 columns, about 7 million cells). Measured on the
same 29,303 x 23 rows: XlsxWriter (constant_memory) 9.9 s, spending 7-20 µs a cell in `write_string`;
pyexcelerate 5.2 s and without per-cell formats; rustpy-xlsxwriter 0.85 s but a young binding kept by one
person that holds the whole sheet in memory as dicts, without per-cell formats. This writer builds each row's
XML with a few string operations per cell and is several times faster than XlsxWriter (bench/bench_xlsx.py
--workbook gives the figures, BENCHMARKS.md keeps them).

It writes what XlsxWriter writes in constant_memory mode for the same calls, part for part and byte for byte
(docProps' timestamps aside): inline strings, control characters as `_xHHHH_`, `xml:space="preserve"` for
leading or trailing space, strings cut at Excel's 32,767 UTF-16 units, cell formats numbered in the order
of their first use, notes as comments with their VML shapes. tests/report/test_xlsx_stream.py proves it
against XlsxWriter on generated text, which is the proof that Excel opens these files as it opens
XlsxWriter's; the theme part (xlsx_theme.xml) is Office's default theme as XlsxWriter writes it.

A worksheet's XML names its used range and its columns' formats before its rows, and neither is known until
the last row: each sheet's rows are spooled to an unnamed temporary file (as XlsxWriter's constant_memory
mode does) and copied into the zip member at the end, so memory stays flat whatever the number of rows.
"""

from __future__ import annotations

import importlib.resources
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

#: Deflate level of the parts. Measured on the 100,000-row benchmark's errors.xlsx (25,000 rows x 23
#: columns, bench/bench_xlsx.py --workbook): level 1 deflates the sheets several times faster than the
#: default 6 for a file about a third larger; the sheets' XML is so repetitive that level 6 buys little.
COMPRESS_LEVEL = 1
#: Excel's limits: rows and columns of a sheet, UTF-16 units of a cell's text.
MAX_ROWS, MAX_COLUMNS, MAX_TEXT = 1_048_576, 16_384, 32_767
_DEFAULT_COLUMN_PX, _ROW_PX, _DIGIT_PX, _PADDING_PX = 64, 20, 7, 5
#: Rows whose XML is joined and written to the spool at once (about a megabyte at 23 columns).
_ROWS_PER_WRITE = 512
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
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_NOTE_FONT = '<sz val="8"/><color indexed="81"/>'


@dataclass(frozen=True, slots=True)
class CellFormat:
    """A cell format: always the Text number format (`@`), optionally bold, filled and bottom-bordered."""

    fill: str | None = None  #: a background colour as "#RRGGBB"
    bold: bool = False
    bottom_border: bool = False


def column_name(column: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    name, number = "", column + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        name = chr(65 + remainder) + name
    return name


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


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "&#xA;"))


def _cell_text(value: str) -> str:
    """The `<t>` element's text and opening for one value: the slow path, exact for any text."""
    if len(value) > MAX_TEXT // 2 and _utf16_len(value) > MAX_TEXT:
        value = _cut(value)
    value = _ESCAPE_OF_ESCAPE.sub(r"_x005F\1", value)  # a literal `_x0041_` must not read as an escape
    value = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", value)
    value = value.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    preserve = bool(value) and (value[0].isspace() or value[-1].isspace())
    return ('<t xml:space="preserve">' if preserve else "<t>") + _escape(value)


def _cell_range(first_row: int, first_column: int, last_row: int, last_column: int, absolute: bool = False) -> str:
    mark = "$" if absolute else ""
    start = f"{mark}{column_name(first_column)}{mark}{first_row + 1}"
    end = f"{mark}{column_name(last_column)}{mark}{last_row + 1}"
    return start if start == end else f"{start}:{end}"


class _Formats:
    """The workbook's cell formats, numbered as Excel's cellXfs in the order of their first use."""

    def __init__(self) -> None:
        self.index: dict[CellFormat, int] = {}

    def number(self, cell_format: CellFormat) -> int:
        found = self.index.get(cell_format)
        if found is None:
            found = self.index[cell_format] = len(self.index) + 1  # 0 is the workbook's default format
        return found

    def styles_xml(self, notes: bool) -> str:
        used = sorted(self.index, key=self.index.__getitem__)
        fonts: dict[bool, int] = {False: 0}
        fills: dict[str, int] = {}
        borders: dict[bool, int] = {False: 0}
        xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>']
        for f in used:
            font = fonts.setdefault(f.bold, len(fonts))
            fill = fills.setdefault(f.fill, len(fills) + 2) if f.fill else 0
            border = borders.setdefault(f.bottom_border, len(borders))
            applied = ' applyNumberFormat="1"' + (' applyFont="1"' if font else "") + (
                ' applyFill="1"' if fill else "") + (' applyBorder="1"' if border else "")
            xfs.append(f'<xf numFmtId="164" fontId="{font}" fillId="{fill}" borderId="{border}" xfId="0"{applied}/>')
        font_xml = ['<font>' + ("<b/>" if bold else "") + '<sz val="11"/><color theme="1"/><name val="Calibri"/>'
                    '<family val="2"/><scheme val="minor"/></font>' for bold in fonts]
        if notes:
            font_xml.append(f'<font>{_NOTE_FONT}<name val="Tahoma"/><family val="2"/></font>')
        fill_xml = ['<fill><patternFill patternType="none"/></fill>',
                    '<fill><patternFill patternType="gray125"/></fill>',
                    *(f'<fill><patternFill patternType="solid"><fgColor rgb="FF{colour.lstrip("#").upper()}"/>'
                      '<bgColor indexed="64"/></patternFill></fill>' for colour in fills)]
        border_xml = ['<border>' + ('<left/><right/><top/><bottom style="thin"><color auto="1"/></bottom>'
                                    if bottom else "<left/><right/><top/><bottom/>") + '<diagonal/></border>'
                      for bottom in borders]
        number_formats = '<numFmts count="1"><numFmt numFmtId="164" formatCode="@"/></numFmts>' if used else ""
        return (f'{_XML_DECLARATION}<styleSheet xmlns="{_MAIN_NS}">{number_formats}'
                f'<fonts count="{len(font_xml)}">{"".join(font_xml)}</fonts>'
                f'<fills count="{len(fill_xml)}">{"".join(fill_xml)}</fills>'
                f'<borders count="{len(border_xml)}">{"".join(border_xml)}</borders>'
                '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
                f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
                '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
                '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
                'defaultPivotStyle="PivotStyleLight16"/></styleSheet>')


class Sheet:
    """One worksheet: rows written in order, row 0 first, each row's cells spooled as XML."""

    def __init__(self, book: XlsxStream, name: str, widths: Sequence[float], formats: Sequence[CellFormat],
                 other_columns: CellFormat) -> None:
        self.name = name
        self._book = book
        self._formats = list(formats)
        self._other = other_columns
        #: a column's width in pixels, as Excel converts a width in characters
        self._px = [int(w * _DIGIT_PX + 0.5) + _PADDING_PX for w in widths]
        self._prefixes: list[str] = []
        self._unsettled = 1  #: 0 once every column of `formats` has its middle part (see _settled)
        #: the `s=...` middle of a column's cells once its format has a number (numbered on first use)
        self._middles: list[str | None] = []
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
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
        self._spool.write("".join(self._lines).encode("utf-8"))
        self._lines.clear()

    def finish(self) -> None:
        """The last row's XML (made at the end, as XlsxWriter makes it), then the columns' formats numbered."""
        if self._pending is not None:
            self._render(*self._pending)
            self._pending = None
        self._flush()
        self._column_xml = self._cols_xml()

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
            custom = ' customWidth="1"' if px != _DEFAULT_COLUMN_PX else ""
            entries.append(f'<col min="{start + 1}" max="{i}" width="{width}" style="{style}"{custom}/>')
            start = i
        return f"<cols>{''.join(entries)}</cols>"

    def write_xml(self, stream: IO[bytes], selected: bool, drawing: bool) -> None:
        if self.rows is None or self.columns is None:
            dimension = "A1"
        else:
            dimension = _cell_range(self.rows[0], self.columns[0], self.rows[1], self.columns[1])
        tab = ' tabSelected="1"' if selected else ""
        stream.write(
            f'{_XML_DECLARATION}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><dimension ref="{dimension}"/>'
            f'<sheetViews><sheetView{tab} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/>{self._column_xml}'
            f'{"<sheetData>" if self.rows is not None else "<sheetData/>"}'.encode())
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, stream, 1 << 20)
        self._spool.close()
        tail = "</sheetData>" if self.rows is not None else ""
        if self.autofilter_range is not None:
            tail += f'<autoFilter ref="{_cell_range(0, 0, *self.autofilter_range)}"/>'
        tail += '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
        if drawing:
            tail += '<legacyDrawing r:id="rId1"/>'
        stream.write(f"{tail}</worksheet>".encode())

    def close(self) -> None:
        self._spool.close()

    def column_px(self, column: int) -> int:
        return self._px[column] if column < len(self._px) else _DEFAULT_COLUMN_PX


@dataclass(frozen=True, slots=True)
class NoteBox:
    """How notes look: their author and their box's size as a multiple of Excel's default (128 x 74 px)."""

    author: str
    x_scale: float = 1.0
    y_scale: float = 1.0


class XlsxStream:
    """An .xlsx workbook written into a binary stream: add sheets, write their rows, close."""

    def __init__(self, stream: IO[bytes], note_box: NoteBox, compress_level: int = COMPRESS_LEVEL) -> None:
        self._stream = stream
        self._note_box = note_box
        self._level = compress_level
        self.formats = _Formats()
        self.sheets: list[Sheet] = []
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
            for sheet in self.sheets:
                sheet.close()

    def add_sheet(self, name: str, widths: Sequence[float], formats: Sequence[CellFormat],
                  other_columns: CellFormat) -> Sheet:
        """A sheet whose columns have these widths (in characters, each at least 1) and formats; columns
        past them take `other_columns` for the cells written in them and Excel's default width."""
        if len(widths) != len(formats) or any(w < 1 for w in widths):
            raise ValueError("one width of at least 1 character and one format per column")
        sheet = Sheet(self, name, widths, formats, other_columns)
        self.sheets.append(sheet)
        return sheet

    def close(self) -> None:
        """Every part of the package, in XlsxWriter's order."""
        for sheet in self.sheets:
            sheet.finish()
        noted = [s for s in self.sheets if s.notes]
        with zipfile.ZipFile(self._stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=self._level) as z:
            def put(name: str, text: str) -> None:
                z.writestr(name, text.encode("utf-8"))

            put("[Content_Types].xml", self._content_types(len(noted)))
            put("_rels/.rels", _ROOT_RELS)
            put("xl/_rels/workbook.xml.rels", self._workbook_rels())
            for number, sheet in enumerate(self.sheets, start=1):
                # force_zip64: a sheet's XML can pass 4 GB, which a zip member's size field needs zip64 for.
                with z.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True) as member:
                    sheet.write_xml(member, selected=number == 1, drawing=bool(sheet.notes))
            put("xl/workbook.xml", self._workbook_xml())
            data_id, shape_id = 1, 1024
            for number, sheet in enumerate(noted, start=1):
                put(f"xl/drawings/vmlDrawing{number}.vml", _vml(sheet, data_id, shape_id, self._note_box))
                blocks = (1024 + len(sheet.notes)) // 1024
                data_id, shape_id = data_id + blocks, shape_id + 1024 * blocks
            for number, sheet in enumerate(noted, start=1):
                put(f"xl/comments{number}.xml", _comments(sheet, self._note_box))
            put("xl/styles.xml", self.formats.styles_xml(notes=bool(noted)))
            put("xl/theme/theme1.xml", _THEME)
            for number, sheet in enumerate(noted, start=1):
                index = self.sheets.index(sheet) + 1
                put(f"xl/worksheets/_rels/sheet{index}.xml.rels",
                    f'{_XML_DECLARATION}<Relationships xmlns="{_PACKAGE_REL_NS}">'
                    f'<Relationship Id="rId1" Type="{_REL_NS}/vmlDrawing" Target="../drawings/vmlDrawing{number}.vml"/>'
                    f'<Relationship Id="rId2" Type="{_REL_NS}/comments" Target="../comments{number}.xml"/>'
                    "</Relationships>")
            put("docProps/core.xml", _core_xml(datetime.now(UTC)))
            put("docProps/app.xml", self._app_xml())

    def _content_types(self, comment_files: int) -> str:
        office = "application/vnd.openxmlformats-officedocument"
        parts = [
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>']
        if comment_files:
            parts.append(f'<Default Extension="vml" ContentType="{office}.vmlDrawing"/>')
        parts.append(
            f'<Override PartName="/docProps/app.xml" ContentType="{office}.extended-properties+xml"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{office}.spreadsheetml.styles+xml"/>'
            f'<Override PartName="/xl/theme/theme1.xml" ContentType="{office}.theme+xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{office}.spreadsheetml.sheet.main+xml"/>')
        parts += [f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
                  f'ContentType="{office}.spreadsheetml.worksheet+xml"/>' for n in range(1, len(self.sheets) + 1)]
        parts += [f'<Override PartName="/xl/comments{n}.xml" ContentType="{office}.spreadsheetml.comments+xml"/>'
                  for n in range(1, comment_files + 1)]
        return (f'{_XML_DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                f'{"".join(parts)}</Types>')

    def _workbook_rels(self) -> str:
        n = len(self.sheets)
        sheets = "".join(f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                         for i in range(1, n + 1))
        return (f'{_XML_DECLARATION}<Relationships xmlns="{_PACKAGE_REL_NS}">{sheets}'
                f'<Relationship Id="rId{n + 1}" Type="{_REL_NS}/theme" Target="theme/theme1.xml"/>'
                f'<Relationship Id="rId{n + 2}" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>')

    def _workbook_xml(self) -> str:
        sheets = "".join(f'<sheet name="{_escape_attribute(s.name)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, s in enumerate(self.sheets, start=1))
        names = []
        for index, sheet in enumerate(self.sheets):
            if sheet.autofilter_range is not None:
                where = f"{_quoted(sheet.name)}!{_cell_range(0, 0, *sheet.autofilter_range, absolute=True)}"
                names.append((f"_filterdatabase::{where.lstrip(chr(39)).lower()}", index, where))
        names.sort(key=lambda n: n[0])  # Excel's order, which XlsxWriter follows
        defined = "".join(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" hidden="1">'
                          f"{_escape(where)}</definedName>" for _, index, where in names)
        return (f'{_XML_DECLARATION}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
                '<fileVersion appName="xl" lastEdited="4" lowestEdited="4" rupBuild="4505"/>'
                '<workbookPr defaultThemeVersion="124226"/><bookViews><workbookView xWindow="240" yWindow="15" '
                f'windowWidth="16095" windowHeight="9660"/></bookViews><sheets>{sheets}</sheets>'
                f'{f"<definedNames>{defined}</definedNames>" if defined else ""}'
                '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')

    def _app_xml(self) -> str:
        n = len(self.sheets)
        titles = "".join(f"<vt:lpstr>{_escape(s.name)}</vt:lpstr>" for s in self.sheets)
        return (f'{_XML_DECLARATION}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
                "<Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>"
                '<HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr>'
                f"</vt:variant><vt:variant><vt:i4>{n}</vt:i4></vt:variant></vt:vector></HeadingPairs>"
                f'<TitlesOfParts><vt:vector size="{n}" baseType="lpstr">{titles}</vt:vector></TitlesOfParts>'
                "<Company></Company><LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
                "<HyperlinksChanged>false</HyperlinksChanged><AppVersion>12.0000</AppVersion></Properties>")


_ROOT_RELS = (
    f'{_XML_DECLARATION}<Relationships xmlns="{_PACKAGE_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{_PACKAGE_REL_NS}/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL_NS}/extended-properties" Target="docProps/app.xml"/></Relationships>')
_THEME = importlib.resources.files(__package__ or "importer.report").joinpath("xlsx_theme.xml").read_text("utf-8")


def _quoted(name: str) -> str:
    """A sheet name as a reference spells it: quoted when it holds more than word characters and dots (the
    names this project gives; XlsxWriter also quotes names that read as cell references, which these are not)."""
    return f"'{name}'" if re.search(r"[^\w.]", name) else name


def _core_xml(now: datetime) -> str:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f'{_XML_DECLARATION}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<dc:creator></dc:creator><cp:lastModifiedBy></cp:lastModifiedBy>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>')


def _comments(sheet: Sheet, box: NoteBox) -> str:
    notes = []
    for (row, column), text in sorted(sheet.notes.items()):
        space = ' xml:space="preserve"' if text and (text[0].isspace() or text[-1].isspace()) else ""
        notes.append(f'<comment ref="{column_name(column)}{row + 1}" authorId="0"><text><r><rPr>'
                     f'{_NOTE_FONT}<rFont val="Tahoma"/><family val="2"/></rPr><t{space}>{_escape(text)}</t>'
                     "</r></text></comment>")
    return (f'{_XML_DECLARATION}<comments xmlns="{_MAIN_NS}"><authors><author>{_escape(box.author)}</author>'
            f'</authors><commentList>{"".join(notes)}</commentList></comments>')


def _vml(sheet: Sheet, data_id: int, shape_id: int, box: NoteBox) -> str:
    count = len(sheet.notes)
    ids = ",".join(str(data_id + i) for i in range(count // 1024 + 1))
    width, height = int(0.5 + 128 * box.x_scale), int(0.5 + 74 * box.y_scale)
    shapes = []
    for z, (row, column) in enumerate(sorted(sheet.notes), start=1):
        anchor, left, top = _note_position(sheet, row, column, width, height)
        style = (f"position:absolute;margin-left:{left * 0.75:.15g}pt;margin-top:{top * 0.75:.15g}pt;"
                 f"width:{width * 0.75:.15g}pt;height:{height * 0.75:.15g}pt;z-index:{z};visibility:hidden")
        shapes.append(
            f'<v:shape id="_x0000_s{shape_id + z}" type="#_x0000_t202" style="{style}" fillcolor="#ffffe1" '
            'o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
            '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto"><div style="text-align:left">'
            '</div></v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
            f"<x:Anchor>{anchor}</x:Anchor><x:AutoFill>False</x:AutoFill><x:Row>{row}</x:Row>"
            f"<x:Column>{column}</x:Column></x:ClientData></v:shape>")
    return ('<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:x="urn:schemas-microsoft-com:office:excel"><o:shapelayout v:ext="edit">'
            f'<o:idmap v:ext="edit" data="{ids}"/></o:shapelayout><v:shapetype id="_x0000_t202" '
            'coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/>'
            f'<v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>{"".join(shapes)}</xml>')


def _note_position(sheet: Sheet, row: int, column: int, width: int, height: int) -> tuple[str, int, int]:
    """Where Excel puts a note's box by default: beside its cell, one row up (Excel's and XlsxWriter's rule,
    edges included); the anchor and the box's top-left corner in pixels."""
    if row == 0:
        y1, top_row = 2, 0
    elif row >= MAX_ROWS - 3:
        y1 = 14 if row == MAX_ROWS - 1 else 16
        top_row = {MAX_ROWS - 3: MAX_ROWS - 7, MAX_ROWS - 2: MAX_ROWS - 6, MAX_ROWS - 1: MAX_ROWS - 5}[row]
    else:
        y1, top_row = 10, row - 1
    if column >= MAX_COLUMNS - 3:
        x1, left_column = 49, {MAX_COLUMNS - 3: MAX_COLUMNS - 6, MAX_COLUMNS - 2: MAX_COLUMNS - 5,
                               MAX_COLUMNS - 1: MAX_COLUMNS - 4}[column]
    else:
        x1, left_column = 15, column + 1
    x_abs = sum(sheet.column_px(c) for c in range(left_column)) + x1
    y_abs = _ROW_PX * top_row + y1
    while x1 >= sheet.column_px(left_column):
        x1 -= sheet.column_px(left_column)
        left_column += 1
    while y1 >= _ROW_PX:
        y1 -= _ROW_PX
        top_row += 1
    right_column, bottom_row = left_column, top_row
    x2, y2 = width + x1, height + y1
    while x2 >= sheet.column_px(right_column):
        x2 -= sheet.column_px(right_column)
        right_column += 1
    while y2 >= _ROW_PX:
        y2 -= _ROW_PX
        bottom_row += 1
    anchor = f"{left_column}, {x1}, {top_row}, {y1}, {right_column}, {x2}, {bottom_row}, {y2}"
    return anchor, x_abs, y_abs
