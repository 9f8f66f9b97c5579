"""The ledger: answers close together share a transaction, written a few milliseconds after the first of them
(so a kill -9 loses at most the requests in flight and the answers of those milliseconds), and every row gets
its outcome."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from importer.report.outcomes import RowOutcomes, with_outcomes
from importer.send import recorder as ledger_module
from importer.send.pool import Job, Outcome
from importer.send.progress import NoProgress
from importer.send.recorder import COMMIT_BATCH, COMMIT_EVERY, Recorder
from importer.send.state import StateStore
from importer.status import Status


def saved_keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {key for (key,) in db.execute("SELECT customer_key FROM customers")}


def test_answers_close_together_are_one_transaction_on_disk_within_the_commit_window(tmp_path: Path, monkeypatch):
    path = tmp_path / "state.sqlite"
    state = StateStore(path, "dept")
    outcomes = RowOutcomes(pd.RangeIndex(1, 6))
    ledger = Recorder(state, NoProgress(), outcomes.set, lambda reason, code: None)
    transactions: list[list[str]] = []
    record = state.record

    def counted(saves: list[tuple[str, object, bool]], noted: list[tuple[str, str]]) -> None:
        transactions.append([key for key, _, _ in saves])
        record(saves, noted)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "record", counted)
    monkeypatch.setattr(ledger_module, "COMMIT_EVERY", 0.5)  # wide, so that a busy machine cannot split it
    jobs = [Job(f"k{i}", {"customer": {}}, frozenset({f"key:k{i}"}), body_hash=f"h{i}") for i in range(5)]
    for i, job in enumerate(jobs):
        ledger.expect(job.key, (i + 1,), f"in{i}")

    async def answer(job: Job) -> None:
        await ledger.answer(job, Outcome(job.key, Status.SUCCESS, f"uuid-{job.key}", "1"))

    async def go() -> list[set[str]]:
        on_disk = []  # what another process would find if this one were killed then
        await asyncio.gather(*(answer(job) for job in jobs[:3]))
        await answer(jobs[3])
        on_disk.append(saved_keys(path))  # answered, not written yet: the answer did not wait for it
        await asyncio.sleep(1.0)
        on_disk.append(saved_keys(path))
        await answer(jobs[4])
        return on_disk

    on_disk = asyncio.run(go())
    assert on_disk == [set(), {"k0", "k1", "k2", "k3"}]
    assert transactions == [["k0", "k1", "k2", "k3"]]
    ledger.write_pending()  # what the event loop left unwritten when it stopped
    assert transactions[-1] == ["k4"]
    assert saved_keys(path) == {f"k{i}" for i in range(5)}
    table = with_outcomes(pd.DataFrame({"status": "valid", "customer_key": [j.key for j in jobs], "customer_uuid": "",
                                       "customer_id": "", "error_code": "", "error_message": "", "warnings": ""},
                                      index=pd.RangeIndex(1, 6)), outcomes, pd.DataFrame(), None)
    assert table["customer_uuid"].tolist() == [f"uuid-k{i}" for i in range(5)]
    state.close()


def test_many_answers_at_once_are_written_without_waiting_for_the_window(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    state = StateStore(path, "dept")
    count = COMMIT_BATCH + 1
    ledger = Recorder(state, NoProgress(), RowOutcomes(pd.RangeIndex(1, count + 1)).set, lambda reason, code: None)
    jobs = [Job(f"k{i}", {"customer": {}}, frozenset({f"key:k{i}"})) for i in range(count)]
    for i, job in enumerate(jobs):
        ledger.expect(job.key, (i + 1,), "")

    async def go() -> int:
        for job in jobs:
            await ledger.answer(job, Outcome(job.key, Status.SUCCESS, "u", "1"))
        return len(saved_keys(path))

    assert asyncio.run(go()) == COMMIT_BATCH
    state.close()


def _two_answers(tmp_path: Path, monkeypatch, failure: Exception) -> tuple[Recorder, list[str], list[object]]:
    state = StateStore(tmp_path / "state.sqlite", "dept")
    stops: list[str] = []
    ledger = Recorder(state, NoProgress(), RowOutcomes(pd.RangeIndex(1, 3)).set,
                      lambda reason, code: stops.append(f"{code}: {reason}"))

    def failing(saves: object, noted: object) -> None:
        raise failure

    monkeypatch.setattr(state, "record", failing)
    jobs = [Job(f"k{i}", {"customer": {}}, frozenset({f"key:k{i}"})) for i in range(2)]
    for i, job in enumerate(jobs):
        ledger.expect(job.key, (i + 1,), "")

    async def go() -> list[object]:
        answers = (ledger.answer(j, Outcome(j.key, Status.SUCCESS, "u", "1")) for j in jobs)
        answered: list[object] = await asyncio.gather(*answers, return_exceptions=True)
        await asyncio.sleep(COMMIT_EVERY * 4)
        return answered

    results = asyncio.run(go())
    state.close()
    return ledger, stops, results


def test_a_state_file_that_cannot_be_written_stops_the_run_once(tmp_path: Path, monkeypatch):
    ledger, stops, results = _two_answers(tmp_path, monkeypatch, sqlite3.OperationalError("database or disk is full"))
    assert results == [None, None]  # the answers are settled; the run stops instead of crashing
    ledger.write_pending()  # nothing raised at the end either
    assert stops == ["state_unwritable: the state file cannot be written (database or disk is full)"]
    assert ledger.state_error == "the state file cannot be written (database or disk is full)"


def test_a_defect_in_the_commit_reaches_the_next_answer_and_the_end_of_the_run(tmp_path: Path, monkeypatch):
    ledger, stops, results = _two_answers(tmp_path, monkeypatch, RuntimeError("defect"))
    assert results == [None, None]  # answered before the commit failed
    job = Job("k2", {"customer": {}}, frozenset({"key:k2"}))
    ledger.expect(job.key, (2,), "")
    with pytest.raises(RuntimeError, match="defect"):
        asyncio.run(ledger.answer(job, Outcome(job.key, Status.SUCCESS, "u", "1")))
    with pytest.raises(RuntimeError, match="defect"):
        ledger.write_pending()
    assert stops == []


def test_the_customers_saved_are_counted_per_change_word(tmp_path: Path):
    state = StateStore(tmp_path / "state.sqlite", "dept")
    ledger = Recorder(state, NoProgress(), RowOutcomes(pd.RangeIndex(1, 5)).set, lambda reason, code: None)
    saves = {"k1": "phones;addresses", "k2": "phones", "k3": "created", "k4": "phones;addresses"}
    jobs = [Job(key, {"customer": {}}, frozenset({f"key:{key}"}), body_hash="h") for key in saves]
    for row, job in enumerate(jobs, start=1):
        ledger.expect(job.key, (row,), "in", saves[job.key])

    async def go() -> None:
        for job in jobs[:-1]:
            await ledger.answer(job, Outcome(job.key, Status.SUCCESS, f"uuid-{job.key}", "1"))
        await ledger.answer(jobs[-1], Outcome(jobs[-1].key, Status.FAILED, error_code="X"))  # not saved: not counted

    try:
        asyncio.run(go())
        ledger.write_pending()
    finally:
        state.close()
    counted = ledger.changes()
    assert {word: n for word, n in counted.items() if n} == {"phones": 2, "addresses": 1, "created": 1}
    assert ledger.saved == 3
