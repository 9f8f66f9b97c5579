"""The parts of an .xlsx package around its sheets' rows: styles, workbook, relationships, content types, notes.

Each part as XlsxWriter writes it for the same workbook (see xlsx_stream.py, which writes the rows and puts
the parts in the package).
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

#: Excel's rows and columns of a sheet; a column's default width and a row's default height, in pixels.
MAX_ROWS, MAX_COLUMNS = 1_048_576, 16_384
DEFAULT_COLUMN_PX, ROW_PX = 64, 20
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
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


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "&#xA;"))


def cell_range(first_row: int, first_column: int, last_row: int, last_column: int, absolute: bool = False) -> str:
    mark = "$" if absolute else ""
    start = f"{mark}{column_name(first_column)}{mark}{first_row + 1}"
    end = f"{mark}{column_name(last_column)}{mark}{last_row + 1}"
    return start if start == end else f"{start}:{end}"


class Formats:
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
        return (f'{XML_DECLARATION}<styleSheet xmlns="{MAIN_NS}">{number_formats}'
                f'<fonts count="{len(font_xml)}">{"".join(font_xml)}</fonts>'
                f'<fills count="{len(fill_xml)}">{"".join(fill_xml)}</fills>'
                f'<borders count="{len(border_xml)}">{"".join(border_xml)}</borders>'
                '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
                f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
                '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
                '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
                'defaultPivotStyle="PivotStyleLight16"/></styleSheet>')


@dataclass(frozen=True, slots=True)
class NoteBox:
    """How notes look: their author and their box's size as a multiple of Excel's default (128 x 74 px)."""

    author: str
    x_scale: float = 1.0
    y_scale: float = 1.0


def content_types(sheets: int, comment_files: int) -> str:
    """[Content_Types].xml."""
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
              f'ContentType="{office}.spreadsheetml.worksheet+xml"/>' for n in range(1, sheets + 1)]
    parts += [f'<Override PartName="/xl/comments{n}.xml" ContentType="{office}.spreadsheetml.comments+xml"/>'
              for n in range(1, comment_files + 1)]
    return (f'{XML_DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'{"".join(parts)}</Types>')


def workbook_rels(n: int) -> str:
    """xl/_rels/workbook.xml.rels for n sheets."""
    sheets = "".join(f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                     for i in range(1, n + 1))
    return (f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE_REL_NS}">{sheets}'
            f'<Relationship Id="rId{n + 1}" Type="{REL_NS}/theme" Target="theme/theme1.xml"/>'
            f'<Relationship Id="rId{n + 2}" Type="{REL_NS}/styles" Target="styles.xml"/></Relationships>')


def workbook_xml(sheets: Sequence[tuple[str, tuple[int, int] | None]]) -> str:
    """xl/workbook.xml: the sheets' names, and each one's autofilter (its last row and column) if any."""
    listed = "".join(f'<sheet name="{_escape_attribute(name)}" sheetId="{i}" r:id="rId{i}"/>'
                     for i, (name, _) in enumerate(sheets, start=1))
    names = []
    for index, (name, autofilter) in enumerate(sheets):
        if autofilter is not None:
            where = f"{_quoted(name)}!{cell_range(0, 0, *autofilter, absolute=True)}"
            names.append((f"_filterdatabase::{where.lstrip(chr(39)).lower()}", index, where))
    names.sort(key=lambda n: n[0])  # Excel's order, which XlsxWriter follows
    defined = "".join(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" hidden="1">'
                      f"{escape(where)}</definedName>" for _, index, where in names)
    return (f'{XML_DECLARATION}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
            '<fileVersion appName="xl" lastEdited="4" lowestEdited="4" rupBuild="4505"/>'
            '<workbookPr defaultThemeVersion="124226"/><bookViews><workbookView xWindow="240" yWindow="15" '
            f'windowWidth="16095" windowHeight="9660"/></bookViews><sheets>{listed}</sheets>'
            f'{f"<definedNames>{defined}</definedNames>" if defined else ""}'
            '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')


def app_xml(names: Sequence[str]) -> str:
    """docProps/app.xml."""
    n = len(names)
    titles = "".join(f"<vt:lpstr>{escape(name)}</vt:lpstr>" for name in names)
    return (f'{XML_DECLARATION}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
            'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            "<Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>"
            '<HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr>'
            f"</vt:variant><vt:variant><vt:i4>{n}</vt:i4></vt:variant></vt:vector></HeadingPairs>"
            f'<TitlesOfParts><vt:vector size="{n}" baseType="lpstr">{titles}</vt:vector></TitlesOfParts>'
            "<Company></Company><LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
            "<HyperlinksChanged>false</HyperlinksChanged><AppVersion>12.0000</AppVersion></Properties>")


ROOT_RELS = (
    f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE_REL_NS}">'
    f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{PACKAGE_REL_NS}/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{REL_NS}/extended-properties" Target="docProps/app.xml"/></Relationships>')
#: Office's default theme, as XlsxWriter writes it (package data beside this module).
THEME = importlib.resources.files(__package__ or "importer.report").joinpath("xlsx_theme.xml").read_text("utf-8")


def _quoted(name: str) -> str:
    """A sheet name as a reference spells it: quoted when it holds more than word characters and dots (the
    names this project gives; XlsxWriter also quotes names that read as cell references, which these are not)."""
    return f"'{name}'" if re.search(r"[^\w.]", name) else name


def core_xml(now: datetime) -> str:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f'{XML_DECLARATION}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<dc:creator></dc:creator><cp:lastModifiedBy></cp:lastModifiedBy>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>')


def comments_xml(notes: Mapping[tuple[int, int], str], box: NoteBox) -> Iterator[str]:
    """A sheet's notes as xl/commentsN.xml (their text, by (row, column)), piece by piece: up to 20,000 notes
    are written without the whole part in memory."""
    yield (f'{XML_DECLARATION}<comments xmlns="{MAIN_NS}"><authors><author>{escape(box.author)}</author>'
           "</authors><commentList>")
    for (row, column), text in sorted(notes.items()):
        space = ' xml:space="preserve"' if text and (text[0].isspace() or text[-1].isspace()) else ""
        yield (f'<comment ref="{column_name(column)}{row + 1}" authorId="0"><text><r><rPr>'
               f'{_NOTE_FONT}<rFont val="Tahoma"/><family val="2"/></rPr><t{space}>{escape(text)}</t>'
               "</r></text></comment>")
    yield "</commentList></comments>"


def vml_xml(notes: Mapping[tuple[int, int], str], column_px: Callable[[int], int], data_id: int, shape_id: int,
            box: NoteBox) -> Iterator[str]:
    """A sheet's notes' shapes as xl/drawings/vmlDrawingN.vml, piece by piece; `column_px`: a column's width
    in pixels."""
    ids = ",".join(str(data_id + i) for i in range(len(notes) // 1024 + 1))
    width, height = int(0.5 + 128 * box.x_scale), int(0.5 + 74 * box.y_scale)
    yield ('<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
           'xmlns:x="urn:schemas-microsoft-com:office:excel"><o:shapelayout v:ext="edit">'
           f'<o:idmap v:ext="edit" data="{ids}"/></o:shapelayout><v:shapetype id="_x0000_t202" '
           'coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/>'
           '<v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>')
    lefts = [0]  # each column's left edge in pixels, summed once rather than over the columns for every note

    def left_of(column: int) -> int:
        while len(lefts) <= column:
            lefts.append(lefts[-1] + column_px(len(lefts) - 1))
        return lefts[column]

    for z, (row, column) in enumerate(sorted(notes), start=1):
        anchor, left, top = _note_position(column_px, left_of, row, column, width, height)
        style = (f"position:absolute;margin-left:{left * 0.75:.15g}pt;margin-top:{top * 0.75:.15g}pt;"
                 f"width:{width * 0.75:.15g}pt;height:{height * 0.75:.15g}pt;z-index:{z};visibility:hidden")
        yield (f'<v:shape id="_x0000_s{shape_id + z}" type="#_x0000_t202" style="{style}" fillcolor="#ffffe1" '
               'o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
               '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto"><div style="text-align:left">'
               '</div></v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
               f"<x:Anchor>{anchor}</x:Anchor><x:AutoFill>False</x:AutoFill><x:Row>{row}</x:Row>"
               f"<x:Column>{column}</x:Column></x:ClientData></v:shape>")
    yield "</xml>"


def _cell_at(cell: int, offset: int, size_of: Callable[[int], int]) -> tuple[int, int]:
    """The column (or row) `offset` pixels past the start of `cell`, and the offset within it."""
    while offset >= size_of(cell):
        offset -= size_of(cell)
        cell += 1
    return cell, offset


def _note_position(column_px: Callable[[int], int], left_of: Callable[[int], int], row: int, column: int,
                   width: int, height: int) -> tuple[str, int, int]:
    """Where Excel puts a note's box by default: beside its cell, one row up (Excel's and XlsxWriter's rule,
    edges included); the anchor and the box's top-left corner in pixels (`left_of`: a column's left edge)."""
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
    x_abs = left_of(left_column) + x1
    y_abs = ROW_PX * top_row + y1
    left_column, x1 = _cell_at(left_column, x1, column_px)
    top_row, y1 = _cell_at(top_row, y1, lambda _: ROW_PX)
    right_column, x2 = _cell_at(left_column, width + x1, column_px)
    bottom_row, y2 = _cell_at(top_row, height + y1, lambda _: ROW_PX)
    anchor = f"{left_column}, {x1}, {top_row}, {y1}, {right_column}, {x2}, {bottom_row}, {y2}"
    return anchor, x_abs, y_abs
