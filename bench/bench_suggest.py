"""`mappings suggest` on wide files: 500 to 5,000 columns of 20 rows, wall and CPU time of whole processes.

    python -m bench.bench_suggest [--columns 500,1000,2500,5000]

The file: a customer number, first and last names, a phone and an email, then columns of mixed short
values (words, numbers, flags, years, states, ZIPs), as a wide DMS export has (seed 1).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys

from bench.common import OUT, load, timed


def wide_file(columns: int, rows: int = 20) -> str:
    path = OUT / f"wide-{columns}.csv"
    OUT.mkdir(parents=True, exist_ok=True)
    chance = random.Random(1)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["CustNo", "First Name", "Last Name", "Cell Phone", "Email",
                         *(f"F{i:04d}" for i in range(columns - 5))])
        for row in range(rows):
            writer.writerow([str(row), "Ann", f"Lee{row}", f"310555{row:04d}", f"a{row}@example.com",
                             *(chance.choice(["abc", "12", "Y", "2020", "hello world", "", "TX", "90210"])
                               for _ in range(columns - 5))])
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", default="500,1000,2500,5000")
    args = parser.parse_args()
    print(f"load {load()}")
    for columns in (int(c) for c in args.columns.split(",")):
        path = wide_file(columns)
        timing = timed([sys.executable, "-m", "importer", "mappings", "suggest", path, "--out",
                        str(OUT / f"wide-{columns}.yaml")])
        print(f"{columns:>6} columns: {timing.wall_s:.2f} s wall, {timing.cpu_s:.2f} s CPU, {timing.max_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
