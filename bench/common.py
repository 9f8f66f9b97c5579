"""Helpers for the benchmarks: seeded input files, and whole-process timing with /usr/bin/time -v."""

from __future__ import annotations

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


def dealervault_file(rows: int, seed: int = 11) -> Path:
    """A seeded DealerVault-layout file with about 15% repeat customers, generated once and reused."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"dealervault-{rows}-seed{seed}.csv"
    if not path.exists():
        write("dealervault", path, rows, seed=seed, repeat_ratio=0.15)
    return path


def timed(command: list[str], env: dict[str, str] | None = None) -> Timing:
    """Run a whole process under /usr/bin/time -v: wall time and peak resident memory."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, check=False)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if wall is None or rss is None:
        raise RuntimeError(f"no timing in output of {command}: {done.stderr[-500:]}")
    hours, minutes, seconds = wall.groups()
    total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    return Timing(total, int(rss.group(1)) / 1024, done.returncode, done.stderr)
