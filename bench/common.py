"""Helpers for the benchmarks: seeded input files, and whole-process timing with /usr/bin/time -v."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from sample_data.generate import write  # noqa: E402  (the generator lives beside the samples)


@dataclass
class Timing:
    wall_s: float
    max_rss_mb: float
    returncode: int
    stderr: str
    #: user + system CPU seconds of the process
    cpu_s: float = 0.0


def dealervault_file(rows: int, seed: int = 11, to_fix: float = 0.0) -> Path:
    """A seeded DealerVault-layout file with about 15% repeat customers, generated once and reused. About 1.4%
    of its rows have something to fix, plus a share `to_fix` given an email to fix (a messy migration: 0.25)."""
    OUT.mkdir(parents=True, exist_ok=True)
    messy = f"-fix{to_fix:g}" if to_fix else ""
    path = OUT / f"dealervault-{rows}-seed{seed}{messy}.csv"
    if not path.exists():
        write("dealervault", path, rows, seed=seed, repeat_ratio=0.15, to_fix=to_fix)
    return path


def timed(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Timing:
    """Run a whole process under /usr/bin/time -v: wall time and peak resident memory. With `cwd` (a copy
    of another version of the code), `python -m importer` runs that version."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, check=False,
                          cwd=cwd)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if wall is None or rss is None:
        raise RuntimeError(f"no timing in output of {command}: {done.stderr[-500:]}")
    hours, minutes, seconds = wall.groups()
    total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr))
    return Timing(total, int(rss.group(1)) / 1024, done.returncode, done.stderr, cpu)


def compiled(*trees: Path) -> None:
    """Each tree's package compiled to bytecode, as an installed mk-import has it (pip compiles what it
    installs). This machine sets PYTHONDONTWRITEBYTECODE, and an editable install then compiles every module
    from its source at every start: 60 to 150 ms of a 7 s run, which a bare loop of one file does not pay."""
    environ = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    for tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "importer")], env=environ, check=True,
                       stdout=subprocess.DEVNULL)


def load() -> str:
    """The machine's load averages, to print beside a figure measured on a shared machine."""
    with open("/proc/loadavg", encoding="ascii") as stream:
        return " ".join(stream.read().split()[:3])


class Sandbox:
    """`mk-import sandbox` in its own process on a free loopback port, with one account."""

    USER, PASSWORD = "bench", "bench-password"

    def __init__(self, *args: str) -> None:
        self.args = args
        self.url = ""

    def __enter__(self) -> Sandbox:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "importer", "sandbox", "--port", "0", "--user", f"{self.USER}:{self.PASSWORD}",
             *self.args], stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        self.url = line.split(" on ", 1)[1].split(" ", 1)[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def cpu_s(self) -> float:
        """User + system CPU seconds the sandbox process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def env(self) -> dict[str, str]:
        return {**os.environ, "MK_USERNAME": self.USER, "MK_PASSWORD": self.PASSWORD}

    def stats(self) -> dict[str, object]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=10) as response:
            result: dict[str, object] = json.loads(response.read())
            return result
