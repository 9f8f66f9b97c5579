"""--metrics-file and --pushgateway: what a run reports to Prometheus, read back with prometheus-client's parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from importer.cli import main
from importer.ops.metrics import facts_from_summary
from tests.conftest import DEPARTMENT
from tests.helpers import DV_HEADER, dv_row, read_summary
from tests.pushgateway import Pushgateway

ROOT = Path(__file__).parents[2]


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    gateway = Pushgateway()
    yield gateway
    gateway.close()


def samples(text: str) -> dict[tuple[str, str], float]:
    """(metric name, status label or "") → value; every sample must carry the dealer and department labels."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.labels["dealer"] == DEPARTMENT
            assert sample.labels["department"] == DEPARTMENT
            values[(sample.name, sample.labels.get("status", ""))] = sample.value
    return values


def run(csv: Path, url: str, tmp_path: Path, out: str, *extra: str) -> int:
    return main(["run", str(csv), "--mapping", "dealervault", "--department-uuid", DEPARTMENT, "--api-url", url,
                 "--out", str(tmp_path / out), "--state", str(tmp_path / "state.sqlite"), "--progress", "none",
                 "--metrics-file", str(tmp_path / "metrics.prom"), *extra])


def test_pushgateway_and_textfile_carry_the_run_figures(start_sandbox, creds, write_csv, pushgateway, tmp_path):
    sandbox = start_sandbox()
    rows = [DV_HEADER, *(dv_row(f"K{i}", last=f"Lee{i}", email=f"k{i}@example.com") for i in range(6)),
            dv_row("K9", last="")]  # one invalid row
    csv = write_csv(rows)
    before = time.time()
    assert run(csv, sandbox.url, tmp_path, "night1", "--pushgateway", pushgateway.url) == 1
    after = time.time()
    summary = read_summary(tmp_path / "night1")

    [(method, path, body)] = pushgateway.pushes
    assert method == "PUT"
    assert path == f"/metrics/job/mk-import/dealer/{DEPARTMENT}"
    for text in (body, (tmp_path / "metrics.prom").read_text()):
        values = samples(text)
        assert values[("mk_import_rows", "success")] == 6
        assert values[("mk_import_rows", "invalid")] == 1
        assert values[("mk_import_rows", "failed")] == 0
        assert values[("mk_import_requests", "")] == summary["requests_sent"] == 6
        assert values[("mk_import_retries", "")] == 0
        assert values[("mk_import_rate_limited", "")] == 0
        assert values[("mk_import_duration_seconds", "")] == summary["duration_s"]
        assert values[("mk_import_exit_code", "")] == 1
        assert before <= values[("mk_import_last_success_timestamp_seconds", "")] <= after
        assert values[("mk_import_time_budget_stops_in_a_row", "")] == 0


def test_time_budget_stops_count_nights_in_a_row_and_a_finished_run_resets(start_sandbox, creds, write_csv,
                                                                          tmp_path):
    sandbox = start_sandbox()
    csv = write_csv([DV_HEADER, *(dv_row(f"K{i}", last=f"Lee{i}", email=f"k{i}@example.com") for i in range(3))])

    def metrics() -> dict[tuple[str, str], float]:
        return samples((tmp_path / "metrics.prom").read_text())

    assert run(csv, sandbox.url, tmp_path, "night1", "--max-duration", "0.000001") == 3
    assert metrics()[("mk_import_time_budget_stops_in_a_row", "")] == 1
    assert run(csv, sandbox.url, tmp_path, "night2", "--max-duration", "0.000001") == 3
    values = metrics()
    assert values[("mk_import_time_budget_stops_in_a_row", "")] == 2
    assert values[("mk_import_exit_code", "")] == 3
    assert values[("mk_import_rows", "not_attempted")] == 3
    assert ("mk_import_last_success_timestamp_seconds", "") not in values, "no run has finished yet"
    assert run(csv, sandbox.url, tmp_path, "night3") == 0
    values = metrics()
    assert values[("mk_import_time_budget_stops_in_a_row", "")] == 0
    finished = values[("mk_import_last_success_timestamp_seconds", "")]
    # A later night that stops early keeps the time of the last finished one.
    csv.write_text(csv.read_text().replace("Lee0", "Leigh0"))
    assert run(csv, sandbox.url, tmp_path, "night4", "--max-duration", "0.000001") == 3
    assert metrics()[("mk_import_last_success_timestamp_seconds", "")] == finished


