"""An error file saved by a spreadsheet: keys and numbers it rewrote are read as the export had them, and a
customer is never saved under a key no export has."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from importer.cli import main
from tests.conftest import Api
from tests.helpers import DV_HEADER, VIN_A, VIN_B, dv_row, read_csv, read_summary
from tests.test_run import run

#: The export: customers refused for their last name (no state entry, so nothing but errors.csv knows their
#: key), among them key-only ones the server's duplicate search cannot find; a customer saved without its
#: phone in one of its two rows (errors.csv holds that row only); one saved whole; keys of leading zeros, a
#: long numeric key and a key of text.
EXPORT = [
    dv_row("0000082", first="Ann", last="", zip_code="02106"),
    dv_row("0000122", first="Bo", last="", email="bo@example.com", cell="3105550122"),
    dv_row("0000130", first="Cy", last="", zip_code="02134", year="2019", make="Ford", model="F-150",
           mileage="42150"),
    dv_row("0000196", first="Di", last="", vin=VIN_A),
    dv_row("0000196", first="Di", last="", cell="3105550196"),
    dv_row("0000067", first="Ed", last="Roe", cell="555-12", zip_code="02106"),
    dv_row("0000067", first="Ed", last="Roe", vin=VIN_B, year="2021", make="Kia", model="Soul"),
    dv_row("0000201", first="Flo", last="Day", cell="3105550201", zip_code="02134"),
    dv_row("C-0099", first="Gus", last=""),
    dv_row("823456789012", first="Hal", last=""),
]
#: The last names the person fixing errors.csv types (and the DMS has the next night).
LAST_NAMES = {"0000082": "Okafor", "0000122": "Ng", "0000130": "Ruiz", "0000196": "Park", "C-0099": "Moe",
              "823456789012": "Ito"}


def _as_a_spreadsheet_saves(cell: str, column: str) -> str:
    """A cell as a spreadsheet's default CSV import reads it and its CSV export writes it: text that reads
    as a number becomes that number (leading zeros gone, a decimal part where the tool writes one, 12 digits
    and more in scientific notation); other text stays as it is, a leading quote included."""
    if not re.fullmatch("[0-9]+", cell):
        return cell
    number = int(cell)
    if number >= 10**11:
        return f"{number:.5E}"  # 8.23457E+11, as Excel shows it in a column of the default width
    if column == "Customer Number" and cell == "0000130":
        return f"{number}.0"  # as tools that hold every number as a float save it
    return str(number)


def _save_as_a_spreadsheet_does(source: Path, target: Path) -> None:
    with source.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    saved = [{c: _as_a_spreadsheet_saves(v, c) for c, v in row.items()} for row in rows]
    _write(saved, target)


def _write(rows: list[dict[str, str]], target: Path) -> None:
    with target.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _fix_last_names(path: Path) -> None:
    """The person fixing the file fills in each refused row's last name (found by the row it came from)."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        if row["mk_error_code"] == "MISSING_LAST_NAME":
            row["Last Name"] = LAST_NAMES[EXPORT[int(row["mk_source_row"]) - 1][0]]
    _write(rows, path)


