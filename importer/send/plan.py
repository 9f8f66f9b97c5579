"""What a run would do, told by `validate` from a department's state: customers to create, update or skip."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pandas as pd

from importer.errors import ConfigError
from importer.prepare.customers import Requests
from importer.send.client import encode_body
from importer.send.state import StateStore, payload_hash


def state_department(path: Path) -> str:
    """The department a state file was made for, read without locking or changing it."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'department'").fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: not a usable mk-import state file ({exc})") from None
    if row is None:
        raise ConfigError(f"{path}: not an mk-import state file")
    return str(row[0])


def saved_customers(path: Path, department: str | None) -> pd.DataFrame:
    """What the state at `path` holds (nothing if there is no state yet), indexed by customer key."""
    if not path.exists():
        return pd.DataFrame(columns=["body_hash", "customer_uuid", "customer_id", "rows_hash"],
                            index=pd.Index([], name="customer_key", dtype="str"))
    store = StateStore(path, department or state_department(path))
    try:
        return store.load()
    finally:
        store.close()


def forecast(requests: Requests, saved: pd.DataFrame, invalid_rows: int) -> dict[str, int]:
    """Customers a run would create, update or leave unchanged (as the run decides it), and invalid rows.

    A customer whose rows are those last saved is unchanged without building its body; one the state
    knows is unchanged if its body is the one last saved, else updated; any other is created.
    """
    customers = requests.table().join(saved, on="key")
    same_rows = (customers["rows_hash"] == customers["fingerprint"]).fillna(False).to_numpy(dtype=bool)
    known = customers["customer_uuid"].notna().to_numpy(dtype=bool)
    hashes = dict(zip(customers.loc[known & ~same_rows, "key"], customers.loc[known & ~same_rows, "body_hash"],
                      strict=True))
    same_body = 0
    if hashes:
        for group in requests.groups(known & ~same_rows):
            body = requests.request(group).body
            same_body += payload_hash(encode_body(body)) == hashes[group.key]
    return {"create": int((~known).sum()), "update": int((known & ~same_rows).sum()) - same_body,
            "unchanged": int(same_rows.sum()) + same_body, "invalid": invalid_rows}
