"""What to send: requests → jobs, on one rule of what the state says is unchanged, used by a run (the
`Planner`) and by `validate` telling what a run would do (`forecast`).

The rule: a customer whose rows have the fingerprint last saved builds the body last saved, and is left
unchanged without building it; a customer the state knows whose rows changed is unchanged if its body is the
one last saved, else updated; any other is created. Key-only customers (nothing but their key for the server's
matching to find them by) are journaled before they are sent, and searched for when an earlier send may have
saved them.

Before anything is sent, the known customers whose rows changed are built and compared with the state: the
same body is unchanged, another one is compared with the body last saved, category by category
(`changes.py`). That tells what the run will change, and the mass-change guard judges it, all before the pool
starts; those bodies are built again, one at a time, as they are sent.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import ConfigError
from importer.memory import release_memory
from importer.prepare.customers import CustomerGroup, CustomerRequest, Requests
from importer.send.changes import CREATED, UNKNOWN, ChangeTally, bits, changed, words
from importer.send.client import encode_body
from importer.send.pool import Job, Outcome
from importer.send.recorder import Recorder
from importer.send.state import STATE_COLUMNS, Saved, StateStore, pack_body, payload_hash, unpack_body
from importer.status import Status


def compared(table: pd.DataFrame, stored: pd.DataFrame, *, consume: bool = False) -> tuple[
        pd.DataFrame, np.ndarray, np.ndarray]:
    """Each customer of the requests (`table`: Requests.table) beside what the state holds for it (columns
    `*_saved`); the customers whose rows are those last saved (the rule's first half), and the customers the
    state knows.

    `consume`: each column of `stored` is dropped from it as soon as it is taken, so that a million customers'
    state and its copy beside the requests are never both held whole (a join held them both: 130 MB more)."""
    at = pc.index_in(pa.array(table["key"], pa.string(), from_pandas=True),
                     value_set=pa.array(stored.index, pa.string(), from_pandas=True))
    positions = pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.intp)
    customers = table.copy(deep=False)
    for column in list(stored.columns):
        values = stored.pop(column) if consume else stored[column]
        customers[f"{column}_saved"] = pd.Series(values.array.take(positions, allow_fill=True), index=table.index)
        del values
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


#: The packed bodies last saved for some keys (StateStore.bodies).
BodiesOf = Callable[[Sequence[str]], dict[str, bytes]]
#: The body hashes last saved for some keys (StateStore.hashes).
HashesOf = Callable[[Sequence[str]], dict[str, str]]
#: Told of each known customer whose rows changed but whose body did not: (group, uuid, customer id).
OnSameBody = Callable[[CustomerGroup, str, str | None], None]
#: Bodies compared with the state's at a time: one query fetches their stored bodies.
COMPARED_AT_ONCE = 1_000


@dataclass
class Assessment:
    """The known customers whose rows changed, built and compared with the state, before anything is sent."""

    #: per customer of requests.table(): its body is the one last saved (only known customers with new rows)
    same_body: np.ndarray
    #: per customer of requests.table(): its change words as bits (changes.bits), for known customers compared
    changes: np.ndarray
    #: customers per category, with examples
    tally: ChangeTally = field(default_factory=ChangeTally)


def assess(requests: Requests, customers: pd.DataFrame, selected: np.ndarray, bodies_of: BodiesOf,
           hashes_of: HashesOf, on_same: OnSameBody | None = None) -> Assessment:
    """Build the `selected` customers' bodies (known ones, `customers` as `compared` gives them) and compare
    each with the state: same hash, same body; otherwise the categories it changes."""
    assessment = Assessment(np.zeros(len(customers), dtype=bool), np.zeros(len(customers), dtype=np.uint16))
    places = np.flatnonzero(selected)
    saved = customers[["key", "customer_uuid_saved", "customer_id_saved"]]
    keys: list[str] = []
    uuids: list[str] = []
    ids: list[object] = []
    hashes: dict[str, str] = {}
    waiting: list[tuple[int, str, dict[str, object]]] = []

    def compare() -> None:
        stored = bodies_of([key for _, key, _ in waiting])
        for place, key, body in waiting:
            blob = stored.get(key)
            old = unpack_body(blob) if blob is not None else None
            if old is None:
                assessment.changes[place] = bits([UNKNOWN])
                assessment.tally.count(UNKNOWN)
                continue
            categories = changed(old, body)
            assessment.changes[place] = bits(categories)
            assessment.tally.add(key, categories, old, body)
        waiting.clear()

    for at, group in enumerate(requests.groups(selected)):
        if at % COMPARED_AT_ONCE == 0:
            # What the state saved for the next customers, made Python objects for them only (a million
            # customers' keys, uuids and ids at once were 180 MB), and their body hashes by one query.
            keys, uuids, ids = (saved[column].take(places[at:at + COMPARED_AT_ONCE]).tolist()
                                for column in saved.columns)
            hashes = hashes_of(keys)
        request, _, body_hash = built(requests, group)
        place = int(places[at])
        if body_hash == hashes.get(group.key):
            assessment.same_body[place] = True
            if on_same is not None:
                cid = ids[at % COMPARED_AT_ONCE]
                on_same(group, uuids[at % COMPARED_AT_ONCE], cid if isinstance(cid, str) else None)
            continue
        waiting.append((place, group.key, request.body))
        if len(waiting) >= COMPARED_AT_ONCE:
            compare()
    if waiting:
        compare()
    return assessment


@dataclass
class Plan:
    """What the planner decided: the customers left unchanged without building their bodies, and the jobs."""

    #: key, customer_uuid, customer_id of each customer whose rows are those last saved
    unchanged: pd.DataFrame
    #: the input rows of those customers
    unchanged_rows: int
    #: a job for every other customer to send, made lazily, while the pool sends the earlier ones
    jobs: Iterator[Job]
    #: what the known customers' new bodies change (the customers created are counted as they are saved)
    changes: ChangeTally
    #: customers of the file the state knows
    known: int
    #: keys of the customers a pilot (`limit`) holds back: beyond the file's first N, not sent
    held: pd.Index = field(default_factory=lambda: pd.Index([], dtype="str"))


class Planner:
    """Requests → a plan: what the state says is unchanged is skipped, key-only customers are journaled before
    they are sent and searched for when an earlier send may have saved them."""

    def __init__(self, state: StateStore, recorder: Recorder) -> None:
        self.state = state
        self.recorder = recorder
        #: the requests come from an error report (see plan)
        self.partial = False
        #: keys an earlier run sent without learning the outcome (the state's journal, as the run started)
        self.journaled = state.journaled()

    def plan(self, requests: Requests, full: bool, load: Callable[[], pd.DataFrame], limit: int | None = None, *,
             partial: bool = False) -> Plan:
        """`load` gives what the state holds (StateStore.load): loaded here once the customers are grouped, and
        dropped once joined to them, so that a million customers' state is never held beside their grouping
        and the join at once (150 MB). With `limit`, a pilot: only the first `limit` customers in file order
        may be sent, the rest are held.

        `partial`: the requests come from an error report, which holds only some rows of a customer (those to
        fix). A customer the state knows is sent as usual, and the state keeps what it says of the export (the
        body hash, fingerprint and body of all the customer's rows), learning only the uuid: else the export's
        next run would find every such customer changed and send it again, whole.
        """
        self.partial = partial
        # The grouping first, then the state: the peaks of the two apart.
        table = requests.table()
        stored = load()
        release_memory()  # what loading the state needed for a moment, before the join
        customers, same_rows, known = compared(table, stored, consume=True)
        del table, stored
        skip = same_rows & (not full)  # same rows, same mapping, same program: same body, not even built
        # requests.table() is in file order (each customer where its first row is): the pilot is its head.
        beyond = np.arange(len(customers)) >= limit if limit is not None else np.zeros(len(customers), dtype=bool)
        held = pd.Index(customers.loc[beyond & ~skip, "key"], dtype="str")
        unchanged = customers.loc[skip, ["key", "customer_uuid_saved", "customer_id_saved"]].rename(
            columns={"customer_uuid_saved": "customer_uuid", "customer_id_saved": "customer_id"})
        unchanged_rows = int(customers.loc[skip, "rows"].sum())
        recorder = self.recorder

        def same(group: CustomerGroup, uuid: str, cid: str | None) -> None:
            outcome = Outcome(group.key, Status.UNCHANGED, uuid, cid)
            if partial:  # the rows to fix are not the export's: its fingerprint stays
                recorder.record_rows(group.source_rows, outcome)
            else:
                recorder.same_body(group.key, group.fingerprint, group.source_rows, outcome)

        # The known customers whose rows changed: built and compared now, so that what the run changes (and
        # whether the guard lets it) is known before the first request. --full sends them all the same.
        # A pilot's held customers are neither compared nor sent.
        assessment = assess(requests, customers, known & ~same_rows & ~beyond, self.state.bodies,
                            self.state.hashes, None if full else same)
        send = ~skip & ~beyond & ~(assessment.same_body & (not full))
        saved = customers.loc[send & known]
        # The body hash last saved is what _jobs keeps for an error report's customers only (else the hash of
        # the body sent is recorded): asked for then, with their bodies.
        known_of = {key: Saved("", uuid, cid if isinstance(cid, str) else None, fp if isinstance(fp, str) else "")
                    for key, uuid, cid, fp in saved[["key", "customer_uuid_saved", "customer_id_saved",
                                                     "fingerprint_saved"]].itertuples(index=False)}
        if partial:  # what the state keeps of the export stays: its body hashes and bodies too
            hashes, bodies = self.state.hashes([*known_of]), self.state.bodies([*known_of])
            known_of = {key: saved_of._replace(body_hash=hashes.get(key, ""), body=bodies.get(key))
                        for key, saved_of in known_of.items()}
        known_count = int(known.sum())
        del customers, saved  # a line per customer, not to be held while the sending takes its hours
        release_memory()  # and what grouping and fingerprinting every row needed for a moment
        return Plan(unchanged, unchanged_rows, self._jobs(requests, send, known_of, assessment.changes),
                    assessment.tally, known_count, held)

    def _jobs(self, requests: Requests, selected: np.ndarray, known_of: dict[str, Saved],
              changes: np.ndarray) -> Iterator[Job]:
        recorder = self.recorder
        # Each customer's change bits taken as its group comes: a list of Python numbers for every customer to
        # send would cost about 36 bytes each for the whole sending, the selected bits 2.
        for change, group in zip(changes[selected], requests.groups(selected), strict=True):
            known = known_of.get(group.key)
            request, text, body_hash = built(requests, group)
            if known is not None:
                export = self.partial  # the state keeps describing the export, not the rows to fix
                recorder.expect(request.key, request.source_rows, known.fingerprint if export else group.fingerprint,
                                words(int(change)), known.body if export else pack_body(request.body))
                yield Job(request.key, request.body, _identities(request),
                          body_hash=known.body_hash if export else body_hash, text=text).with_uuid(known.customer_uuid)
                continue
            recorder.expect(request.key, request.source_rows, group.fingerprint, CREATED, pack_body(request.body))
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


def no_customers() -> pd.DataFrame:
    """What a state that does not exist yet holds, as StateStore.load gives it."""
    return pd.DataFrame(columns=STATE_COLUMNS, index=pd.Index([], name="customer_key", dtype="str"))


@contextlib.contextmanager
def state_to_read(path: Path, department: str | None) -> Iterator[StateStore | None]:
    """The state at `path` for `validate` to read (None if there is no state yet); `validate` writes nothing
    to it (a state of an earlier schema is brought to this one, as any opening does)."""
    if not path.exists():
        yield None
        return
    store = StateStore(path, department or state_department(path))
    try:
        yield store
    finally:
        store.close()


@dataclass(frozen=True)
class Forecast:
    """What a run would do (by the planner's rule): customers to create, update, leave unchanged; the
    changes by category, as a run's summary counts them; how many customers the state knows."""

    create: int
    update: int
    unchanged: int
    invalid: int
    changes: ChangeTally
    known: int

    def as_dict(self) -> dict[str, object]:
        return {"create": self.create, "update": self.update, "unchanged": self.unchanged, "invalid": self.invalid,
                "changes": {**self.changes.as_dict(), CREATED: self.create}}


def forecast(requests: Requests, saved: pd.DataFrame, invalid_rows: int, bodies_of: BodiesOf,
             hashes_of: HashesOf) -> Forecast:
    """What a run with this state would do, without sending or writing anything."""
    customers, same_rows, known = compared(requests.table(), saved)
    rows_changed = known & ~same_rows
    assessment = assess(requests, customers, rows_changed, bodies_of, hashes_of)
    same_body = int(assessment.same_body.sum())
    return Forecast(int((~known).sum()), int(rows_changed.sum()) - same_body, int(same_rows.sum()) + same_body,
                    invalid_rows, assessment.tally, int(known.sum()))
