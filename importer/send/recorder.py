"""The run's bookkeeping: a `Planner` turns requests into jobs, a `Recorder` writes outcomes as they arrive.

The planner skips what the state says is unchanged, journals key-only customers before they are sent, and
decides which customers need a search; the recorder writes each save to the state and every row's outcome,
and at the end gives every row its status for the reports. Words kept to one meaning: `rows_hash` is the
hash of a customer's input rows (records.CustomerGroup.fingerprint), `body_hash` the hash of the body
sent; the `journal` is the state's list of requests whose fate a crash would leave unknown.

Saves reach the state in group commits: the answers that arrive within COMMIT_EVERY of the first one not yet
written share one transaction. A worker does not wait for its commit before it takes another job (that wait
would idle every worker for the window): a kill -9 loses at most the requests in flight and the answers of
the last few milliseconds, and the next run sends those again, where the server's matching or the journal
finds them. One commit per answer cost more than any other step of a request after HTTP itself.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from importer.memory import release_memory
from importer.prepare.customers import CustomerRequest, Requests
from importer.report.outcomes import append_notes, given_else_own
from importer.send.client import encode_body
from importer.send.pool import Job, Outcome
from importer.send.progress import Progress
from importer.send.state import Saved, StateStore, payload_hash
from importer.status import Status, StopCode

#: How the bookkeeping stops the run (a reason in words, and its code); given at construction.
StopRun = Callable[[str, StopCode], None]

NOTED_BATCH = 10_000
#: seconds an answered save may wait to share a transaction with those answered after it ...
COMMIT_EVERY = 0.005
#: ... unless this many are waiting already
COMMIT_BATCH = 1_000
log = logging.getLogger("mk_import.ledger")


def _identities(request: CustomerRequest) -> frozenset[str]:
    customer = request.body["customer"]
    found = {f"key:{request.key}"}
    found.update(p["phoneNumber"] for p in customer.get("phoneNumbers", ()))
    found.update(e["emailAddress"] for e in customer.get("emails", ()))
    found.update(v["vin"] for v in request.body.get("vehicles", ()) if v.get("vin"))
    return frozenset(found)


class RowOutcomes:
    """The outcome of each input row, written as its customer's answer arrives: per row, the number of its
    outcome; per outcome (one per customer), its texts in Arrow string columns, filled a block at a time.
    A million rows cost 4 MB of numbers and each customer about the length of its texts, where Python
    strings in per-row slots cost ~50 MB of slots and ~145 bytes a customer."""

    COLUMNS = ("status", "customer_uuid", "customer_id", "error_code", "error_message")
    #: outcomes held as Python tuples before they are packed into Arrow columns
    BLOCK = 50_000

    def __init__(self, index: pd.Index) -> None:
        self._first = int(index[0]) if len(index) else 0
        if not index.equals(pd.RangeIndex(self._first, self._first + len(index))):
            raise ValueError("row outcomes need the consecutive row numbers the reader gives")
        #: each row's outcome, as its place among the outcomes; -1 for none yet
        self._outcome_of = np.full(len(index), -1, dtype=np.int32)
        #: COLUMNS and then the API's warnings (null for none), one list of blocks each
        self._blocks: list[list[pa.Array]] = [[] for _ in range(len(self.COLUMNS) + 1)]
        self._unpacked: list[tuple[str | None, ...]] = []
        self._count = 0

    def set(self, rows: tuple[int, ...], outcome: Outcome) -> None:
        api_warnings = "API: " + ", ".join(outcome.warnings) if outcome.warnings else None
        self._unpacked.append((outcome.status.value, outcome.customer_uuid or "", outcome.customer_id or "",
                               outcome.error_code or "", outcome.detail, api_warnings))
        for row in rows:
            self._outcome_of[row - self._first] = self._count
        self._count += 1
        if len(self._unpacked) >= self.BLOCK:
            self._pack()

    def _pack(self) -> None:
        if self._unpacked:
            for blocks, values in zip(self._blocks, zip(*self._unpacked, strict=True), strict=True):
                blocks.append(pa.array(values, pa.string()))  # 32-bit offsets: half the cost of pandas' 64
            self._unpacked = []

    @staticmethod
    def _taken(blocks: list[pa.Array], picks: pa.Array) -> pa.Array:
        """Each row's text of one column (null for a row without an outcome), with 64-bit offsets as pandas has
        them. The blocks are joined first: pyarrow's take over many chunks joins them anyway, at every call."""
        return pa.chunked_array(blocks, pa.string()).combine_chunks().take(picks).cast(pa.large_string())

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` (indexed like the rows given) with the outcome of every row that has one."""
        answered = self._outcome_of >= 0
        if not answered.any():
            return table
        self._pack()
        # Arrow all the way: a row's texts are taken from its outcome's without a Python string per row, a
        # column at a time so that the copies of one column are gone before the next is made.
        picks = pa.array(self._outcome_of, mask=~answered)
        columns = {name: given_else_own(table[name], self._taken(blocks, picks))
                   for name, blocks in zip(self.COLUMNS, self._blocks[:-1], strict=True)}
        api = self._taken(self._blocks[-1], picks)
        if api.null_count < len(api):
            warned = api.is_valid()
            columns["warnings"] = append_notes(table["warnings"], warned.to_numpy(zero_copy_only=False),
                                               api.filter(warned))
        return table.assign(**columns)


class Recorder:
    """Every job's rows and, once known, its outcome; saves written to the state as answers arrive."""

    def __init__(self, state: StateStore, progress: Progress, outcomes: RowOutcomes, stop_run: StopRun) -> None:
        self.state = state
        self.progress = progress
        #: the outcome of every row known so far
        self.outcomes = outcomes
        #: takes no new job; the rest is not attempted
        self.stop_run = stop_run
        #: why the state could not be written, once it could not
        self.state_error: str | None = None
        #: customers the API saved in this run
        self.saved = 0
        #: requests sent (or to be sent): key → its rows, and the hash of those rows, stored with its save
        self.rows_of: dict[str, tuple[int, ...]] = {}
        self.rows_hash_of: dict[str, str] = {}
        #: customers skipped because their rows are the ones last saved: key → customer_uuid, customer_id
        self.unchanged = pd.DataFrame()
        #: saves answered and not yet written, and the timer that will write them
        self._saves: list[tuple[str, Saved, bool]] = []
        #: saved customers whose rows changed but not their body: (key, new rows hash). Written with the next
        #: commit or every NOTED_BATCH: losing them costs only rebuilding those bodies on the next run.
        self._noted: list[tuple[str, str]] = []
        self._commit: asyncio.TimerHandle | None = None
        #: a commit that failed for a reason other than the state file (a defect): raised at the next answer
        self._defect: Exception | None = None

    def expect(self, key: str, rows: tuple[int, ...], rows_hash: str) -> None:
        """A job is about to be sent for these rows."""
        self.rows_of[key] = rows
        self.rows_hash_of[key] = rows_hash

    def same_body(self, key: str, rows_hash: str, rows: tuple[int, ...], outcome: Outcome) -> None:
        """A customer whose rows changed but build the body last saved: not sent, its new rows hash noted."""
        self._noted.append((key, rows_hash))
        if len(self._noted) >= NOTED_BATCH:
            self.write_pending()
        self.record_rows(rows, outcome)

    async def answer(self, job: Job, outcome: Outcome) -> None:
        """Record a job's outcome; a success is written to the state within COMMIT_EVERY seconds."""
        if self._defect is not None:
            raise self._defect
        rows_hash = self.rows_hash_of.pop(job.key)
        if (job.search_key is not None and outcome.status == Status.NOT_ATTEMPTED and not job.maybe_saved
                and not outcome.error_code):
            # Never sent (the run stopped before it): its journal entry can go. Anything else keeps it, so the
            # next run searches before sending: a stop with an error code may come after an attempt.
            self.write_state(self.state.forget_sending, job.key)
        self.record_rows(self.rows_of.pop(job.key), outcome)
        if outcome.status == Status.SUCCESS and outcome.customer_uuid:
            self.saved += 1
            saved = Saved(job.body_hash, outcome.customer_uuid, outcome.customer_id, rows_hash)
            self._saves.append((job.key, saved, job.search_key is not None or job.maybe_saved))
            if len(self._saves) >= COMMIT_BATCH:
                self._write_saves()
            elif self._commit is None:
                self._commit = asyncio.get_running_loop().call_later(COMMIT_EVERY, self._write_saves)

    def _write_saves(self) -> None:
        if self._commit is not None:
            self._commit.cancel()
            self._commit = None
        try:
            self.write_pending()
        except Exception as exc:  # a defect, not the state file (write_state stops the run for that)
            self._defect = exc

    def write_pending(self) -> None:
        """Write what the state does not have yet (also at the end, after the event loop has stopped)."""
        if self._defect is not None:
            raise self._defect
        if self._saves or self._noted:
            saves, noted, self._saves, self._noted = self._saves, self._noted, [], []
            self.write_state(self.state.record, saves, noted)

    def write_state(self, write: Callable[..., None], *args: object) -> bool:
        """A state write. A state file that cannot be written (disk full, removed, read-only) stops the run
        instead of crashing it: what the state then misses, the next run sends again, and the server's
        matching, or the journal of key-only customers, finds the customers already saved."""
        try:
            write(*args)
        except sqlite3.Error as exc:
            if self.state_error is None:
                self.state_error = f"the state file cannot be written ({exc})"
                self.stop_run(self.state_error, StopCode.STATE_UNWRITABLE)
            return False
        return True

    def record_rows(self, rows: tuple[int, ...], outcome: Outcome) -> None:
        self.outcomes.set(rows, outcome)
        self.progress.advance(outcome.status, len(rows), 1)

    def apply(self, table: pd.DataFrame, stop_reason: str | None) -> pd.DataFrame:
        """The row table with every request's outcome on each of its rows; the rows the run never reached
        are not attempted, for `stop_reason`."""
        if not self.unchanged.empty:
            same = self.unchanged.set_index("key")
            where = same.index.get_indexer(pd.Index(table["customer_key"]))
            hit = (where >= 0) & (table["status"] == Status.VALID.value).to_numpy()
            picks = pa.array(where, mask=~hit)  # in Arrow: a million rows' uuids are no Python strings
            table = table.assign(status=table["status"].mask(hit, Status.UNCHANGED.value), **{
                name: given_else_own(table[name], pa.array(same[name]).take(picks))
                for name in ("customer_uuid", "customer_id")})
        table = self.outcomes.apply(table)
        # Rows of customers never reached (the run stopped before building their request).
        left = (table["status"] == Status.VALID.value).to_numpy()
        if left.any():
            table = table.assign(status=table["status"].mask(left, Status.NOT_ATTEMPTED.value),
                                 error_message=table["error_message"].mask(left, stop_reason or ""))
        return table


class Planner:
    """Requests → jobs: what the state says is unchanged is skipped, key-only customers are journaled before
    they are sent and searched for when an earlier send may have saved them."""

    def __init__(self, state: StateStore, recorder: Recorder) -> None:
        self.state = state
        self.recorder = recorder
        #: keys an earlier run sent without learning the outcome (the state's journal, as the run started)
        self.journaled = state.journaled()

    def jobs(self, requests: Requests, full: bool, stored: pd.DataFrame) -> Iterator[Job]:
        """A job for every customer to send; the unchanged ones are recorded here, in bulk. `stored` is what the
        state holds (StateStore.load), dropped once joined to the requests."""
        recorder = self.recorder
        customers = requests.table().join(stored, on="key")
        same_rows = (customers["rows_hash"] == customers["fingerprint"]).fillna(False).to_numpy(dtype=bool)
        skip = same_rows & (not full)  # same rows, same mapping, same program: same body, not even built
        recorder.unchanged = customers.loc[skip, ["key", "customer_uuid", "customer_id"]]
        if skip.any():
            recorder.progress.advance(Status.UNCHANGED, int(customers.loc[skip, "rows"].sum()), int(skip.sum()))
        saved = customers.loc[~skip & customers["customer_uuid"].notna().to_numpy()]
        known_of = {key: Saved(h, uuid, cid if isinstance(cid, str) else None) for key, h, uuid, cid in
                    saved[["key", "body_hash", "customer_uuid", "customer_id"]].itertuples(index=False)}
        del customers, saved, stored  # a line per customer, not to be held while the sending takes its hours
        release_memory()  # and what grouping and fingerprinting every row needed for a moment
        for group in requests.groups(~skip):
            known = known_of.get(group.key)
            request = requests.request(group)
            text = encode_body(request.body)
            body_hash = payload_hash(text)
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