def test_an_unreachable_pushgateway_is_a_warning_not_a_failure(start_sandbox, creds, write_csv, tmp_path, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox = start_sandbox()
    csv = write_csv([DV_HEADER, dv_row("K1", email="k1@example.com")])
    assert run(csv, sandbox.url, tmp_path, "night1", "--pushgateway", f"http://127.0.0.1:{port}") == 0
    assert "could not push the metrics to the Pushgateway" in capsys.readouterr().err
    assert (tmp_path / "metrics.prom").exists()


def test_facts_read_from_summary_keys_and_from_a_bare_exit_code():
    facts = facts_from_summary({"counts": {"success": 3}, "requests_sent": 4, "retries": 1, "rate_limited": 1,
                                "duration_s": 2.5, "exit_code": 3, "stop_code": "time_budget",
                                "stop_reason": "whatever the words"})
    assert facts.out_of_time
    assert not facts.finished
    assert facts.requests == 4
    other = facts_from_summary({"counts": {"not_attempted": 3}, "exit_code": 3, "stop_code": "terminated",
                                "stop_reason": "time budget, said in other words"})
    assert not other.out_of_time  # the stable token decides, never the words
    assert not other.finished
    bare = facts_from_summary({"exit_code": 2})
    assert bare.exit_code == 2
    assert not bare.finished
    assert not bare.out_of_time


def test_alert_rules_read_only_metrics_a_run_reports(start_sandbox, creds, write_csv, tmp_path):
    import re

    sandbox = start_sandbox()
    csv = write_csv([DV_HEADER, dv_row("K1", email="k1@example.com")])
    assert run(csv, sandbox.url, tmp_path, "night1") == 0
    reported = {name for name, _ in samples((tmp_path / "metrics.prom").read_text())}
    rule = yaml.safe_load((ROOT / "deploy" / "alerts.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert {"MkImportNoSuccessfulRun", "MkImportRowsFailed", "MkImportOutOfTimeTwoNightsInARow"} <= set(alerts)
    assert "36 * 3600" in alerts["MkImportNoSuccessfulRun"]
    assert "> 0.05" in alerts["MkImportRowsFailed"]
    assert ">= 2" in alerts["MkImportOutOfTimeTwoNightsInARow"]
    for expr in alerts.values():
        assert set(re.findall(r"mk_import_\w+", expr)) <= reported, expr


def test_metrics_that_cannot_be_written_leave_the_exit_code_alone(start_sandbox, creds, write_csv, tmp_path, capsys):
    sandbox = start_sandbox()
    csv = write_csv([DV_HEADER, dv_row("K1", email="k1@example.com")])
    (tmp_path / "not-a-folder").write_text("")
    assert main(["run", str(csv), "--mapping", "dealervault", "--department-uuid", DEPARTMENT, "--api-url",
                 sandbox.url, "--out", str(tmp_path / "out"), "--state", str(tmp_path / "state.sqlite"),
                 "--progress", "none", "--metrics-file", str(tmp_path / "not-a-folder" / "m.prom")]) == 0
    assert "could not write the metrics to" in capsys.readouterr().err


def labelled(text: str, name: str, label: str) -> dict[str, float]:
    """One metric's samples by the value of one of its labels."""
    return {sample.labels[label]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


def test_changes_and_known_problems_are_metrics_and_the_runs_are_kept(start_sandbox, creds, write_csv, tmp_path):
    import json

    sandbox = start_sandbox()
    rows = [dv_row("K1", cell="(310) 555-0101"), dv_row("K2", last="Kim", cell="(310) 555-0102"),
            dv_row("K9", last="")]
    assert run(write_csv([DV_HEADER, *rows]), sandbox.url, tmp_path, "night1") == 1
    rows[0][4] = "(310) 555-0199"
    assert run(write_csv([DV_HEADER, *rows], name="n2.csv"), sandbox.url, tmp_path, "night2") == 1
    text = (tmp_path / "metrics.prom").read_text()
    changes = labelled(text, "mk_import_changes", "category")
    assert changes["phones"] == 1
    assert changes["created"] == 0
    assert labelled(text, "mk_import_problems", "kind") == {"new": 0, "known": 1}
    assert set(labelled(text, "mk_import_stopped", "stop_code").values()) == {0}
    kept = json.loads((tmp_path / "state.sqlite.runs.json").read_text())
    assert kept["last_success"] is not None, "the metrics' memory and the runs share the file"
    assert [(r["created"], r["updated"], r["to_fix"]) for r in kept["runs"]] == [(2, 0, 1), (0, 1, 1)]


def test_a_mass_change_is_named_by_the_stop_metric():
    from prometheus_client import generate_latest

    from importer.ops.metrics import History, registry_for

    facts = facts_from_summary({"counts": {"not_attempted": 60}, "exit_code": 2, "stop_code": "mass_change"})
    text = generate_latest(registry_for(facts, History(), DEPARTMENT, DEPARTMENT, 0.0)).decode()
    stopped = labelled(text, "mk_import_stopped", "stop_code")
    assert stopped["mass_change"] == 1
    assert sum(stopped.values()) == 1
