"""errors.xlsx as report/xlsx_stream.py writes it: XlsxWriter's parts byte for byte, and read back as written."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from unittest import mock

import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from importer.report import workbook
from importer.report.workbook import write_errors_xlsx
from importer.report.xlsx_parts import column_name
from tests.report.xlsxwriter_book import XlsxWriterBook

REFERENCE = cast(Any, XlsxWriterBook)  # the same calls as XlsxStream answers, not its type

#: Text a cell can hold that XML or Excel treat specially: markup characters, quotes, control characters
#: (written as `_x0001_`), a literal `_x0041_`, spaces at the edges, characters beyond U+FFFF, lines, and
#: text past Excel's 32,767 UTF-16 units, cut (an emoji counts two).
AWKWARD = ["&<>\"'", "a & b", " leading", "trailing ", "\tx", "x\n", "\x01x\x1f", "_x0041_", "_X00aF_", "😀 ok",
           "line\r\nnext", "\u00a0nbsp", "x\u3000", "\ufffe", "=SUM(A1)", "'0000082", "0000082", "",
           "x" * 40_000, "😀" * 16_384, "a" + "😀" * 16_383]
#: Headers errors.csv has: the export's columns and the report's mk_ columns, which a reason names.
COLUMNS = ["Customer Number", "Last Name", "First Name ", "Email 1", "Cell Phone", "State", "mk_source_row",
           "mk_error_code", "mk_error_message", "mk_warnings", "mk_customer_key"]
REASONS = [("MISSING_LAST_NAME", "a person needs a last name (Last Name is empty)", ""),
           ("SAVED_WITHOUT_FIELD", "would be sent without Email 1 (not a valid email)",
            "Email 1: not a valid email: 'x'; Cell Phone: not a valid phone number: '555'"),
           ("", "", "State: not a US state: 'ZZ'"), ("", "", "")]

text = st.one_of(st.sampled_from(AWKWARD), st.text(max_size=12),
                 st.text(st.characters(codec="utf-8"), max_size=30))  # utf-8: no lone surrogates


@st.composite
def error_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(st.one_of(st.sampled_from(COLUMNS), text.filter(lambda t: len(t) < 80)),
                           min_size=1, max_size=8))
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        row = draw(st.lists(text, max_size=len(header) + 2))  # ragged: shorter or longer than the header
        code, message, warnings = draw(st.sampled_from(REASONS))
        for column, value in (("mk_error_code", code), ("mk_error_message", message), ("mk_warnings", warnings)):
            if column in header and header.index(column) < len(row):
                row[header.index(column)] = value
        rows.append(row)
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([header, *rows])
    return path


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    # The only difference allowed: when each was written.
    parts["docProps/core.xml"] = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"T", parts["docProps/core.xml"])
    return parts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(error_files(), st.integers(2, 5), st.integers(0, 4))
# a second sheet whose first row is shorter than its next (once found wrong)
@example((["Customer Number", "First Name "], [["a"], ["a"], ["b"], ["b", "c"]]), 3, 0)
# rows with nothing to write end no row (once found wrong)
@example((["mk_warnings"], [[], [], ["", "&<>\"'"], []]), 3, 0)
def test_every_part_is_what_xlsxwriter_writes_for_the_same_workbook(tmp_path_factory, file, sheet_rows, cap):
    folder = tmp_path_factory.mktemp("xlsx")
    source = _write(folder / "errors.csv", *file)
    with mock.patch.object(workbook, "MAX_NOTES", cap):  # fewer notes than cells to fix, at times
        ours = write_errors_xlsx(folder / "ours.xlsx", source, sheet_rows)
        reference = write_errors_xlsx(folder / "xlsxwriter.xlsx", source, sheet_rows, book=REFERENCE)
    assert ours == reference == len(file[1])
    _assert_same_parts(folder / "ours.xlsx", folder / "xlsxwriter.xlsx")


def _assert_same_parts(ours: Path, reference: Path) -> None:
    """The same parts, byte for byte; the sheets' first (each written when it ended, or at the end), then the
    others in XlsxWriter's order."""
    mine, theirs = _parts(ours), _parts(reference)
    sheets = [n for n in theirs if n.startswith("xl/worksheets/sheet")]
    assert sorted(list(mine)[:len(sheets)]) == sorted(sheets)
    assert list(mine)[len(sheets):] == [n for n in theirs if n not in sheets]
    for name, content in theirs.items():
        assert mine[name] == content, name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(error_files(), st.integers(2, 5), st.integers(0, 4), st.integers(1, 3))
