"""What came back: each answer written to the state as it arrives, and handed on for its rows' outcomes.

Words kept to one meaning: the `fingerprint` is the hash of a customer's input rows
(customers.CustomerGroup.fingerprint), `body_hash` the hash of the body sent; the `journal` is the state's
list of requests whose fate a crash would leave unknown.

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
from collections import Counter
from collections.abc import Callable

from importer.send.changes import WORDS
from importer.send.pool import Job, Outcome
from importer.send.progress import Progress
from importer.send.state import Saved, StateStore
from importer.status import Status, StopCode

#: How the bookkeeping stops the run (a reason in words, and its code); given at construction.
StopRun = Callable[[str, StopCode], None]
#: Where the outcome of a customer's rows goes once known, with what its save changed (changes.words: empty
#: for a customer not saved or saved unchanged).
OnRows = Callable[[tuple[int, ...], Outcome, str], None]

NOTED_BATCH = 10_000
#: seconds an answered save may wait to share a transaction with those answered after it. Not longer: at 6,000
#: answers a second, 20 ms made commits of 120 saves at 5 µs a save against 30 at 7 µs, but a kill -9 then lost
#: the answers of 20 ms besides the requests in flight (tests/test_durability.py) ...
COMMIT_EVERY = 0.005
#: ... unless this many are waiting already
COMMIT_BATCH = 1_000
log = logging.getLogger("mk_import.recorder")


class Recorder:
    """Every job's rows and, once known, its outcome; saves written to the state as answers arrive."""

    def __init__(self, state: StateStore, progress: Progress, on_rows: OnRows, stop_run: StopRun) -> None:
        self.state = state
        self.progress = progress
        #: told the outcome of every row as it becomes known (the report stage's RowOutcomes.set)
        self.on_rows = on_rows
        #: takes no new job; the rest is not attempted
        self.stop_run = stop_run
        #: why the state could not be written, once it could not
        self.state_error: str | None = None
        #: customers the API saved in this run
        self.saved = 0
        #: requests sent (or to be sent): key → its rows, and the hash of those rows, stored with its save
        self.rows_of: dict[str, tuple[int, ...]] = {}
        self.fingerprint_of: dict[str, str] = {}
        #: ... what it changes (changes.words), and its body packed for the state (state.pack_body)
        self.changes_of: dict[str, str] = {}
        self.body_of: dict[str, bytes | None] = {}
        #: customers saved per change words as saved (changes.words, ";"-joined): a handful of distinct texts,
        #: split into words once per run by changes(), not once per save
        self._changed: Counter[str] = Counter()
        #: saves answered and not yet written, and the timer that will write them
        self._saves: list[tuple[str, Saved, bool]] = []
        #: saved customers whose rows changed but not their body: (key, new fingerprint). Written with the next
        #: commit or every NOTED_BATCH: losing them costs only rebuilding those bodies on the next run.
        self._noted: list[tuple[str, str]] = []
        self._commit: asyncio.TimerHandle | None = None
        #: a commit that failed for a reason other than the state file (a defect): raised at the next answer
        self._defect: Exception | None = None

    def expect(self, key: str, rows: tuple[int, ...], fingerprint: str, changes: str = "",
               body: bytes | None = None) -> None:
        """A job is about to be sent for these rows; if it is saved, it changes `changes` and the state keeps
        `body`, in the same commit as the answer."""
        self.rows_of[key] = rows
        self.fingerprint_of[key] = fingerprint
        self.changes_of[key] = changes
        self.body_of[key] = body

    def changes(self) -> dict[str, int]:
        """Customers saved by this run per change word (summary.json's `changes`)."""
        per_word: Counter[str] = Counter()
        for text, customers in self._changed.items():
            for word in text.split(";"):
                per_word[word] += customers
        return {word: per_word[word] for word in WORDS}

    def same_body(self, key: str, fingerprint: str, rows: tuple[int, ...], outcome: Outcome) -> None:
        """A customer whose rows changed but build the body last saved: not sent, its new fingerprint noted."""
        self._noted.append((key, fingerprint))
        if len(self._noted) >= NOTED_BATCH:
            self.write_pending()
        self.record_rows(rows, outcome, "")

    async def answer(self, job: Job, outcome: Outcome) -> None:
        """Record a job's outcome; a success is written to the state within COMMIT_EVERY seconds."""
        if self._defect is not None:
            raise self._defect
        fingerprint = self.fingerprint_of.pop(job.key)
        changes, body = self.changes_of.pop(job.key, ""), self.body_of.pop(job.key, None)
        if (job.search_key is not None and outcome.status == Status.NOT_ATTEMPTED and not job.maybe_saved
                and not outcome.error_code):
            # Never sent (the run stopped before it): its journal entry can go. Anything else keeps it, so the
            # next run searches before sending: a stop with an error code may come after an attempt.
            self.write_state(self.state.forget_sending, job.key)
        saved_now = outcome.status == Status.SUCCESS and bool(outcome.customer_uuid)
        self.record_rows(self.rows_of.pop(job.key), outcome, changes if saved_now else "")
        if saved_now and outcome.customer_uuid:
            self.saved += 1
            if changes:
                self._changed[changes] += 1
            saved = Saved(job.body_hash, outcome.customer_uuid, outcome.customer_id, fingerprint, body)
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

    def record_rows(self, rows: tuple[int, ...], outcome: Outcome, changes: str = "") -> None:
        self.on_rows(rows, outcome, changes)
        self.progress.advance(outcome.status, len(rows), 1)
