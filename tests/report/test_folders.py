"""Report folders: an earlier run's reports are never overwritten; dated folders, a `latest` link, --keep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from importer.cli import main
from importer.config import ReportFolders
from importer.report.folders import finish
from tests.conftest import DEPARTMENT, Api
from tests.helpers import DV_HEADER, dv_row, read_summary


def test_an_existing_reports_folder_is_not_overwritten(start_sandbox, creds, write_csv, tmp_path: Path, capsys):
    sandbox = start_sandbox()
    api = Api(sandbox.url)
    csv = write_csv([DV_HEADER, dv_row("K1", email="k1@example.com"), dv_row("K2", last="")])
    out = tmp_path / "reports"
    line = ["run", str(csv), "--mapping", "dealervault", "--department-uuid", DEPARTMENT, "--api-url", sandbox.url,
            "--out", str(out), "--state", str(tmp_path / "state.sqlite"), "--progress", "none"]
    assert main(line) == 1
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"results.csv", "errors.csv", "summary.json"} <= set(before)
    sent = api.stats()["requests"]

    csv.write_text(csv.read_text().replace("k1@example.com", "k1@new.example"))
    assert main(line) == 2
    err = capsys.readouterr().err
    assert f"{out}: already holds an earlier run's reports" in err
    assert "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "not a byte of the earlier reports changed"
    assert api.stats()["requests"] == sent, "nothing was sent"

    assert main(["validate", str(csv), "--mapping", "dealervault", "--out", str(out)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    assert main([*line, "--overwrite"]) == 1
    assert read_summary(out)["requests_sent"] == 1
    assert api.stats()["requests"] == sent + 1


def test_an_empty_existing_folder_is_fine(write_csv, tmp_path: Path):
    csv = write_csv([DV_HEADER, dv_row("K1")])
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(csv), "--mapping", "dealervault", "--out", str(tmp_path / "empty")]) == 0


def test_dated_folders_a_latest_link_and_keep(write_csv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    csv = write_csv([DV_HEADER, dv_row("K1")])
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "mk-import-out"
    seen: set[str] = set()
    for _ in range(4):
        assert main(["validate", str(csv), "--mapping", "dealervault", "--keep", "2"]) == 0
        [newest] = {p.name for p in root.iterdir()} - seen - {"latest"}
        seen.add(newest)
        assert os.readlink(root / "latest") == newest
        assert read_summary(root / "latest")["reports"] == str(Path("mk-import-out") / newest)
    assert len([p for p in root.iterdir() if p.name != "latest"]) == 2


def test_keep_prunes_oldest_first_and_never_the_folder_just_written(tmp_path: Path):
    root = tmp_path / "reports"
    names = ["20261125-010000", "20261126-010000", "20261127-010000", "20261127-010000-2", "20261127-010000-10"]
    for name in names:
        (root / name).mkdir(parents=True)
    (root / "notes").mkdir()  # not ours: never touched
    finish(root / "20261126-010000", ReportFolders(root=root, keep=2))  # a clock that went backwards
    assert sorted(p.name for p in root.iterdir()) == ["20261126-010000", "20261127-010000-10", "latest", "notes"]
    assert os.readlink(root / "latest") == "20261126-010000"


def test_keep_needs_the_dated_folders(write_csv, tmp_path: Path, capsys):
    csv = write_csv([DV_HEADER, dv_row("K1")])
    assert main(["validate", str(csv), "--mapping", "dealervault", "--out", str(tmp_path / "x"), "--keep", "3"]) == 2
    assert "--keep prunes dated report folders" in capsys.readouterr().err
