"""`mk-import run` against a zero-latency sandbox, next to a bare aiohttp loop and a sequential
`requests` loop posting the same payloads with the same concurrency, each timed as a whole process.

    python -m bench.bench_run [--customers 5000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from bench.common import OUT, Sandbox, timed
from sample_data.generate import write

DEPARTMENT = "bench-department"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    source = OUT / f"cdk-unique-{args.customers}.csv"
    # No repeat customers and no invalid-row filtering needed: every row is its own customer.
    write("cdk", source, args.customers, seed=21, repeat_ratio=0.0)
    payloads = OUT / f"payloads-{args.customers}.jsonl"
    validated = timed([sys.executable, "-m", "importer", "validate", str(source), "-m", "cdk", "--out",
                       str(OUT / "bench-run-validate"), "--payloads", str(payloads)])
    count = sum(1 for _ in payloads.open())
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        with Sandbox() as sandbox:
            shutil.rmtree(OUT / "bench-run", ignore_errors=True)
            run = timed([sys.executable, "-m", "importer", "run", str(source), "-m", "cdk", "--department-uuid",
                         DEPARTMENT, "--api-url", sandbox.url, "--rate", "1000000", "--concurrency",
                         str(args.concurrency), "--state", str(Path(scratch) / "state.sqlite"), "--out",
                         str(OUT / "bench-run"), "--progress", "none"], env=sandbox.env())
            summary = json.loads((OUT / "bench-run" / "summary.json").read_text())
            rows.append(("mk-import run", run.wall_s, f"{sandbox.stats()['creates']} created; sending phase "
                                                      f"{summary['send_s']:.2f} s"))
        with Sandbox() as sandbox:
            bare = timed([sys.executable, "bench/bare_loop.py", str(payloads), sandbox.url, DEPARTMENT,
                          str(args.concurrency)], env=sandbox.env())
            rows.append(("bare aiohttp loop", bare.wall_s, f"{sandbox.stats()['creates']} created"))
        with Sandbox() as sandbox:
            sequential = timed([sys.executable, "bench/sequential_requests.py", str(payloads), sandbox.url,
                                DEPARTMENT], env=sandbox.env())
            rows.append(("sequential requests loop", sequential.wall_s, f"{sandbox.stats()['creates']} created"))
    print(f"{count} customers (validate: {validated.wall_s:.2f} s), concurrency {args.concurrency}\n")
    print("| client | wall s | customers/s | note |")
    print("|---|---:|---:|---|")
    for name, wall, note in rows:
        print(f"| {name} | {wall:.2f} | {count / wall:,.0f} | {note} |")
    print(f"\nmk-import run reaches {bare.wall_s / run.wall_s:.0%} of the bare loop's speed as a whole process "
          f"({bare.wall_s / summary['send_s']:.0%} counting its sending phase alone) and is "
          f"{sequential.wall_s / run.wall_s:.1f}x faster than the sequential loop.")


if __name__ == "__main__":
    main()
