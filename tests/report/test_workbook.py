"""errors.xlsx fixed in a spreadsheet and imported again: the fixed rows are saved, no customer twice."""

from __future__ import annotations

import codecs
import subprocess
import sys
from pathlib import Path

import openpyxl

from importer.cli import main
from importer.report.workbook import write_errors_xlsx
from tests.conftest import DEPARTMENT, Api
from tests.helpers import DV_HEADER, dv_row, read_csv
from tests.prepare.test_mapping import LAYOUT_FILES, SAMPLES


def test_rows_fixed_in_errors_xlsx_import_without_duplicates(start_sandbox, creds, tmp_path: Path):
    sandbox = start_sandbox()
    api = Api(sandbox.url)
    state = tmp_path / "state.sqlite"

    def run(source: Path, out: Path) -> int:
        return main(["run", str(source), "--mapping", "dealervault", "--department-uuid", DEPARTMENT, "--api-url",
                     sandbox.url, "--out", str(out), "--state", str(state), "--progress", "none"])

    assert run(SAMPLES / LAYOUT_FILES["dealervault"], tmp_path / "first") == 1
    first = read_csv(tmp_path / "first" / "results.csv")
    uuid_of = {r["customer_key"]: r["customer_uuid"] for r in first if r["status"] == "success"}
    before = api.stats()

    # The dealer fills in the missing last names in Excel and saves the workbook.
    book = openpyxl.load_workbook(tmp_path / "first" / "errors.xlsx")
    sheet = book.active
    assert sheet is not None
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    last, code, key = header.index("Last Name"), header.index("mk_error_code"), header.index("Customer Number")
    fixed_keys, fixed_rows, other_codes = [], set(), set()
    for number, row in enumerate(sheet.iter_rows(min_row=2), start=1):
        if row[code].value == "MISSING_LAST_NAME":
            row[last].value = "Fixedname"
            fixed_keys.append(str(row[key].value))
            fixed_rows.add(str(number))
        else:
            other_codes.add(row[code].value)
    rows_in_workbook = sheet.max_row - 1
    assert fixed_keys
    assert all(k.isdigit() and k == k.strip() for k in fixed_keys)  # keys came back as the text they were
    book.save(tmp_path / "fixed.xlsx")

    assert run(tmp_path / "fixed.xlsx", tmp_path / "second") == 0
    second = read_csv(tmp_path / "second" / "results.csv")
    assert len(second) == rows_in_workbook
    # The other rows were saved without a field nobody fixed here: nothing new to send for them.
    assert other_codes <= {"SAVED_WITHOUT_FIELD"}
    assert {r["status"] for r in second if r["source_row"] not in fixed_rows} <= {"unchanged", "success"}
    second = [r for r in second if r["source_row"] in fixed_rows]
    assert {r["status"] for r in second} == {"success"}
    # A customer the first run saved (through its other rows) is updated, not created again.
    for r in second:
        if r["customer_key"] in uuid_of:
            assert r["customer_uuid"] == uuid_of[r["customer_key"]]
    after = api.stats()
    new = {k for k in fixed_keys if k not in uuid_of}
    assert after["creates"] - before["creates"] == len(new)
    assert after["customers"] == before["customers"] + len(new)


def test_errors_xlsx_carries_the_exports_key_and_gives_it_back(tmp_path: Path, write_csv):
    source = write_csv([DV_HEADER, dv_row("0000082", last="")])
    main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o1")])
    book = openpyxl.load_workbook(tmp_path / "o1" / "errors.xlsx")
    sheet = book.active
    assert sheet is not None
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    row = next(sheet.iter_rows(min_row=2))
    cell = row[header.index("mk_customer_key")]
    assert (cell.value, cell.data_type) == ("0000082", "s"), "a text cell: no quote needed to keep it text"
    row[header.index("Customer Number")].value = 82  # typed over as a number
    row[header.index("Last Name")].value = "Lee"
    book.save(tmp_path / "fixed.xlsx")
    main(["validate", str(tmp_path / "fixed.xlsx"), "-m", "dealervault", "--out", str(tmp_path / "o2")])
    (again,) = read_csv(tmp_path / "o2" / "results.csv")
    assert (again["status"], again["customer_key"]) == ("valid", "0000082")


