"""A hostile or careless dealers file: cron line injection, YAML bombs, Kubernetes values no API server
takes, departments `run` refuses; each refused at once with every problem listed, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from crontab import CronTab

from importer.cli import main
from tests.ops.test_deploy import three_dealers

INJECTED = "/x\n* * * * * root touch /tmp/pwned #"


def edited(tmp_path: Path, change: Any) -> Path:
    """The three dealers' file (see test_deploy.py) changed by `change(document)`."""
    path = three_dealers(tmp_path, "http://127.0.0.1:1")
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# -- 4: a line break in any value that lands in a cron line or comment --------------------------------------
@pytest.mark.parametrize(("section", "key"), [("cron", "dealers_file"), ("cron", "metrics_dir"), ("cron", "lock_dir"),
                                              ("cron", "user"), ("cron", "log_dir"), ("cron", "command"),
                                              ("defaults", "state_dir"), ("defaults", "reports")])
@pytest.mark.parametrize("char", ["\n", "\r", "\u2028", "\x0b"])
def test_a_line_break_in_a_cron_value_is_refused(section, key, char, tmp_path: Path, capsys):
    dealers = edited(tmp_path, lambda d: d[section].__setitem__(key, INJECTED.replace("\n", char)))
    out = tmp_path / "deploy"
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{section}: {key}: holds a line break or control character (U+{ord(char):04X})" in err
    assert not (out / "crontab").exists()


