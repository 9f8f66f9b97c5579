"""Hostile files on the surfaces of issue 25: formulas in any cell, header included; runs sharing a report
folder; workbooks and archives that unpack to far more than they weigh. Real files, the real CLI and the
real sandbox on 127.0.0.1."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

from importer.cli import main
from importer.report.folders import LOCK_FILE
from tests.conftest import DEPARTMENT, PASSWORD, USER
from tests.helpers import DV_HEADER, dv_row, read_csv, read_jsonl


def run(path: Path, url: str, out: Path, *extra: str, mapping: str = "dealervault") -> int:
    return main(["run", str(path), "--mapping", mapping, "--department-uuid", DEPARTMENT, "--api-url", url,
                 "--out", str(out), "--state", str(out.parent / "state.sqlite"), "--progress", "none", *extra])


# -- 8: one rule for "a spreadsheet would run this" ---------------------------------------------------------
TRIGGERS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def test_a_formula_in_a_header_cell_is_defused_in_every_csv_we_write(tmp_path: Path, write_csv):
    header = [*DV_HEADER, "=HYPERLINK(\"http://x\",\"click\")"]
    source = write_csv([header, [*dv_row("1", last=""), "a"], [*dv_row("2"), "-1"]])
    out = tmp_path / "o"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(out)]) == 1
    for name in ("errors.csv", "results.csv"):
        with (out / name).open(encoding="utf-8-sig", newline="") as stream:

            for row in csv.reader(stream):
                assert not any(cell[:1] in "=+-@\t\r" and cell for cell in row), (name, row)
    assert "'=HYPERLINK" in (out / "errors.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    again = tmp_path / "again"
    assert main(["validate", str(out / "errors.csv"), "-m", "dealervault", "--out", str(again)]) == 1
    assert list(read_csv(again / "errors.csv")[0])[len(DV_HEADER)] == "'=HYPERLINK(\"http://x\",\"click\")"


def test_names_companies_and_addresses_that_are_formulas_are_never_sent(sandbox, creds, api, write_csv,
                                                                       tmp_path: Path):
    rows = [dv_row(str(i), last=value) for i, value in enumerate(TRIGGERS, 1)]
    rows += [dv_row("10", first="+Ann", last="Lee", line1="-1+1 Main St", city="@Town"),
             dv_row("11", first="Mary-Jane", last="Smith-Jones", cell="+13105551234", line1="12 Main St"),
             dv_row("12", first="Jean-Luc", last="O'Neil", home="+1 (310) 555-0199")]
    source = write_csv([DV_HEADER, *rows])
    payloads = tmp_path / "p.jsonl"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(tmp_path / "v"),
                 "--payloads", str(payloads)]) == 1
    sent = {p["customer"]["customerKey"]: p["customer"] for p in read_jsonl(payloads)}
    assert sorted(sent) == ["10", "11", "12"]
    assert "firstName" not in sent["10"]
    assert "address" not in sent["10"] or all(a.get("line1") is None and a.get("city") is None
                                              for a in sent["10"]["address"])
    assert sent["11"]["lastName"] == "Smith-Jones"
    assert sent["11"]["phoneNumbers"][0]["phoneNumber"] in ("+13105551234", "3105551234")
    assert sent["12"]["firstName"] == "Jean-Luc"
    results = {r["source_row"]: r for r in read_csv(tmp_path / "v" / "results.csv")}
    for row in range(1, len(TRIGGERS) + 1):
        assert results[str(row)]["status"] == "invalid"
        assert "would run as a spreadsheet formula" in results[str(row)]["error_message"]
    assert results["7"]["warnings"].count("would run as a spreadsheet formula") == 3
    assert run(source, sandbox.url, tmp_path / "r") == 1
    saved = [r for r in read_csv(tmp_path / "r" / "results.csv") if r["status"] == "success"]
    assert [r["source_row"] for r in saved] == ["7", "8", "9"]
    for saved_row in saved:
        customer = api.get(saved_row["customer_uuid"]).body
        text = repr(customer)
        assert not any(value in text for value in ("+Ann", "-1+1", "@Town", *TRIGGERS))


# -- 9: one run at a time writes into a report folder -------------------------------------------------------
def test_a_second_run_into_a_folder_being_written_is_refused_before_reading(start_sandbox, creds, write_csv,
                                                                          tmp_path: Path, capsys):
    sandbox = start_sandbox(latency_ms=400)
    source = write_csv([DV_HEADER, *(dv_row(str(i), last=f"L{i}") for i in range(1, 9))])
    out = tmp_path / "shared-out"
    env = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": PASSWORD}
    first = subprocess.Popen([sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault",
                              "--department-uuid", DEPARTMENT, "--api-url", sandbox.url, "--out", str(out),
                              "--state", str(tmp_path / "a.sqlite"), "--progress", "none", "--concurrency", "1"],
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the first run holds the folder (bounded; no time is asserted)
            if (out / LOCK_FILE).exists() or first.poll() is not None:
                break
            time.sleep(0.05)
        assert first.poll() is None, "the first run must still be running"
        missing = tmp_path / "not-there.csv"  # refused before it is read: the folder is checked first
        for command in ("run", "validate"):
            argv = [command, str(missing), "-m", "dealervault", "--out", str(out)]
            if command == "run":
                argv += ["--department-uuid", DEPARTMENT, "--api-url", sandbox.url, "--state",
                         str(tmp_path / "b.sqlite"), "--progress", "none"]
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert err == f"mk-import: error: {out}: another mk-import run is writing its reports there; wait " \
                          "for it to finish, or give another --out"
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    assert [r["status"] for r in read_csv(out / "results.csv")] == ["success"] * 8
    assert not (out / LOCK_FILE).exists()
    # Once the first has finished, the folder holds its reports: a later run is refused as before.
    assert run(source, sandbox.url, out) == 2
    assert "already holds an earlier run's reports" in capsys.readouterr().err


def test_a_failed_run_leaves_no_empty_dated_folder(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(tmp_path / "missing.csv"), "-m", "dealervault"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not any(path.is_dir() for path in tmp_path.rglob("*"))
