"""State, resume and ambiguous outcomes: kill -9, commit-then-fail faults, nightly reruns, bad state files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from importer.cli import main
from importer.send.state import StateStore
from tests.conftest import DEPARTMENT, PASSWORD, USER, Api
from tests.helpers import DV_HEADER, VIN_A, dv_row, read_csv, read_summary
from tests.test_run import assert_accounted, run


def customers(n: int, key_only_every: int = 7) -> list[list[str]]:
    """n customers, one in `key_only_every` with neither phone, email nor VIN (about 15%)."""
    rows = []
    for i in range(n):
        if i % key_only_every == 0:
            rows.append(dv_row(f"K{i}", first=f"Key{i}", line1=f"{i} Elm St", city="Boston", zip_code="02134"))
        else:
            rows.append(dv_row(f"K{i}", first=f"P{i}", cell=f"(310) 555-{i:04d}", email=f"p{i}@example.com"))
    return rows


def test_commit_then_fail_faults_create_no_duplicates(start_sandbox, creds, write_csv, tmp_path: Path):
    sandbox = start_sandbox(commit_fail_rate=0.1, drop_rate=0.05, seed=11)
    source = write_csv([DV_HEADER, *customers(140)])
    out = tmp_path / "out"
    assert run(source, sandbox.url, out, "--rate", "1000") == 0
    assert_accounted(out, 140)
    stats = Api(sandbox.url).stats()
    assert stats["faults"]["commit_fail"] > 5
    assert stats["customers"] == 140, "zero duplicates"
    assert read_summary(out)["searches"] > 0


def test_unchanged_rerun_sends_nothing_and_edits_send_exactly_those(start_sandbox, creds, write_csv, tmp_path: Path):
    sandbox = start_sandbox()
    rows = customers(60)
    source = write_csv([DV_HEADER, *rows])
    assert run(source, sandbox.url, tmp_path / "first", "--rate", "1000") == 0
    api = Api(sandbox.url)
    before = api.stats()
    assert run(source, sandbox.url, tmp_path / "second") == 0
    second = read_summary(tmp_path / "second")
    assert second["requests_sent"] == 0
    assert second["counts"] == {"unchanged": 60}
    assert api.stats()["requests"] == before["requests"]
    # Three phones change, and the addresses of two customers that only their key identifies.
    rows[1][4] = "(617) 555-0001"
    rows[2][4] = "(617) 555-0002"
    rows[3][4] = "(617) 555-0003"
    rows[0][6] = "1 New Rd"
    rows[7][6] = "2 New Rd"
    edited = write_csv([DV_HEADER, *rows], name="edited.csv")
    assert run(edited, sandbox.url, tmp_path / "third") == 0
    third = read_summary(tmp_path / "third")
    assert third["requests_sent"] == 5
    assert third["counts"] == {"unchanged": 55, "success": 5}
    after = api.stats()
    assert after["creates"] == before["creates"], "an update never creates a customer"
    assert after["customers"] == 60
    results = {r["customer_key"]: r for r in read_csv(tmp_path / "third" / "results.csv")}
    first = {r["customer_key"]: r for r in read_csv(tmp_path / "first" / "results.csv")}
    assert results["K0"]["customer_uuid"] == first["K0"]["customer_uuid"]
    stored = api.get(results["K0"]["customer_uuid"]).body["customerWithVehicles"]["customer"]
    assert stored["addresses"][0]["line1"] == "1 New Rd"
    full = tmp_path / "full"
    assert run(edited, sandbox.url, full, "--full", "--rate", "1000") == 0
    assert read_summary(full)["requests_sent"] == 60


def test_kill_9_then_rerun_resumes_without_duplicates(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(latency_ms=30, commit_fail_rate=0.05, seed=2)
    source = write_csv([DV_HEADER, *customers(120)])
    command = [sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault", "--department-uuid",
               DEPARTMENT, "--api-url", sandbox.url, "--state", str(tmp_path / "state.sqlite"),
               "--concurrency", "4", "--rate", "1000", "--progress", "none"]
    env = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": PASSWORD}
    api = Api(sandbox.url)
    process = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while api.stats()["customers"] < 48 and time.monotonic() < deadline:  # about 40%
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    saved_before = api.stats()["customers"]
    assert 40 <= saved_before < 120
    done = subprocess.run([*command, "--out", str(tmp_path / "rerun")], env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    results = assert_accounted(tmp_path / "rerun", 120)
    assert {r["status"] for r in results} == {"success", "unchanged"}
    unchanged = sum(r["status"] == "unchanged" for r in results)
    assert unchanged >= saved_before - 4 - 1  # at most the requests in flight were lost
    summary = read_summary(tmp_path / "rerun")
    assert summary["requests_sent"] - summary["retries"] == 120 - unchanged
    assert api.stats()["customers"] == 120, "no customer created twice"


def test_a_second_run_on_the_same_state_is_refused_before_sending(start_sandbox, creds, write_csv, tmp_path: Path,
                                                                  capsys):
    sandbox = start_sandbox()
    source = write_csv([DV_HEADER, dv_row("1", vin=VIN_A)])
    holder = StateStore(tmp_path / "state.sqlite", DEPARTMENT)  # a run in progress
    try:
        assert run(source, sandbox.url, tmp_path / "second") == 2
    finally:
        holder.close()
    assert "in use by another mk-import run" in capsys.readouterr().err
    assert Api(sandbox.url).stats()["requests"] == 0
    assert run(source, sandbox.url, tmp_path / "after") == 0  # the lock goes with the run that held it


def test_a_state_file_that_stops_taking_writes_stops_the_run_cleanly(start_sandbox, creds, write_csv, tmp_path: Path,
                                                                     capsys, monkeypatch):
    sandbox = start_sandbox(latency_ms=5)
    source = write_csv([DV_HEADER, *customers(30)])
    record, calls = StateStore.record, []

    def disk_fills_up(self: StateStore, saves: list[Any], noted: list[Any]) -> None:
        calls.append(len(saves))
        if len(calls) > 3:
            raise sqlite3.OperationalError("database or disk is full")
        record(self, saves, noted)

    monkeypatch.setattr(StateStore, "record", disk_fills_up)
    assert run(source, sandbox.url, tmp_path / "out", "--concurrency", "2", "--rate", "1000") == 3
    err = capsys.readouterr().err
    assert "the state file cannot be written (database or disk is full)" in err
    assert "Traceback" not in err
    results = assert_accounted(tmp_path / "out", 30)
    statuses = {r["status"] for r in results}
    assert statuses <= {"success", "not_attempted"}
    assert "not_attempted" in statuses
    assert all("state file cannot be written" in r["error_message"] for r in results if r["status"] == "not_attempted")
    monkeypatch.setattr(StateStore, "record", record)  # the disk has room again
    assert run(source, sandbox.url, tmp_path / "rerun", "--rate", "1000") == 0  # the rerun finishes the job
    assert Api(sandbox.url).stats()["customers"] == 30, "no customer created twice"


def test_state_of_another_department_is_refused(start_sandbox, creds, write_csv, tmp_path: Path, capsys):
    sandbox = start_sandbox()
    source = write_csv([DV_HEADER, dv_row("1", vin=VIN_A)])
    assert run(source, sandbox.url, tmp_path / "a") == 0
    state = str(tmp_path / "state.sqlite")
    code = main(["run", str(source), "-m", "dealervault", "--department-uuid", "other", "--api-url", sandbox.url,
                 "--out", str(tmp_path / "b"), "--state", state, "--progress", "none"])
    assert code == 2
    assert "state of department 'dept-0001', not 'other'" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["garbage", "newer", "foreign"])
def test_damaged_state_is_refused_not_reset(start_sandbox, creds, write_csv, tmp_path: Path, capsys, damage):
    sandbox = start_sandbox()
    source = write_csv([DV_HEADER, dv_row("1")])
    state = tmp_path / "state.sqlite"
    if damage == "garbage":
        state.write_bytes(b"this is not a database" * 100)
    else:
        assert run(source, sandbox.url, tmp_path / "a") == 0
        with sqlite3.connect(state) as db:
            if damage == "newer":
                db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
            else:
                db.execute("DROP TABLE meta")
    content = state.read_bytes()
    assert run(source, sandbox.url, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert str(state) in err
    assert state.read_bytes() == content
    assert not (tmp_path / "b").exists()


def test_rows_that_change_without_changing_the_body_are_not_sent(start_sandbox, creds, write_csv, tmp_path: Path):
    sandbox = start_sandbox()
    rows = [dv_row("1", cell="(310) 555-0101"), dv_row("2", email="a@example.com")]
    assert run(write_csv([DV_HEADER, *rows]), sandbox.url, tmp_path / "a") == 0
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        first = dict(db.execute("SELECT customer_key, fingerprint FROM customers"))
    rows[0][10] = "Y"  # Block Email on a customer with no email: the rows differ, the body does not
    rows[1][4] = "N/A"  # a placeholder where the cell was empty
    edited = write_csv([DV_HEADER, *rows], name="edited.csv")
    assert run(edited, sandbox.url, tmp_path / "b") == 0
    assert read_summary(tmp_path / "b")["requests_sent"] == 0
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        before = dict(db.execute("SELECT customer_key, fingerprint FROM customers"))
    assert before["1"] != first["1"], "the new fingerprint of customer 1 was recorded"
    assert before["2"] == first["2"]  # a placeholder normalizes to the empty cell it stands for
    assert run(edited, sandbox.url, tmp_path / "c") == 0  # now skipped on the fingerprint alone
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        assert dict(db.execute("SELECT customer_key, fingerprint FROM customers")) == before
    rows[1][3] = "b@example.com"
    assert run(write_csv([DV_HEADER, *rows], name="again.csv"), sandbox.url, tmp_path / "d") == 0
    assert read_summary(tmp_path / "d")["requests_sent"] == 1


def test_customers_deleted_from_the_api_are_saved_again(start_sandbox, creds, write_csv, tmp_path: Path):
    first = start_sandbox()
    source = write_csv([DV_HEADER, *customers(14)])
    assert run(source, first.url, tmp_path / "a") == 0
    first.__exit__(None, None, None)
    fresh = start_sandbox()  # the state remembers uuids this API never saw
    assert run(source, fresh.url, tmp_path / "b", "--full") == 0
    assert Api(fresh.url).stats()["customers"] == 14
    assert run(source, fresh.url, tmp_path / "c") == 0
    assert read_summary(tmp_path / "c")["requests_sent"] == 0
