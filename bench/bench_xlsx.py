"""Reading a 100,000-row .xlsx next to the same rows as CSV: wall time and peak RSS of whole processes.

    python -m bench.bench_xlsx [--rows 100000] [--repeat 3]

Two measures per file, each its own process under /usr/bin/time -v: reading alone (open the input and
read every row as text, as every command does first) and `mk-import validate` of the file. The .xlsx
holds the same generated DealerVault rows as the CSV (seed 11), cells typed as a spreadsheet types them.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from bench.common import OUT, dealervault_file, timed
from sample_data.generate import write_xlsx

READ_ONLY = ("import sys\nfrom importer.read.reader import open_input, read_chunks\n"
             "with open_input(sys.argv[1]) as source:\n"
             "    rows = sum(len(chunk) for chunk in read_chunks(source))\n"
             "print(rows)\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure; the table shows the best")
    args = parser.parse_args()
    csv_path = dealervault_file(args.rows)
    xlsx_path = csv_path.with_suffix(".xlsx")
    if not xlsx_path.exists():
        write_xlsx("dealervault", xlsx_path, args.rows, seed=11, repeat_ratio=0.15)
    print(f"| file | size MB | measure | wall s (best of {args.repeat}) | peak RSS MB |")
    print("|---|---:|---|---:|---:|")
    for path in (csv_path, xlsx_path):
        size = path.stat().st_size / 1e6
        for measure, command in (
                ("read every row", [sys.executable, "-c", READ_ONLY, str(path)]),
                ("validate", [sys.executable, "-m", "importer", "validate", str(path), "--mapping", "dealervault",
                              "--overwrite", "--out", str(OUT / f"xlsx-{path.suffix[1:]}")])):
            timings = []
            for _ in range(args.repeat):
                shutil.rmtree(OUT / f"xlsx-{path.suffix[1:]}", ignore_errors=True)
                timing = timed(command)
                if timing.returncode not in (0, 1):
                    raise SystemExit(timing.stderr)
                timings.append(timing)
            best = min(timings, key=lambda t: t.wall_s)
            print(f"| {path.suffix[1:]} | {size:.1f} | {measure} | {best.wall_s:.2f} "
                  f"({', '.join(f'{t.wall_s:.2f}' for t in timings)}) | {max(t.max_rss_mb for t in timings):.0f} |")


if __name__ == "__main__":
    main()
