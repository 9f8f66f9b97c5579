"""Three nights against the sandbox: what each night changed, the problems known from earlier nights, and the
guard that refuses a night whose name columns came out swapped."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from importer.prepare.vin import check_digit
from importer.send.state import StateStore
from tests.browser import chromium_path, open_page
from tests.conftest import DEPARTMENT, Api
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary
from tests.test_run import run

CUSTOMERS = 60  # the guard judges a file only when the state knows at least 50 of its customers
FIRST, LAST, CELL, LINE1, VIN = (DV_HEADER.index(c) for c in ("First Name ", "Last Name", "Cell Phone",
                                                                "Address Line 1", "VIN"))


def _vin(i: int) -> str:
    vin = f"1HGCM8263{i:08d}"
    return vin[:8] + check_digit(vin) + vin[9:]


def _customers(count: int = CUSTOMERS) -> list[list[str]]:
    return [dv_row(str(100 + i), first=f"Ann{chr(65 + i % 26)}", last=f"Lee{i}", cell=f"(310) 555-{100 + i:04d}",
                   line1=f"{i + 1} Main St", city="Springfield", state="IL", zip_code="62701")
            for i in range(count)]


def _nameless(key: str) -> list[str]:
    """A row without a name: invalid whatever columns are swapped."""
    return dv_row(key, first="", last="", cell="(310) 555-0999")


def _night(rows: list[list[str]], write_csv, name: str) -> Path:
    path: Path = write_csv([DV_HEADER, *rows], name=name)
    return path


def _sent(url: str) -> int:
    return int(Api(url).stats()["requests"])


async def _on_the_page(out: Path) -> tuple[str, int, dict[str, str], list[str]]:
    """What changed (its text), the trend's charts, the rows to fix flagged as seen often (row → nights), and
    the rows to fix in the order the table shows them."""
    url = (out / "report.html").resolve().as_uri()
    async with open_page(url) as page:
        text = await page.evaluate('document.getElementById("changes").innerText')
        charts = await page.evaluate('document.querySelectorAll("#trend figure svg").length')
        seen = await page.evaluate("""Object.fromEntries([...document.querySelectorAll("#rows-body tr.r")]
            .filter(tr => tr.dataset.seen).map(tr => [tr.dataset.row, tr.dataset.seen]))""")
        order = await page.evaluate('[...document.querySelectorAll("#rows-body tr.r")].map(tr => tr.dataset.row)')
        await page.screenshot(out / "page.png")
        assert [e for e in page.events if e[0] == "Runtime.exceptionThrown"] == []
        assert set(page.requested_urls()) == {url}
    return text, charts, seen, order


@pytest.mark.skipif(chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed")
def test_three_nights(sandbox, creds, write_csv, tmp_path: Path, capsys):
    customers = _customers()
    # Night 1: the first import; one row has no name.
    assert run(_night([*customers, _nameless("900")], write_csv, "n1.csv"), sandbox.url, tmp_path / "n1",
               "--max-invalid", "5") == 0
    first = read_summary(tmp_path / "n1")
    assert first["changes"]["created"] == CUSTOMERS
    assert {r["changes"] for r in read_csv(tmp_path / "n1" / "results.csv") if r["status"] == "success"} == {"created"}
    assert (first["problems_new"], first["problems_known"]) == (1, 0)

    # Night 2: five new cell phones, two moves, three cars bought; the nameless row again, and a new one.
    night2 = [list(row) for row in customers]
    for i in range(5):
        night2[i][CELL] = f"(310) 555-{200 + i:04d}"
    for i in (5, 6):
        night2[i][LINE1] = f"{i + 70} Oak Ave"
    for i in (7, 8, 9):
        night2[i][VIN] = _vin(i)
    out2 = tmp_path / "n2"
    assert run(_night([*night2, _nameless("900"), _nameless("901")], write_csv, "n2.csv"), sandbox.url, out2,
               "--max-invalid", "5") == 0
    results = {r["customer_key"]: r for r in read_csv(out2 / "results.csv")}
    expected = {**{str(100 + i): "phones" for i in range(5)}, **{str(100 + i): "addresses" for i in (5, 6)},
                **{str(100 + i): "vehicles" for i in (7, 8, 9)}}
    assert {key: r["changes"] for key, r in results.items() if r["changes"]} == expected
    summary = read_summary(out2)
    assert {word: n for word, n in summary["changes"].items() if n} == {"phones": 5, "addresses": 2, "vehicles": 3}
    assert summary["requests_sent"] == 10
    errors = {r["Customer Number"]: r for r in read_csv(out2 / "errors.csv")}
    assert (errors["900"]["mk_times_seen"], errors["901"]["mk_times_seen"]) == ("2", "1")
    first_night = {r["Customer Number"]: r for r in read_csv(tmp_path / "n1" / "errors.csv")}
    assert errors["900"]["mk_first_seen"] == first_night["900"]["mk_first_seen"], "first seen on night 1"
    assert errors["901"]["mk_first_seen"] >= errors["900"]["mk_first_seen"]
    assert (summary["problems_known"], summary["problems_new"]) == (1, 1)
    shown, charts, seen, order = asyncio.run(_on_the_page(out2))
    assert charts == 8, "the trend: rows, to fix, created, updated, unchanged, failed, duration, 429s"
    assert seen == {}, "no row seen three nights yet"
    assert order == [errors["901"]["mk_source_row"], errors["900"]["mk_source_row"]], "new problems first"
    assert "+13105550100" in shown, "a changed phone's old number"
    assert "+13105550200" in shown, "and its new one"
    examples = json.loads((out2 / "changes.json").read_text())["examples"]
    assert {e["key"] for e in examples["vehicles"]} == {"107", "108", "109"}
    assert (out2 / "changes.json").stat().st_mode & 0o777 == 0o600

    # Night 3: the export's first- and last-name columns came out swapped: nothing is sent.
    night3 = [list(row) for row in night2]
    for row in night3:
        row[FIRST], row[LAST] = row[LAST], row[FIRST]
    path3 = _night([*night3, _nameless("900"), _nameless("901")], write_csv, "n3.csv")
    before = _sent(sandbox.url)
    capsys.readouterr()
    assert run(path3, sandbox.url, tmp_path / "n3", "--max-invalid", "5") == 2
    assert _sent(sandbox.url) == before, "no request sent"
    err = capsys.readouterr().err
    assert "name: 60 of 60 known customers (100.0%)" in err
    assert "AnnA Lee0 → Lee0 AnnA" in err
    assert "--allow-mass-change" in err
    refused = read_summary(tmp_path / "n3")
    assert (refused["stop_code"], refused["exit_code"]) == ("mass_change", 2)
    assert refused["mass_change"]["over"][0]["category"] == "name"
    assert {r["status"] for r in read_csv(tmp_path / "n3" / "results.csv")} == {"not_attempted", "invalid"}

    # validate with the state says the same, before any run.
    assert run_validate(path3, tmp_path) == 0
    assert "name: 60 of 60 known customers (100.0%)" in capsys.readouterr().err

    # Meant after all: sent.
    assert run(path3, sandbox.url, tmp_path / "n3b", "--max-invalid", "5", "--allow-mass-change") == 0
    allowed = read_summary(tmp_path / "n3b")
    assert allowed["requests_sent"] == CUSTOMERS
    assert {word: n for word, n in allowed["changes"].items() if n} == {"name": CUSTOMERS}
    assert _sent(sandbox.url) == before + CUSTOMERS
    # The nameless rows: four runs reported the first (the refused one too), three the second; the page says
    # they come from the DMS every night.
    errors = {r["Customer Number"]: r for r in read_csv(tmp_path / "n3b" / "errors.csv")}
    assert (errors["900"]["mk_times_seen"], errors["901"]["mk_times_seen"]) == ("4", "3")
    rows = {r["Customer Number"]: r["mk_source_row"] for r in errors.values()}
    _, _, seen, _ = asyncio.run(_on_the_page(tmp_path / "n3b"))
    assert seen == {rows["900"]: "4", rows["901"]: "3"}


def run_validate(path: Path, tmp_path: Path) -> int:
    from importer.cli import main

    return main(["validate", str(path), "-m", "dealervault", "--out", str(tmp_path / "v3"), "--state",
                 str(tmp_path / "state.sqlite"), "--max-invalid", "5"])


def _renamed(customers: list[list[str]], count: int) -> list[list[str]]:
    night = [list(row) for row in customers]
    for row in night[:count]:
        row[FIRST] = row[FIRST] + "x"
    return night


def test_49_known_customers_are_too_few_for_the_guard(sandbox, creds, write_csv, tmp_path: Path):
    customers = _customers(49)
    assert run(_night(customers, write_csv, "a.csv"), sandbox.url, tmp_path / "a") == 0
    assert run(_night(_renamed(customers, 49), write_csv, "b.csv"), sandbox.url, tmp_path / "b") == 0
    assert read_summary(tmp_path / "b")["changes"]["name"] == 49


def test_exactly_the_share_is_sent_and_one_more_is_refused(sandbox, creds, write_csv, tmp_path: Path):
    customers = _customers(60)
    assert run(_night(customers, write_csv, "a.csv"), sandbox.url, tmp_path / "a") == 0
    exactly = _renamed(customers, 15)  # 15 of 60: 25%
    assert run(_night(exactly, write_csv, "b.csv"), sandbox.url, tmp_path / "b", "--max-changed", "25") == 0
    assert read_summary(tmp_path / "b")["changes"]["name"] == 15
    one_more = _renamed(exactly, 16)  # the first 16 renamed again: 16 of 60
    assert run(_night(one_more, write_csv, "c.csv"), sandbox.url, tmp_path / "c", "--max-changed", "25") == 2
    assert read_summary(tmp_path / "c")["stop_code"] == "mass_change"


def test_the_dealers_max_changed_applies(tmp_path: Path):
    from importer.ops.dealers import load_dealers

    env = tmp_path / "env"
    env.write_text("MK_USERNAME=u\nMK_PASSWORD=p\n")
    env.chmod(0o600)
    dealers = tmp_path / "dealers.yaml"
    dealers.write_text(f"defaults: {{mapping: dealervault, max_changed: 10, credentials: {{env_file: {env}}}}}\n"
                       f"dealers:\n  - {{name: a, department: {DEPARTMENT}, input: {tmp_path}/a.csv}}\n"
                       f"  - {{name: b, department: d2, input: {tmp_path}/b.csv, max_changed: 40}}\n")
    loaded = load_dealers(dealers)
    assert [d.max_changed for d in loaded.dealers] == [10.0, 40.0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(dealers.read_text().replace("max_changed: 40", "max_changed: 140"))
    with pytest.raises(Exception, match="max_changed"):
        load_dealers(bad)


def test_a_refused_run_keeps_no_problem_and_state_unchanged(sandbox, creds, write_csv, tmp_path: Path):
    customers = _customers(60)
    assert run(_night(customers, write_csv, "a.csv"), sandbox.url, tmp_path / "a") == 0
    store = StateStore(tmp_path / "state.sqlite", DEPARTMENT)
    try:
        hashes = store.hashes(store.load().index.tolist())
    finally:
        store.close()
    assert run(_night(_renamed(customers, 60), write_csv, "b.csv"), sandbox.url, tmp_path / "b") == 2
    store = StateStore(tmp_path / "state.sqlite", DEPARTMENT)
    try:
        assert store.hashes(store.load().index.tolist()) == hashes, "a refused run saves nothing"
    finally:
        store.close()


def test_validate_reads_the_known_problems_and_only_run_writes_them(sandbox, creds, write_csv, tmp_path: Path):
    from importer.cli import main

    path = _night([*_customers(3), _nameless("900")], write_csv, "a.csv")
    assert run(path, sandbox.url, tmp_path / "a") == 1
    state = tmp_path / "state.sqlite"
    for out in ("v1", "v2"):
        assert main(["validate", str(path), "-m", "dealervault", "--out", str(tmp_path / out), "--state",
                     str(state)]) == 1
        (row,) = read_csv(tmp_path / out / "errors.csv")
        assert row["mk_times_seen"] == "2", "validate counts tonight's run as a run would, and writes nothing"
        assert (read_summary(tmp_path / out)["problems_known"], read_summary(tmp_path / out)["problems_new"]) == (1, 0)
    store = StateStore(state, DEPARTMENT)
    try:
        assert store.problems()["times_seen"].tolist() == [1]
    finally:
        store.close()


def test_a_problem_gone_is_forgotten_and_a_row_without_key_is_known_by_its_cells(sandbox, creds, write_csv,
                                                                                 tmp_path: Path):
    keyless = dv_row("", first="", last="", cell="(310) 555-0777")
    customers = _customers(2)
    assert run(_night([*customers, _nameless("900"), keyless], write_csv, "a.csv"), sandbox.url, tmp_path / "a") == 1
    assert run(_night([*customers, keyless], write_csv, "b.csv"), sandbox.url, tmp_path / "b") == 1  # 900 fixed
    assert [r["mk_times_seen"] for r in read_csv(tmp_path / "b" / "errors.csv")] == ["2"], "the keyless row, by cells"
    assert run(_night([*customers, _nameless("900"), keyless], write_csv, "c.csv"), sandbox.url, tmp_path / "c") == 1
    seen = {r["Customer Number"]: r["mk_times_seen"] for r in read_csv(tmp_path / "c" / "errors.csv")}
    assert seen == {"900": "1", "": "3"}, "900 was gone for a night: forgotten, new again"
