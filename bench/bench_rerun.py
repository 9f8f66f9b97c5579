"""A nightly rerun of an unchanged export: `mk-import run` sending nothing, next to `validate` of the same
file (100k DealerVault rows). A first run fills the state; only the rerun and validate are compared. A
third run shows the rerun where every fingerprint differs, as after an upgrade.

    python -m bench.bench_rerun [--rows 100000] [--to-fix 0.25] [--reference DIR]

--to-fix: the share of rows given an email to fix on top of the usual ~1.4% (0.25: a messy migration).
--reference: another version's code (`git archive REV | tar -x -C DIR`), measured first the same way, with
a state of its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import OUT, Sandbox, Timing, dealervault_file, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--to-fix", type=float, default=0.0)
    parser.add_argument("--reference", type=Path, metavar="DIR")
    args = parser.parse_args()
    source = dealervault_file(args.rows, to_fix=args.to_fix)
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if args.reference is not None:
        codes.insert(0, ("reference", args.reference.resolve()))
    print(f"{args.rows:,} rows\n")
    print("| code | command | wall s | peak RSS MB | requests sent | statuses |")
    print("|---|---|---:|---:|---:|---|")
    for code_name, code in codes:
        validate, runs = _measure(source, code)
        print(f"| {code_name} | validate | {validate.wall_s:.2f} | {validate.max_rss_mb:.0f} | 0 | |", flush=True)
        for name, timing, summary in runs:
            print(f"| {code_name} | run ({name}) | {timing.wall_s:.2f} | {timing.max_rss_mb:.0f} | "
                  f"{summary['requests_sent']:,} | {summary['counts']} |", flush=True)
        print(f"| {code_name} | unchanged rerun / validate = {runs[1][1].wall_s / validate.wall_s:.2f} | | | | |",
              flush=True)


def _measure(source: Path, code: Path | None) -> tuple[Timing, list[tuple[str, Timing, dict[str, Any]]]]:
    validate = timed([sys.executable, "-m", "importer", "validate", str(source), "-m", "dealervault",
                      "--overwrite", "--out", str(OUT / "rerun-validate")], cwd=code)
    runs = []
    with tempfile.TemporaryDirectory() as scratch, Sandbox() as sandbox:
        state = Path(scratch) / "state.sqlite"
        for name in ("first", "rerun", "rerun, new fingerprints"):
            if name == "rerun, new fingerprints":
                # As after an upgrade (the program version is part of every fingerprint): each customer's
                # body is built again and compared with the saved one; none is sent.
                with sqlite3.connect(state) as db:
                    db.execute("UPDATE customers SET fingerprint = 'old'")
            out = OUT / f"rerun-{name.replace(', ', '-').replace(' ', '-')}"
            shutil.rmtree(out, ignore_errors=True)
            timing = timed([sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault",
                            "--department-uuid", "bench", "--api-url", sandbox.url, "--rate", "10000",
                            "--concurrency", "16", "--state", str(state), "--overwrite", "--out", str(out),
                            "--progress", "none"],
                           env=sandbox.env(), cwd=code)
            runs.append((name, timing, json.loads((out / "summary.json").read_text())))
    return validate, runs


if __name__ == "__main__":
    main()