def test_control_characters_anywhere_are_listed_at_once(tmp_path: Path, capsys):
    def change(document: dict[str, Any]) -> None:
        document["cron"]["user"] = "root\nx"
        document["dealers"][1]["input"] = "exports/bravo/\x1b[2Jcustomers.csv"

    assert main(["deploy", "crontab", str(edited(tmp_path, change)), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "cron: user: holds a line break" in err
    assert "dealers[1]: input: holds a line break or control character (U+001B)" in err


def test_the_generated_crontab_has_exactly_one_job_per_dealer(tmp_path: Path, capsys):
    dealers = edited(tmp_path, lambda d: d["cron"].__setitem__("dealers_file", "/etc/mk import/dealers 'x'.yaml"))
    out = tmp_path / "deploy"
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 0
    jobs = list(CronTab(tab=(out / "crontab").read_text(), user=False))
    assert [job.command.split("--dealer ")[1].split()[0] for job in jobs] == ["alpha", "bravo", "charlie"]
    assert all(job.is_valid() for job in jobs)
    assert all(job.command.endswith(".log 2>&1") for job in jobs)
    # A `#` would cut the command for crontab tools, which would then see another job than cron runs.
    document = yaml.safe_load(dealers.read_text())
    document["cron"]["dealers_file"] = "/etc/dealers #1.yaml"
    dealers.write_text(yaml.safe_dump(document))
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 2
    assert "holds '#'" in capsys.readouterr().err


def test_a_dealers_file_whose_name_holds_a_line_break_is_refused(tmp_path: Path, capsys):
    dealers = three_dealers(tmp_path, "http://127.0.0.1:1")
    renamed = dealers.with_name("dealers\n* * * * * root id > x.yaml")
    dealers.rename(renamed)
    assert main(["deploy", "crontab", str(renamed), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "line break or control character (U+000A)" in err
    assert len(err.splitlines()) == 1


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # A memory cap, so an unprotected loader dies of MemoryError instead of taking the machine down.
    done = subprocess.run([sys.executable, "-c",
                           "import resource, sys; resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30)); "
                           "from importer.cli import main; sys.exit(main(sys.argv[1:]))", *args],
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done


# -- 3: the dealers file has the mapping files' YAML bounds --------------------------------------------------
def test_a_dealers_file_alias_bomb_is_refused_within_the_bounds(tmp_path: Path):
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    bomb = tmp_path / "dealers.yaml"
    bomb.write_text("bombs:\n" + "".join(f"  {line}\n" for line in levels) +
                    "dealers:\n  - {name: a, department: d, input: x, schedule: *i, rate: *i}\n")
    assert bomb.stat().st_size < 600
    for command in (["deploy", "crontab", str(bomb)], ["run", "--dealers", str(bomb), "--dealer", "a"]):
        done = cli(*command)
        assert done.returncode == 2, done.stderr[-500:]
        assert f"{bomb}: more than 50 YAML aliases" in done.stderr


def test_a_deeply_nested_or_huge_dealers_file_is_refused(tmp_path: Path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("dealers: " + "[" * 5000 + "]" * 5000 + "\n")
    done = cli("deploy", "kubernetes", str(deep))
    assert done.returncode == 2
    assert "nested more than 20 levels deep" in done.stderr
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * (2 << 20) + "\ndealers: []\n")
    done = cli("deploy", "crontab", str(huge))
    assert done.returncode == 2
    assert "a dealers file of more than 1,048,576 bytes" in done.stderr


# -- 5: Kubernetes values by their own grammars; inputs normalized; departments as `run` checks them ---------
def test_kubernetes_values_an_api_server_would_refuse_are_all_listed_at_once(tmp_path: Path, capsys):
    def change(document: dict[str, Any]) -> None:
        kube = document["kubernetes"]
        kube["namespace"] = "Mk_Import_" + "x" * 60
        kube["exports"]["claim"] = "DMS_Exports"
        kube["storage_class"] = "Fast_SSD"
        kube["image"] = "Registry.example.com/mk import:0.1.0"
        kube["time_zone"] = "Not/AZone"
        mount = kube["exports"]["mount"]
        document["dealers"][0]["input"] = f"{mount}/../../etc/shadow"

    dealers = edited(tmp_path, change)
    out = tmp_path / "deploy"
    assert main(["deploy", "kubernetes", str(dealers), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for expected in ("kubernetes: namespace: 'Mk_Import_", "is not a DNS label (RFC 1123: at most 63",
                     "kubernetes: exports: claim: 'DMS_Exports' is not a DNS subdomain",
                     "kubernetes: storage_class: 'Fast_SSD' is not a DNS subdomain",
                     "kubernetes: image: 'Registry.example.com/mk import:0.1.0' is not an image reference",
                     "kubernetes: time_zone: 'Not/AZone' is not a time zone",
                     "input: not under kubernetes.exports.mount", "for alpha"):
        assert expected in err, (expected, err)
    assert not (out / "kubernetes.yaml").exists()


@pytest.mark.parametrize("department", ["..", "a/b", "dept 1", "%2e%2e"])
def test_deploy_refuses_a_department_that_run_refuses(department, tmp_path: Path, capsys):
    dealers = edited(tmp_path, lambda d: d["dealers"][1].__setitem__("department", department))
    for kind in ("crontab", "kubernetes"):
        assert main(["deploy", kind, str(dealers), "--out", str(tmp_path / "d")]) == 2
        assert "dealers[1] (bravo): department:" in capsys.readouterr().err
    assert main(["run", "x.csv", "-m", "cdk", "--department-uuid", department]) == 2
    assert "expected a department UUID (letters, digits and dashes)" in capsys.readouterr().err


def test_good_kubernetes_values_still_pass_the_schemas(tmp_path: Path):
    import kubernetes_validate

    def change(document: dict[str, Any]) -> None:
        document["kubernetes"].update({"image": "registry.example.com:5000/team/mk-import@sha256:" + "a" * 64,
                                       "storage_class": "fast-ssd.example.com", "time_zone": "America/Toronto"})

    out = tmp_path / "deploy"
    assert main(["deploy", "kubernetes", str(edited(tmp_path, change)), "--out", str(out)]) == 0
    for document in yaml.safe_load_all((out / "kubernetes.yaml").read_text()):
        if document:
            kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


# -- 13: a Namespace object, CRON_TZ, the alert rules from the package, a busy port -------------------------
def test_the_namespace_is_created_unless_it_exists(tmp_path: Path):
    import kubernetes_validate

    out = tmp_path / "deploy"
    dealers = three_dealers(tmp_path, "http://127.0.0.1:1")
    assert main(["deploy", "kubernetes", str(dealers), "--out", str(out)]) == 0
    documents = [d for d in yaml.safe_load_all((out / "kubernetes.yaml").read_text()) if d]
    assert documents[0] == {"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "mk-import", "labels": {"app.kubernetes.io/name": "mk-import"}}}
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    assert all(d["metadata"]["namespace"] == "mk-import" for d in documents[1:])
    document = yaml.safe_load(dealers.read_text())
    document["kubernetes"]["namespace_exists"] = True
    dealers.write_text(yaml.safe_dump(document))
    assert main(["deploy", "kubernetes", str(dealers), "--out", str(out)]) == 0
    assert "kind: Namespace" not in (out / "kubernetes.yaml").read_text()


def test_the_crontab_runs_in_the_dealers_time_zone(tmp_path: Path, capsys):
    out = tmp_path / "deploy"
    dealers = three_dealers(tmp_path, "http://127.0.0.1:1")  # kubernetes.time_zone: America/Chicago
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 0
    jobs = list(CronTab(tab=(out / "crontab").read_text(), user=False))
    assert len(jobs) == 3, "one job per dealer"
    assert all(job.env["CRON_TZ"] == "America/Chicago" for job in jobs)
    document = yaml.safe_load(dealers.read_text())
    document["cron"]["time_zone"] = "Europe/Paris"
    dealers.write_text(yaml.safe_dump(document))
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 0
    assert "CRON_TZ=Europe/Paris" in (out / "crontab").read_text().splitlines()
    document["cron"]["time_zone"] = "Mars/Olympus"
    dealers.write_text(yaml.safe_dump(document))
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 2
    assert "cron: time_zone: 'Mars/Olympus' is not a time zone" in capsys.readouterr().err


def test_the_alert_rules_ship_inside_the_package(tmp_path: Path, capsys):
    assert main(["deploy", "alerts"]) == 0
    printed = capsys.readouterr().out
    shipped = (Path(__file__).parents[2] / "deploy" / "alerts.yaml").read_text()
    assert printed == shipped, "deploy/alerts.yaml and importer/ops/alerts.yaml must be the same file"
    assert yaml.safe_load(printed)["kind"] == "PrometheusRule"
    assert main(["deploy", "alerts", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "alerts.yaml").read_text() == shipped
    assert main(["deploy", "crontab"]) == 2
    assert "deploy crontab needs the dealers file" in capsys.readouterr().err


def test_a_busy_sandbox_port_is_one_clean_message():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "importer", "sandbox", "--port", str(port), "--user", "a:b"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"mk-import: error: sandbox: cannot listen on 127.0.0.1:{port}: the port is " \
                                  "in use; give another --port, or --port 0 for a free one"
