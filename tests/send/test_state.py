"""The state file: made, reopened, refused when it is not this department's or this version's, one run at a time,
and a state written by mk-import 0.1.0 (schema 1) brought to this schema on open."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import orjson
import pytest

from importer.errors import ConfigError
from importer.send.state import (
    SCHEMA_VERSION,
    STATE_COLUMNS,
    Saved,
    StateStore,
    pack_body,
    problems_frame,
    unpack_body,
)
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
                                      "fingerprint", "body"]
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
    hashes = store.hashes(["A", "B", "C"])
    store.close()
    assert loaded.index.name == "customer_key"
    assert loaded.columns.tolist() == STATE_COLUMNS
    assert list(loaded.loc["A"]) == ["uuid-a", "11", "fp-a2"]
    assert list(loaded.loc["B", ["customer_uuid", "fingerprint"]]) == ["uuid-b", "fp-b"]
    assert hashes == {"A": "hash-a2", "B": "hash-b"}, "asked for by key, the last one saved"
    assert loaded["customer_id"].isna().to_dict() == {"A": False, "B": True}  # no id for B, not the text "None"
    assert len(loaded) == 2


def test_noted_fingerprints_replace_the_saved_ones_and_touch_nothing_else(tmp_path: Path):
    store = StateStore(tmp_path / "state.sqlite", "dept")
    store.record([("A", Saved("hash-a", "uuid-a", "11", "fp-old"), False),
                  ("B", Saved("hash-b", "uuid-b", "12", "fp-b"), False)])
    store.record([], noted=[("A", "fp-new"), ("unknown", "fp-x")])
    loaded = store.load()
    hashes = store.hashes(["A", "B"])
    store.close()
    assert list(loaded.loc["A"]) == ["uuid-a", "11", "fp-new"]
    assert list(loaded.loc["B"]) == ["uuid-b", "12", "fp-b"]
    assert hashes == {"A": "hash-a", "B": "hash-b"}
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
    assert store.hashes(["100"]) == {"100": "ph-100"}
    store.close()
    assert loaded.columns.tolist() == STATE_COLUMNS
    assert loaded["fingerprint"].to_dict() == {"100": "fp-100", "200": "fp-200",
                                               "~Lee Ann 02134 #3f2a9c1d0e4b": "fp-lee"}
    assert list(loaded.loc["100"]) == ["uuid-100", "7", "fp-100"]
    assert meta(path) == {"schema_version": str(SCHEMA_VERSION), "department": "dept"}
    columns = customer_columns(path)
    assert "fingerprint" in columns
    assert "input_hash" not in columns
    # A second open finds this schema and changes nothing (migrating again would fail on the renamed column).
    again = StateStore(path, "dept")
    assert again.load().equals(loaded)
    assert again.journaled() == {"300"}
    again.close()
    assert meta(path) == {"schema_version": str(SCHEMA_VERSION), "department": "dept"}
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
        db.execute("ALTER TABLE customers DROP COLUMN body")  # kept from schema 3 on
        db.execute("DROP TABLE problems")  # kept from schema 3 on
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    assert meta(state) == {"schema_version": "1", "department": DEPARTMENT}
    second = tmp_path / "second"
    assert run(path, sandbox.url, second) == 0
    results = read_csv(second / "results.csv")
    assert [r["status"] for r in results] == ["unchanged"] * 4
    assert [r["customer_uuid"] for r in results] == [r["customer_uuid"] for r in read_csv(first / "results.csv")]
    assert read_summary(second)["requests_sent"] == 0
    assert meta(state)["schema_version"] == str(SCHEMA_VERSION)


# -- bodies kept, problems remembered (schema 3) ---------------------------------------------------------
SCHEMA_2 = ("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE customers (customer_key TEXT PRIMARY KEY, payload_hash TEXT NOT NULL,"
            " customer_uuid TEXT NOT NULL, customer_id TEXT, saved_at TEXT NOT NULL, fingerprint TEXT);"
            "CREATE TABLE sending (customer_key TEXT PRIMARY KEY);")


def _old_state(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_2 if version == 2 else SCHEMA_2.replace("fingerprint TEXT", "input_hash TEXT"))
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", str(version)), ("department", "d")])
        db.execute("INSERT INTO customers VALUES ('7', 'h', 'uuid-7', '70', '2026-01-01T00:00:00+00:00', 'f')")
        db.execute("INSERT INTO sending VALUES ('9')")


def test_a_schema_2_state_migrates_and_keeps_its_customers(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    _old_state(path, 2)
    store = StateStore(path, "d")
    try:
        loaded = store.load()
        assert loaded.loc["7"].to_dict() == {"customer_uuid": "uuid-7", "customer_id": "70", "fingerprint": "f"}
        assert store.hashes(["7"]) == {"7": "h"}
        assert store.journaled() == {"9"}
        assert store.bodies(["7"]) == {}, "a customer saved before bodies were kept has none"
        assert store.problems().empty
        body = {"customer": {"customerKey": "7", "lastName": "Lee"}, "validateVin": True, "searchForDuplicate": True}
        store.record([("7", Saved("h2", "uuid-7", "70", "f2", pack_body(body)), False)])
        assert unpack_body(store.bodies(["7"])["7"]) == {"customer": {"lastName": "Lee"}}, "the key is kept apart"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)


def test_a_schema_1_state_migrates_too(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    _old_state(path, 1)
    store = StateStore(path, "d")
    try:
        assert store.load().loc["7", "fingerprint"] == "f"
        assert store.bodies(["7", "nobody"]) == {}
    finally:
        store.close()


def test_problems_are_replaced_whole(tmp_path: Path):
    store = StateStore(tmp_path / "state.sqlite", "d")
    try:
        store.replace_problems(problems_frame([("1", "MISSING_LAST_NAME", "2026-01-01T01:00:00+00:00", 1),
                                               ("#ab", "INVALID_FIELD", "2026-01-01T01:00:00+00:00", 2)]))
        store.replace_problems(problems_frame([("1", "MISSING_LAST_NAME", "2026-01-01T01:00:00+00:00", 2)]))
        remembered = store.problems()
        assert list(zip(remembered["subject"], remembered["code"], remembered["times_seen"], strict=True)) == [
            ("1", "MISSING_LAST_NAME", 2)], "a problem gone is forgotten"
    finally:
        store.close()


def test_a_body_packed_is_smaller_and_reads_back():
    body = ('{"customer":{"customerKey":"100234","firstName":"Maria","lastName":"Gonzalez","emails":[{"emailAddress":'
            '"maria.gonzalez@gmail.com","okToEmail":true}],"phoneNumbers":[{"phoneNumber":"+13105550101","label":'
            '"CELL","okToCall":true,"okToText":true}],"addresses":[{"line1":"12 Elm St","city":"Springfield","state":'
            '"IL","zip":"62701","country":"US"}]},"vehicles":[{"vin":"1HGCM82633A004352","vehicleYear":"2019",'
            '"vehicleMake":"Honda","vehicleModel":"Accord","mileage":"42000"}],"validateVin":true,'
            '"searchForDuplicate":true}')
    packed = pack_body(orjson.loads(body))
    assert len(packed) < len(body) / 2
    unpacked = unpack_body(packed)
    assert unpacked is not None
    assert unpacked["customer"]["lastName"] == "Gonzalez"
    assert unpack_body(b"\x03whatever") is None, "a body packed by another version reads as none kept"
    assert unpack_body(b"\x02whatever") is None, "nor does a damaged one"
    assert unpack_body(packed[:-3]) is None


def test_a_body_packed_by_0_2_0_still_reads_back():
    # pack_body of 0.2.0 (zlib with the words as its preset dictionary), of this body:
    body = {"customer": {"customerKey": "0042", "firstName": "Zoë", "lastName": "Ñúñez",
                         "phoneNumbers": [{"phoneNumber": "+15551234567", "label": "cell"}]},
            "vehicles": [{"vin": "1HGCM82633A004352", "vehicleMake": "Honda"}],
            "validateVin": True, "searchForDuplicate": True}
    packed = bytes.fromhex("0178bbcad983f9434d8cc8692f2afff06ad4f47678e2e15d8737a6562911e160535353432363135"
                           "33373629d6ee8e1eeec6b6164666cec686060626c6a841195e0c212a41f0088273c0b")
    kept = {"customer": {"firstName": "Zoë", "lastName": "Ñúñez",
                         "phoneNumbers": [{"phoneNumber": "+15551234567", "label": "cell"}]},
            "vehicles": [{"vin": "1HGCM82633A004352", "vehicleMake": "Honda"}]}
    assert unpack_body(packed) == kept
    assert unpack_body(pack_body(body)) == kept, "and this version's packing keeps the same"
    assert pack_body(body)[:1] != packed[:1]


def test_customers_of_a_migrated_state_change_unknown_until_sent_once(sandbox, creds, write_csv, tmp_path: Path):
    rows = [dv_row("1", cell="(310) 555-0101"), dv_row("2", last="Kim", cell="(310) 555-0102")]
    assert run(write_csv([DV_HEADER, *rows]), sandbox.url, tmp_path / "n1") == 0
    state = tmp_path / "state.sqlite"
    with sqlite3.connect(state) as db:  # as mk-import 0.2 (state schema 2) left it
        db.execute("ALTER TABLE customers DROP COLUMN body")
        db.execute("DROP TABLE problems")
        db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    rows[0][4] = "(310) 555-0199"
    assert run(write_csv([DV_HEADER, *rows], name="n2.csv"), sandbox.url, tmp_path / "n2") == 0
    assert [r["changes"] for r in read_csv(tmp_path / "n2" / "results.csv")] == ["unknown", ""]
    assert read_summary(tmp_path / "n2")["changes"]["unknown"] == 1
    rows[0][4] = "(310) 555-0142"
    assert run(write_csv([DV_HEADER, *rows], name="n3.csv"), sandbox.url, tmp_path / "n3") == 0
    assert [r["changes"] for r in read_csv(tmp_path / "n3" / "results.csv")] == ["phones", ""]
