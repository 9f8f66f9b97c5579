"""What to send: requests → jobs, on one rule of what the state says is unchanged, used by a run (the
`Planner`) and by `validate` telling what a run would do (`forecast`).

The rule: a customer whose rows have the fingerprint last saved builds the body last saved, and is left
unchanged without building it; a customer the state knows whose rows changed is unchanged if its body is the
one last saved, else updated; any other is created. Key-only customers (nothing but their key for the server's
matching to find them by) are journaled before they are sent, and searched for when an earlier send may have
saved them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from importer.errors import ConfigError
from importer.memory import release_memory
from importer.prepare.customers import CustomerGroup, CustomerRequest, Requests
from importer.send.client import encode_body
from importer.send.pool import Job, Outcome
from importer.send.recorder import Recorder
from importer.send.state import STATE_COLUMNS, Saved, StateStore, payload_hash
from importer.status import Status


def compared(requests: Requests, stored: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Each customer of the requests beside what the state holds for it (columns `*_saved`); the customers
    whose rows are those last saved (the rule's first half), and the customers the state knows."""
    customers = requests.table().join(stored.add_suffix("_saved"), on="key")
    same_rows = (customers["fingerprint"] == customers["fingerprint_saved"]).fillna(False).to_numpy(dtype=bool)
    known = customers["customer_uuid_saved"].notna().to_numpy(dtype=bool)
    return customers, same_rows, known


def built(requests: Requests, group: CustomerGroup) -> tuple[CustomerRequest, str, str]:
    """A customer's request, its body as sent and the body's hash (the rule's second half compares it)."""
    request = requests.request(group)
    text = encode_body(request.body)
    return request, text, payload_hash(text)


def _identities(request: CustomerRequest) -> frozenset[str]:
    customer = request.body["customer"]
    found = {f"key:{request.key}"}
    found.update(p["phoneNumber"] for p in customer.get("phoneNumbers", ()))
    found.update(e["emailAddress"] for e in customer.get("emails", ()))
    found.update(v["vin"] for v in request.body.get("vehicles", ()) if v.get("vin"))
    return frozenset(found)


@dataclass
class Plan:
    """What the planner decided: the customers left unchanged without building their bodies, and the jobs."""

    #: key, customer_uuid, customer_id of each customer whose rows are those last saved
    unchanged: pd.DataFrame
    #: the input rows of those customers
    unchanged_rows: int
    #: a job for every other customer to send, made lazily, while the pool sends the earlier ones
    jobs: Iterator[Job]
    #: keys of the customers a pilot (`limit`) holds back: beyond the file's first N, not sent
    held: pd.Index = dataclasses.field(default_factory=lambda: pd.Index([], dtype="str"))


class Planner:
    """Requests → a plan: what the state says is unchanged is skipped, key-only customers are journaled before
    they are sent and searched for when an earlier send may have saved them."""

    def __init__(self, state: StateStore, recorder: Recorder) -> None:
        self.state = state
        self.recorder = recorder
        #: keys an earlier run sent without learning the outcome (the state's journal, as the run started)
        self.journaled = state.journaled()

    def plan(self, requests: Requests, full: bool, stored: pd.DataFrame, limit: int | None = None) -> Plan:
        """`stored` is what the state holds (StateStore.load), dropped once joined to the requests. With
        `limit`, a pilot: only the first `limit` customers in file order may be sent, the rest are held."""
        customers, same_rows, known = compared(requests, stored)
        skip = same_rows & (not full)  # same rows, same mapping, same program: same body, not even built
        # requests.table() is in file order (each customer where its first row is): the pilot is its head.
        beyond = np.arange(len(customers)) >= limit if limit is not None else np.zeros(len(customers), dtype=bool)
        held = pd.Index(customers.loc[beyond & ~skip, "key"], dtype="str")
        unchanged = customers.loc[skip, ["key", "customer_uuid_saved", "customer_id_saved"]].rename(
            columns={"customer_uuid_saved": "customer_uuid", "customer_id_saved": "customer_id"})
        unchanged_rows = int(customers.loc[skip, "rows"].sum())
        saved = customers.loc[~skip & known]
        known_of = {key: Saved(h, uuid, cid if isinstance(cid, str) else None) for key, h, uuid, cid in
                    saved[["key", "body_hash_saved", "customer_uuid_saved", "customer_id_saved"]].itertuples(
                        index=False)}
        del customers, saved, stored  # a line per customer, not to be held while the sending takes its hours
        release_memory()  # and what grouping and fingerprinting every row needed for a moment
        return Plan(unchanged, unchanged_rows, self._jobs(requests, ~skip & ~beyond, known_of, full), held)

    def _jobs(self, requests: Requests, selected: np.ndarray, known_of: dict[str, Saved], full: bool) -> Iterator[Job]:
        recorder = self.recorder
        for group in requests.groups(selected):
            known = known_of.get(group.key)
            request, text, body_hash = built(requests, group)
            if known is not None and not full and known.body_hash == body_hash:
                recorder.same_body(group.key, group.fingerprint, group.source_rows,
                                   Outcome(group.key, Status.UNCHANGED, known.customer_uuid, known.customer_id))
                continue
            recorder.expect(request.key, request.source_rows, group.fingerprint)
            if known is not None:
                yield Job(request.key, request.body, _identities(request), body_hash=body_hash,
                          text=text).with_uuid(known.customer_uuid)
                continue
            identities = _identities(request)
            findable = len(identities) > 1  # more than the key: the server's matching can find it again
            search_key = None if findable or request.key.startswith("~") else request.key
            # Journal it first: if this run dies with the request in flight, the next one searches for the
            # customer before sending, instead of creating it a second time. No journal, no request.
            if search_key is not None and not recorder.write_state(self.state.journal_sending, request.key):
                return
            yield Job(request.key, request.body, identities, body_hash=body_hash, search_key=search_key,
                      maybe_saved=request.key in self.journaled, text=text)


# -- validate's forecast -----------------------------------------------------------------------------------
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
        return pd.DataFrame(columns=STATE_COLUMNS, index=pd.Index([], name="customer_key", dtype="str"))
    store = StateStore(path, department or state_department(path))
    try:
        return store.load()
    finally:
        store.close()


def forecast(requests: Requests, saved: pd.DataFrame, invalid_rows: int) -> dict[str, int]:
    """Customers a run would create, update or leave unchanged (by the planner's rule), and invalid rows."""
    customers, same_rows, known = compared(requests, saved)
    changed = known & ~same_rows
    hashes = dict(zip(customers.loc[changed, "key"], customers.loc[changed, "body_hash_saved"], strict=True))
    same_body = sum(built(requests, group)[2] == hashes[group.key] for group in requests.groups(changed)) \
        if hashes else 0
    return {"create": int((~known).sum()), "update": int(changed.sum()) - same_body,
            "unchanged": int(same_rows.sum()) + same_body, "invalid": invalid_rows}
