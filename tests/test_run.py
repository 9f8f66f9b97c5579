"""`mk-import run` end to end against the sandbox over loopback HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from importer.cli import main
from sample_data.generate import write
from tests.conftest import DEPARTMENT, PASSWORD, USER, Api
from tests.helpers import DV_HEADER, VIN_A, dv_row, read_csv, read_summary
from tests.prepare.test_mapping import LAYOUT_FILES, SAMPLES


def run(path: Path, url: str, out: Path, *extra: str, mapping: str = "dealervault") -> int:
    return main(["run", str(path), "--mapping", mapping, "--department-uuid", DEPARTMENT, "--api-url", url,
                 "--out", str(out), "--state", str(out.parent / "state.sqlite"), "--progress", "none", *extra])


def assert_accounted(out: Path, rows: int) -> list[dict[str, str]]:
    results = read_csv(out / "results.csv")
    assert [int(r["source_row"]) for r in results] == list(range(1, rows + 1))
    by_key = defaultdict(set)
    for r in results:
        if r["status"] in ("success", "unchanged"):
            assert r["customer_uuid"]
            by_key[r["customer_key"]].add(r["customer_uuid"])
    assert all(len(uuids) == 1 for uuids in by_key.values()), "every row of a customer carries its uuid"
    return results


def test_sandbox_run_of_the_sample(tmp_path: Path):
    out = tmp_path / "out"
    code = main(["run", str(SAMPLES / LAYOUT_FILES["dealervault"]), "--mapping", "dealervault", "--sandbox",
                 "--out", str(out), "--rate", "500", "--progress", "none"])
    results = assert_accounted(out, 250)
    assert code == 1  # the sample has invalid rows
    assert {r["status"] for r in results} == {"success", "invalid"}
    summary = read_summary(out)
    assert summary["requests_sent"] == summary["customers"]
    assert summary["api_url"].startswith("http://127.0.0.1:")


def test_retries_after_503s_and_dropped_connections_end_in_success(start_sandbox, creds, tmp_path: Path):
    sandbox = start_sandbox(fail_rate=0.25, drop_rate=0.15, seed=5)
    source = write("cdk", tmp_path / "cdk.csv", 80, seed=3)
    out = tmp_path / "out"
    run(source, sandbox.url, out, "--rate", "1000", "--mapping", "cdk")
    results = assert_accounted(out, 80)
    assert {r["status"] for r in results} <= {"success", "invalid"}
    summary = read_summary(out)
    stats = Api(sandbox.url).stats()
    assert stats["faults"]["fail"] > 0
    assert stats["faults"]["drop"] > 0
    assert summary["retries"] > 0
    assert stats["customers"] == summary["customers"], "no customer created twice"


def test_wrong_password_stops_the_run_with_every_row_accounted(start_sandbox, monkeypatch, tmp_path: Path):
    sandbox = start_sandbox()
    monkeypatch.setenv("MK_USERNAME", USER)
    monkeypatch.setenv("MK_PASSWORD", "wrong")
    source = write("dealervault", tmp_path / "dv.csv", 200, seed=4)
    out = tmp_path / "out"
    assert run(source, sandbox.url, out, "--rate", "1000", "--concurrency", "8") == 4  # a rerun cannot help
    results = assert_accounted(out, 200)
    assert {r["status"] for r in results} == {"not_attempted", "invalid"}
    assert Api(sandbox.url).stats()["requests"] <= 20
    summary = read_summary(out)
    assert (summary["exit_code"], summary["stop_code"]) == (4, "credentials_refused")
    assert "refused the credentials" in summary["stop_reason"]


def test_run_ten_times_too_fast_converges_on_the_server_limit(start_sandbox, creds, tmp_path: Path):
    sandbox = start_sandbox(rate_limit=20)
    source = write("reynolds-customers", tmp_path / "r.txt", 110, seed=8)
    out = tmp_path / "out"
    run(source, sandbox.url, out, "--rate", "200", "--concurrency", "8", "--mapping", "reynolds-customers")
    results = assert_accounted(out, 110)
    assert {r["status"] for r in results} <= {"success", "invalid"}
    summary = read_summary(out)
    assert summary["rate_limited"] < 0.2 * summary["requests_sent"], summary


def test_rows_sharing_an_identity_are_never_in_flight_together(start_sandbox, creds, write_csv, tmp_path: Path):
    sandbox = start_sandbox(latency_ms=20, jitter_ms=10, seed=1)
    phones = [f"(310) 555-01{i:02d}" for i in range(4)]
    rows = [dv_row(str(i), first=f"P{i}", cell=phones[i % 4], email=f"shared{i % 3}@example.com")
            for i in range(40)]
    out = tmp_path / "out"
    run(write_csv([DV_HEADER, *rows]), sandbox.url, out, "--rate", "1000", "--concurrency", "8")
    assert_accounted(out, 40)
    stats = Api(sandbox.url).stats()
    assert stats["requests"] == 40
    assert stats["identity_overlaps"] == 0


def test_rerun_after_max_duration_resumes(start_sandbox, creds, write_csv, tmp_path: Path):
    sandbox = start_sandbox(latency_ms=100)
    source = write_csv([DV_HEADER, *(dv_row(str(i), first=f"P{i}") for i in range(30))])
    first = tmp_path / "first"
    assert run(source, sandbox.url, first, "--concurrency", "2", "--max-duration", "0.5") == 3
    statuses = [r["status"] for r in assert_accounted(first, 30)]
    assert "not_attempted" in statuses
    assert read_summary(first)["stop_code"] == "time_budget"
    assert "success" in statuses
    second = tmp_path / "second"
    assert run(source, sandbox.url, second, "--concurrency", "8", "--rate", "1000") == 0
    again = [r["status"] for r in assert_accounted(second, 30)]
    assert again.count("unchanged") == statuses.count("success")
    assert Api(sandbox.url).stats()["customers"] == 30


def test_ctrl_c_stops_cleanly_with_exit_130(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(latency_ms=200)
    source = write_csv([DV_HEADER, *(dv_row(str(i), first=f"P{i}") for i in range(60))])
    out = tmp_path / "out"
    env = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": PASSWORD}
    process = subprocess.Popen([sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault",
                                "--department-uuid", DEPARTMENT, "--api-url", sandbox.url, "--out", str(out),
                                "--state", str(tmp_path / "s.sqlite"), "--concurrency", "2", "--progress", "none"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while Api(sandbox.url).stats()["requests"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    statuses = [r["status"] for r in assert_accounted(out, 60)]
    assert "not_attempted" in statuses
    assert (read_summary(out)["exit_code"], read_summary(out)["stop_code"]) == (130, "interrupted")


def test_credentials_file_must_be_private(start_sandbox, write_csv, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MK_USERNAME", raising=False)
    monkeypatch.delenv("MK_PASSWORD", raising=False)
    sandbox = start_sandbox()
    secret = tmp_path / "creds"
    secret.write_text(f"MK_USERNAME={USER}\nMK_PASSWORD={PASSWORD}\n")
    secret.chmod(0o644)
    source = write_csv([DV_HEADER, dv_row("1")])
    assert run(source, sandbox.url, tmp_path / "a", "--credentials-file", str(secret)) == 2
    secret.chmod(0o600)
    assert run(source, sandbox.url, tmp_path / "b", "--credentials-file", str(secret)) == 0


def test_missing_credentials_and_plain_http_are_refused_before_sending(write_csv, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("MK_USERNAME", raising=False)
    source = write_csv([DV_HEADER, dv_row("1")])
    assert run(source, "http://127.0.0.1:9", tmp_path / "a") == 2
    assert "no credentials" in capsys.readouterr().err
    monkeypatch.setenv("MK_USERNAME", USER)
    monkeypatch.setenv("MK_PASSWORD", PASSWORD)
    assert run(source, "http://api.example.test", tmp_path / "b") == 2
    assert "plain http" in capsys.readouterr().err


def test_429s_of_a_window_limit_never_fail_a_row(start_sandbox, creds, tmp_path: Path):
    # One attempt allowed: a row refused with 429 must wait its turn, not use it up.
    sandbox = start_sandbox(rate_limit=10, rate_limit_mode="window")
    source = write("reynolds-customers", tmp_path / "r.txt", 40, seed=8)
    out = tmp_path / "out"
    run(source, sandbox.url, out, "--rate", "200", "--max-attempts", "1", "--mapping", "reynolds-customers")
    results = assert_accounted(out, 40)
    assert {r["status"] for r in results} <= {"success", "invalid"}
    summary = read_summary(out)
    assert summary["rate_limited"] > 0  # the slow start went past 10/s: some requests were refused
    assert summary["concurrency_used"] >= 1
    assert summary["latency_p50_ms"] is not None


def test_a_pilot_sends_the_first_customers_and_the_next_run_the_rest(sandbox, creds, tmp_path: Path, write_csv,
                                                                      capsys):
    """`--limit 10` creates the file's first 10 customers; the next run without it creates the rest, and no
    customer twice."""
    rows = [DV_HEADER]
    for i in range(1, 26):  # 25 customers, the first five with a second row further down
        rows.append(dv_row(f"{i:04d}", first=f"Ann{i}", last="Lee", cell=f"310-555-{i:04d}"))
    rows += [dv_row(f"{i:04d}", first=f"Ann{i}", last="Lee", vin=VIN_A if i == 1 else "") for i in range(1, 6)]
    path = write_csv(rows)
    api = Api(sandbox.url)
    pilot = tmp_path / "pilot"
    assert run(path, sandbox.url, pilot, "--limit", "10", "-v") == 0  # held-back rows alone are no exit 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("exit 0: ")
    results = read_csv(pilot / "results.csv")
    sent = {r["customer_key"] for r in results if r["status"] == "success"}
    assert sent == {f"{i:04d}" for i in range(1, 11)}, "the first 10 customers in file order"
    held = [r for r in results if r["status"] == "not_attempted"]
    assert len(held) == 15
    assert {r["error_code"] for r in held} == {"BEYOND_LIMIT"}
    assert api.stats()["creates"] == api.stats()["customers"] == 10
    summary = read_summary(pilot)
    assert summary["limit"] == 10
    assert summary["to_fix"] == 0
    assert read_csv(pilot / "errors.csv") == []

    rest = tmp_path / "rest"
    assert run(path, sandbox.url, rest) == 0
    results = read_csv(rest / "results.csv")
    assert {r["customer_key"] for r in results if r["status"] == "unchanged"} == sent
    assert {r["customer_key"] for r in results if r["status"] == "success"} == {f"{i:04d}" for i in range(11, 26)}
    stats = api.stats()
    assert stats["creates"] == stats["customers"] == 25, "no customer created twice"
    assert stats["updates"] == 0, "the pilot's customers are unchanged"


def test_what_was_read_is_frozen_for_the_collector_while_sending_and_only_then(tmp_path: Path, monkeypatch):
    import gc

    from importer.send.pool import Pool

    seen = []
    send = Pool.run

    async def watched(self, jobs):
        seen.append(gc.get_freeze_count())
        return await send(self, jobs)

    monkeypatch.setattr(Pool, "run", watched)
    gc.unfreeze()
    sample = [str(SAMPLES / LAYOUT_FILES["dealervault"]), "--mapping", "dealervault", "--sandbox", "--rate", "500",
              "--progress", "none"]
    try:
        main(["run", *sample, "--out", str(tmp_path / "a")])
        assert seen[-1] > 0, "frozen while sending"
        assert gc.get_freeze_count() == 0, "and thawed after"
        gc.freeze()  # a program that froze objects of its own keeps them frozen
        main(["run", *sample, "--out", str(tmp_path / "b")])
        assert gc.get_freeze_count() > 0, "not thawed by the run"
    finally:
        gc.unfreeze()
