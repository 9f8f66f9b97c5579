"""The dealers file: every mistake named with its entry and key; the newest export, refused when stale."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from importer.cli import main
from importer.errors import ConfigError, InputError
from importer.ops.dealers import load_dealers, parse_duration
from tests.conftest import PASSWORD, USER
from tests.helpers import DV_HEADER, dv_row, read_summary


def write_dealers(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "dealers.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_every_mistake_is_named_with_its_entry_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write_dealers(tmp_path, {
        "defaults": {"rate": "fast", "schedule": "0 1 * *", "colour": "blue", "mapping": "maps/{name}.yaml",
                     "credentials": {"env_file": "{name}.env"}},
        "cron": {"mailto": "ops@example.com"},
        "dealers": [
            {"name": "alpha", "department": "d1", "input": "a.csv"},
            {"name": "Bravo Motors", "input": "b.csv", "mapping": "nowhere.yaml", "max_duration": "ten hours"},
            {"name": "alpha", "department": "d3", "input": "c.csv", "mapping": "cdk", "full": "yes",
             "credentials": "secret-name", "keep": 0, "schedule": "61 2 * * *", "vin": "x"},
        ],
    })
    assert main(["deploy", "crontab", str(path)]) == 2
    err = capsys.readouterr().err
    for expected in (
        "defaults: rate: expected a positive number, got 'fast'",  # reported once, where it is
        "defaults: schedule: '0 1 * *' is not five cron fields",
        "defaults: colour: unknown key",
        "cron: mailto: unknown key",
        "dealers[1] (Bravo Motors): name: use at most 40 lower-case letters",
        "dealers[1] (Bravo Motors): department: missing",
        "dealers[1] (Bravo Motors): mapping: 'nowhere.yaml' is neither a built-in mapping",
        "dealers[1] (Bravo Motors): max_duration: 'ten hours' is not a duration",
        "dealers[2] (alpha): name: another entry has this name",
        "dealers[2] (alpha): full: expected true or false, got 'yes'",
        "dealers[2] (alpha): credentials: expected env_file: PATH",
        "dealers[2] (alpha): keep: expected a whole number of at least 1, got 0",
        "dealers[2] (alpha): schedule: '61' is not a minute (0-59)",
        "dealers[2] (alpha): vin: unknown key",
        "defaults (for dealers[0] (alpha)): mapping: 'maps/alpha.yaml' is neither a built-in mapping",
    ):
        assert f"{path}: {expected}" in err, expected
    assert "Traceback" not in err
    assert err.count("defaults: rate") == 1, "a bad default is reported once, not once per entry"


def test_a_file_that_is_not_yaml_or_has_no_dealers(tmp_path: Path):
    path = tmp_path / "dealers.yaml"
    path.write_text("dealers: [name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_dealers(path)
    path.write_text("defaults: {}\ndealers: []\ndefaults: {rate: 5}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"the key 'defaults' is written twice, at lines 1 and 3"):
        load_dealers(path)
    path.write_text("defaults: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top: dealers: expected a list of dealer entries"):
        load_dealers(path)


@pytest.mark.parametrize(("schedule", "ok"), [
    ("30 2 * * *", True), ("*/15 1-5 * * mon-fri", True), ("0 3 1,15 jan,jul 0", True), ("0 0 * * 7", True),
    ("0 24 * * *", False), ("0 1 0 * *", False), ("0 1 * 13 *", False), ("0 1 * * 8", False),
    ("5-1 1 * * *", False), ("*/0 1 * * *", False), ("0 1 * * funday", False), ("0 1 * *", False),
])
def test_schedules_are_checked_field_by_field(tmp_path: Path, schedule: str, ok: bool):
    path = write_dealers(tmp_path, {"dealers": [{"name": "a", "department": "d", "input": "x.csv", "mapping": "cdk",
                                                 "credentials": {"secret": "s"}, "schedule": schedule}]})
    if ok:
        assert load_dealers(path).dealers[0].schedule == schedule
    else:
        with pytest.raises(ConfigError, match=r"dealers\[0\] \(a\): schedule: "):
            load_dealers(path)


def test_durations_and_defaults_with_the_entry_name(tmp_path: Path):
    assert [parse_duration(v) for v in (90, "90m", "3h", "1.5d", "45 s")] == [90, 5400, 10800, 129600, 45]
    path = write_dealers(tmp_path, {
        "defaults": {"input": "exports/{name}/*.csv", "mapping": "cdk", "credentials": {"secret": "mk-{name}"}},
        "dealers": [{"name": "alpha", "department": "d1"}, {"name": "bravo", "department": "d_2", "rate": 5}],
    })
    alpha, bravo = load_dealers(path).dealers
    assert alpha.input == str(tmp_path / "exports" / "alpha" / "*.csv")
    assert (alpha.secret, bravo.secret, bravo.rate, alpha.rate) == ("mk-alpha", "mk-bravo", 5.0, 20.0)
    assert bravo.state.name == "d_2.sqlite", "the department names its state file"
    assert bravo.reports.name == "bravo"


def test_the_newest_matching_export_and_one_too_old(tmp_path: Path):
    path = write_dealers(tmp_path, {"dealers": [{"name": "alpha", "department": "d1", "input": "in/sales-*.csv",
                                                 "mapping": "dealervault", "max_age": "26h",
                                                 "credentials": {"secret": "s"}}]})
    dealer = load_dealers(path).dealer("alpha")
    with pytest.raises(InputError, match=r"dealer alpha: input: no file matches .*sales-\*\.csv"):
        dealer.newest_input()
    (tmp_path / "in").mkdir()
    now = time.time()
    for name, age_h in (("sales-1.csv", 30), ("sales-2.csv", 2), ("sales-0.csv", 50)):
        (tmp_path / "in" / name).write_text("x")
        os.utime(tmp_path / "in" / name, (now - age_h * 3600, now - age_h * 3600))
    assert dealer.newest_input(lambda: now).name == "sales-2.csv"
    with pytest.raises(InputError, match=r"is 26\.5 h old, older than max_age \(26 h\): the export did not arrive"):
        dealer.newest_input(lambda: now + 24.5 * 3600)
    with pytest.raises(ConfigError, match=r"no dealer named 'bravo' .*alpha"):
        load_dealers(path).dealer("bravo")


def test_a_stale_export_exits_2_and_says_so_in_the_metrics(start_sandbox, write_csv, tmp_path: Path, monkeypatch,
                                                           capsys):
    sandbox = start_sandbox()
    csv = write_csv([DV_HEADER, dv_row("K1", email="k1@example.com")], name="export.csv")
    env = tmp_path / "alpha.env"
    env.write_text(f"MK_USERNAME={USER}\nMK_PASSWORD={PASSWORD}\n")
    env.chmod(0o600)
    path = write_dealers(tmp_path, {
        "defaults": {"state_dir": "state", "reports": "reports", "api_url": sandbox.url, "max_age": "1h"},
        "dealers": [{"name": "alpha", "department": "d1", "input": str(csv), "mapping": "dealervault",
                     "credentials": {"env_file": "alpha.env"}}]})
    for name in ("MK_USERNAME", "MK_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    line = ["run", "--dealers", str(path), "--dealer", "alpha", "--progress", "none",
            "--metrics-file", str(tmp_path / "alpha.prom")]
    assert main(line) == 0, "the env file gives the credentials"
    assert read_summary(tmp_path / "reports" / "alpha" / "latest")["counts"] == {"success": 1}

    os.utime(csv, (time.time() - 7200, time.time() - 7200))
    assert main(line) == 2
    assert "older than max_age" in capsys.readouterr().err
    values = {s.name: s.value for f in text_string_to_metric_families((tmp_path / "alpha.prom").read_text())
              for s in f.samples if s.labels["dealer"] == "alpha"}
    assert values["mk_import_exit_code"] == 2
    assert "mk_import_last_success_timestamp_seconds" in values, "the last finished night is remembered"

    env.unlink()
    os.utime(csv)
    assert main(line) == 2
    assert "cannot read the credentials file" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    ([], "--dealers needs --dealer NAME"),
    (["--dealer", "alpha", "export.csv"], "the dealer's entry gives the file and the mapping"),
    (["--dealer", "alpha", "--mapping", "cdk"], "the dealer's entry gives the file and the mapping"),
])
def test_dealers_options_that_do_not_go_together(tmp_path: Path, capsys, extra: list[str], message: str):
    path = write_dealers(tmp_path, {"dealers": [{"name": "alpha", "department": "d1", "input": "x.csv",
                                                 "mapping": "cdk", "credentials": {"secret": "s"}}]})
    assert main(["run", "--dealers", str(path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_run_without_a_file_or_dealers_is_a_usage_error(capsys):
    assert main(["run", "--department-uuid", "d"]) == 2
    assert "give FILE and --mapping, or --dealers FILE --dealer NAME" in capsys.readouterr().err


def test_the_run_options_a_night_needs_come_from_the_dealers_file(start_sandbox, write_csv, tmp_path: Path,
                                                                   monkeypatch, capsys):
    sandbox = start_sandbox()
    rows = [dv_row(f"K{i}", email=f"k{i}@example.com") for i in range(1, 10)] + [dv_row("K10", last="")]
    csv = write_csv([DV_HEADER, *rows], name="export.csv")
    options = {"max_invalid": 20, "min_rows": 5, "allow_empty": True, "patience": "5m", "request_timeout": 30,
               "concurrency": 4}
    path = write_dealers(tmp_path, {
        "defaults": {"state_dir": "state", "reports": "reports", "api_url": sandbox.url, "max_invalid": 20},
        "dealers": [{"name": "alpha", "department": "d1", "input": str(csv), "mapping": "dealervault",
                     "credentials": {"secret": "s"}, **options}]})
    monkeypatch.setenv("MK_USERNAME", USER)
    monkeypatch.setenv("MK_PASSWORD", PASSWORD)
    import importer.pipeline

    seen = []
    original = importer.pipeline.run_import

    def recorded(config, *args, **kwargs):
        seen.append(config)
        return original(config, *args, **kwargs)

    monkeypatch.setattr(importer.pipeline, "run_import", recorded)
    line = ["run", "--dealers", str(path), "--dealer", "alpha", "--progress", "none"]
    assert main(line) == 0, "one invalid row in ten is within max_invalid: 20"
    config = seen[-1]
    assert (config.max_invalid, config.prepare.min_rows, config.prepare.allow_empty) == (20.0, 5, True)
    assert (config.pool.patience, config.pool.request_timeout, config.pool.concurrency) == (300.0, 30.0, 4)
    assert main([*line, "--max-invalid", "0", "--concurrency", "2"]) == 1, "the command line wins"
    assert (seen[-1].max_invalid, seen[-1].pool.concurrency) == (0.0, 2)

    broken = write_dealers(tmp_path, {"dealers": [{"name": "alpha", "department": "d1", "input": str(csv),
                                                   "mapping": "dealervault", "credentials": {"secret": "s"},
                                                   "max_invalid": 101, "concurrency": 0, "max_invalids": 3}]})
    capsys.readouterr()
    assert main(["run", "--dealers", str(broken), "--dealer", "alpha"]) == 2
    err = capsys.readouterr().err
    assert "max_invalids: unknown key" in err
    assert "max_invalid: expected a percentage between 0 and 100, got 101" in err
    assert "concurrency: expected a whole number of at least 1, got 0" in err
