"""Peak memory of `mk-import run` on the 1M-row DealerVault file against a zero-latency sandbox, with the
resident memory sampled every second so that the phases (reading, sending, reports) show.

    python -m bench.bench_memory [--rows 1000000] [--concurrency 32] [--to-fix 0.25]

--to-fix: the share of rows given an email to fix on top of the usual ~1.4% (0.25: a messy migration).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import OUT, Sandbox, dealervault_file, load, timed


def _rss_mb(pid: int) -> float | None:
    """Resident MB of a process, if it is still running."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--to-fix", type=float, default=0.0)
    args = parser.parse_args()
    source = dealervault_file(args.rows, to_fix=args.to_fix)
    out = OUT / "bench-memory"
    shutil.rmtree(out, ignore_errors=True)
    before = load()
    with tempfile.TemporaryDirectory() as scratch, Sandbox() as sandbox:
        command = [sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault", "--department-uuid",
                   "bench", "--api-url", sandbox.url, "--rate", "10000", "--concurrency", str(args.concurrency),
                   "--state", str(Path(scratch) / "s.sqlite"), "--overwrite", "--out", str(out), "--progress", "none"]
        # The sandbox's stats are not asked for meanwhile: counting a million customers' vehicles takes it
        # longer than a sampling period.
        samples: list[tuple[float, float]] = []  # (seconds, MB)
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            running = executor.submit(timed, command, sandbox.env())
            started = time.monotonic()
            time.sleep(0.5)
            while not running.done():
                pids = subprocess.run(["pgrep", "-f", "--", f"--out {out}"], capture_output=True, text=True,
                                      check=False).stdout.split()
                # /usr/bin/time and the run both match: the run is the larger
                rss = max((mb for pid in pids if (mb := _rss_mb(int(pid))) is not None), default=None)
                if rss is not None:
                    samples.append((time.monotonic() - started, rss))
                time.sleep(1.0)
            timing = running.result()
    summary = json.loads((out / "summary.json").read_text())
    print(f"{args.rows:,} rows, {summary['customers']:,} customers: {summary['counts']}; exit {timing.returncode}")
    print(f"wall {timing.wall_s:.0f} s, CPU {timing.cpu_s:.0f} s, peak RSS {timing.max_rss_mb:.0f} MB; "
          f"sending phase {summary['send_s']:.0f} s; load before: {before}, after: {load()}")
    print("\n| s | RSS MB |\n|---:|---:|")
    step = max(1, len(samples) // 25)
    for seconds, mb in [*samples[::step], samples[-1]] if samples else []:
        print(f"| {seconds:.0f} | {mb:.0f} |")


if __name__ == "__main__":
    main()
