"""The sandbox's customers: in memory with look-up indexes, optionally written through to SQLite."""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Customer = dict[str, Any]


def comm_values(customer: Customer) -> set[str]:
    """The communication values (E.164 phones, lower-cased emails) the matching logic compares."""
    phones = {p["phoneNumber"] for p in customer.get("phoneNumbers") or [] if p.get("phoneNumber")}
    emails = {e["emailAddress"].lower() for e in customer.get("emails") or [] if e.get("emailAddress")}
    return phones | emails


def vins_of(vehicles: list[dict[str, Any]]) -> set[str]:
    return {v["vin"].upper() for v in vehicles if v.get("vin")}


@dataclass
class _DepartmentIndex:
    by_comm: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_vin: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


class CustomerStore:
    """Customers per department, indexed by communication value and VIN (what the matching looks up).

    With a database path every save is written through to SQLite, and the store is loaded from it at
    start, so customers outlive a restart of the sandbox.
    """

    def __init__(self, db_path: str | None = None) -> None:
        self._customers: dict[str, Customer] = {}
        self._indexes: defaultdict[str, _DepartmentIndex] = defaultdict(_DepartmentIndex)
        self._ids = itertools.count(1000001)
        self._db: sqlite3.Connection | None = None
        if db_path:
            self._db = sqlite3.connect(db_path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS customers (uuid TEXT PRIMARY KEY, record TEXT NOT NULL)"
            )
            highest = 1000000
            for (text,) in self._db.execute("SELECT record FROM customers"):
                record = json.loads(text)
                self._put(record)
                highest = max(highest, int(record["customerId"]))
            self._ids = itertools.count(highest + 1)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __len__(self) -> int:
        return len(self._customers)

    def vehicle_count(self) -> int:
        return sum(len(c["vehicles"]) for c in self._customers.values())

    def new_identity(self) -> tuple[str, str]:
        """A fresh (customerUuid, customerId) pair."""
        return str(uuid.uuid4()), str(next(self._ids))

    def get(self, department: str, customer_uuid: str) -> Customer | None:
        record = self._customers.get(customer_uuid)
        if record is None or record["department"] != department:
            return None
        return record

    def with_comms(self, department: str, values: set[str]) -> set[str]:
        index = self._indexes[department].by_comm
        return set().union(*(index.get(v, set()) for v in values))

    def with_vins(self, department: str, vins: set[str]) -> set[str]:
        index = self._indexes[department].by_vin
        return set().union(*(index.get(v, set()) for v in vins))

    def all_in(self, department: str) -> list[Customer]:
        return [c for c in self._customers.values() if c["department"] == department]

    def save(self, record: Customer) -> None:
        """Store a new or changed customer record and re-index it."""
        old = self._customers.get(record["customerUuid"])
        if old is not None:
            self._unindex(old)
        self._put(record)
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO customers (uuid, record) VALUES (?, ?)",
                (record["customerUuid"], json.dumps(record)),
            )

    def _postings(self, record: Customer) -> list[set[str]]:
        """The index entries (sets of uuids) that list this customer."""
        index = self._indexes[record["department"]]
        entries = [index.by_comm[value] for value in comm_values(record)]
        entries += [index.by_vin[vin] for vin in vins_of(record["vehicles"])]
        return entries

    def _put(self, record: Customer) -> None:
        self._customers[record["customerUuid"]] = record
        for entry in self._postings(record):
            entry.add(record["customerUuid"])

    def _unindex(self, record: Customer) -> None:
        for entry in self._postings(record):
            entry.discard(record["customerUuid"])
