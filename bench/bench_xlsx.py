"""Reading a 100,000-row .xlsx next to the same rows as CSV; and writing errors.xlsx, XlsxWriter against our own.

    python -m bench.bench_xlsx [--rows 100000] [--repeat 3]
    python -m bench.bench_xlsx --workbook [--rows 100000] [--to-fix 0.25] [--input FILE] [--repeat 3]

Reading: two measures per file, each its own process under /usr/bin/time -v: reading alone (open the input
and read every row as text, as every command does first) and `mk-import validate` of the file. The .xlsx
holds the same generated DealerVault rows as the CSV (seed 11), cells typed as a spreadsheet types them.

--workbook: `write_errors_xlsx` alone, from the errors.csv of `validate` of the messy file (a share --to-fix of
its rows with a value to fix), in one process, the writers alternating: XlsxWriter in constant_memory mode
(what errors.xlsx was written with before; tests/report/xlsxwriter_book.py) and report/xlsx_stream.py at
deflate level 1 (what is used) and 6 (zipfile's default, XlsxWriter's); the time of each run and the size.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
    parser.add_argument("--workbook", action="store_true", help="time errors.xlsx's writers instead")
    parser.add_argument("--to-fix", type=float, default=0.25, help="--workbook: the share of rows to fix")
    parser.add_argument("--input", type=Path, help="--workbook: the export to validate (default: generated)")
    args = parser.parse_args()
    if args.workbook:
        bench_workbook(args.input or dealervault_file(args.rows, to_fix=args.to_fix), args.repeat)
        return
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


def bench_workbook(source: Path, repeat: int) -> None:
    from importer.report.workbook import write_errors_xlsx
    from importer.report.xlsx_stream import XlsxStream
    from tests.report.xlsxwriter_book import XlsxWriterBook

    out = OUT / f"workbook-{source.stem}"
    if not (out / "errors.csv").exists():
        done = subprocess.run([sys.executable, "-m", "importer", "validate", str(source), "--mapping", "dealervault",
                               "--overwrite", "--out", str(out)], check=False, capture_output=True, text=True)
        if done.returncode not in (0, 1):  # 1: rows to fix, as expected
            raise SystemExit(done.stderr)
    errors = out / "errors.csv"
    writers: dict[str, Any] = {
        "XlsxWriter 3 (constant_memory)": XlsxWriterBook,
        "xlsx_stream, deflate level 1": XlsxStream,
        "xlsx_stream, deflate level 6": functools.partial(XlsxStream, compress_level=6)}
    times: dict[str, list[float]] = {name: [] for name in writers}
    sizes: dict[str, float] = {}
    rows = 0
    for _ in range(repeat):
        for number, (name, book) in enumerate(writers.items()):
            target = out / f"bench-{number}.xlsx"
            started = time.perf_counter()
            rows = write_errors_xlsx(target, errors, book=book)
            times[name].append(time.perf_counter() - started)
            sizes[name] = target.stat().st_size / 1e6
    print(f"errors.xlsx of {rows:,} rows from {errors} ({errors.stat().st_size / 1e6:.1f} MB)")
    print(f"| writer | write_errors_xlsx s (best of {repeat}; each run) | size MB |")
    print("|---|---:|---:|")
    for name, runs in times.items():
        print(f"| {name} | {min(runs):.2f} ({', '.join(f'{t:.2f}' for t in runs)}) | {sizes[name]:.1f} |")


if __name__ == "__main__":
    main()
