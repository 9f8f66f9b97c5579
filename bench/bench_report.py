"""report.html and errors.xlsx of a 50,000-row run with 5,000 rows needing attention: size, build time, and
how quickly the page opens and filters in headless Chromium.

    python -m bench.bench_report [--rows 50000 --attention 5000]

The input is the seeded DealerVault file with the last name emptied on every tenth row (and restored on
the others), so exactly `--attention` rows are invalid; it is imported into a sandbox process, then
`mk-import report OUT_DIR` rebuilds the page under /usr/bin/time. The page is then opened from disk in
headless Chromium (the same driver as the tests) and timed with the page's own clock.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import shutil
import sys
import time
from pathlib import Path

from bench.common import OUT, Sandbox, dealervault_file, timed
from importer.prepare.mapping import load_mapping
from importer.report.page import write_report_page
from importer.report.workbook import write_errors_xlsx
from tests.browser import chromium_path, open_page

PLACEHOLDERS = {"", "N/A", "NA", "NONE", "NULL", "-", "UNKNOWN"}

#: Times, in the page: a filter change and a search are synchronous, so performance.now() around them
#: measures filtering and drawing the rows; the scroll is one frame after a jump to the middle.
MEASURE = """(async () => {
  const frame = () => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  const nav = performance.getEntriesByType("navigation")[0];
  const out = {loaded_ms: nav.loadEventEnd, dom_rows: document.querySelectorAll("#rows-body tr").length};
  const status = document.getElementById("f-status"), problem = document.getElementById("f-problem");
  let t = performance.now();
  status.value = status.options[1].value; status.dispatchEvent(new Event("change"));
  out.filter_status_ms = performance.now() - t;
  t = performance.now();
  problem.value = problem.options[1].value; problem.dispatchEvent(new Event("change"));
  out.filter_problem_ms = performance.now() - t;
  status.value = ""; problem.value = ""; status.dispatchEvent(new Event("change"));
  const box = document.getElementById("f-search");
  box.value = "smith";
  t = performance.now();
  box.dispatchEvent(new Event("input")); await new Promise(done => setTimeout(done, 200));
  out.search_ms = performance.now() - t - 120;  // less the pause the search waits for typing to stop
  out.search_rows = document.getElementById("shown-count").textContent;
  box.value = ""; box.dispatchEvent(new Event("input")); await new Promise(done => setTimeout(done, 200));
  const scroller = document.getElementById("rows-scroller");
  t = performance.now();
  scroller.scrollTop = scroller.scrollHeight / 2; scroller.dispatchEvent(new Event("scroll")); await frame();
  out.scroll_frame_ms = performance.now() - t;
  return out;
})()"""


def make_input(rows: int, attention: int) -> Path:
    """The seeded file with exactly `attention` rows lacking a last name."""
    source = dealervault_file(rows)
    path = OUT / f"report-{rows}-{attention}.csv"
    every = rows // attention
    with source.open(encoding="utf-8-sig", newline="") as inp, path.open("w", encoding="utf-8", newline="") as out:
        reader, writer = csv.reader(inp), csv.writer(out, lineterminator="\r\n")
        header = next(reader)
        writer.writerow(header)
        last = header.index("Last Name")
        for n, row in enumerate(reader, 1):
            row[last] = "" if n % every == 0 else (row[last] if row[last].strip().upper() not in PLACEHOLDERS
                                                   else "Smith")
            writer.writerow(row)
    return path


async def measure_page(url: str) -> dict[str, object]:
    async with open_page(url) as page:
        result: dict[str, object] = await page.evaluate(MEASURE)
        result["requests"] = sorted(set(page.requested_urls()))
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--attention", type=int, default=5_000)
    args = parser.parse_args()
    source = make_input(args.rows, args.attention)
    out = OUT / f"report-run-{args.rows}"
    shutil.rmtree(out, ignore_errors=True)
    # A state left by an earlier run names customers this fresh sandbox never saw: each would be sent twice.
    for leftover in out.parent.glob(f"report-state-{args.rows}.sqlite*"):
        leftover.unlink()
    with Sandbox() as sandbox:
        run = timed([sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault", "--department-uuid",
                     "bench", "--api-url", sandbox.url, "--rate", "10000", "--concurrency", "16", "--overwrite",
                     "--out", str(out), "--state", str(out.parent / f"report-state-{args.rows}.sqlite"), "--full",
                     "--progress", "none"], env=sandbox.env())
    if run.returncode not in (0, 1):
        raise SystemExit(run.stderr)
    summary = json.loads((out / "summary.json").read_text())
    print(f"run: {summary['rows']:,} rows, counts {summary['counts']}, {run.wall_s:.1f} s whole process")

    page = out / "report.html"
    rebuild = timed([sys.executable, "-m", "importer", "report", str(out), "-m", "dealervault"])
    if rebuild.returncode != 0:
        raise SystemExit(rebuild.stderr)
    started = time.perf_counter()
    write_report_page(out, mapping=load_mapping("dealervault"))
    page_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = write_errors_xlsx(out / "errors-bench.xlsx", out / "errors.csv")
    xlsx_s = time.perf_counter() - started
    print("| what | figure |")
    print("|---|---:|")
    print(f"| rows needing attention | {summary['counts'].get('invalid', 0) + summary['counts'].get('failed', 0):,} |")
    print(f"| report.html size | {page.stat().st_size / 1e6:.2f} MB |")
    print(f"| `mk-import report` whole process (start-up included) | {rebuild.wall_s:.2f} s, "
          f"{rebuild.max_rss_mb:.0f} MB peak |")
    print(f"| report.html build, in process (results.csv read from disk) | {page_s:.2f} s |")
    print(f"| errors.xlsx ({rows:,} rows) write, in process | {xlsx_s:.2f} s, "
          f"{(out / 'errors-bench.xlsx').stat().st_size / 1e6:.2f} MB |")
    if chromium_path() is None:
        print("(no chromium: page timings skipped)")
        return
    timings = asyncio.run(measure_page(page.resolve().as_uri()))
    for key in ("loaded_ms", "filter_status_ms", "filter_problem_ms", "search_ms", "scroll_frame_ms"):
        print(f"| Chromium: {key.removesuffix('_ms').replace('_', ' ')} | {float(timings[key]):.0f} ms |")  # type: ignore[arg-type]
    print(f"| Chromium: rows in the DOM | {timings['dom_rows']} |")
    print(f"| Chromium: requests made | {timings['requests']} |")


if __name__ == "__main__":
    main()
