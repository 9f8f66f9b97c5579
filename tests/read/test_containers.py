"""Workbooks and archives: read as text like CSVs, by every command, without unpacking to disk."""

from __future__ import annotations

import datetime
import gzip
import zipfile
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
import xlwt

from importer.cli import main
from importer.read.containers import cell_text
from importer.read.reader import open_input, read_chunks
from tests.conftest import DEPARTMENT
from tests.helpers import DV_HEADER, VIN_A, dv_row, read_csv, read_jsonl, read_summary

ROWS = [DV_HEADER,
        dv_row("0042", "Ann", "Lee", "ANN@X.COM", "(310) 555-0134", zip_code="02134", vin=VIN_A, year="2020",
               make="Honda", model="Accord", mileage="12,345"),
        dv_row("0043", "Bob", "", cell="310-555-0199"),
        dv_row("0044", "Cy", "Ng", email="cy@example.com", state="california", zip_code="90210")]


def write_xlsx(path: Path, rows: list[list[str]], sheet: str = "Sheet1", *, typed: bool = False,
               first_sheet: str | None = None) -> Path:
    """Rows in a workbook; `typed` stores digit-only cells as numbers, as Excel does when a person types them."""
    book = xlsxwriter.Workbook(str(path))
    if first_sheet:
        book.add_worksheet(first_sheet).write_row(0, 0, ["Nothing", "Here"])
    sheet_ = book.add_worksheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if typed and r and value.isdigit() and not value.startswith("0"):
                sheet_.write_number(r, c, int(value))
            else:
                sheet_.write_string(r, c, value)
    book.close()
    return path


@pytest.fixture
def csv_file(write_csv):
    return write_csv(ROWS)


def payloads(tmp_path: Path, source: Path, *extra: str) -> list[dict[str, Any]]:
    out = tmp_path / f"out-{source.name}"
    code = main(["validate", str(source), "--mapping", "dealervault", "--out", str(out),
                 "--payloads", str(out / "p.jsonl"), *extra])
    assert code == 1  # Bob has no last name
    return read_jsonl(out / "p.jsonl")


def test_cells_read_as_the_dealer_sees_them():
    assert cell_text(2134.0) == "2134"
    assert cell_text(12.5) == "12.5"
    assert cell_text(3105551234.0) == "3105551234"
    assert cell_text(True) == "TRUE"
    assert cell_text(datetime.date(2026, 3, 5)) == "3/5/2026"
    assert cell_text(datetime.datetime(2026, 3, 5, 14, 7)) == "3/5/2026 14:07"
    assert cell_text(datetime.datetime(2026, 3, 5)) == "3/5/2026"
    assert cell_text("0042") == "0042"


def test_typed_workbook_cells_become_text(tmp_path):
    path = tmp_path / "typed.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["Key", "Zip", "Year", "Born", "Miles", "Flag"])
    sheet.write_string(1, 0, "0042")
    sheet.write_number(1, 1, 2134)
    sheet.write_number(1, 2, 2020)
    sheet.write_datetime(1, 3, datetime.datetime(1970, 1, 31), book.add_format({"num_format": "mm/dd/yyyy"}))
    sheet.write_number(1, 4, 12345.5)
    sheet.write_boolean(1, 5, False)
    sheet.write_row(3, 0, ["0043", "", "", "", "", ""])  # row 3 (0-based 2) left blank: skipped
    book.close()
    with open_input(str(path)) as source:
        assert source.header == ("Key", "Zip", "Year", "Born", "Miles", "Flag")
        rows = pd_rows(read_chunks(source))
    assert rows == [["0042", "2134", "2020", "1/31/1970", "12345.5", "FALSE"], ["0043", "", "", "", "", ""]]


def pd_rows(chunks):
    return [list(map(str, row)) for chunk in chunks for row in chunk.itertuples(index=False)]


@pytest.mark.parametrize("kind", ["xlsx", "xlsx-typed", "xls", "gz", "zip", "zip-xlsx", "gz-xlsx"])
def test_every_kind_gives_the_csv_payloads(tmp_path, csv_file, kind):
    expected = payloads(tmp_path, csv_file)
    if kind.startswith("xlsx"):
        source = write_xlsx(tmp_path / "export.xlsx", ROWS, typed=kind == "xlsx-typed")
    elif kind == "xls":
        book = xlwt.Workbook()
        sheet = book.add_sheet("Export")
        for r, row in enumerate(ROWS):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
        source = tmp_path / "export.xls"
        book.save(str(source))
    elif kind == "gz":
        source = tmp_path / "export.csv.gz"
        source.write_bytes(gzip.compress(csv_file.read_bytes()))
    elif kind == "gz-xlsx":
        inner = write_xlsx(tmp_path / "inner.xlsx", ROWS)
        source = tmp_path / "export.xlsx.gz"
        source.write_bytes(gzip.compress(inner.read_bytes()))
    else:
        inner = csv_file if kind == "zip" else write_xlsx(tmp_path / "inner.xlsx", ROWS)
        source = tmp_path / "export.zip"
        with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(inner, f"folder/{inner.name}")
            archive.writestr("__MACOSX/folder/._x", b"junk")
    assert payloads(tmp_path, source) == expected
    with open_input(str(source)) as opened:  # the text is held in memory: nothing is unpacked to disk
        assert str(opened.path).startswith("/proc/self/fd/")
        assert opened.header == tuple(DV_HEADER)


