"""errors.xlsx fixed in a spreadsheet and imported again: the fixed rows are saved, no customer twice."""

from __future__ import annotations

import tempfile
from pathlib import Path

import openpyxl
import pytest

from importer.cli import main
from importer.reader import open_input
from tests.conftest import DEPARTMENT, Api
from tests.helpers import read_csv
from tests.test_mapping import LAYOUT_FILES, SAMPLES


def reads_workbooks() -> bool:
    """Whether importer.reader.open_input accepts an .xlsx file (the workbook reader of the onboarding work)."""
    with tempfile.TemporaryDirectory(prefix="mk-import-probe-") as folder:
        path = Path(folder) / "probe.xlsx"
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["Customer Number", "Last Name"])
        sheet.append(["0000082", "Lee"])
        book.save(path)
        try:
            with open_input(str(path)) as source:
                return [c.strip() for c in source.header][:2] == ["Customer Number", "Last Name"]
        except Exception:  # any refusal means: no workbook reader here
            return False


@pytest.mark.skipif(not reads_workbooks(), reason="workbook reader not present")
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
    fixed_keys = []
    for row in sheet.iter_rows(min_row=2):
        if row[code].value == "MISSING_LAST_NAME":
            row[last].value = "Fixedname"
            fixed_keys.append(str(row[key].value))
    assert fixed_keys
    assert all(k.isdigit() and k == k.strip() for k in fixed_keys)  # keys came back as the text they were
    book.save(tmp_path / "fixed.xlsx")

    assert run(tmp_path / "fixed.xlsx", tmp_path / "second") == 0
    second = read_csv(tmp_path / "second" / "results.csv")
    assert len(second) == len(fixed_keys)
    assert {r["status"] for r in second} == {"success"}
    # A customer the first run saved (through its other rows) is updated, not created again.
    for r in second:
        if r["customer_key"] in uuid_of:
            assert r["customer_uuid"] == uuid_of[r["customer_key"]]
    after = api.stats()
    new = {k for k in fixed_keys if k not in uuid_of}
    assert after["creates"] - before["creates"] == len(new)
    assert after["customers"] == before["customers"] + len(new)
