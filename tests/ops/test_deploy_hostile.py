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
