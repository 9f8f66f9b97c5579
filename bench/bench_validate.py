"""`mk-import validate` on 100k and 1M generated DealerVault rows: wall time and peak RSS of the process.

    python -m bench.bench_validate [--rows 100000 1000000] [--to-fix 0 0.25] [--reference DIR]

--to-fix: the share of rows given an email to fix on top of the usual ~1.4% (0.25: a messy migration).
--reference: another version's code (`git archive REV | tar -x -C DIR`), run before this one on each file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from bench.common import OUT, dealervault_file, load, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--to-fix", type=float, nargs="+", default=[0.0])
    parser.add_argument("--reference", type=Path, metavar="DIR")
    args = parser.parse_args()
    print("| code | rows | --to-fix | rows in errors.csv | wall s | CPU s | peak RSS MB | rows/s | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if args.reference is not None:
        codes.insert(0, ("reference", args.reference.resolve()))
    for rows in args.rows:
        for to_fix in args.to_fix:
            source = dealervault_file(rows, to_fix=to_fix)
            for name, code in codes:
                out = OUT / f"validate-{rows}-{to_fix:g}-{name}"
                shutil.rmtree(out, ignore_errors=True)
                timing = timed([sys.executable, "-m", "importer", "validate", str(source), "--mapping",
                                "dealervault", "--overwrite", "--out", str(out)], cwd=code)
                if timing.returncode not in (0, 1):
                    raise SystemExit(timing.stderr)
                with (out / "errors.csv").open("rb") as errors:
                    to_fix_rows = sum(1 for _ in errors) - 1
                print(f"| {name} | {rows:,} | {to_fix:g} | {to_fix_rows:,} | {timing.wall_s:.2f} | "
                      f"{timing.cpu_s:.1f} | {timing.max_rss_mb:.0f} | {rows / timing.wall_s:,.0f} | {load()} |",
                      flush=True)


if __name__ == "__main__":
    main()
