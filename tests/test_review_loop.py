"""The error-review loop: run, fix rows in errors.csv, import it again; nothing lost, nothing created twice."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from importer.cli import main
from importer.sandbox import SandboxConfig, SandboxThread
from tests.conftest import USER, Api
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary
from tests.prepare.test_mapping import LAYOUT_FILES, SAMPLES
from tests.test_run import run


def _write_back(errors: list[dict[str, str]], path: Path) -> None:
    """errors.csv as a spreadsheet saves it again: same columns, UTF-8 with BOM."""
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(errors[0]))
        writer.writeheader()
        writer.writerows(errors)


def _fix_three(out: Path, fixed: Path) -> dict[str, str]:
    """Fix two rows refused for their last name and one saved without its phone; {original row: kind}."""
    errors = read_csv(out / "errors.csv")
    nameless = [e for e in errors if e["mk_error_code"] == "MISSING_LAST_NAME" and e["Customer Number"]][:2]
    phoneless = [e for e in errors if e["mk_error_code"] == "SAVED_WITHOUT_FIELD"
                 and e["mk_error_message"].startswith("saved without Cell Phone")][:1]
    assert len(nameless) == 2
    assert len(phoneless) == 1
    for row, last in zip(nameless, ("Okafor", "Ng"), strict=True):
        row["Last Name"] = last
    phoneless[0]["Cell Phone"] = "(415) 867-0142"
    _write_back(errors, fixed)
    return {**{r["mk_source_row"]: "name" for r in nameless}, phoneless[0]["mk_source_row"]: "phone"}


def test_fix_three_rows_in_errors_csv_and_import_them_again(sandbox, creds, tmp_path: Path):
    api = Api(sandbox.url)
    first = tmp_path / "first"
    assert run(SAMPLES / LAYOUT_FILES["dealervault"], sandbox.url, first, "--rate", "1000") == 1
    before = {r["source_row"]: r for r in read_csv(first / "results.csv")}
    created = api.stats()["creates"]
    assert created == api.stats()["customers"] == len({r["customer_uuid"] for r in before.values()} - {""})

    fixed = tmp_path / "errors-fixed.csv"
    wanted = _fix_three(first, fixed)
    again = tmp_path / "again"
    run(fixed, sandbox.url, again, "--rate", "1000")
    results = read_csv(again / "results.csv")
    errors = read_csv(first / "errors.csv")
    assert [r["original_row"] for r in results] == [e["mk_source_row"] for e in errors]
    by_original = {r["original_row"]: r for r in results}
    for original, kind in wanted.items():
        row = by_original[original]
        assert row["status"] == "success", row
        if kind == "phone":  # the customer saved before is completed, not made again
            assert row["customer_uuid"] == before[original]["customer_uuid"]
            phones = api.get(row["customer_uuid"]).body["customerWithVehicles"]["customer"]["phoneNumbers"]
            assert "+14158670142" in {p["phoneNumber"] for p in phones}
    uuids = {r["customer_uuid"] for r in [*before.values(), *results]} - {""}
    stats = api.stats()
    assert stats["customers"] == stats["creates"] == len(uuids), "no customer created twice"
    new_keys = {by_original[o]["customer_key"] for o, kind in wanted.items() if kind == "name"}
    known_keys = {r["customer_key"] for r in before.values() if r["customer_uuid"]}
    assert stats["creates"] == created + len(new_keys - known_keys)
    # the rows not fixed are refused again, still linked to the original file
    assert {r["status"] for r in results if r["original_row"] not in wanted} <= {"invalid", "success", "unchanged"}


def test_a_nameless_row_of_a_named_customer_is_valid(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("42", first="Ann", last="Lee"),
                      dv_row("42", first="", last="N/A", vin="1HGCM82633A004352"),
                      dv_row("43", first="Bob", last="")])
    out = tmp_path / "out"
    main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--payloads", str(tmp_path / "p")])
    named, nameless, stranger = read_csv(out / "results.csv")
    assert named["status"] == nameless["status"] == "valid"
    assert nameless["customer_key"] == "42"
    assert "1HGCM82633A004352" in (tmp_path / "p").read_text()
    assert stranger["status"] == "invalid"
    assert stranger["customer_key"] == "43", "an invalid row keeps its key"
    assert stranger["error_message"] == "a person needs a last name (Last Name is empty)"


def test_a_placeholder_last_name_is_described_as_typed(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1", last="N/A")])
    out = tmp_path / "out"
    main(["validate", str(path), "-m", "dealervault", "--out", str(out)])
    (row,) = read_csv(out / "results.csv")
    assert row["error_message"] == 'a person needs a last name (Last Name is a placeholder ("N/A"))'


def test_api_failures_are_marked_nothing_to_fix_and_counted(start_sandbox, creds, tmp_path: Path, write_csv):
    sandbox = start_sandbox(fail_rate=1.0)
    path = write_csv([DV_HEADER, dv_row("1", cell="(310) 555-1234"), dv_row("2", last="")])
    out = tmp_path / "out"
    run(path, sandbox.url, out, "--rate", "1000", "--max-attempts", "2")
    failed, invalid = read_csv(out / "errors.csv")
    assert failed["mk_status"] == "failed"
    assert failed["mk_error_message"].startswith("nothing to fix: retried next run")
    assert not invalid["mk_error_message"].startswith("nothing to fix")
    problems = read_summary(out)["problems"]
    assert any(p["column"] == "(API)" and p["rows"] == 1 for p in problems)


def test_sandbox_db_keeps_customers_for_a_re_import(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1", cell="555-12"), dv_row("2", first="Bob", last="Day")])
    db = tmp_path / "sandbox.sqlite"

    def sandbox_run(source: Path, out: Path) -> int:
        return main(["run", str(source), "-m", "dealervault", "--sandbox", "--sandbox-db", str(db),
                     "--out", str(out), "--progress", "none"])

    assert sandbox_run(path, tmp_path / "o1") == 0
    assert (tmp_path / "sandbox.sqlite.state.sqlite").exists()
    errors = read_csv(tmp_path / "o1" / "errors.csv")
    assert [e["mk_error_code"] for e in errors] == ["SAVED_WITHOUT_FIELD"]
    errors[0]["Cell Phone"] = "(310) 555-1234"
    _write_back(errors, tmp_path / "fixed.csv")
    assert sandbox_run(tmp_path / "fixed.csv", tmp_path / "o2") == 0
    (again,) = read_csv(tmp_path / "o2" / "results.csv")
    assert again["customer_uuid"] == read_csv(tmp_path / "o1" / "results.csv")[0]["customer_uuid"]
    with SandboxThread(SandboxConfig(users={USER: "x"}, db_path=str(db))) as sandbox:
        assert Api(sandbox.url, USER, "x").stats()["customers"] == 2
    assert main(["run", str(path), "-m", "dealervault", "--sandbox-db", str(db), "--department-uuid", "d"]) == 2


def test_validate_with_a_state_says_what_a_run_would_do(sandbox, creds, tmp_path: Path, write_csv):
    rows = [dv_row("1", first="Ann", last="Lee"), dv_row("2", first="Bob", last="Day"),
            dv_row("3", first="Cy", last="Roe"), dv_row("4", last="")]
    state = tmp_path / "state.sqlite"  # where run() keeps it
    never = tmp_path / "none.sqlite"

    told: dict[str, dict[str, int]] = {}

    def forecast(path: Path, state_path: Path) -> dict[str, int]:
        out = tmp_path / f"v-{path.stem}-{state_path.stem}"
        main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--state", str(state_path)])
        result: dict[str, Any] = read_summary(out)["forecast"]
        told[path.stem] = result.pop("changes")
        return result

    first = write_csv([DV_HEADER, *rows], name="first.csv")
    assert forecast(first, never) == {"create": 3, "update": 0, "unchanged": 0, "invalid": 1}
    assert not never.exists(), "a forecast creates no state"
    run(first, sandbox.url, tmp_path / "out")
    changed = write_csv([DV_HEADER, rows[0], dv_row("2", first="Bob", last="Day", cell="(310) 555-1234"),
                         dv_row("3", first="Cy", last="Roe"), dv_row("3", first="", last="Roe"),
                         dv_row("5", first="Di", last="Ng"), rows[3]], name="second.csv")
    # 1: same rows; 3: more rows, same body; 2: changed; 5: new
    assert forecast(changed, state) == {"create": 1, "update": 1, "unchanged": 2, "invalid": 1}
    assert {word: n for word, n in told["second"].items() if n} == {"created": 1, "phones": 1}
    requests_before = Api(sandbox.url).stats()["requests"]
    run(changed, sandbox.url, tmp_path / "out2")
    summary = read_summary(tmp_path / "out2")
    assert summary["changes"] == told["second"], "the run changes what validate forecast"
    assert Api(sandbox.url).stats()["requests"] - requests_before == 2
    assert summary["counts"]["unchanged"] == 3  # rows: customer 1's, and both of customer 3's


def test_validate_forecasts_from_the_departments_default_state(monkeypatch, tmp_path: Path, write_csv):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    path = write_csv([DV_HEADER, dv_row("1")])
    out = tmp_path / "out"
    assert main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--department-uuid", "dept-9"]) == 0
    summary = read_summary(out)
    assert {k: v for k, v in summary["forecast"].items() if k != "changes"} == {"create": 1, "update": 0,
                                                                               "unchanged": 0, "invalid": 0}
    assert summary["state"] == str(tmp_path / "xdg" / "mk-import" / "dept-9.sqlite")


def test_a_key_that_lost_its_leading_zeros_is_the_known_customer(sandbox, creds, tmp_path: Path, write_csv):
    run(write_csv([DV_HEADER, dv_row("0000082", first="Ann", last="Lee"), dv_row("0000083", first="Bo", last="Li"),
                   dv_row("00083", first="Cy", last="Ma")], name="first.csv"), sandbox.url, tmp_path / "o1")
    first = {r["customer_key"]: r["customer_uuid"] for r in read_csv(tmp_path / "o1" / "results.csv")}
    # as a spreadsheet saves it: 82 unambiguous, 83 could be either
    edited = write_csv([DV_HEADER, dv_row("82", first="Ann", last="Lee-Smith"), dv_row("83", first="Bo", last="Li")],
                       name="edited.csv")
    run(edited, sandbox.url, tmp_path / "o2")
    ann, bo = read_csv(tmp_path / "o2" / "results.csv")
    assert ann["customer_key"] == "0000082"
    assert ann["customer_uuid"] == first["0000082"]
    assert "Customer Number: 82 read as 0000082" in ann["warnings"]
    assert bo["customer_key"] == "83"
    assert "read as" not in bo["warnings"]
    stats = Api(sandbox.url).stats()
    assert stats["creates"] == 4  # three customers, then only the ambiguous 83


def test_derived_keys_are_readable_and_a_state_of_hashed_keys_still_knows_them(sandbox, creds, tmp_path: Path):
    import sqlite3

    from importer.config import PrepareConfig
    from importer.prepare.mapping import load_mapping
    from importer.prepare.stage import prepare
    from importer.read.reader import open_input
    from sample_data.generate import write

    source = write("tekion-ro", tmp_path / "ro.csv", 60, seed=8)
    run(source, sandbox.url, tmp_path / "o1", "--rate", "1000", mapping="tekion-ro")
    results = read_csv(tmp_path / "o1" / "results.csv")
    first = next(r for r in results if r["status"] == "success")
    assert first["customer_key"].startswith("~")
    assert " #" in first["customer_key"]
    assert first["customer_key"].split(" #")[0][1:].strip(), "the name reads before the hash"
    # a state written before keys were readable: every customer under `~` and a hash
    with open_input(str(source)) as opened:
        rows = prepare(opened, load_mapping("tekion-ro"), PrepareConfig(str(source), "tekion-ro"),
                       keep_rows=False).rows
    old_of = dict(zip(rows["customer_key"], rows["legacy_key"], strict=True))
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.executemany("UPDATE customers SET customer_key = ? WHERE customer_key = ?",
                       [(old_of[k], k) for (k,) in db.execute("SELECT customer_key FROM customers").fetchall()])
    creates = Api(sandbox.url).stats()["creates"]
    run(source, sandbox.url, tmp_path / "o2", "--rate", "1000", mapping="tekion-ro")
    again = read_csv(tmp_path / "o2" / "results.csv")
    assert {r["status"] for r in again} <= {"unchanged", "invalid"}
    assert Api(sandbox.url).stats()["creates"] == creates