def _through_libreoffice(source: Path, target: Path, home: Path) -> None:
    """errors.csv opened by LibreOffice Calc with its default CSV import and saved as CSV."""
    out = home / "converted"
    subprocess.run(["soffice", "--headless", "--infilter=CSV:44,34,76,1",
                    "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", str(out), str(source)],
                   check=True, capture_output=True, timeout=300, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    shutil.move(out / source.name, target)


def _the_loop(sandbox, tmp_path: Path, write_csv, save: Callable[[Path, Path], None], rewritten: set[str]) -> None:
    api = Api(sandbox.url)
    export = write_csv([DV_HEADER, *EXPORT], name="export.csv")
    assert run(export, sandbox.url, tmp_path / "first") == 1  # rows to fix
    errors = read_csv(tmp_path / "first" / "errors.csv")
    assert {e["mk_customer_key"] for e in errors} == {"'" + k for k in {*LAST_NAMES, "0000067"}}

    fixed = tmp_path / "errors-saved.csv"
    save(tmp_path / "first" / "errors.csv", fixed)
    saved_keys = {row["Customer Number"] for row in read_csv(fixed)}
    assert rewritten <= saved_keys, "the spreadsheet rewrote the keys"
    assert "2106" in {row["Zip"] for row in read_csv(fixed)}, "and the ZIPs"
    _fix_last_names(fixed)

    assert run(fixed, sandbox.url, tmp_path / "again") == 0
    results = read_csv(tmp_path / "again" / "results.csv")
    assert [r["original_row"] for r in results] == [e["mk_source_row"] for e in errors]
    for row in results:
        key = EXPORT[int(row["original_row"]) - 1][0]
        assert row["status"] in ("success", "unchanged"), row
        assert row["customer_key"] == key
        stored = api.get(row["customer_uuid"]).body["customerWithVehicles"]["customer"]
        assert stored["customerKey"] == key, "saved under the key the export had"
    ann = next(r for r in results if r["customer_key"] == "0000082")
    assert "Customer Number: the key the export had, whose leading zeros or format a spreadsheet lost: '82' " \
           "read as '0000082'" in ann["warnings"]
    stats = api.stats()
    assert stats["creates"] == stats["customers"] == len({row[0] for row in EXPORT})

    # The next night: the same export, then the export as the DMS has it with the names typed in.
    for name, rows in (("same", EXPORT), ("named", [
            dv_row(*[LAST_NAMES.get(r[0], r[2]) if i == 2 else v for i, v in enumerate(r)]) for r in EXPORT])):
        before = api.stats()
        out = tmp_path / f"night-{name}"
        run(write_csv([DV_HEADER, *rows], name=f"{name}.csv"), sandbox.url, out)
        summary = read_summary(out)
        assert summary["requests_sent"] == 0, summary["counts"]
        assert set(summary["counts"]) <= {"unchanged", "invalid"}
        after = api.stats()
        assert (after["creates"], after["updates"]) == (before["creates"], before["updates"])
    assert summary["counts"] == {"unchanged": len(EXPORT)}


def test_a_spreadsheet_saved_error_file_keeps_every_customers_key(sandbox, creds, tmp_path: Path, write_csv):
    _the_loop(sandbox, tmp_path, write_csv, _save_as_a_spreadsheet_does, {"82", "130.0", "8.23457E+11"})


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_an_error_file_saved_by_libreoffice_keeps_every_customers_key(sandbox, creds, tmp_path: Path, write_csv):
    _the_loop(sandbox, tmp_path, write_csv,
              lambda source, target: _through_libreoffice(source, target, tmp_path / "lo"), {"82", "67", "196"})


def test_a_key_changed_on_purpose_wins_with_a_warning(tmp_path: Path, write_csv):
    source = write_csv([DV_HEADER, dv_row("0000083", last=""), dv_row("0000084", last="")])
    main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o1")])
    errors = read_csv(tmp_path / "o1" / "errors.csv")
    errors[0]["Customer Number"], errors[1]["Customer Number"] = "91", "84"
    for row in errors:
        row["Last Name"] = "Lee"
    _write(errors, tmp_path / "fixed.csv")
    main(["validate", str(tmp_path / "fixed.csv"), "-m", "dealervault", "--out", str(tmp_path / "o2")])
    changed, restored = read_csv(tmp_path / "o2" / "results.csv")
    assert changed["customer_key"] == "91"
    assert changed["warnings"] == ("Customer Number: not the key the export had; the key typed is used: '91' "
                                   "(the export had '0000083')")
    assert restored["customer_key"] == "0000084"
    # errors.csv of the re-import names the key that was used
    assert read_csv(tmp_path / "o2" / "errors.csv") == []


def test_a_key_in_scientific_notation_without_the_exports_is_refused(tmp_path: Path, write_csv):
    source = write_csv([DV_HEADER, dv_row("8.23457E+11", last="Ito"), dv_row("10E2345", last="Moe")])
    main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "out")])
    lost, code = read_csv(tmp_path / "out" / "results.csv")
    assert lost["status"] == "invalid"
    assert lost["error_code"] == "KEY_UNREADABLE"
    assert lost["error_message"] == ("Customer Number 8.23457E+11 is a number in scientific notation: a spreadsheet "
                                     "rewrote the customer key and its digits are lost")
    assert code["status"] == "valid", "a key of letters and digits is no number"
    (error,) = read_csv(tmp_path / "out" / "errors.csv")
    assert error["mk_customer_key"] == "", "no key the export had to give back"


