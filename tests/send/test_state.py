"""The state file: bodies kept packed, problems remembered, and a state of schema 1 or 2 migrated on opening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from importer.send.state import SCHEMA_VERSION, Problem, Saved, StateStore, pack_body, unpack_body
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary
from tests.test_run import run

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
        assert loaded.loc["7"].to_dict() == {"body_hash": "h", "customer_uuid": "uuid-7", "customer_id": "70",
                                             "fingerprint": "f"}
        assert store.journaled() == {"9"}
        assert store.bodies(["7"]) == {}, "a customer saved before bodies were kept has none"
        assert store.problems() == {}
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
        store.replace_problems([Problem("1", "MISSING_LAST_NAME", "2026-01-01T01:00:00+00:00", 1),
                                Problem("#ab", "INVALID_FIELD", "2026-01-01T01:00:00+00:00", 2)])
        store.replace_problems([Problem("1", "MISSING_LAST_NAME", "2026-01-01T01:00:00+00:00", 2)])
        assert list(store.problems()) == [("1", "MISSING_LAST_NAME")], "a problem gone is forgotten"
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
    assert unpack_body(b"\x02whatever") is None, "a body packed by another version reads as none kept"


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
