"""`mk-import run` against a zero-latency sandbox, next to a bare aiohttp loop and a sequential
`requests` loop posting the same payloads with the same concurrency, each timed as a whole process
(wall clock and CPU seconds), with the machine's load averages before each.

    python -m bench.bench_run [--customers 30000] [--concurrency 32] [--repeat 1] [--no-sequential]
                              [--reference DIR]

--reference: another version's code (`git archive REV | tar -x -C DIR`): its `mk-import run` goes first in
each repeat, then this one's, then the bare loop. Both are compiled to bytecode first, as installed
(common.compiled).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import OUT, ROOT, Sandbox, Timing, compiled, load, timed
from importer.report.files import read_timeline
from sample_data.generate import write

DEPARTMENT = "bench-department"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="alternate mk-import and the bare loop N times")
    parser.add_argument("--reference", type=Path, metavar="DIR", help="another version's code, run first")
    parser.add_argument("--no-sequential", action="store_true", help="skip the sequential requests loop")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    source = OUT / f"cdk-unique-{args.customers}.csv"
    # No repeat customers and no invalid-row filtering needed: every row is its own customer.
    write("cdk", source, args.customers, seed=21, repeat_ratio=0.0)
    payloads = OUT / f"payloads-{args.customers}.jsonl"
    validated = timed([sys.executable, "-m", "importer", "validate", str(source), "-m", "cdk", "--overwrite", "--out",
                       str(OUT / "bench-run-validate"), "--payloads", str(payloads)])
    count = sum(1 for _ in payloads.open())
    compiled(ROOT, *([args.reference.resolve()] if args.reference is not None else []))
    rows: list[tuple[str, float, float, str, str]] = []
    ratios = []
    runs: list[tuple[str, Timing, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for n in range(args.repeat):
            codes: list[tuple[str, Path | None]] = [("mk-import run", None)]
            if args.reference is not None:
                codes.insert(0, ("mk-import run (reference)", args.reference.resolve()))
            for name, code in codes:
                with Sandbox() as sandbox:
                    shutil.rmtree(OUT / "bench-run", ignore_errors=True)
                    before, server_before = load(), sandbox.cpu_s()
                    run = timed([sys.executable, "-m", "importer", "run", str(source), "-m", "cdk",
                                 "--department-uuid", DEPARTMENT, "--api-url", sandbox.url, "--rate", "10000",
                                 "--concurrency", str(args.concurrency), "--state",
                                 str(Path(scratch) / f"state{n}{name[-3:]}.sqlite"), "--overwrite", "--out",
                                 str(OUT / "bench-run"), "--progress", "none"], env=sandbox.env(), cwd=code)
                    server_s = sandbox.cpu_s() - server_before
                    summary = json.loads((OUT / "bench-run" / "summary.json").read_text())
                    seconds = read_timeline(OUT / "bench-run" / "timeline.csv")
                    # Whole seconds only: the first holds the slow start, the last the end of the file.
                    steady = statistics.median(s.attempts for s in seconds[1:-1]) if len(seconds) > 2 else None
                    rows.append((name, run.wall_s, run.cpu_s, before,
                                 f"{sandbox.stats()['creates']} created; sending phase {summary['send_s']:.2f} s; "
                                 f"in flight {summary['concurrency_used']}; "
                                 f"first second {seconds[0].attempts if seconds else 0} requests, "
                                 f"then {steady or 0:,.0f}/s (median); sandbox CPU {server_s:.2f} s"))
                    runs.append((name, run, summary))
            with Sandbox() as sandbox:
                before, server_before = load(), sandbox.cpu_s()
                bare = timed([sys.executable, "bench/bare_loop.py", str(payloads), sandbox.url, DEPARTMENT,
                              str(args.concurrency)], env=sandbox.env())
                server_s = sandbox.cpu_s() - server_before
                rows.append(("bare aiohttp loop", bare.wall_s, bare.cpu_s, before,
                             f"{sandbox.stats()['creates']} created; sandbox CPU {server_s:.2f} s"))
            for name, run, summary in runs[-len(codes):]:
                ratios.append((name, bare.wall_s / run.wall_s, bare.wall_s / summary["send_s"], bare.cpu_s / run.cpu_s))
        if not args.no_sequential:
            with Sandbox() as sandbox:
                before = load()
                sequential = timed([sys.executable, "bench/sequential_requests.py", str(payloads), sandbox.url,
                                    DEPARTMENT], env=sandbox.env())
                rows.append(("sequential requests loop", sequential.wall_s, sequential.cpu_s, before,
                             f"{sandbox.stats()['creates']} created"))
    print(f"{count} customers (validate: {validated.wall_s:.2f} s), concurrency {args.concurrency}\n")
    print("| client | wall s | customers/s | CPU s | load before | note |")
    print("|---|---:|---:|---:|---|---|")
    for name, wall, cpu, before, note in rows:
        print(f"| {name} | {wall:.2f} | {count / wall:,.0f} | {cpu:.2f} | {before} | {note} |")
    for name, whole, sending, cpu in ratios:
        print(f"\n{name}: bare loop time / mk-import time: {whole:.2f} as whole processes, {sending:.2f} counting "
              f"mk-import's sending phase alone; CPU seconds, bare / mk-import: {cpu:.2f}")

if __name__ == "__main__":
    main()