def test_a_key_given_back_is_no_field_problem_under_strict(tmp_path: Path, write_csv):
    source = write_csv([DV_HEADER, dv_row("0000083", last="")])
    main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o1")])
    (error,) = read_csv(tmp_path / "o1" / "errors.csv")
    error["Customer Number"], error["Last Name"] = "83", "Lee"
    _write([error], tmp_path / "fixed.csv")
    main(["validate", str(tmp_path / "fixed.csv"), "-m", "dealervault", "--strict", "--out", str(tmp_path / "o2")])
    (row,) = read_csv(tmp_path / "o2" / "results.csv")
    assert (row["status"], row["customer_key"]) == ("valid", "0000083")
    assert row["warnings"].startswith("Customer Number: the key the export had")


def test_an_error_file_of_an_earlier_version_still_imports(tmp_path: Path, write_csv):
    source = write_csv([DV_HEADER, dv_row("0000083", last="")])
    main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "o1")])
    (error,) = read_csv(tmp_path / "o1" / "errors.csv")
    del error["mk_customer_key"]
    error["Last Name"] = "Lee"
    _write([error], tmp_path / "old.csv")
    main(["validate", str(tmp_path / "old.csv"), "-m", "dealervault", "--out", str(tmp_path / "o2")])
    (row,) = read_csv(tmp_path / "o2" / "results.csv")
    assert (row["status"], row["customer_key"], row["original_row"], row["warnings"]) == ("valid", "0000083", "1", "")


def test_keys_the_state_knows_with_leading_zeros_are_given_back_to_an_export_that_lost_them(sandbox, creds,
                                                                                            write_csv, tmp_path):
    """An export saved by a spreadsheet (`82` for `0000082`): the customer the state knows is updated, not
    created again; a key two known keys could be (`0082`, `00082`) and a key nobody had stay as they are."""
    from tests.test_run import run

    first = write_csv([DV_HEADER, dv_row("0000082", last="Ann"), dv_row("0082", last="Bo"),
                       dv_row("00082", last="Bo2"), dv_row("0000091", last="Cy")])
    assert run(first, sandbox.url, tmp_path / "a") == 0
    uuids = {r["customer_key"]: r["customer_uuid"] for r in read_csv(tmp_path / "a" / "results.csv")}
    second = write_csv([DV_HEADER, dv_row("82", last="Ann", cell="617-555-0182"), dv_row("91", last="Cy"),
                        dv_row("7", last="Dee")], name="second.csv")
    assert run(second, sandbox.url, tmp_path / "b") == 0
    ann, cy, dee = read_csv(tmp_path / "b" / "results.csv")
    assert (cy["customer_key"], cy["customer_uuid"]) == ("0000091", uuids["0000091"])
    assert "91 read as 0000091, the customer the state knows" in cy["warnings"]
    # 82 could be 0082 or 00082 (and 0000082): which is not known, so it is not guessed
    assert ann["customer_key"] == "82"
    assert ann["customer_uuid"] not in uuids.values()
    assert (dee["customer_key"], dee["warnings"]) == ("7", "")
