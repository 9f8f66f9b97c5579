"""The ledger's group commit: answers of one event-loop turn share a transaction, and each answer returns only
once its save is in the state file (so a kill -9 loses at most the requests in flight)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from importer.ledger import Ledger
from importer.pool import Job, Outcome
from importer.progress import NoProgress
from importer.state import StateStore
from importer.status import Status


def saved_keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {key for (key,) in db.execute("SELECT customer_key FROM customers")}


def test_answers_of_one_turn_are_one_transaction_and_on_disk_before_answer_returns(tmp_path: Path, monkeypatch):
    path = tmp_path / "state.sqlite"
    state = StateStore(path, "dept")
    ledger = Ledger(state, set(), NoProgress())
    transactions: list[list[str]] = []
    record = state.record

    def counted(saves: list[tuple[str, object, bool]], noted: list[tuple[str, str]]) -> None:
        transactions.append([key for key, _, _ in saves])
        record(saves, noted)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "record", counted)
    jobs = [Job(f"k{i}", {"customer": {}}, frozenset({f"key:k{i}"}), fingerprint=f"h{i}") for i in range(5)]
    for i, job in enumerate(jobs):
        ledger.rows_of[job.key] = (i,)
        ledger.inputs[job.key] = f"in{i}"

    async def answer(job: Job) -> set[str]:
        await ledger.answer(job, Outcome(job.key, Status.SUCCESS, f"uuid-{job.key}", "1"))
        return saved_keys(path)  # what another process would find if this one were killed now

    async def go() -> list[set[str]]:
        first = await asyncio.gather(*(answer(job) for job in jobs[:3]))
        return [*first, await answer(jobs[3]), await answer(jobs[4])]

    on_disk = asyncio.run(go())
    assert transactions == [["k0", "k1", "k2"], ["k3"], ["k4"]]
    assert on_disk[:3] == [{"k0", "k1", "k2"}] * 3
    assert on_disk[4] == {f"k{i}" for i in range(5)}
    assert [rows for rows, _ in ledger.outcomes] == [(0,), (1,), (2,), (3,), (4,)]
    state.close()


def test_a_failed_commit_reaches_every_answer_waiting_on_it(tmp_path: Path, monkeypatch):
    state = StateStore(tmp_path / "state.sqlite", "dept")
    ledger = Ledger(state, set(), NoProgress())

    def full_disk(saves: object, noted: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(state, "record", full_disk)
    jobs = [Job(f"k{i}", {"customer": {}}, frozenset({f"key:k{i}"})) for i in range(2)]
    for i, job in enumerate(jobs):
        ledger.rows_of[job.key] = (i,)
        ledger.inputs[job.key] = ""

    async def go() -> list[object]:
        return await asyncio.gather(*(ledger.answer(j, Outcome(j.key, Status.SUCCESS, "u", "1")) for j in jobs),
                                    return_exceptions=True)

    results = asyncio.run(go())
    assert [type(r) for r in results] == [sqlite3.OperationalError] * 2
    state.close()