def test_the_original_row_survives_every_loop_and_the_cell_to_fix_carries_its_reason(tmp_path: Path, write_csv):
    from tests.helpers import DV_HEADER, dv_row

    path = write_csv([DV_HEADER, dv_row("1"), dv_row("2", cell="555-12"), dv_row("3"), dv_row("4", last=""),
                      dv_row("5", state="ZZ")])

    def validate(source: Path, out: str) -> list[dict[str, str]]:
        main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / out)])
        return read_csv(tmp_path / out / "errors.csv")

    first = validate(path, "first")
    assert [(e["mk_source_row"], e["mk_original_row"]) for e in first] == [("2", "2"), ("4", "4"), ("5", "5")]
    # The workbook marks the cell to fix: a fill, and a note with the reason.
    book = openpyxl.load_workbook(tmp_path / "first" / "errors.xlsx")
    sheet = book.active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    phone = sheet.cell(row=2, column=header.index("Cell Phone") + 1)
    assert phone.comment is not None
    assert "could not be read as a real number" in phone.comment.text
    assert "To fix: correct the number" in phone.comment.text
    assert phone.fill.fgColor.rgb.endswith("F4CCCC")
    last = sheet.cell(row=3, column=header.index("Last Name") + 1)
    assert last.comment is not None
    assert "no usable last name" in last.comment.text
    assert sheet.cell(row=3, column=header.index("First Name ") + 1).comment is None
    assert sheet.cell(row=4, column=header.index("State") + 1).comment is not None

    # Loop 2 fixes nothing: the rows are numbered 1-3 in the error file, their original numbers are kept.
    second = validate(tmp_path / "first" / "errors.csv", "second")
    assert [(e["mk_source_row"], e["mk_original_row"]) for e in second] == [("1", "2"), ("2", "4"), ("3", "5")]
    assert [r["original_row"] for r in read_csv(tmp_path / "second" / "results.csv")] == ["2", "4", "5"]
    # Loop 3, from loop 2's error file: still the original export's numbers.
    third = validate(tmp_path / "second" / "errors.csv", "third")
    assert [e["mk_original_row"] for e in third] == ["2", "4", "5"]


def test_past_a_worksheets_rows_the_workbook_goes_on_in_another_sheet(tmp_path: Path):
    errors = tmp_path / "errors.csv"
    lines = ["Customer Number,Last Name,mk_error_code,mk_error_message",
             *(f"{n:07d},,MISSING_LAST_NAME,Last Name is empty" for n in range(1, 8))]
    errors.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert write_errors_xlsx(tmp_path / "errors.xlsx", errors, sheet_rows=4) == 7  # 3 data rows a sheet
    book = openpyxl.load_workbook(tmp_path / "errors.xlsx")
    assert book.sheetnames == ["errors", "errors 2", "errors 3"]
    keys = []
    for sheet in book.worksheets:
        rows = [[c.value for c in row] for row in sheet.iter_rows()]
        assert rows[0] == ["Customer Number", "Last Name", "mk_error_code", "mk_error_message"]
        assert sheet.freeze_panes == "A2"
        keys += [r[0] for r in rows[1:]]
    assert keys == [f"{n:07d}" for n in range(1, 8)]  # every row, in order, as text
    assert book["errors 3"]["B2"].fill.fgColor.rgb.endswith("F4CCCC")  # the cell the reason concerns


def _sheet_values(path: Path) -> list[list[object]]:
    return [[c.value for c in row] for row in openpyxl.load_workbook(path).active.iter_rows()]


