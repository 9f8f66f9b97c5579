"""Logs: debug detail, JSON lines, quiet mode; and no secret anywhere in what a run leaves behind."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from importer.config import Credentials, PrepareConfig, RunConfig
from tests.conftest import DEPARTMENT, USER
from tests.helpers import DV_HEADER, dv_row

PASSWORD = "Sup3r-Secret-Passw0rd"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def run_cli(args: list[str], tmp_path: Path, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "importer", *args], env=env, capture_output=True, text=True,
                          check=False, cwd=tmp_path)


def everything_left_behind(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> str:
    texts = [done.stdout, done.stderr]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_failing_run_with_debug_logging_leaks_no_secret(start_sandbox, write_csv, tmp_path: Path, log_format):
    # The server knows another password: every request is refused with 401.
    sandbox = start_sandbox(users={USER: "the-real-one"})
    source = write_csv([DV_HEADER, *(dv_row(str(i), cell="(310) 555-1234") for i in range(5))])
    done = run_cli(["-v", "--log-format", log_format, "run", str(source), "-m", "dealervault", "--department-uuid",
                    DEPARTMENT, "--api-url", sandbox.url, "--out", str(tmp_path / "out"), "--state",
                    str(tmp_path / "state.sqlite")], tmp_path)
    assert done.returncode == 4
    assert "-> 401" in done.stderr  # debug detail is there
    left = everything_left_behind(tmp_path, done)
    assert PASSWORD not in left
    assert TOKEN not in left
    if log_format == "json":
        lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        assert lines
        assert any(line["message"] == "finished" and line["summary"]["exit_code"] == 4 for line in lines)


def test_server_errors_with_debug_logging_leak_no_secret(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(users={USER: PASSWORD}, fail_rate=1.0)
    source = write_csv([DV_HEADER, dv_row("1")])
    done = run_cli(["-v", "run", str(source), "-m", "dealervault", "--department-uuid", DEPARTMENT, "--api-url",
                    sandbox.url, "--out", str(tmp_path / "out"), "--max-attempts", "2", "--state",
                    str(tmp_path / "state.sqlite")], tmp_path)
    assert done.returncode == 1
    assert "RETRIES_EXHAUSTED" in (tmp_path / "out" / "results.csv").read_text()
    left = everything_left_behind(tmp_path, done)
    assert PASSWORD not in left
    assert TOKEN not in left


def test_quiet_mode_prints_nothing_on_success(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(users={USER: PASSWORD})
    source = write_csv([DV_HEADER, dv_row("1")])
    done = run_cli(["-q", "run", str(source), "-m", "dealervault", "--department-uuid", DEPARTMENT, "--api-url",
                    sandbox.url, "--out", str(tmp_path / "out"), "--state", str(tmp_path / "s.sqlite")], tmp_path)
    assert done.returncode == 0
    assert done.stderr == ""
    assert done.stdout == ""


def test_config_repr_hides_credentials():
    config = RunConfig(PrepareConfig("x.csv", "cdk"), DEPARTMENT, credentials=Credentials(USER, PASSWORD))
    assert PASSWORD not in repr(config)
    assert TOKEN not in repr(config)


def test_summary_is_good_enough_for_monitoring(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(users={USER: PASSWORD})
    source = write_csv([DV_HEADER, dv_row("1"), dv_row("2", last="")])
    run_cli(["run", str(source), "-m", "dealervault", "--department-uuid", DEPARTMENT, "--api-url", sandbox.url,
             "--out", str(tmp_path / "out"), "--state", str(tmp_path / "s.sqlite")], tmp_path)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for key in ("counts", "requests_sent", "retries", "rate_limited", "duration_s", "rows_per_s", "exit_code",
                "mapping", "program", "python", "api_url"):
        assert key in summary, key
    assert len(summary["input"]["sha256"]) == 64
    assert summary["counts"] == {"success": 1, "invalid": 1}
    assert summary["exit_code"] == 1


def test_cron_run_is_silent_when_all_is_well_and_speaks_when_not(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(users={USER: PASSWORD})
    common = ["-m", "dealervault", "--department-uuid", DEPARTMENT, "--api-url", sandbox.url, "--state",
              str(tmp_path / "s.sqlite")]
    good = run_cli(["run", str(write_csv([DV_HEADER, dv_row("1")])), *common, "--out", str(tmp_path / "a")], tmp_path)
    assert (good.returncode, good.stderr) == (0, "")
    bad = run_cli(["run", str(write_csv([DV_HEADER, dv_row("2", last="")], name="b.csv")), *common,
                   "--out", str(tmp_path / "b")], tmp_path)
    assert bad.returncode == 1
    assert "1 invalid" in bad.stderr


def test_without_a_terminal_progress_is_a_log_line_every_few_seconds(start_sandbox, write_csv, tmp_path: Path):
    sandbox = start_sandbox(users={USER: PASSWORD}, latency_ms=50)
    source = write_csv([DV_HEADER, *(dv_row(str(i), first=f"P{i}") for i in range(20))])
    done = run_cli(["run", str(source), "-m", "dealervault", "--department-uuid", DEPARTMENT, "--api-url", sandbox.url,
                    "--out", str(tmp_path / "out"), "--state", str(tmp_path / "s.sqlite"), "--concurrency", "2",
                    "--log-every", "0.2"], tmp_path)
    assert done.returncode == 0
    lines = [line for line in done.stderr.splitlines() if "progress" in line]
    assert len(lines) >= 2
    assert "/20 customers" in lines[-1]
    assert "eta" in lines[-1]


def test_json_progress_lines_carry_their_figures_as_fields(caplog):
    import json
    import logging

    from importer.logs import JsonFormatter
    from importer.send.progress import LogProgress
    from importer.status import Status

    progress = LogProgress(every=0)
    progress.start(10)
    with caplog.at_level(logging.INFO, logger="mk_import"):
        progress.advance(Status.SUCCESS, rows=3, customers=2)
        progress.advance(Status.FAILED, rows=1, customers=1)
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert line["message"].startswith("progress 3/10 customers")
    assert (line["customers_done"], line["customers_total"], line["rows_done"]) == (3, 10, 4)
    assert line["counts"] == {"failed": 1, "success": 2}
    assert line["rows_per_s"] > 0
    assert line["eta_s"] >= 0
