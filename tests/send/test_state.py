"""The state file: made, reopened, refused when it is not this department's or this version's, one run at a time,
and a state written by mk-import 0.1.0 (schema 1) brought to schema 2 on open."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from importer.errors import ConfigError
from importer.send.state import SCHEMA_VERSION, STATE_COLUMNS, Saved, StateStore
from tests.conftest import DEPARTMENT
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary
from tests.test_run import run


def meta(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT name, value FROM meta").fetchall())


def customer_columns(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[1] for row in db.execute("PRAGMA table_info(customers)")]


def test_a_new_state_is_made_private_with_this_schema_and_department_and_reopens_empty(tmp_path: Path):
    path = tmp_path / "states" / "dept.sqlite"
    store = StateStore(path, "dept")
    assert store.load().empty
    assert store.load().columns.tolist() == STATE_COLUMNS
    assert store.journaled() == set()
    store.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert meta(path) == {"schema_version": str(SCHEMA_VERSION), "department": "dept"}
    assert customer_columns(path) == ["customer_key", "payload_hash", "customer_uuid", "customer_id", "saved_at",
                                      "fingerprint"]
    again = StateStore(path, "dept")
    assert again.load().empty
    again.close()


def test_a_state_of_another_department_is_refused(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    StateStore(path, "dept-a").close()
    with pytest.raises(ConfigError) as refused:
        StateStore(path, "dept-b")
    assert str(refused.value) == f"{path}: state of department 'dept-a', not 'dept-b'"


def test_a_state_made_by_a_newer_mk_import_is_refused_and_left_as_it_is(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    StateStore(path, "dept").close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ConfigError) as refused:
        StateStore(path, "dept")
    assert str(refused.value) == (f"{path}: made by a newer mk-import (state schema {SCHEMA_VERSION + 1}); "
                                  "upgrade mk-import")
    assert meta(path)["schema_version"] == str(SCHEMA_VERSION + 1)


def test_a_corrupt_state_file_is_refused_in_one_line_and_not_reset(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    garbage = b"this is no database, it is what a bad copy left behind\n" * 40
    path.write_bytes(garbage)
    with pytest.raises(ConfigError) as refused:
        StateStore(path, "dept")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not a usable mk-import state file (")
    assert message.endswith("); move it aside to start afresh")
    assert path.read_bytes() == garbage
    # the refused file is not left locked: trying again gives the same answer, not "in use"
    with pytest.raises(ConfigError) as again:
        StateStore(path, "dept")
    assert str(again.value) == message


def test_a_database_that_is_not_a_state_is_refused(tmp_path: Path):
    path = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE invoices (number TEXT)")
    with pytest.raises(ConfigError) as refused:
        StateStore(path, "dept")
    assert str(refused.value) == f"{path}: not an mk-import state file"


def test_saves_round_trip_through_load_and_a_later_save_replaces_an_earlier_one(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    store = StateStore(path, "dept")
    store.record([("A", Saved("hash-a", "uuid-a", "11", "fp-a"), False),
                  ("B", Saved("hash-b", "uuid-b", None, "fp-b"), False)])
    store.record([("A", Saved("hash-a2", "uuid-a", "11", "fp-a2"), False)])
    store.close()
    store = StateStore(path, "dept")
    loaded = store.load()
    store.close()
    assert loaded.index.name == "customer_key"
    assert loaded.columns.tolist() == STATE_COLUMNS
    assert list(loaded.loc["A"]) == ["hash-a2", "uuid-a", "11", "fp-a2"]
    assert list(loaded.loc["B", ["body_hash", "customer_uuid", "fingerprint"]]) == ["hash-b", "uuid-b", "fp-b"]
    assert loaded["customer_id"].isna().to_dict() == {"A": False, "B": True}  # no id for B, not the text "None"
    assert len(loaded) == 2


def test_noted_fingerprints_replace_the_saved_ones_and_touch_nothing_else(tmp_path: Path):
    store = StateStore(tmp_path / "state.sqlite", "dept")
    store.record([("A", Saved("hash-a", "uuid-a", "11", "fp-old"), False),
                  ("B", Saved("hash-b", "uuid-b", "12", "fp-b"), False)])
    store.record([], noted=[("A", "fp-new"), ("unknown", "fp-x")])
    loaded = store.load()
    store.close()
    assert list(loaded.loc["A"]) == ["hash-a", "uuid-a", "11", "fp-new"]
    assert list(loaded.loc["B"]) == ["hash-b", "uuid-b", "12", "fp-b"]
    assert "unknown" not in loaded.index  # a note saves no customer


def test_the_sending_journal_outlives_the_run_and_a_recorded_save_ends_its_entry(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    store = StateStore(path, "dept")
    for key in ("A", "B", "C", "A"):
        store.journal_sending(key)
    store.forget_sending("B")  # surely never sent
    store.close()  # the run dies with A and C in flight
    store = StateStore(path, "dept")
    assert store.journaled() == {"A", "C"}
    store.record([("A", Saved("hash-a", "uuid-a", "1"), True), ("D", Saved("hash-d", "uuid-d", "2"), False)])
    assert store.journaled() == {"C"}
    store.close()


def test_a_second_store_on_the_same_state_is_refused_until_the_first_is_closed(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    first = StateStore(path, "dept")
    first.record([("A", Saved("hash-a", "uuid-a", "1"), False)])
    with pytest.raises(ConfigError) as refused:
        StateStore(path, "dept")
    assert str(refused.value) == f"{path}: in use by another mk-import run (one run per state file at a time)"
    assert first.load().index.tolist() == ["A"]  # the first one is unharmed
    first.close()
    second = StateStore(path, "dept")
    assert second.load().index.tolist() == ["A"]
    second.close()


# -- schema 1, as mk-import 0.1.0 wrote it ---------------------------------------------------------------------
def write_schema_1(path: Path, department: str, customers: list[tuple[str, str, str, str | None, str | None]],
                   sending: list[str]) -> None:
    """A state file exactly as mk-import 0.1.0 made it: (key, payload hash, uuid, id, input hash) per customer."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE customers (customer_key TEXT PRIMARY KEY, payload_hash TEXT NOT NULL,"
            " customer_uuid TEXT NOT NULL, customer_id TEXT, saved_at TEXT NOT NULL, input_hash TEXT);"
            "CREATE TABLE sending (customer_key TEXT PRIMARY KEY);")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", "1"), ("department", department)])
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, '2026-11-01T02:00:00+00:00', ?)", customers)
        db.executemany("INSERT INTO sending VALUES (?)", [(key,) for key in sending])


