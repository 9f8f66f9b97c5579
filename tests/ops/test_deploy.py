"""`mk-import deploy`: schedules for three dealers, checked against Kubernetes' schemas and cron's syntax, run."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from crontab import CronTab
from prometheus_client.parser import text_string_to_metric_families

from importer.cli import main
from importer.prepare.mapping import mapping_text
from tests.conftest import Api
from tests.helpers import DV_HEADER, dv_row, read_summary
from tests.pushgateway import Pushgateway

ROOT = Path(__file__).parents[2]
USER, PASSWORD = "ops", "night-shift-pass"
CDK_HEADER = ["CustNo", "FirstName", "LastName", "BusinessName", "Address", "City", "State", "ZipOrPostalCode",
              "HomePhone", "CellPhone", "WorkPhone", "Email1", "VIN", "Year", "MakeName", "ModelName",
              "VehicleMileage", "LicensePlate"]


@pytest.fixture
def sandbox_process() -> Iterator[str]:
    """`mk-import sandbox` as its own process on a free 127.0.0.1 port, with a known account."""
    process = subprocess.Popen([sys.executable, "-m", "importer", "sandbox", "--host", "127.0.0.1", "--port", "0",
                                "--user", f"{USER}:{PASSWORD}"], stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    gateway = Pushgateway()
    yield gateway
    gateway.close()


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows([header, *rows])
    return path


def cdk_row(key: str, first: str, last: str, email: str) -> list[str]:
    return [key, first, last, "", "1 Main St", "Austin", "TX", "78701", "", "", "", email, "", "", "", "", "", ""]


def three_dealers(tmp_path: Path, api_url: str, pushgateway: str = "") -> Path:
    """Three dealers: a built-in mapping, a mapping file, and a glob whose newest file is the one to import."""
    exports = tmp_path / "exports"
    write_rows(exports / "alpha" / "sales.csv", DV_HEADER,
               [dv_row(f"A{i}", "Ann", f"Alpha{i}", email=f"a{i}@alpha.example") for i in range(5)])
    write_rows(exports / "bravo" / "customers.csv", CDK_HEADER,
               [cdk_row(f"B{i}", "Bob", f"Bravo{i}", f"b{i}@bravo.example") for i in range(4)])
    old = write_rows(exports / "charlie" / "sales-20261126.csv", DV_HEADER,
                     [dv_row("OLD", "Old", "File", email="old@charlie.example")])
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    write_rows(exports / "charlie" / "sales-20261127.csv", DV_HEADER,
               [dv_row(f"C{i}", "Cy", f"Charlie{i}", email=f"c{i}@charlie.example") for i in range(3)])
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "bravo-cdk.yaml").write_text(mapping_text("cdk"), encoding="utf-8")
    (tmp_path / "creds").mkdir()
    for name in ("alpha", "bravo", "charlie"):
        env = tmp_path / "creds" / f"{name}.env"
        env.write_text(f"MK_USERNAME={USER}\nMK_PASSWORD={PASSWORD}\n", encoding="utf-8")
        env.chmod(0o600)
    dealers = {
        "defaults": {"schedule": "0 1 * * *", "stagger": 10, "night_ends": "05:00", "max_duration": "3h",
                     "max_age": "26h", "rate": 200, "api_url": api_url, "state_dir": "state", "reports": "reports",
                     "keep": 3, "credentials": {"env_file": "creds/{name}.env", "secret": "mk-import-{name}"}},
        "cron": {"user": "mkimport", "command": f"{sys.executable} -m importer", "log_dir": "logs",
                 "metrics_dir": "metrics", "lock_dir": "locks"},
        "kubernetes": {"image": "registry.example.com/mk-import:0.1.0", "namespace": "mk-import",
                       "time_zone": "America/Chicago", "exports": {"claim": "dms-exports", "mount": str(exports)},
                       **({"pushgateway": pushgateway} if pushgateway else {})},
        "dealers": [
            {"name": "alpha", "department": "dept-alpha", "input": "exports/alpha/sales.csv", "mapping": "dealervault"},
            {"name": "bravo", "department": "dept-bravo", "input": "exports/bravo/customers.csv",
             "mapping": "mappings/bravo-cdk.yaml", "full": False},
            {"name": "charlie", "department": "dept-charlie", "input": "exports/charlie/sales-*.csv",
             "mapping": "dealervault", "schedule": "30 4 * * 1-6", "max_duration": 7200},
        ],
    }
    path = tmp_path / "dealers.yaml"
    path.write_text(yaml.safe_dump(dealers, sort_keys=False), encoding="utf-8")
    return path


def check_crontab(text: str, tmp_path: Path) -> list[Any]:
    tab = CronTab(tab=text, user=False)  # a cron.d file: a user column before the command
    jobs = list(tab)
    assert len(jobs) == 3, text
    assert all(job.is_valid() and job.user == "mkimport" for job in jobs)
    assert 'MAILTO=""' in text.splitlines()
    locks, starts = set(), []
    for job, name in zip(jobs, ("alpha", "bravo", "charlie"), strict=True):
        command = job.command
        assert re.match(r"^flock -n \S+\.lock ", command), command
        locks.add(command.split()[2])
        assert f"--dealer {name} --max-duration " in command
        assert command.endswith(f">> {tmp_path / 'logs' / name}.log 2>&1")
        assert f"--metrics-file {tmp_path / 'metrics'}/mk-import-{name}.prom" in command
        assert PASSWORD not in command
        assert "%" not in command
        starts.append((str(job.hour), str(job.minute)))
    assert len(locks) == 3, "one lock per state file"
    assert starts[:2] == [("1", "0"), ("1", "10")], "dealers without a schedule start staggered"
    assert str(jobs[2].slices) == "30 4 * * 1-6"
    # Inside the night: charlie starts at 04:30 and the night ends at 05:00.
    assert "--max-duration 1800 " in jobs[2].command
    assert "--max-duration 10800 " in jobs[0].command
    return jobs


def check_kubernetes(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    documents = [d for d in yaml.safe_load_all(text) if d]
    version = kubernetes_validate.latest_version()
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)  # raises on anything the schema refuses
    kinds = [d["kind"] for d in documents]
    assert kinds.count("CronJob") == 3
    assert kinds.count("ConfigMap") == 1
    claims = {d["metadata"]["name"] for d in documents if d["kind"] == "PersistentVolumeClaim"}
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert set(config["data"]) == {"dealers.yaml", "mapping-bravo-cdk.yaml"}
    assert PASSWORD not in text
    assert "creds/" not in config["data"]["dealers.yaml"]
    cronjobs = [d for d in documents if d["kind"] == "CronJob"]
    for cronjob in cronjobs:
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        job = spec["jobTemplate"]["spec"]
        pod = job["template"]["spec"]
        assert job["backoffLimit"] == 0
        container = pod["containers"][0]
        budget = next(int(a.split("=", 1)[1]) for a in container["args"] if a.startswith("--max-duration="))
        assert budget < job["activeDeadlineSeconds"] <= budget + 1800
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["limits"]["memory"] == "2Gi"  # BENCHMARKS.md: 1M rows peak at 742 MB
        for env in container["env"]:
            assert "value" not in env
            assert env["valueFrom"]["secretKeyRef"]["name"].startswith("mk-import-")
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] in claims
        assert volumes["reports"]["persistentVolumeClaim"]["claimName"] in claims
        assert volumes["config"]["configMap"]["name"] == config["metadata"]["name"]
    return config, cronjobs


def test_three_dealers_deploy_both_ways_and_every_cronjob_runs(sandbox_process: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, pushgateway: Pushgateway):
    dealers = three_dealers(tmp_path, sandbox_process, pushgateway.url)
    out = tmp_path / "deploy"
    assert main(["deploy", "crontab", str(dealers), "--out", str(out)]) == 0
    assert main(["deploy", "kubernetes", str(dealers), "--out", str(out)]) == 0
    jobs = check_crontab((out / "crontab").read_text(), tmp_path)
    config, cronjobs = check_kubernetes((out / "kubernetes.yaml").read_text())

    # The pods' view: the ConfigMap's files where it is mounted, the Secret's keys in the environment.
    mounted = tmp_path / "etc-mk-import"
    mounted.mkdir()
    for name, text in config["data"].items():
        (mounted / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("MK_USERNAME", USER)
    monkeypatch.setenv("MK_PASSWORD", PASSWORD)
    api = Api(sandbox_process, USER, PASSWORD)
    expected = {"alpha": 5, "bravo": 4, "charlie": 3}
    for round_ in (1, 2):
        for cronjob in cronjobs:
            args = [a.replace("/etc/mk-import", str(mounted)) for a in cronjob["spec"]["jobTemplate"]["spec"]
                    ["template"]["spec"]["containers"][0]["args"]]
            dealer = cronjob["metadata"]["labels"]["mk-import/dealer"]
            assert main(args) == 0, (round_, dealer)
            summary = read_summary(tmp_path / "reports" / dealer / "latest")
            assert summary["state"] == str(tmp_path / "state" / f"dept-{dealer}.sqlite")
            if round_ == 1:
                assert summary["counts"] == {"success": expected[dealer]}
                assert summary["requests_sent"] == expected[dealer]
            else:
                assert summary["counts"] == {"unchanged": expected[dealer]}
                assert summary["requests_sent"] == 0
        if round_ == 1:
            sent_after_first = api.stats()["requests"]
    # Each CronJob pushed its metrics, grouped by its dealer; the second round's say nothing was sent.
    pushed: dict[str, list[dict[tuple[str, str], float]]] = {}
    for _, path, body in pushgateway.pushes:
        dealer = path.rsplit("/", 1)[1]
        pushed.setdefault(dealer, []).append(
            {(s.name, s.labels.get("status", "")): s.value for f in text_string_to_metric_families(body)
             for s in f.samples if s.labels["dealer"] == dealer and s.labels["department"] == f"dept-{dealer}"})
    assert sorted(pushed) == sorted(expected)
    for dealer, (first, second) in pushed.items():
        assert first[("mk_import_requests", "")] == first[("mk_import_rows", "success")] == expected[dealer]
        assert second[("mk_import_requests", "")] == 0
        assert second[("mk_import_rows", "unchanged")] == expected[dealer]
        assert second[("mk_import_exit_code", "")] == 0
    assert api.stats()["requests"] == sent_after_first == sum(expected.values())
    assert api.stats()["customers"] == sum(expected.values()), "the older charlie file was not imported"
    assert len({p.name for p in (tmp_path / "state").glob("*.sqlite")}) == 3

    # The crontab's own lines, through a shell as cron runs them: the env files hold the credentials.
    monkeypatch.delenv("MK_USERNAME")
    monkeypatch.delenv("MK_PASSWORD")
    (tmp_path / "logs").mkdir()
    (tmp_path / "locks").mkdir()
    # While a night still runs (its lock held), the next one is skipped, not started beside it.
    lock = jobs[0].command.split()[2]
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        skipped = subprocess.run(["sh", "-c", jobs[0].command], cwd=ROOT, timeout=120, env=os.environ.copy())
    assert skipped.returncode == 1
    assert (tmp_path / "logs" / "alpha.log").read_text() == "", "mk-import did not start"
    for job, dealer in zip(jobs, expected, strict=True):
        done = subprocess.run(["sh", "-c", job.command], cwd=ROOT, timeout=120, env=os.environ.copy())
        assert done.returncode == 0, (dealer, (tmp_path / "logs" / f"{dealer}.log").read_text())
        log = (tmp_path / "logs" / f"{dealer}.log").read_text()
        assert '"message": "finished"' in log
        assert PASSWORD not in log
    assert api.stats()["requests"] == sent_after_first, "a third round sends nothing either"
    assert all((tmp_path / "metrics" / f"mk-import-{d}.prom").exists() for d in expected)


def test_shipped_schedules_are_what_the_example_dealers_file_generates(tmp_path: Path):
    example = ROOT / "deploy" / "dealers.yaml"
    for kind, name in (("crontab", "crontab"), ("kubernetes", "kubernetes.yaml")):
        assert main(["deploy", kind, str(example), "--out", str(tmp_path)]) == 0
        assert (tmp_path / name).read_text() == (ROOT / "deploy" / name).read_text(), \
            f"regenerate deploy/{name}: mk-import deploy {kind} deploy/dealers.yaml --out deploy"
    check_kubernetes_objects = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()) if d]
    for document in check_kubernetes_objects:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    assert all(job.is_valid() for job in CronTab(tab=(ROOT / "deploy" / "crontab").read_text(), user=False))


def test_operations_page_links_the_dealers_file_both_schedules_and_the_alerts():
    page = ROOT / "docs" / "operations.md"
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", page.read_text())
    linked = {(page.parent / target).resolve() for target in targets if "://" not in target}
    for name in ("dealers.yaml", "crontab", "kubernetes.yaml", "alerts.yaml"):
        deploy_file = (ROOT / "deploy" / name).resolve()
        assert deploy_file.is_file()
        assert deploy_file in linked, f"docs/operations.md does not link deploy/{name} by a relative path"


def test_the_image_tag_is_the_package_version_unless_the_dealers_file_gives_one():
    from importer import __version__
    from importer.ops.deploy import image_reference

    registry = "registry.example.com:5000/mk-import"
    assert image_reference(registry) == f"{registry}:{__version__}"
    assert image_reference("registry.example.com/mk-import:9.9") == "registry.example.com/mk-import:9.9"
    assert image_reference("mk-import@sha256:" + "a" * 64) == "mk-import@sha256:" + "a" * 64
    manifest = (ROOT / "deploy" / "kubernetes.yaml").read_text().splitlines()
    images = [line.split("image:", 1)[1].strip() for line in manifest if "image:" in line]
    assert images
    assert all(image.endswith(f":{__version__}") for image in images)


def test_a_dealers_proxy_and_ca_bundle_go_into_both_schedules_without_credentials(tmp_path: Path):
    path = three_dealers(tmp_path, "https://api.example.test")
    document = yaml.safe_load(path.read_text())
    (tmp_path / "corp-ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    document["defaults"] |= {"proxy": "http://proxy.corp.example:3128", "ca_bundle": "corp-ca.pem"}
    document["dealers"][2]["proxy"] = "proxy2.corp.example:8080"  # host:port, taken as http:// as curl does
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    jobs = list(CronTab(tab=render_of(path, "crontab"), user=False))
    assert "flock -n" in jobs[0].command
    assert " env HTTPS_PROXY=http://proxy.corp.example:3128 HTTP_PROXY=http://proxy.corp.example:3128 " \
           in jobs[0].command
    assert " env HTTPS_PROXY=http://proxy2.corp.example:8080 " in jobs[2].command
    text = render_of(path, "kubernetes")
    documents = [d for d in yaml.safe_load_all(text) if d]
    for manifest in documents:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert "BEGIN CERTIFICATE" in config["data"]["ca-corp-ca.pem"]
    embedded = yaml.safe_load(config["data"]["dealers.yaml"])
    assert {e["proxy"] for e in embedded["dealers"]} == {"http://proxy.corp.example:3128",
                                                          "http://proxy2.corp.example:8080"}
    assert {e["ca_bundle"] for e in embedded["dealers"]} == {"ca-corp-ca.pem"}
    container = next(d for d in documents if d["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"][
        "spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["HTTPS_PROXY"]["value"] == env["HTTP_PROXY"]["value"] == "http://proxy.corp.example:3128"
    assert env["MK_PROXY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mk-import-alpha",
                                                                     "key": "proxy_password", "optional": True}


def render_of(path: Path, kind: str) -> str:
    from importer.ops.dealers import load_dealers
    from importer.ops.deploy import render

    return render(kind, load_dealers(path))


def test_a_proxy_url_with_credentials_is_refused_in_the_dealers_file_and_not_repeated(tmp_path: Path, capsys):
    path = three_dealers(tmp_path, "https://api.example.test")
    document = yaml.safe_load(path.read_text())
    document["defaults"]["proxy"] = "http://egress:hunter22-secret@proxy.corp.example:3128"
    document["dealers"][0]["ca_bundle"] = "missing.pem"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["deploy", "crontab", str(path)]) == 2
    err = capsys.readouterr().err
    assert "defaults: proxy: the URL carries a user name or password (not repeated here)" in err
    assert "MK_PROXY_USERNAME" in err
    assert "dealers[0] (alpha): ca_bundle:" in err
    assert "hunter22" not in err


def test_a_dealers_max_changed_reaches_its_kubernetes_entry(tmp_path: Path):
    from importer.ops.dealers import load_dealers
    from importer.ops.deploy import render

    example = (ROOT / "deploy" / "dealers.yaml").read_text()
    dealers = tmp_path / "dealers.yaml"
    dealers.write_text(example.replace("    rate: 40\n", "    rate: 40\n    max_changed: 40\n"))
    documents = [d for d in yaml.safe_load_all(render("kubernetes", load_dealers(dealers))) if d]
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    entries = {e["name"]: e for e in yaml.safe_load(config["data"]["dealers.yaml"])["dealers"]}
    assert entries["bayside-ford"]["max_changed"] == 40
    assert "max_changed" not in entries["example-motors"], "the default is not repeated"
    assert load_dealers(dealers).dealer("bayside-ford").max_changed == 40
