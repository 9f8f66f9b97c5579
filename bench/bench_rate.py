"""`mk-import run --rate 40` against a sandbox limited to 50 requests/s per account, with 10% of requests
answered 503 and 20 ms latency: sustained customers/s and the share of requests answered 429.

    python -m bench.bench_rate [--customers 1500] [--rate 40] [--limit 50]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import OUT, Sandbox, timed
from sample_data.generate import write


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--limit", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    source = OUT / f"cdk-unique-{args.customers}.csv"
    write("cdk", source, args.customers, seed=21, repeat_ratio=0.0)
    out = OUT / "bench-rate"
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch, Sandbox(
            "--rate-limit", str(args.limit), "--fail-rate", "0.1", "--latency-ms", "20", "--jitter-ms", "5",
            "--seed", "1") as sandbox:
        command = [sys.executable, "-m", "importer", "run", str(source), "-m", "cdk", "--department-uuid",
                   "bench", "--api-url", sandbox.url, "--rate", str(args.rate), "--concurrency",
                   str(args.concurrency), "--state", str(Path(scratch) / "s.sqlite"), "--out", str(out),
                   "--progress", "none"]
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            running = executor.submit(timed, command, sandbox.env())
            samples: list[tuple[float, int, int]] = []  # (time, customers saved, requests)
            while not running.done():
                now = sandbox.stats()
                samples.append((time.monotonic(), int(now["creates"]) + int(now["updates"]),  # type: ignore[call-overload]
                                int(now["requests"])))  # type: ignore[call-overload]
                time.sleep(1.0)
            timing = running.result()
        stats = sandbox.stats()
    summary = json.loads((out / "summary.json").read_text())
    customers = summary["customers"]
    sent = summary["requests_sent"]
    print(f"--rate {args.rate:g} against --rate-limit {args.limit:g}, 10% 503s, 20 ms latency, "
          f"concurrency {args.concurrency}\n")
    print("| customers | succeeded | requests | retries | 429s | 429 share | sending s | customers/s | "
          "attempts/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {customers} | {summary['counts'].get('success', 0)} | {sent} | {summary['retries']} | "
          f"{summary['rate_limited']} | {summary['rate_limited'] / sent:.1%} | {summary['send_s']:.1f} | "
          f"{customers / summary['send_s']:.1f} | {sent / summary['send_s']:.1f} |")
    # Sustained: the middle half of the run, away from the slow start and the tail of the last retries.
    middle = samples[len(samples) // 4: 3 * len(samples) // 4]
    span = middle[-1][0] - middle[0][0]
    print(f"\nsustained over the middle half of the run ({span:.0f} s): "
          f"{(middle[-1][1] - middle[0][1]) / span:.1f} customers/s, "
          f"{(middle[-1][2] - middle[0][2]) / span:.1f} requests/s")
    print(f"whole process {timing.wall_s:.1f} s; sandbox saw {stats['requests']} requests, "
          f"{stats['rate_limited']} answered 429, faults {stats['faults']}")


if __name__ == "__main__":
    main()
