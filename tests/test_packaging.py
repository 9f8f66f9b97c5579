"""The container recipe and the deploy examples keep their promises (no engine here to build them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_dockerfile_is_slim_non_root_and_secret_free():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1\d-slim AS build$", text, re.M)
    assert re.search(r"^FROM python:3\.1\d-slim$", text, re.M)
    assert "pip install --no-cache-dir /wheels/*.whl" in text
    assert "pip wheel --no-cache-dir --no-deps" in text
    assert re.search(r"^USER mkimport$", text, re.M)
    assert 'ENTRYPOINT ["mk-import"]' in text
    assert 'VOLUME ["/data/state", "/data/out"]' in text
    assert "MK_PASSWORD" not in text
    assert "-e ." not in text
    assert "--editable" not in text


def test_image_check_script_mirrors_the_dockerfile_steps():
    script = (ROOT / "deploy" / "check_image_steps.sh").read_text()
    assert "pip\" wheel -q --no-cache-dir --no-deps" in script
    assert "pip\" install -q --no-cache-dir" in script
    assert (ROOT / ".ci" / "run").read_text().count("deploy/check_image_steps.sh") == 1


def test_cronjob_never_overlaps_and_outlives_the_time_budget():
    documents = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()) if d]
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    budget = next(int(a.split("=", 1)[1]) for a in container["args"] if a.startswith("--max-duration="))
    assert budget < job["activeDeadlineSeconds"] <= budget + 1800
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["MK_PASSWORD"]["valueFrom"]
    assert "value" not in env["MK_PASSWORD"]
    assert any(v.get("persistentVolumeClaim") for v in job["template"]["spec"]["volumes"] if v["name"] == "state")


def test_crontab_lines_take_a_lock_and_a_time_budget():
    lines = [line for line in (ROOT / "deploy" / "crontab").read_text().splitlines()
             if line and not line.startswith(("#", "MAILTO", "CRON_TZ"))]
    assert lines
    for line in lines:
        assert "flock -n" in line
        assert "--max-duration" in line
        assert "MK_PASSWORD" not in line


def test_the_command_is_main_then_the_objects_left_are_frozen_for_the_exit(monkeypatch):
    import gc
    import tomllib

    from importer import cli

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mk-import"] == "importer.cli:entry"
    assert "entry()" in (ROOT / "importer" / "__main__.py").read_text()
    monkeypatch.setattr(cli, "main", lambda: 3)
    gc.unfreeze()
    try:
        assert cli.entry() == 3, "main's exit code"
        assert gc.get_freeze_count() > 0, "the interpreter's last collections skip them"
    finally:
        gc.unfreeze()
