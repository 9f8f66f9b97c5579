"""The pool with a scripted API and an injected clock: retries, pauses, adaptive rate, identities, stops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from importer.config import PoolSettings
from importer.errors import FatalApiError, RetryableError
from importer.send.client import Reply
from importer.send.pool import Job, Outcome, Pool
from importer.status import Status, StopCode
from tests.helpers import FakeClock


class ScriptedApi:
    """Answers each POST from a script of replies or exceptions, keyed by customer key."""

    def __init__(self, script: dict[str, list[Any]] | None = None, found: list[str] | Reply | None = None) -> None:
        self.script = script or {}
        self.bodies: list[dict[str, Any]] = []
        self.found = found or []
        self.in_flight: set[str] = set()
        self.overlaps = 0
        self.order: list[str] = []

    async def create_or_update(self, body: str) -> Reply:
        import json

        parsed = json.loads(body)
        self.bodies.append(parsed)
        key = parsed["customer"]["customerKey"]
        self.order.append(key)
        identities = {key, *(p["phoneNumber"] for p in parsed["customer"].get("phoneNumbers", []))}
        if self.in_flight & identities:
            self.overlaps += 1
        self.in_flight |= identities
        try:
            await asyncio.sleep(0.001)
        finally:
            self.in_flight -= identities
        answers = self.script.get(key, [])
        answer = answers.pop(0) if answers else Reply(True, f"uuid-{key}", "1")
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def find_by_key(self, customer_key: str) -> Reply:
        if isinstance(self.found, Reply):
            return self.found
        return Reply(True, matches=tuple((uuid, customer_key) for uuid in self.found))


def job(key: str, phone: str | None = None, search: bool = False) -> Job:
    customer: dict[str, Any] = {"customerKey": key, "lastName": "X"}
    if phone:
        customer["phoneNumbers"] = [{"phoneNumber": phone}]
    identities = frozenset({f"key:{key}", *([phone] if phone else [])})
    return Job(key, {"customer": customer}, identities, search_key=key if search else None)


def run_pool(api: ScriptedApi, jobs: list[Job], clock: FakeClock | None = None,
             **settings: Any) -> tuple[dict[str, Outcome], Pool]:
    outcomes: dict[str, Outcome] = {}
    clock = clock or FakeClock()

    async def record(j: Job, o: Outcome) -> None:
        outcomes[j.key] = o

    async def go() -> Pool:
        pool = Pool(api, PoolSettings(**{"rate": 1000, "concurrency": 4, **settings}), record,
                    sleep=clock.sleep, clock=clock)
        await pool.run(jobs)
        return pool

    return outcomes, asyncio.run(go())


def unavailable() -> RetryableError:
    return RetryableError("server error (HTTP 503)")


def test_retries_until_success_with_capped_jittered_backoff():
    api = ScriptedApi({"A": [unavailable(), unavailable()]})
    clock = FakeClock()
    outcomes, pool = run_pool(api, [job("A")], clock, backoff_base=1.0, backoff_cap=1.5)
    assert outcomes["A"].status == Status.SUCCESS
    assert outcomes["A"].attempts == 3
    assert pool.stats.retries == 2
    backoffs = [s for s in clock.sleeps if s > 0]
    assert all(0 <= s <= 1.5 for s in backoffs)


def test_retries_exhausted_is_failed():
    api = ScriptedApi({"A": [unavailable()] * 3})
    outcomes, _ = run_pool(api, [job("A")], max_attempts=3)
    assert outcomes["A"].status == Status.FAILED
    assert outcomes["A"].error_code == "RETRIES_EXHAUSTED"
    assert "HTTP 503" in outcomes["A"].detail


def test_refusal_is_failed_without_retry():
    api = ScriptedApi({"A": [Reply(False, error_code="400004", message="needs a name")]})
    outcomes, pool = run_pool(api, [job("A")])
    assert (outcomes["A"].status, outcomes["A"].error_code, pool.stats.requests) == (Status.FAILED, "400004", 1)


def test_retry_after_pauses_every_worker():
    api = ScriptedApi({"A": [RetryableError("429", retry_after=5, maybe_saved=False, throttled=True)]})
    clock = FakeClock()
    outcomes, pool = run_pool(api, [job("A"), job("B"), job("C")], clock, concurrency=1)
    assert all(o.status == Status.SUCCESS for o in outcomes.values())
    assert pool.stats.rate_limited == 1
    assert clock.now >= 1005.0


def test_fatal_answer_stops_the_run_and_the_rest_is_not_attempted():
    api = ScriptedApi({k: [FatalApiError("refused", code="100003")] for k in "ABCDEFGHIJ"})
    outcomes, pool = run_pool(api, [job(k) for k in "ABCDEFGHIJ" * 3][:10], concurrency=2)
    assert {o.status for o in outcomes.values()} == {Status.NOT_ATTEMPTED}
    assert pool.stats.requests <= 2
    assert pool.stats.stop_reason == "refused"
    assert pool.stats.stop_code == StopCode.CREDENTIALS_REFUSED


def test_deadline_stops_taking_new_jobs():
    clock = FakeClock()
    outcomes, _ = run_pool(ScriptedApi(), [job(str(i)) for i in range(5)], clock, deadline=clock.now - 1)
    assert {o.status for o in outcomes.values()} == {Status.NOT_ATTEMPTED}


def test_jobs_sharing_an_identity_are_never_in_flight_together_and_keep_file_order():
    jobs = [job("A", "+13105551234"), job("B", "+13105551234"), job("C"), job("D", "+13105551234"), job("E")]
    api = ScriptedApi()
    outcomes, _ = run_pool(api, jobs, concurrency=5)
    assert len(outcomes) == 5
    assert api.overlaps == 0
    shared = [k for k in api.order if k in "ABD"]
    assert shared == ["A", "B", "D"]


def test_ambiguous_failure_of_a_key_only_customer_is_resolved_by_search():
    api = ScriptedApi({"K": [RetryableError("no answer (ServerDisconnectedError)")]}, found=["uuid-existing"])
    outcomes, pool = run_pool(api, [job("K", search=True)])
    assert outcomes["K"].status == Status.SUCCESS
    assert pool.stats.searches == 1
    assert "customerUuid" not in api.bodies[0]["customer"]
    assert api.bodies[1]["customer"]["customerUuid"] == "uuid-existing"


def test_ambiguous_failure_not_found_is_sent_again_as_is():
    api = ScriptedApi({"K": [RetryableError("server error (HTTP 503)")]}, found=[])
    outcomes, pool = run_pool(api, [job("K", search=True)])
    assert outcomes["K"].status == Status.SUCCESS
    assert pool.stats.searches == 1
    assert "customerUuid" not in api.bodies[1]["customer"]


def test_a_search_without_a_result_is_outcome_unknown_never_sent_as_new():
    unknown = Reply(False, error_code="NOT_JSON", message="HTTP 200 answer is not the API's JSON envelope")
    api = ScriptedApi({"K": [RetryableError("server error (HTTP 503)")]}, found=unknown)
    outcomes, pool = run_pool(api, [job("K", search=True)])
    assert (outcomes["K"].status, outcomes["K"].error_code) == (Status.FAILED, "OUTCOME_UNKNOWN")
    assert "customer search: HTTP 200" in outcomes["K"].detail
    assert len(api.bodies) == 1  # the first attempt only: never sent again without knowing
    assert pool.stats.searches == 1


def test_429_is_not_ambiguous_so_no_search():
    api = ScriptedApi({"K": [RetryableError("429", maybe_saved=False, throttled=True)]}, found=["x"])
    _, pool = run_pool(api, [job("K", search=True)])
    assert pool.stats.searches == 0


def test_every_job_taken_gets_exactly_one_outcome_and_none_is_taken_after_a_stop():
    seen: list[str] = []
    pulled: list[str] = []
    api = ScriptedApi({"B": [FatalApiError("refused", code="100003")]})

    def jobs():
        for j in [job("A"), job("B"), *(job(f"x{i}") for i in range(300))]:
            pulled.append(j.key)
            yield j

    async def note(j: Job, o: Outcome) -> None:
        seen.append(j.key)

    async def go() -> None:
        clock = FakeClock()
        await Pool(api, PoolSettings(rate=1000, concurrency=3), note, sleep=clock.sleep, clock=clock).run(jobs())

    asyncio.run(go())
    assert len(seen) == len(set(seen))
    assert {"A", "B"} <= set(seen)
    assert set(pulled) - set(seen) <= {pulled[-1]}  # at most the one job pulled as the stop was noticed
    assert len(pulled) < 302


def test_unknown_customer_uuid_is_sent_again_without_it():
    api = ScriptedApi({"K": [Reply(False, error_code="404001", message="no customer", unknown_customer=True)]})
    outcomes, _ = run_pool(api, [job("K", phone="+13105550000").with_uuid("gone")])
    assert outcomes["K"].status == Status.SUCCESS
    assert api.bodies[0]["customer"]["customerUuid"] == "gone"
    assert "customerUuid" not in api.bodies[1]["customer"]


def test_a_failing_worker_ends_the_run_instead_of_hanging_it():
    api = ScriptedApi({})

    async def broken(j: Job, o: Outcome) -> None:
        raise RuntimeError("defect")

    async def go() -> None:
        clock = FakeClock()
        pool = Pool(api, PoolSettings(rate=1000, concurrency=2), broken, sleep=clock.sleep, clock=clock)
        await asyncio.wait_for(pool.run(job(f"k{i}") for i in range(50)), timeout=10)

    with pytest.raises(ExceptionGroup) as failed:
        asyncio.run(go())
    assert failed.group_contains(RuntimeError, match="defect")


def throttled(after: float | None = 1) -> RetryableError:
    return RetryableError("rate limited (HTTP 429)", retry_after=after, maybe_saved=False, throttled=True)


def test_429s_never_use_up_attempts_the_row_waits_its_turn():
    api = ScriptedApi({"A": [throttled()] * 10 + [unavailable()]})
    clock = FakeClock()
    outcomes, pool = run_pool(api, [job("A"), job("B")], clock, max_attempts=2)
    assert outcomes["A"].status == Status.SUCCESS
    assert outcomes["A"].attempts == 2  # the 503 and the success; the ten 429s are no attempts
    assert pool.stats.rate_limited == 10
    assert sum(1 for s in clock.sleeps if s >= 1.0) >= 10  # each waited its Retry-After


def test_short_retry_after_delays_only_the_refused_request():
    api = ScriptedApi({"A": [throttled(1)]})
    clock = FakeClock()
    outcomes: dict[str, Outcome] = {}

    async def record(j: Job, o: Outcome) -> None:
        outcomes[j.key] = o

    async def go() -> None:
        pool = Pool(api, PoolSettings(rate=1000, concurrency=4), record, sleep=clock.sleep, clock=clock)
        pool.rate.slow_start = False  # past the start: a 429 is a small overshoot, not a storm
        await pool.run([job("A"), job("B"), job("C")])

    asyncio.run(go())
    assert all(o.status == Status.SUCCESS for o in outcomes.values())
    assert api.order[-1] == "A"  # B and C went on while A waited
    assert sum(1 for s in clock.sleeps if s >= 1.0) == 1  # A's own wait, nobody else's


def test_the_429_that_ends_the_slow_start_cuts_the_rate_and_pauses_nobody():
    api = ScriptedApi({"A": [throttled(1)]})
    clock = FakeClock()
    outcomes, pool = run_pool(api, [job(k) for k in "ABCDEFGH"], clock, concurrency=4, rate=10)
    assert all(o.status == Status.SUCCESS for o in outcomes.values())
    assert not pool.rate.slow_start
    assert pool._resume_at == 0.0  # a Retry-After of 1 s delays its own request only
    assert sum(1 for s in clock.sleeps if s >= 1.0) == 1


def test_patience_stops_the_run_when_the_api_accepts_nothing():
    api = ScriptedApi({k: [throttled(30)] * 1000 for k in "ABCDEF"})
    clock = FakeClock()
    outcomes, pool = run_pool(api, [job(k) for k in "ABCDEF"], clock, patience=600)
    assert {o.status for o in outcomes.values()} == {Status.NOT_ATTEMPTED}
    assert pool.stats.stop_reason == "the API accepted no request for 600 s (--patience)"
    assert 600 <= clock.now - 1000 < 700


def test_patience_counts_from_the_last_accepted_request():
    # A is refused for 20 minutes in all, but B's answers in between show the API is still there.
    api = ScriptedApi({"A": [throttled(30)] * 40})
    clock = FakeClock()
    jobs = [job("A"), *(job(f"B{i}") for i in range(200))]
    outcomes, pool = run_pool(api, jobs, clock, patience=60, rate=0.2, min_rate=0.1, concurrency=2)
    assert outcomes["A"].status == Status.SUCCESS
    assert pool.stats.stop_reason is None


def test_time_budget_ends_the_wait_of_a_refused_request():
    api = ScriptedApi({"A": [throttled(30)] * 1000})
    clock = FakeClock()
    outcomes, pool = run_pool(api, [job("A")], clock, deadline=clock.now + 100)
    assert outcomes["A"].status == Status.NOT_ATTEMPTED
    assert pool.stats.stop_reason == "time budget (--max-duration) reached"


def test_a_request_refused_after_an_ambiguous_failure_is_not_called_not_attempted():
    seen: dict[str, Outcome] = {}
    api = ScriptedApi({"K": [unavailable(), *[throttled(30)] * 1000]})

    async def note(j: Job, o: Outcome) -> None:
        seen[j.key] = o

    async def go() -> None:
        clock = FakeClock()
        pool = Pool(api, PoolSettings(rate=1000, deadline=clock.now + 100), note, sleep=clock.sleep, clock=clock)
        await pool.run([job("K", search=True)])

    asyncio.run(go())
    # The 503 may have saved it: failed, so that the journal keeps it and the next run searches before sending.
    assert (seen["K"].status, seen["K"].error_code) == (Status.FAILED, "STOPPED_UNANSWERED")
    assert api.bodies  # it was sent, then refused until the time budget ran out


def test_summary_figures_concurrency_and_latency():
    outcomes, pool = run_pool(ScriptedApi(), [job(str(i)) for i in range(40)], concurrency=16)
    assert len(outcomes) == 40
    assert 1 <= pool.stats.concurrency_used <= 16
    assert pool.stats.concurrency_limit <= 16
    assert pool.stats.latency_p50 is not None
    assert pool.stats.latency_p95 is not None
    assert pool.stats.latency_p50 <= pool.stats.latency_p95


def test_the_event_loop_library_is_loaded_by_a_run_not_by_help():
    import subprocess
    import sys

    from importer.send.pool import event_loop_factory

    code = "import sys, importer.cli; importer.cli.build_parser(); print('uvloop' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    factory = event_loop_factory()
    if factory is not None:  # uvloop installed (everywhere but Windows)
        loop = factory()
        try:
            assert type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()
