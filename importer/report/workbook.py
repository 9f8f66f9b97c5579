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

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

import xlsxwriter

from importer.read.formulas import undefuse_text
from importer.read.reader import EXPORT_KEY_COLUMN, KEY_QUOTE
from importer.report.folders import private_binary_file
from importer.report.reasons import ReasonParser

#: Rows a worksheet holds, header included (Excel's limit).
MAX_SHEET_ROWS = 1_048_576
#: Cell notes (comments) written at most: each costs the workbook a shape, and Excel grows slow to open with
#: many more; past them the cells to fix keep their fill, and the reasons stay in the mk_ columns.
MAX_NOTES = 20_000
log = logging.getLogger("mk_import.report")


def write_errors_xlsx(path: Path, errors_csv: Path, sheet_rows: int = MAX_SHEET_ROWS) -> int:
    """errors.csv's rows as errors.xlsx; the count of data rows written."""
    with errors_csv.open(encoding="utf-8-sig", newline="") as source, private_binary_file(path) as stream:
        rows = csv.reader(source)
        header = [undefuse_text(c) for c in next(rows, [])]
        # constant_memory: rows go to disk as they are written, so a large error file costs no memory.
        book = xlsxwriter.Workbook(stream, {"constant_memory": True, "strings_to_formulas": False,
                                            "strings_to_numbers": False, "strings_to_urls": False})
        try:
            written = _write_sheets(book, header, rows, sheet_rows - 1)
        finally:
            book.close()
    return written


def _write_sheets(book: xlsxwriter.Workbook, header: list[str], rows: Iterator[list[str]], per_sheet: int) -> int:
    text = book.add_format({"num_format": "@"})
    head = book.add_format({"num_format": "@", "bold": True, "bottom": 1, "bg_color": "#E8EAED"})
    reason = book.add_format({"num_format": "@", "bg_color": "#FFF2CC"})
    reason_head = book.add_format({"num_format": "@", "bold": True, "bottom": 1, "bg_color": "#FFD966"})
    flagged = book.add_format({"num_format": "@", "bg_color": "#F4CCCC"})
    is_report = [c.startswith("mk_") for c in header]
    formats = [reason if report else text for report in is_report]
    originals = [c for c, report in zip(header, is_report, strict=True) if not report]
    parser = ReasonParser(originals)
    where = {c: i for i, c in enumerate(header)}
    code_at, message_at, warnings_at = (where.get(c) for c in ("mk_error_code", "mk_error_message", "mk_warnings"))
    key_at = where.get(EXPORT_KEY_COLUMN)

    def new_sheet(number: int) -> xlsxwriter.worksheet.Worksheet:
        sheet = book.add_worksheet("errors" if number == 1 else f"errors {number}")
        for i, column in enumerate(header):
            width = min(60, max(10, len(column) + 2)) if not is_report[i] else 40
            sheet.set_column(i, i, width, formats[i])
        sheet.freeze_panes(1, 0)
        for i, column in enumerate(header):
            sheet.write_string(0, i, column, reason_head if is_report[i] else head)
        return sheet

    def field(values: list[str], at: int | None) -> str:
        return values[at] if at is not None and at < len(values) else ""

    sheets, sheet, line, written, notes = 1, new_sheet(1), 0, 0, 0
    for row in rows:
        if line == per_sheet:
            sheet.autofilter(0, 0, line, max(len(header) - 1, 0))
            sheets += 1
            sheet, line = new_sheet(sheets), 0
        line += 1
        written += 1
        # Only a value errors.csv quoted is changed (most are not): the regular expression is the cost.
        values = [undefuse_text(v) if v[:1] == "'" else v for v in row]
        if key_at is not None and key_at < len(values):
            values[key_at] = values[key_at].removeprefix(KEY_QUOTE)  # a text cell needs no quote to stay text
        concerned: dict[int, list[str]] = {}
        for r in parser.reasons(field(values, code_at), field(values, message_at), field(values, warnings_at)):
            if r.column is not None and r.column in where:
                concerned.setdefault(where[r.column], []).append(f"{r.meaning}.\nTo fix: {r.fix}.")
        for i, value in enumerate(values):
            if i in concerned:
                sheet.write_string(line, i, value, flagged)
                if notes < MAX_NOTES:  # the reason on the cell itself, where a person fixing it looks
                    sheet.write_comment(line, i, "\n\n".join(dict.fromkeys(concerned[i])),
                                        {"author": "mk-import", "x_scale": 2.2, "y_scale": 1.6})
                    notes += 1
            elif value:  # an empty cell needs no writing: its column's format is already Text
                sheet.write_string(line, i, value, formats[i] if i < len(formats) else text)
    sheet.autofilter(0, 0, max(line, 1), max(len(header) - 1, 0))
    if sheets > 1:
        log.info("errors.xlsx: %d rows in %d sheets (a worksheet holds %d)", written, sheets, per_sheet)
    return written
