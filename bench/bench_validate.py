"""`mk-import validate` on 100k and 1M generated DealerVault rows: wall time and peak RSS of the process.

    python bench/bench_validate.py [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import sys

from bench.common import OUT, dealervault_file, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print("| rows | wall s | peak RSS MB | rows/s |")
    print("|---:|---:|---:|---:|")
    for rows in args.rows:
        source = dealervault_file(rows)
        out = OUT / f"validate-{rows}"
        shutil.rmtree(out, ignore_errors=True)
        timing = timed([sys.executable, "-m", "importer", "validate", str(source), "--mapping", "dealervault",
                        "--overwrite", "--out", str(out)])
        if timing.returncode not in (0, 1):
            raise SystemExit(timing.stderr)
        print(f"| {rows:,} | {timing.wall_s:.2f} | {timing.max_rss_mb:.0f} | {rows / timing.wall_s:,.0f} |")


if __name__ == "__main__":
    main()