def test_a_sheet_whose_range_is_promised_is_written_as_it_comes_and_the_same(tmp_path_factory, file, sheet_rows, cap,
                                                                              per_write):
    """errors.csv's rows are as long as its header: told their count (as Beside's second process is), each
    sheet's XML goes into the package as its rows come, and the parts are XlsxWriter's all the same."""
    from importer.report import xlsx_stream

    header, ragged = file
    rows = [(row + [""] * len(header))[:len(header)] for row in ragged]
    rows = [row for row in rows if any(row)]  # errors.csv's rows all hold something: an empty one ends no range
    folder = tmp_path_factory.mktemp("promised")
    source = _write(folder / "errors.csv", header, rows)
    with (mock.patch.object(workbook, "MAX_NOTES", cap), mock.patch.object(xlsx_stream, "_ROWS_PER_WRITE", per_write),
          source.open(encoding="utf-8", newline="") as lines):
        ours = workbook._write_lines(folder / "ours.xlsx", lines, sheet_rows, expected=len(rows))
        reference = write_errors_xlsx(folder / "xlsxwriter.xlsx", source, sheet_rows, book=REFERENCE)
    assert ours == reference == len(rows)
    _assert_same_parts(folder / "ours.xlsx", folder / "xlsxwriter.xlsx")


def test_rows_other_than_promised_leave_no_workbook(tmp_path: Path):
    from importer.report import xlsx_stream

    header = ["Customer Number", "Last Name", "mk_error_code"]
    rows = [[f"{n:07d}", "", "MISSING_LAST_NAME"] for n in range(6)]
    lines = _write(tmp_path / "errors.csv", header, rows).read_text(encoding="utf-8").splitlines(keepends=True)
    with mock.patch.object(xlsx_stream, "_ROWS_PER_WRITE", 2):
        for expected in (4, 9):
            with pytest.raises(ValueError, match=f"span A1:C7, not the A1:C{expected + 1} promised"):
                workbook._write_lines(tmp_path / "errors.xlsx", lines, expected=expected)
            assert list(tmp_path.glob("*.xlsx")) == []
            assert list(tmp_path.glob(".*")) == []


def test_the_parts_are_the_same_for_notes_past_1024_on_several_sheets(tmp_path: Path):
    """VML shapes are numbered in blocks of 1,024 per sheet: more notes than that on two sheets."""
    header = ["Customer Number", "Last Name", "Email 1", "mk_error_code", "mk_error_message", "mk_warnings"]
    rows = [[f"{n:07d}", "", f"e{n}@x", "MISSING_LAST_NAME", "Last Name is empty",
             f"Email 1: not a valid email: 'e{n}@x'"] for n in range(3000)]
    source = _write(tmp_path / "errors.csv", header, rows)
    write_errors_xlsx(tmp_path / "ours.xlsx", source, 1800)
    write_errors_xlsx(tmp_path / "xlsxwriter.xlsx", source, 1800, book=REFERENCE)
    assert b'data="1,2,3,4"' in _parts(tmp_path / "ours.xlsx")["xl/drawings/vmlDrawing1.vml"]
    _assert_same_parts(tmp_path / "ours.xlsx", tmp_path / "xlsxwriter.xlsx")