def test_a_schema_1_state_is_migrated_on_open_keeping_its_customers_and_journal(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    write_schema_1(path, "dept", [("100", "ph-100", "uuid-100", "7", "fp-100"),
                                  ("200", "ph-200", "uuid-200", None, "fp-200"),
                                  ("~Lee Ann 02134 #3f2a9c1d0e4b", "ph-lee", "uuid-lee", "9", "fp-lee")],
                   sending=["300"])
    store = StateStore(path, "dept")
    loaded = store.load()
    assert store.journaled() == {"300"}
    store.close()
    assert loaded.columns.tolist() == STATE_COLUMNS
    assert loaded["fingerprint"].to_dict() == {"100": "fp-100", "200": "fp-200",
                                               "~Lee Ann 02134 #3f2a9c1d0e4b": "fp-lee"}
    assert list(loaded.loc["100"]) == ["ph-100", "uuid-100", "7", "fp-100"]
    assert meta(path) == {"schema_version": "2", "department": "dept"}
    columns = customer_columns(path)
    assert "fingerprint" in columns
    assert "input_hash" not in columns
    # A second open finds schema 2 and changes nothing (migrating again would fail on the renamed column).
    again = StateStore(path, "dept")
    assert again.load().equals(loaded)
    assert again.journaled() == {"300"}
    again.close()
    assert meta(path) == {"schema_version": "2", "department": "dept"}
    assert customer_columns(path) == columns


def test_a_schema_1_state_of_another_department_is_refused_before_it_is_migrated(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    write_schema_1(path, "dept-a", [("100", "ph-100", "uuid-100", "7", "fp-100")], sending=[])
    with pytest.raises(ConfigError) as refused:
        StateStore(path, "dept-b")
    assert str(refused.value) == f"{path}: state of department 'dept-a', not 'dept-b'"
    assert meta(path)["schema_version"] == "1"
    assert "input_hash" in customer_columns(path)


def test_a_rerun_on_a_state_rewritten_to_schema_1_leaves_every_row_unchanged(sandbox, creds, tmp_path: Path,
                                                                             write_csv):
    path = write_csv([DV_HEADER,
                      dv_row("100", first="Ann", last="Lee", cell="(310) 555-1234"),
                      dv_row("200", first="Bo", last="Day", email="bo@example.com"),
                      dv_row("100", first="Ann", last="Lee", vin="1HGCM82633A004352", year="2003", make="Honda",
                             model="Accord"),
                      dv_row("", first="Cy", last="Ng", email="cy@example.com", zip_code="02134")])
    first = tmp_path / "first"
    assert run(path, sandbox.url, first) == 0
    assert read_summary(first)["requests_sent"] == 3
    state = tmp_path / "state.sqlite"
    with contextlib.closing(sqlite3.connect(state)) as db, db:  # back to what mk-import 0.1.0 wrote
        db.execute("ALTER TABLE customers RENAME COLUMN fingerprint TO input_hash")
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    assert meta(state) == {"schema_version": "1", "department": DEPARTMENT}
    second = tmp_path / "second"
    assert run(path, sandbox.url, second) == 0
    results = read_csv(second / "results.csv")
    assert [r["status"] for r in results] == ["unchanged"] * 4
    assert [r["customer_uuid"] for r in results] == [r["customer_uuid"] for r in read_csv(first / "results.csv")]
    assert read_summary(second)["requests_sent"] == 0
    assert meta(state)["schema_version"] == "2"
