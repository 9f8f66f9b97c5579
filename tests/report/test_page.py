"""report.html rendered in a real browser (headless Chromium): counts, the rows to fix, filters, no network."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from importer.cli import main
from tests.browser import chromium_path, open_page
from tests.conftest import DEPARTMENT
from tests.helpers import DV_HEADER, VIN_A, dv_row, read_csv, read_jsonl, read_summary
from tests.prepare.test_mapping import LAYOUT_FILES, SAMPLES

ROOT = Path(__file__).parents[2]
#: Where the test leaves its screenshot of the page for a person to look at.
SCREENSHOT = ROOT / "build" / "report-screenshot.png"

# CI installs Chromium (.ci/run): there a missing browser is a failure, not a skip.
pytestmark = pytest.mark.skipif(chromium_path() is None and not os.environ.get("CI"),
                                reason="chromium is not installed (apt-get install chromium)")

#: Every row of the table, read from the page by scrolling its window over all of them.
ALL_ROWS = """(async () => {
  const scroller = document.getElementById("rows-scroller");
  const frame = () => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  const seen = new Map();
  scroller.scrollTop = 0; await frame();
  for (let top = 0; ; top += scroller.clientHeight / 2) {
    scroller.scrollTop = top; scroller.dispatchEvent(new Event("scroll")); await frame();
    for (const tr of document.querySelectorAll("#rows-body tr.r")) seen.set(Number(tr.dataset.row), tr.dataset.status);
    if (top >= scroller.scrollHeight) break;
  }
  return [...seen.entries()];
})()"""


def _choose(select: str, label_start: str) -> str:
    """JS: pick the option of a filter whose text starts with `label_start`, as a person would."""
    return f"""(async () => {{
      const select = document.getElementById("{select}");
      const option = [...select.options].find(o => o.textContent.startsWith({json.dumps(label_start)}));
      if (!option) throw new Error("no option " + {json.dumps(label_start)});
      select.value = option.value; select.dispatchEvent(new Event("change"));
      return option.textContent;
    }})()"""


async def _rows(page) -> dict[int, str]:
    return dict(await page.evaluate(ALL_ROWS))


def _sample_run(start_sandbox, creds, tmp_path: Path) -> Path:
    """The DealerVault sample against a sandbox failing 30% of requests, two attempts each: rows invalid,
    failed and saved after a retry."""
    sandbox = start_sandbox(fail_rate=0.3, seed=3)
    out = tmp_path / "out"
    code = main(["run", str(SAMPLES / LAYOUT_FILES["dealervault"]), "--mapping", "dealervault",
                 "--department-uuid", DEPARTMENT, "--api-url", sandbox.url, "--out", str(out), "--state",
                 str(tmp_path / "state.sqlite"), "--progress", "none", "--max-attempts", "2", "--rate", "500"])
    assert code == 1
    return out


async def test_report_page_in_chromium(start_sandbox, creds, tmp_path: Path):
    out = await asyncio.to_thread(_sample_run, start_sandbox, creds, tmp_path)
    summary = read_summary(out)
    results = read_csv(out / "results.csv")
    # The rows to fix: errors.csv's, which holds every invalid and failed row and those saved without a value.
    needing = {int(r["mk_source_row"]): r["mk_status"] for r in read_csv(out / "errors.csv")}
    assert {int(r["source_row"]) for r in results if r["status"] in ("invalid", "failed")} < set(needing)
    assert {"invalid", "failed", "success"} <= set(needing.values()), "the sample run must have every kind of row"
    assert summary["to_fix"] == len(needing)
    page_path = out / "report.html"
    assert page_path.stat().st_mode & 0o777 == 0o600
    url = page_path.resolve().as_uri()

    async with open_page(url) as page:
        counts = await page.evaluate("""Object.fromEntries([...document.querySelectorAll("#counts [data-status]")]
            .map(td => [td.dataset.status, Number(td.textContent.replace(/,/g, ""))]))""")
        assert counts == summary["counts"]
        verdict = await page.evaluate('document.getElementById("verdict").textContent')
        assert verdict.startswith(f"{summary['counts']['success']:,} of {summary['rows']:,} rows imported")
        assert f"{summary['counts']['failed']:,} failed at the API" in verdict

        # The table lists exactly the rows to fix, and the page says how many.
        assert await _rows(page) == needing
        headings = await page.evaluate('[...document.querySelectorAll("h2")].map(h => h.textContent)')
        assert f"Rows to fix ({len(needing)})" in headings
        shown = await page.evaluate('document.getElementById("shown-count").textContent')
        assert shown == f"{len(needing)} of {len(needing)} rows"

        # Filter by status.
        await page.evaluate(_choose("f-status", "failed"))
        assert await _rows(page) == {row: s for row, s in needing.items() if s == "failed"}
        await page.evaluate(_choose("f-status", "all"))

        # Filter by column: the rows whose Last Name is the problem (a person needs one).
        await page.evaluate(_choose("f-column", "Last Name"))
        missing = {int(r["source_row"]): "invalid" for r in results if r["error_code"] == "MISSING_LAST_NAME"}
        assert missing
        assert await _rows(page) == missing
        await page.evaluate(_choose("f-column", "all"))

        # Filter by problem: the rows the API never answered successfully.
        await page.evaluate(_choose("f-problem", "RETRIES_EXHAUSTED"))
        exhausted = {int(r["source_row"]): "failed" for r in results if r["error_code"] == "RETRIES_EXHAUSTED"}
        assert exhausted
        assert await _rows(page) == exhausted
        await page.evaluate(_choose("f-problem", "all"))

        # Search: one customer's number finds that row, and only rows that show it somewhere.
        target = next(r for r in results if r["status"] == "failed")
        number = next(r["Customer Number"] for r in read_csv(out / "errors.csv")
                      if r["mk_source_row"] == target["source_row"])
        await page.evaluate(f"""(() => {{ const box = document.getElementById("f-search");
            box.value = {json.dumps(number)}; box.dispatchEvent(new Event("input")); }})()""")
        await asyncio.sleep(0.5)  # the search waits for typing to pause
        found = await _rows(page)
        assert int(target["source_row"]) in found
        assert len(found) < len(needing)
        assert await page.evaluate(f"""[...document.querySelectorAll("#rows-body tr.r")]
            .every(tr => tr.textContent.includes({json.dumps(number)}))""")

        await page.evaluate('(() => { const b = document.getElementById("f-search"); b.value = "";'
                            ' b.dispatchEvent(new Event("input")); })()')
        await asyncio.sleep(0.5)
        assert await _rows(page) == needing

        # The reason sits in the cell it concerns, in plain words.
        await page.evaluate(_choose("f-column", "Last Name"))
        why = await page.evaluate("""(() => {
            const at = [...document.querySelectorAll("table.rows th")].findIndex(th => th.textContent === "Last Name");
            return [...document.querySelectorAll("#rows-body tr.r")]
                .map(tr => (tr.children[at].querySelector(".why") || {}).textContent || ""); })()""")
        assert len(why) == len(missing)
        assert all("no usable last name" in w for w in why)
        await page.evaluate(_choose("f-column", "all"))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(SCREENSHOT)
        await page.screenshot(tmp_path / "report.png")

        # No network: the only request the page caused is the page itself, from disk.
        requested = page.requested_urls()
        assert url in requested  # the recorder works: it saw the page being loaded
        assert set(requested) == {url}
        assert [e for e in page.events if e[0] == "Runtime.exceptionThrown"] == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


async def test_a_page_with_nothing_to_fix_runs_its_script_cleanly(write_csv, tmp_path: Path):
    source = write_csv([DV_HEADER, dv_row(key="1", last="Lee"), dv_row(key="2", last="Kim")])
    out = tmp_path / "out"
    assert await asyncio.to_thread(main, ["validate", str(source), "-m", "dealervault", "--out", str(out)]) == 0
    url = (out / "report.html").resolve().as_uri()
    async with open_page(url) as page:
        assert await page.evaluate('document.getElementById("verdict").textContent') == \
            "All 2 rows are ready to import."
        assert await page.evaluate('document.getElementById("rows-scroller")') is None
        assert [e for e in page.events if e[0] == "Runtime.exceptionThrown"] == []
        assert set(page.requested_urls()) == {url}


FIX_LOOP_MAPPING = """
customer_key: CUSTNO
customer: {firstName: FIRST, lastName: LAST}
address: {state: STATE}
phones: [{column: PHONE, label: cell}]
vehicle: {vin: VIN, vehicleYear: YR, vehicleMake: MAKE, vehicleModel: MODEL}
"""


def _fix_loop_export(write_csv, tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(FIX_LOOP_MAPPING)
    path = write_csv([
        ["CUSTNO", "FIRST", "LAST", "STATE", "PHONE", "VIN", "YR", "MAKE", "MODEL"],
        ["1", "Ann", "Lee", "MA", "617-555-0101", "", "13", "Honda", "Civic"],        # two-digit years
        ["2", "Bob", "Day", "NY", "617-555-0102", "", "98", "Ford", "Taurus"],
        ["3", "Cy", "Ng", "ZZ", "555-555-5555", "", "2019", "Kia", "Soul"],            # bad state (and a placeholder)
        ["4", "Di", "Ox", "CA", "617-555-0104", VIN_A, "19x", "Kia", "Rio"],           # bad year
        ["5", "=HYPERLINK(1)", "Po", "TX", "617-555-0105", "", "", "", ""],            # formula-like name
        ["6", "Ed", "Yu", "WA", "555-12", "", "", "", ""],                              # unreadable phone
        ["7", "Flo", "", "OR", "617-555-0107", "", "", "", ""],                         # no last name
        ["8", "JOSE", "WILLIAMS", "MA", "617-555-0108", "", "", "", ""],                # one key, two people
        ["8", "CARLOS", "GARCIA", "MA", "617-555-0109", "", "", "", ""],
        ["9", "Gus", "Orr", "MA", "555-555-5555", "", "", "", ""],                      # a placeholder: a warning
    ])
    return path, mapping


async def test_one_list_of_rows_to_fix_in_every_report_and_the_page(write_csv, tmp_path: Path):
    import openpyxl

    path, mapping = _fix_loop_export(write_csv, tmp_path)
    out = tmp_path / "out"
    assert await asyncio.to_thread(main, ["validate", str(path), "-m", str(mapping), "--out", str(out),
                                          "--payloads", str(tmp_path / "p.jsonl")]) == 1
    to_fix = {3: "valid", 4: "valid", 5: "valid", 6: "valid", 7: "invalid", 8: "valid", 9: "valid"}
    errors = read_csv(out / "errors.csv")
    assert {int(e["mk_source_row"]): e["mk_status"] for e in errors} == to_fix
    assert read_summary(out)["to_fix"] == len(to_fix)
    sheet = openpyxl.load_workbook(out / "errors.xlsx").active
    header = [c.value for c in sheet[1]]
    assert sorted(int(r[header.index("mk_source_row")]) for r in sheet.iter_rows(min_row=2, values_only=True)) \
        == sorted(to_fix)
    bodies = {b["customer"]["customerKey"]: b for b in read_jsonl(tmp_path / "p.jsonl")}
    assert bodies["1"]["vehicles"][0]["vehicleYear"] == "2013"
    assert bodies["2"]["vehicles"][0]["vehicleYear"] == "1998"
    # The key of two people: the last row's name, whole; the warning on both rows.
    assert {k: v for k, v in bodies["8"]["customer"].items() if "Name" in k} == {"firstName": "CARLOS",
                                                                                   "lastName": "GARCIA"}
    results = read_csv(out / "results.csv")
    assert [r["source_row"] for r in results if "two people" in r["warnings"]] == ["8", "9"]
    state_row = next(e for e in errors if e["mk_source_row"] == "3")
    assert "would be sent without STATE (not a US state or Canadian province)" in state_row["mk_error_message"]

    async with open_page((out / "report.html").resolve().as_uri()) as page:
        assert await _rows(page) == to_fix
        headings = await page.evaluate('[...document.querySelectorAll("h2")].map(h => h.textContent)')
        assert "Rows to fix (7)" in headings
        assert (await page.evaluate('document.getElementById("verdict").textContent')).endswith(
            "7 rows to fix below.")
        buttons = await page.evaluate("""[...document.querySelectorAll("#problems button")].map(b =>
            [b.querySelector(".label").textContent, Number(b.dataset.rows)])""")
        assert sorted(label for label, _ in buttons) == sorted([
            "STATE: not a US state or Canadian province", "YR: not a model year",
            "FIRST: would run as a spreadsheet formula; not sent", "PHONE: not a valid phone number",
            "LAST: MISSING_LAST_NAME", "LAST: two people under one customer key"])
        # Every problem is a button that shows its rows, and only those.
        expected = {"STATE": {3}, "YR": {4}, "FIRST": {5}, "PHONE": {6}, "LAST: M": {7}, "LAST: t": {8, 9}}
        for at, (label, n) in enumerate(buttons):
            await page.evaluate(f'document.querySelectorAll("#problems button")[{at}].click()')
            shown = set(await _rows(page))
            assert shown == next(rows for start, rows in expected.items() if label.startswith(start))
            assert len(shown) == n
        # The placeholder is named apart, with nothing to fix and the file's count (not a button, though row 3,
        # to fix for its state, carries one too).
        kept = await page.evaluate('document.getElementById("kept").textContent')
        assert "PHONE: a placeholder, not the customer's own; treated as empty: 2 rows" in kept
        words = await page.evaluate('document.querySelector("table.words").textContent')
        assert "the rest of the customer was saved" not in words.split("MISSING_LAST_NAME")[1].split("\\n")[0]
        assert [e for e in page.events if e[0] == "Runtime.exceptionThrown"] == []


async def test_the_rows_data_written_in_parts_is_one_table(write_csv, tmp_path: Path, monkeypatch):
    """The page writes its rows' data a few rows and a column at a time: the parts make one table, in order."""
    import re

    from importer.report import page as page_module

    monkeypatch.setattr(page_module, "_ROWS_AT_A_TIME", 2)
    path, mapping = _fix_loop_export(write_csv, tmp_path)
    out = tmp_path / "out"
    assert await asyncio.to_thread(main, ["validate", str(path), "-m", str(mapping), "--out", str(out)]) == 1
    text = (out / "report.html").read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="mk-data">(.*?)</script>', text, re.DOTALL)
    assert found is not None
    data = json.loads(found.group(1))
    assert [r[0] for r in data["rows"]] == [3, 4, 5, 6, 7, 8, 9]
    assert len(data["values"]) == len(data["columns"])
    assert {len(v) for v in data["values"]} == {7}
    first = data["columns"].index("FIRST")
    assert data["values"][first][2] == "=HYPERLINK(1)"  # the file's own value, not errors.csv's quoted one
    async with open_page((out / "report.html").resolve().as_uri()) as page:
        assert sorted(await _rows(page)) == [3, 4, 5, 6, 7, 8, 9]