def _expected(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    """errors.csv's rows as the workbook holds them: a key without the quote errors.csv gives it."""
    key = header.index("mk_customer_key") if "mk_customer_key" in header else None
    return [header, *([v.removeprefix("'") if i == key else v for i, v in enumerate(r)] for r in rows)]


def _trimmed(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    out = [["" if v is None else str(v) for v in row] for row in rows]
    for row in out:
        while row and not row[-1]:
            row.pop()
    return out


readable = st.one_of(st.sampled_from(["&<>\"'", " leading", "trailing ", "😀 ok", "line\nnext", "0000082", "",
                                      "a  b"]),
                     st.text(st.characters(codec="utf-8"), max_size=20)
                     .filter(lambda t: not t.startswith(("'", "=", "+", "-", "@")))
                     .filter(lambda t: not any(unicodedata.category(c) == "Cc" for c in t)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.from_regex("[0-9A-Z-]{1,12}", fullmatch=True), st.lists(readable, max_size=4)),
                min_size=1, max_size=8))
def test_calamine_and_openpyxl_read_back_errors_csvs_values(tmp_path_factory, keyed):
    rows = [[key, *values] for key, values in keyed]  # every row has its key, as in errors.csv
    folder = tmp_path_factory.mktemp("read")
    header = ["Customer Number", "Last Name", "mk_customer_key", "mk_error_code", "Note"]
    source = _write(folder / "errors.csv", header, rows)
    write_errors_xlsx(folder / "errors.xlsx", source, 4)
    expected = _trimmed(_expected(header, rows))

    book = CalamineWorkbook.from_path(str(folder / "errors.xlsx"))
    by_calamine = [row for i, name in enumerate(book.sheet_names)
                   for row in book.get_sheet_by_name(name).to_python()[1 if i else 0:]]
    loaded = openpyxl.load_workbook(folder / "errors.xlsx")
    by_openpyxl = [[c.value for c in row] for i, sheet in enumerate(loaded.worksheets)
                   for row in sheet.iter_rows(min_row=1 if i == 0 else 2)]
    assert _trimmed(by_calamine) == expected
    assert _trimmed(by_openpyxl) == expected
    assert book.sheet_names == ["errors", *(f"errors {n}" for n in range(2, (len(rows) + 2) // 3 + 1))]


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_it_and_gives_back_every_value(tmp_path: Path):
    header = ["Customer Number", "Last Name", "Email 1", "mk_error_code", "mk_error_message", "mk_warnings"]
    rows = [["0000082", "", "a&b<c>@x", "MISSING_LAST_NAME", "Last Name is empty", ""],
            ["0000083", " Lee ", "søren@x", "", "", "Email 1: not a valid email: 'søren@x'"],
            ["823456789012", "Öz 😀", "", "", "", ""]]
    source = _write(tmp_path / "errors.csv", header, rows)
    write_errors_xlsx(tmp_path / "errors.xlsx", source)
    subprocess.run(["soffice", "--headless", "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1",
                    "--outdir", str(tmp_path / "out"), str(tmp_path / "errors.xlsx")],
                   check=True, capture_output=True, timeout=300, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    with (tmp_path / "out" / "errors.csv").open(encoding="utf-8", newline="") as stream:
        assert list(csv.reader(stream)) == [header, *rows]


def test_column_names_run_past_z():
    assert [column_name(c) for c in (0, 25, 26, 51, 52, 701, 702, 16_383)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA", "XFD"]


def test_a_write_that_fails_in_the_deflating_thread_is_raised_by_the_workbook_and_nothing_hangs(tmp_path: Path):
    """A full disk under the thread that deflates a streamed sheet: the error reaches the rows' writer (by its
    next write, or by the workbook's end), the thread stops, and no workbook is left."""
    import threading

    from importer.report import xlsx_stream

    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    header = ["Customer Number", "Last Name", "mk_error_code"]
    rows = [[f"{n:07d}", "", "MISSING_LAST_NAME"] for n in range(50)]
    lines = _write(tmp_path / "errors.csv", header, rows).read_text(encoding="utf-8").splitlines(keepends=True)
    # (a member without __enter__: only the streamed path, through the thread, can write to it)
    with (mock.patch.object(xlsx_stream, "_ROWS_PER_WRITE", 2),
          mock.patch.object(xlsx_stream, "_BYTES_PER_HANDOVER", 1),
          mock.patch.object(xlsx_stream.XlsxStream, "member", return_value=FullDisk()),
          pytest.raises(OSError, match="No space left")):
        workbook._write_lines(tmp_path / "errors.xlsx", lines, expected=len(rows))
    assert list(tmp_path.glob("*.xlsx")) == []
    assert [t for t in threading.enumerate() if t.name == "xlsx-deflate"] == []
