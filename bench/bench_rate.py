"""`mk-import run` against rate-limited sandboxes: accepted requests/s, the share answered 429, and how
several runs on one account share its limit. Each scenario is one line of BENCHMARKS.md's "Done when".

    python -m bench.bench_rate [SCENARIO ...]     (default: all; see SCENARIOS)
    python -m bench.bench_rate --reference DIR [SCENARIO ...]

With --reference (a copy of another version of the code, e.g. `git archive REV | tar -x -C DIR`), each
scenario runs with that version and then with this one, side by side on the same machine load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import OUT, Sandbox, timed
from sample_data.generate import write


@dataclass(frozen=True)
class Scenario:
    title: str
    #: the sandbox's options
    sandbox: tuple[str, ...]
    customers: int
    rate: float
    #: the sandbox's limit per account, for the ratios
    limit: float
    concurrency: int | None = None
    runs: int = 1
    extra: tuple[str, ...] = field(default=())


SCENARIOS = {
    "window50": Scenario("--rate 500, 1,500 customers, concurrency 16, window limit 50/s",
                         ("--rate-limit", "50", "--rate-limit-mode", "window"), 1500, 500, 50, concurrency=16),
    "window20": Scenario("--rate 200, 200 customers, window limit 20/s",
                         ("--rate-limit", "20", "--rate-limit-mode", "window"), 200, 200, 20),
    "faults40": Scenario("--rate 40, limit 50/s (bucket), 10% 503s, 20 ms latency",
                         ("--rate-limit", "50", "--fail-rate", "0.1", "--latency-ms", "20", "--jitter-ms", "5",
                          "--seed", "1"), 1500, 40, 50),
    "latency100": Scenario("--rate 100, no --concurrency, limit 100/s (bucket), 200 ms latency",
                           ("--rate-limit", "100", "--latency-ms", "200"), 3000, 100, 100),
    "window100": Scenario("--rate 500, no --concurrency, window limit 100/s, 200 ms latency, 1,500 customers",
                          ("--rate-limit", "100", "--rate-limit-mode", "window", "--latency-ms", "200"), 1500, 500,
                          100),
    "fleet4": Scenario("four runs at once on one account, window limit 40/s, each --rate 100, 500 customers each",
                       ("--rate-limit", "40", "--rate-limit-mode", "window"), 500, 100, 40, runs=4),
}


def _source(customers: int, seed: int) -> Path:
    """A CDK file with about `customers` valid customers (the generator makes ~2% of rows invalid)."""
    OUT.mkdir(parents=True, exist_ok=True)
    rows = math.ceil(customers / 0.98)
    path = OUT / f"cdk-unique-{rows}-seed{seed}.csv"
    if not path.exists():
        write("cdk", path, rows, seed=seed, repeat_ratio=0.0)
    return path


def run_scenario(name: str, scenario: Scenario, code: Path | None = None, label: str = "this code") -> None:
    with tempfile.TemporaryDirectory() as scratch, Sandbox(*scenario.sandbox) as sandbox:
        commands = []
        for n in range(scenario.runs):
            out = OUT / f"bench-rate-{name}-{n}"
            shutil.rmtree(out, ignore_errors=True)
            command = [sys.executable, "-m", "importer", "run", str(_source(scenario.customers, 21 + n)), "-m",
                       "cdk", "--department-uuid", f"dealer-{n}", "--api-url", sandbox.url, "--rate",
                       str(scenario.rate), "--state", str(Path(scratch) / f"s{n}.sqlite"), "--out", str(out),
                       "--progress", "none"]
            if scenario.concurrency is not None:
                command += ["--concurrency", str(scenario.concurrency)]
            commands.append((out, command))
        samples: list[tuple[float, int, int]] = []  # (time, requests, 429s) as the sandbox counts them
        with concurrent.futures.ThreadPoolExecutor(scenario.runs) as executor:
            running = [executor.submit(timed, command, sandbox.env(), code) for _, command in commands]
            while not all(r.done() for r in running):
                now = sandbox.stats()
                samples.append((time.monotonic(), int(now["requests"]), int(now["rate_limited"])))  # type: ignore[call-overload]
                time.sleep(1.0)
            timings = [r.result() for r in running]
        stats = sandbox.stats()
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"### {name}: {scenario.title} ({label})\n\nload: {load}\n")
    print("| run | customers | success | other statuses | requests | 429s | 429 share | sending s | accepted/s | "
          "attempts/s | in flight used | latency p50/p95 ms | exit |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    total_requests = total_429 = 0
    shares = []
    for n, ((out, _), timing) in enumerate(zip(commands, timings, strict=True)):
        summary = json.loads((out / "summary.json").read_text())
        sent, limited, send_s = summary["requests_sent"], summary["rate_limited"], summary["send_s"]
        accepted = (sent - limited) / send_s
        shares.append(accepted)
        total_requests += sent
        total_429 += limited
        others = {k: v for k, v in summary["counts"].items() if k not in ("success", "invalid")}
        print(f"| {n} | {summary['customers']} | {summary['counts'].get('success', 0)} | {others or ''} | {sent} | "
              f"{limited} | {limited / sent:.1%} | {send_s:.1f} | {accepted:.1f} | {sent / send_s:.1f} | "
              f"{summary['concurrency_used']} | {summary['latency_p50_ms']}/{summary['latency_p95_ms']} | "
              f"{timing.returncode} |")
    # The run as the sandbox saw it: from the first POST's arrival to the last answer, to the millisecond
    # (whole seconds of sampling added up to a second, 6% of a 16 s run).
    span = float(stats["last_answer_at"]) - float(stats["first_post_at"])  # type: ignore[arg-type]
    accepted_total = (int(stats["requests"]) - int(stats["rate_limited"])) / span  # type: ignore[call-overload]
    print(f"\nall runs: {total_requests} requests, {total_429} answered 429 ({total_429 / total_requests:.1%}); "
          f"the sandbox accepted {accepted_total:.1f}/s over the {span:.2f} s from the first request to the "
          f"last answer ({accepted_total / scenario.limit:.3f} x the limit)")
    if scenario.runs > 1:
        fair = scenario.limit / scenario.runs
        print(f"each run's accepted/s over its own sending phase: {', '.join(f'{s:.1f}' for s in shares)} "
              f"(fair share {fair:.1f}/s; lowest {min(shares) / fair:.2f} of it)")
    # Sustained: the middle half of the sampling, away from the slow start and the last retries' tail.
    middle = samples[len(samples) // 4: 3 * len(samples) // 4]
    if len(middle) > 1:
        seconds = middle[-1][0] - middle[0][0]
        requests = middle[-1][1] - middle[0][1]
        refused = middle[-1][2] - middle[0][2]
        print(f"sustained over the middle half ({seconds:.0f} s): {requests / seconds:.1f} requests/s, "
              f"{(requests - refused) / seconds:.1f} accepted/s")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--reference", type=Path, metavar="DIR", help="another version's code, run first")
    args = parser.parse_args()
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    for name in args.scenarios or SCENARIOS:
        if args.reference is not None:
            run_scenario(name, SCENARIOS[name], args.reference.resolve(), f"reference {args.reference}")
        run_scenario(name, SCENARIOS[name])


if __name__ == "__main__":
    main()