def test_sheet_option_and_errors_csv_has_the_sheet_columns(tmp_path):
    source = write_xlsx(tmp_path / "export.xlsx", ROWS, sheet="Customers", first_sheet="Notes")
    out = tmp_path / "out"
    assert main(["validate", str(source), "--mapping", "dealervault", "--sheet", "Customers", "--out", str(out)]) == 1
    errors = read_csv(out / "errors.csv")
    assert list(errors[0])[:len(DV_HEADER)] == DV_HEADER
    assert errors[0]["Customer Number"] == "0043"
    assert errors[0]["mk_error_code"] == "MISSING_LAST_NAME"
    summary = read_summary(out)
    assert summary["input"]["sha256"] != ""
    assert len(read_csv(out / "results.csv")) == 3


def test_an_all_text_error_workbook_reimports_its_rows(tmp_path, sandbox, creds):
    """errors.xlsx: the source header plus the mk_* columns, every cell text; the fixed row goes through."""
    header = [*DV_HEADER, "mk_source_row", "mk_status", "mk_error_code", "mk_error_message", "mk_warnings"]
    fixed = [*dv_row("0043", "Bob", "Stone", cell="310-555-0199"), "2", "invalid", "MISSING_LAST_NAME", "x", ""]
    source = write_xlsx(tmp_path / "errors.xlsx", [header, fixed])
    out = tmp_path / "out"
    code = main(["run", str(source), "--mapping", "dealervault", "--department-uuid", DEPARTMENT,
                 "--api-url", sandbox.url, "--state", str(tmp_path / "s.sqlite"), "--out", str(out)])
    assert code == 0
    results = read_csv(out / "results.csv")
    assert [r["status"] for r in results] == ["success"]


@pytest.mark.parametrize(("make", "message"), [
    ("two-files", "must hold exactly one file; it holds 2"),
    ("bad-zip", "damaged zip"),
    ("bad-gzip", "damaged gzip"),
    ("bad-workbook", "cannot read the workbook"),
])
def test_broken_archives_and_workbooks_are_one_line_errors(tmp_path, capsys, make, message):
    source = tmp_path / "x.zip"
    if make == "two-files":
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("a.csv", "A\n1\n")
            archive.writestr("b.csv", "B\n1\n")
    elif make == "bad-zip":
        source.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    elif make == "bad-gzip":
        source = tmp_path / "x.csv.gz"
        source.write_bytes(gzip.compress(b"A,B\n1,2\n" * 100)[:-30])
    else:
        source = tmp_path / "x.xlsx"
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("[Content_Types].xml", "<nope/>")
    assert main(["validate", str(source), "--mapping", "dealervault", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_sheet_on_a_text_file_and_a_missing_sheet_are_refused(tmp_path, csv_file, capsys):
    assert main(["validate", str(csv_file), "-m", "dealervault", "--sheet", "S", "--out", str(tmp_path / "o")]) == 2
    assert "not a workbook" in capsys.readouterr().err
    source = write_xlsx(tmp_path / "export.xlsx", ROWS, sheet="Deals")
    assert main(["validate", str(source), "-m", "dealervault", "--sheet", "S", "--out", str(tmp_path / "o")]) == 2
    assert "no sheet 'S' (sheets: 'Deals')" in capsys.readouterr().err


def test_the_sample_xlsx_export_gives_the_sample_csv_payloads(tmp_path):
    samples = Path(__file__).parents[2] / "sample_data"
    got = payloads(tmp_path, samples / "dealervault_sales.xlsx")
    assert got == payloads(tmp_path, samples / "dealervault_sales.csv")
    assert len(got) > 100


def test_mappings_check_reads_workbooks_and_archives(tmp_path, csv_file, capsys):
    source = tmp_path / "export.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.write(write_xlsx(tmp_path / "inner.xlsx", ROWS), "inner.xlsx")
    assert main(["mappings", "check", str(source), "--mapping", "dealervault"]) == 0
    out = capsys.readouterr().out
    assert "ok: every column mapping dealervault reads is in the header" in out
    assert "'(310) 555-0134' → '+13105550134'" in out


def test_a_workbook_on_standard_input(tmp_path, monkeypatch, csv_file):
    import io
    import sys

    book = write_xlsx(tmp_path / "export.xlsx", ROWS)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(book.read_bytes())))
    assert payloads(tmp_path, Path("-")) == payloads(tmp_path, csv_file)


def test_title_lines_above_the_header_are_skipped(tmp_path, csv_file):
    book = xlsxwriter.Workbook(str(tmp_path / "report.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_string(0, 0, "Customer list, Example Motors")
    sheet.write_string(1, 3, "Printed 3/5/2026")
    for r, row in enumerate(ROWS, 3):
        sheet.write_row(r, 0, row)
    book.close()
    assert payloads(tmp_path, tmp_path / "report.xlsx") == payloads(tmp_path, csv_file)


def test_a_workbook_cell_is_cut_at_the_field_bound_as_it_is_read(tmp_path: Path):
    from importer.read.containers import MAX_FIELD_CHARS, workbook_rows

    # Past Excel's own 32,767 characters, which the writers enforce: the shared string is written by hand.
    model = write_xlsx(tmp_path / "model.xlsx", [DV_HEADER, dv_row("1", first="LONGCELL", last="Lee"), dv_row("2")])
    path = tmp_path / "long.xlsx"
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/sharedStrings.xml":
                data = data.replace(b"LONGCELL", b"x" * (3 * MAX_FIELD_CHARS))
            book.writestr(member.filename, data)
    rows = list(workbook_rows(path, "long.xlsx"))
    assert len(rows[1][1]) == MAX_FIELD_CHARS + 1, "cut, yet still seen as too long"
    out = tmp_path / "out"
    assert main(["validate", str(path), "-m", "dealervault", "--out", str(out)]) == 1
    results = read_csv(out / "results.csv")
    assert results[0]["error_code"] == "FIELD_TOO_LONG"
    assert results[1]["status"] == "valid"
