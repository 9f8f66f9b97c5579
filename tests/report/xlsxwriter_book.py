"""XlsxWriter behind the calls report/xlsx_stream.py answers: the reference errors.xlsx is compared with."""

from __future__ import annotations

from typing import IO, Any

import xlsxwriter

from importer.report.xlsx_parts import CellFormat, NoteBox


class XlsxWriterBook:
    """A workbook written by XlsxWriter in constant_memory mode, as errors.xlsx was before xlsx_stream."""

    def __init__(self, stream: IO[bytes], note_box: NoteBox) -> None:
        self.book = xlsxwriter.Workbook(stream, {"constant_memory": True, "strings_to_formulas": False,
                                                 "strings_to_numbers": False, "strings_to_urls": False})
        self.note_options = {"author": note_box.author, "x_scale": note_box.x_scale, "y_scale": note_box.y_scale}
        self.formats: dict[CellFormat, Any] = {}

    def __enter__(self) -> XlsxWriterBook:
        return self

    def __exit__(self, *_: object) -> None:
        self.book.close()

    def format(self, cell_format: CellFormat) -> Any:
        if cell_format not in self.formats:
            properties: dict[str, Any] = {"num_format": "@"}
            if cell_format.bold:
                properties["bold"] = True
            if cell_format.bottom_border:
                properties["bottom"] = 1
            if cell_format.fill:
                properties["bg_color"] = cell_format.fill
            self.formats[cell_format] = self.book.add_format(properties)
        return self.formats[cell_format]

    def add_sheet(self, name, widths, formats, other_columns, extent=None):
        return _Sheet(self, self.book.add_worksheet(name), widths, formats, other_columns)


class _Sheet:
    def __init__(self, book: XlsxWriterBook, sheet: Any, widths, formats, other_columns) -> None:
        self.book, self.sheet, self.next_row = book, sheet, 0
        self.formats = [book.format(f) for f in formats]
        self.other = book.format(other_columns)
        for i, width in enumerate(widths):
            sheet.set_column(i, i, width, self.formats[i])
        sheet.freeze_panes(1, 0)

    def write_row(self, values, special=None):
        row, special = self.next_row, special or {}
        self.next_row += 1
        for i, value in enumerate(values):
            if i in special:
                self.sheet.write_string(row, i, value, self.book.format(special[i]))
            elif value:
                self.sheet.write_string(row, i, value, self.formats[i] if i < len(self.formats) else self.other)
        return row

    def note(self, row, column, text):
        return self.sheet.write_comment(row, column, text, dict(self.book.note_options)) == 0

    def autofilter(self, last_row, last_column):
        self.sheet.autofilter(0, 0, last_row, last_column)