def _write_followed(errors: Path, text: str, workbook, rows_to_fix: int, slices: int = 3) -> None:
    """errors.csv written as write_errors writes it: the file handed over once the rows to fix are counted,
    then each slice's end told as it is written (slices cut between rows, the header line first)."""
    from importer.report.folders import private_binary_file

    header, *rows = text.splitlines(keepends=True)
    with private_binary_file(errors) as stream:
        stream.write(codecs.BOM_UTF8 + header.encode())
        workbook.follow(stream, rows_to_fix)
        workbook.written(stream)
        step = max(1, -(-len(rows) // slices))
        for at in range(0, len(rows), step):
            stream.write("".join(rows[at:at + step]).encode())
            workbook.written(stream)
        workbook.whole()


def test_a_large_workbook_is_written_by_a_second_process_following_errors_csv(tmp_path: Path, monkeypatch, caplog):
    """Beside: the second process reads errors.csv while it is written, and writes the same workbook as this
    one would; values with line breaks, quotes and non-ASCII text cross the slices intact."""
    from importer.report import workbook

    lines = ["Customer Number,Last Name,Notes,mk_error_code,mk_error_message",
             *(f'{n:07d},,"line one\nline ""two"" é{n}",MISSING_LAST_NAME,Last Name is empty' for n in range(1, 30))]
    text = "\n".join(lines) + "\n"
    reference = tmp_path / "reference.csv"
    reference.write_bytes(codecs.BOM_UTF8 + text.encode())
    write_errors_xlsx(tmp_path / "here.xlsx", reference)
    monkeypatch.setattr(workbook, "BESIDE_FROM", 10)
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(args[0])
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    errors = tmp_path / "errors.csv"
    with workbook.beside(tmp_path / "beside.xlsx", errors) as book:
        _write_followed(errors, text, book, 29)
    assert len(started) == 1, "a second process wrote it"
    assert "written here" not in caplog.text
    assert _sheet_values(tmp_path / "beside.xlsx") == _sheet_values(tmp_path / "here.xlsx")
    assert _sheet_values(tmp_path / "beside.xlsx")[1][2] == 'line one\nline "two" é1'
    assert (tmp_path / "beside.xlsx").stat().st_mode & 0o077 == 0, "private, as every report"

    # Told a count the file does not hold, the second process writes no workbook, and this one writes it.
    (tmp_path / "miscounted.xlsx").unlink(missing_ok=True)
    with workbook.beside(tmp_path / "miscounted.xlsx", errors) as book:
        _write_followed(errors, text, book, 28)
    assert len(started) == 2
    assert "its second process failed (ValueError: sheet 'errors': its cells span A1:E30, not the A1:E29" in caplog.text
    assert _sheet_values(tmp_path / "miscounted.xlsx") == _sheet_values(tmp_path / "here.xlsx")

    # Fewer rows: written here, after the body, no second process.
    with workbook.beside(tmp_path / "few.xlsx", errors) as book:
        _write_followed(tmp_path / "few.csv", text, book, 9)
        assert not (tmp_path / "few.xlsx").exists()
    assert (tmp_path / "few.xlsx").exists()
    assert len(started) == 2


def test_a_second_process_that_fails_leaves_the_workbook_to_this_one(tmp_path: Path, monkeypatch, caplog):
    from importer.report import workbook

    errors = tmp_path / "errors.csv"
    text = "Customer Number,Last Name,mk_error_code\n0000001,,MISSING_LAST_NAME\n"
    monkeypatch.setattr(workbook, "BESIDE_FROM", 0)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with workbook.beside(tmp_path / "errors.xlsx", errors) as book:
        _write_followed(errors, text, book, 1)
        assert not (tmp_path / "errors.xlsx").exists()
    assert _sheet_values(tmp_path / "errors.xlsx")[1][0] == "0000001"
    assert "no second process" in caplog.text

    # One that exits at once with an error (the ends told to it meet a closed pipe): its last line is told,
    # and the workbook is written here.
    monkeypatch.setattr(sys, "executable", "/bin/false")
    (tmp_path / "errors.xlsx").unlink()
    with workbook.beside(tmp_path / "errors.xlsx", errors) as book:
        _write_followed(errors, text * 2000, book, 1, slices=50)
    assert (tmp_path / "errors.xlsx").exists()
    assert "its second process failed (exit 1)" in caplog.text


def test_an_error_in_the_body_stops_the_second_process(tmp_path: Path, monkeypatch):
    import pytest

    from importer.report import workbook

    errors = tmp_path / "errors.csv"
    monkeypatch.setattr(workbook, "BESIDE_FROM", 0)
    children = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):  # stands in for a long workbook
        children.append(real_popen(["/bin/sleep", "60"], **kwargs))
        return children[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    def interrupted_while_writing() -> None:
        with workbook.beside(tmp_path / "errors.xlsx", errors) as book:
            _write_followed(errors, "Customer Number,Last Name\n0000001,\n", book, 1)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_while_writing()
    assert children[0].returncode is not None, "the second process was stopped and waited for"
    assert not (tmp_path / "errors.xlsx").exists()
