"""Workers that send jobs as fast as the API allows, never faster, and account for every one.

- Up to `--concurrency` workers take jobs from a bounded queue that a producer fills from a lazy iterator
  of requests, so bodies are built only as fast as they are sent. How many requests are in flight follows
  the rate and the observed latency (see rate.py), never above `--concurrency`.
- The rate (rate.py) is taken before every attempt, retries and searches included. It starts low, finds
  the API's limit from what the API accepts and refuses, and stays just under it; `--rate` is a ceiling.
- A 429 means "not processed, come back later": the request waits its turn (its Retry-After) and is sent
  again, without using up one of its `--max-attempts`. A Retry-After longer than PAUSE_ALL_AFTER pauses
  every worker. When the API has accepted nothing for `patience` seconds, the run stops as when its time
  budget runs out.
- Retries use exponential backoff with full jitter, capped.
- A stop (Ctrl-C, SIGTERM, time budget, refused credentials) cuts every wait short (a Retry-After pause,
  a backoff, the rate limit's), starts no further attempt, and abandons a request still unanswered
  `stop_grace` seconds later (at once on a second stop). Every attempt has a total deadline, so an answer
  trickling in byte by byte cannot hold a worker forever.
- Two jobs sharing an identity (customer key, phone, email, VIN) are never in flight together, and the
  earlier job in file order goes first, so the server's duplicate search always sees the earlier one.
- A customer sent by the customerUuid the state remembers, which the API no longer knows (404), is sent
  again without it.
- A request that may have been saved (5xx, timeout, dropped connection) for a customer the server's
  matching cannot find again (no phone, email or VIN) is resolved by a search on its customer key before
  it is retried: if that finds the customer, the retry updates it by customerUuid instead of creating a
  second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol, TypeVar

from importer.config import PoolSettings
from importer.error_codes import ErrorCode
from importer.errors import FatalApiError, RetryableError
from importer.send.client import Reply, encode_body
from importer.send.rate import Latencies, Pacer, RateController, Slots, in_flight_needed
from importer.status import Status, StopCode

log = logging.getLogger("mk_import.pool")
T = TypeVar("T")

#: a 429's Retry-After up to this many seconds delays only its own request (the rate is cut for all);
#: a longer one means the account is refused for a while: every worker pauses
PAUSE_ALL_AFTER = 2.0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (less CPU per request than asyncio's own), else
    None for asyncio's. Imported here, when a run starts, so that `--help` does not pay for it."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class Api(Protocol):
    async def create_or_update(self, body: str) -> Reply: ...

    async def find_by_key(self, customer_key: str) -> Reply: ...


@dataclass(frozen=True, slots=True)
class Job:
    """One customer to send."""

    key: str
    body: dict[str, Any]
    #: customer key, phones, emails and VINs: jobs sharing one are never in flight together
    identities: frozenset[str]
    #: the DMS customer key to search by when an ambiguous failure cannot be resolved by the server's
    #: matching (the customer has no phone, email or VIN); None when matching suffices
    search_key: str | None = None
    #: what the caller needs to recognise the job's body later (the state's payload hash)
    body_hash: str = ""
    #: an earlier run sent it and ended without knowing the outcome: resolve before the first attempt
    maybe_saved: bool = False
    #: the body as POSTed (encoded once; given by a caller that already has it)
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", encode_body(self.body))

    def with_uuid(self, customer_uuid: str) -> Job:
        customer = {**self.body["customer"], "customerUuid": customer_uuid}
        return replace(self, body={**self.body, "customer": customer}, search_key=None, text="")

    def without_uuid(self) -> Job:
        customer = {k: v for k, v in self.body["customer"].items() if k != "customerUuid"}
        return replace(self, body={**self.body, "customer": customer}, text="")


class Outcome(NamedTuple):
    """What became of one job. A NamedTuple, as every record made once or more for each request (client.Reply,
    state.Saved, customers.CustomerGroup and CustomerRequest): immutable as a frozen dataclass, made in less
    than half its time (a frozen dataclass sets each field through object.__setattr__: 1.15 µs for an Outcome
    against 0.45). With the API answered in process, the client's own time for a request went from 56-66 µs
    to 54."""

    key: str
    status: Status
    customer_uuid: str | None = None
    customer_id: str | None = None
    attempts: int = 0
    error_code: str | None = None
    #: no secrets, no response bodies
    detail: str = ""
    warnings: tuple[str, ...] = ()


@dataclass
class PoolStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    searches: int = 0
    #: the adaptive rate when the run ended
    final_rate: float = 0.0
    #: the most requests in flight at once, and the in-flight limit when the run ended
    concurrency_used: int = 0
    concurrency_limit: int = 0
    #: answer latency percentiles in seconds (None without answers)
    latency_p50: float | None = None
    latency_p95: float | None = None
    #: seconds from the first job queued to the last outcome
    send_s: float = 0.0
    stop_reason: str | None = None
    stop_code: StopCode | None = None


class IdentityGate:
    """Lets a job in only when no job in flight, nor an earlier one waiting, shares an identity with it."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}
        self._waiting: list[tuple[int, frozenset[str]]] = []
        self._changed = asyncio.Condition()

    def _blocked(self, ticket: int, identities: frozenset[str]) -> bool:
        if not self._in_flight.keys().isdisjoint(identities):
            return True
        return any(t < ticket and not identities.isdisjoint(ids) for t, ids in self._waiting)

    async def enter(self, ticket: int, identities: frozenset[str]) -> None:
        if not self._waiting and self._in_flight.keys().isdisjoint(identities):
            self._take(identities)  # nobody to wait for: no lock, no wake-up (the common case)
            return
        async with self._changed:
            entry = (ticket, identities)
            self._waiting.append(entry)
            try:
                await self._changed.wait_for(lambda: not self._blocked(ticket, identities))
            finally:
                self._waiting.remove(entry)
            self._take(identities)
            self._changed.notify_all()

    def _take(self, identities: frozenset[str]) -> None:
        for identity in identities:
            self._in_flight[identity] = self._in_flight.get(identity, 0) + 1

    async def leave(self, identities: frozenset[str]) -> None:
        for identity in identities:
            left = self._in_flight.pop(identity) - 1
            if left:
                self._in_flight[identity] = left
        if self._waiting:  # only a job waiting for an identity needs waking
            async with self._changed:
                self._changed.notify_all()


class _Stopped(Exception):
    """The run is stopping: this job's wait or unanswered attempt was cut short."""

    def __init__(self, sent: bool = False, detail: str = "") -> None:
        super().__init__(detail)
        #: this run sent the job, and the API may have saved it (an abandoned or ambiguous attempt)
        self.sent = sent
        self.detail = detail


class _Unanswered(_Stopped):
    """A request abandoned by a stop while its answer was awaited: it may have been saved."""


@dataclass
class Pool:
    api: Api
    settings: PoolSettings
    #: awaited before the worker takes another job
    on_outcome: Callable[[Job, Outcome], Awaitable[None]]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: random.Random = field(default_factory=random.Random)
    stats: PoolStats = field(default_factory=PoolStats)
    #: told of every finished POST: (sent, answered, "success"/"refused"/"rate_limited"/"error", is a retry)
    on_attempt: Callable[[float, float, str, bool], None] = lambda sent, answered, result, retry: None

    def __post_init__(self) -> None:
        self.rate = RateController(self.settings.rate, self.settings.min_rate, self.clock)
        self.pacer = Pacer(self.rate, self.sleep, self.clock)
        self.slots = Slots(in_flight_needed(self.rate.rate, None, self.settings.concurrency))
        self.latencies = Latencies()
        self.gate = IdentityGate()
        self._resume_at = 0.0
        self._last_answer = self.clock()
        self._sending = 0
        #: the run is stopping: no new job, nor a new attempt (a plain flag: nothing waits on it, and it is read
        #: several times a request)
        self.stopping = False
        #: tasks in a wait that a stop cuts short
        self._waiting: set[asyncio.Task[Any]] = set()
        #: tasks awaiting an answer, each with its deadline (time.monotonic): cut by the deadline watch then,
        #: or by a stop once its grace is over
        self._answering: dict[asyncio.Task[Any], float] = {}
        self._abandoned = False
        #: jobs queued and settled (an outcome given); None queued until every job is
        self._queued: int | None = None
        self._settled = 0
        #: tasks the pool cancelled: for a stop, and for a deadline passed
        self._cancelled: set[asyncio.Task[Any]] = set()
        self._overdue: set[asyncio.Task[Any]] = set()

    def stop(self, reason: str, code: StopCode, *, at_once: bool = False) -> None:
        """Take no new job and cut every wait short; requests in flight get `stop_grace` seconds to finish
        (none `at_once`); the rest are reported not attempted."""
        first = not self.stopping
        if self.stats.stop_reason is None:
            self.stats.stop_reason, self.stats.stop_code = reason, code
            log.warning("stopping: %s; requests in flight finish, the rest is not attempted", reason)
        elif at_once and not self._abandoned:
            log.warning("stopping at once: requests in flight are abandoned")
        self.stopping = True
        self._interrupt("_waiting")
        if at_once:
            self._abandon()
        elif first:
            with contextlib.suppress(RuntimeError):  # no event loop: nothing is in flight
                asyncio.get_running_loop().call_later(self.settings.stop_grace, self._abandon)

    def _abandon(self) -> None:
        self._abandoned = True
        self._interrupt("_answering")

    def _interrupt(self, which: str) -> None:
        # Swapped out first, so that a task is cancelled once however often the run is stopped.
        tasks: set[asyncio.Task[Any]] | dict[asyncio.Task[Any], float] = getattr(self, which)
        setattr(self, which, type(tasks)())
        for task in tasks:
            self._cancelled.add(task)
            task.cancel()

    @staticmethod
    def _cancelled_by(task: asyncio.Task[Any], marks: set[asyncio.Task[Any]]) -> bool:
        """Whether the cancellation `task` is in came from the pool, marked in `marks`, and from nothing else
        (a worker group that is failing cancels too)."""
        if task not in marks:
            return False
        marks.discard(task)
        return task.uncancel() == 0

    async def _interruptible(self, waiting: Awaitable[T]) -> T:
        """`waiting`'s result, unless the stop cancels it: then _Stopped. Cancelling the task that waits costs
        nothing until a stop, where racing every wait against the stop event would cost two tasks per request."""
        task = asyncio.current_task()
        assert task is not None
        if self.stopping:
            if asyncio.iscoroutine(waiting):
                waiting.close()
            raise _Stopped
        self._waiting.add(task)
        try:
            return await waiting
        except asyncio.CancelledError:
            if self._cancelled_by(task, self._cancelled):
                raise _Stopped from None
            raise
        finally:
            self._waiting.discard(task)

    async def _wait(self, seconds: float) -> None:
        """Sleep, cut short by a stop (_Stopped)."""
        await self._interruptible(self.sleep(seconds))

    async def _attempt(self, call: Awaitable[T]) -> T:
        """An API call: at most `request_timeout` seconds in all (then a RetryableError); once the run is
        stopping, `stop_grace` seconds more at most (none after a second stop), then abandoned (_Stopped)."""
        task = asyncio.current_task()
        assert task is not None
        if self._abandoned:
            if asyncio.iscoroutine(call):
                call.close()
            raise _Stopped
        self._answering[task] = time.monotonic() + self.settings.request_timeout
        try:
            return await call
        except asyncio.CancelledError:
            if self._cancelled_by(task, self._overdue):
                raise RetryableError(f"no complete answer within {self.settings.request_timeout:g} s") from None
            if self._cancelled_by(task, self._cancelled):
                raise _Stopped from None
            raise
        finally:
            self._answering.pop(task, None)

    async def _watch_deadlines(self) -> None:
        """Cancel every attempt still unanswered past its deadline, within a quarter of `request_timeout` (a
        second at most). One timer for the pool: a timeout per request (asyncio.timeout) cost about a sixth
        of the sending time at a few thousand requests a second."""
        period = min(1.0, self.settings.request_timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for task, deadline in list(self._answering.items()):
                if deadline <= now and task not in self._overdue:
                    self._overdue.add(task)
                    task.cancel()

    async def _throttle(self) -> None:
        """Take a turn of the shared rate, then wait out a Retry-After pause (also one that began while this
        request waited for its turn)."""
        if self.stopping or not self.pacer.take_now():
            await self._interruptible(self.pacer.acquire())  # raises _Stopped at once when stopping
        while (wait := self._resume_at - self.clock()) > 0:
            await self._wait(wait)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One request: an in-flight slot, the rate, and what its answer says about both. A stop cuts the
        waits short (_Stopped) and abandons an answer awaited past the grace (_Unanswered)."""
        if self.stopping:
            raise _Stopped
        # A free slot and a due turn need no wait, nor the machinery that lets a stop cut a wait short: the
        # common case at a few thousand requests a second.
        if not self.slots.take_now():
            await self._interruptible(self.slots.acquire())
        try:
            await self._throttle()
            sent = self.clock()
            self.rate.sent()
            self._sending += 1
            self.stats.concurrency_used = max(self.stats.concurrency_used, self._sending)
            try:
                reply = await self._attempt(call())
            except _Stopped:
                raise _Unanswered(True, "stopped while the request was unanswered; it may have been saved") from None
            except RetryableError as exc:
                if exc.throttled:
                    self.rate.refused(self.clock() - sent)
                elif exc.maybe_saved:  # an answer (5xx) or a timeout: the API took the request
                    self._answered(sent)
                raise
            self._answered(sent)
            return reply
        finally:
            self._sending -= 1
            self.slots.release()

    def _answered(self, sent: float) -> None:
        now = self._last_answer = self.clock()
        self.latencies.add(now - sent)
        self.rate.accepted(now - sent)
        if self._queued is not None:
            self.rate.jobs_left(self._queued - self._settled)
        self.slots.resize(in_flight_needed(self.rate.rate, self.latencies.recent, self.settings.concurrency))

    def _check_patience(self) -> None:
        """Stop the run when a request refused with a 429 should not wait for another turn."""
        if self._past_deadline():
            self.stop("time budget (--max-duration) reached", StopCode.TIME_BUDGET)
        elif self.clock() - self._last_answer >= self.settings.patience:
            self.stop(f"the API accepted no request for {self.settings.patience:g} s (--patience)",
                      StopCode.RATE_LIMITED)

    def _pause_everyone(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, self.clock() + min(seconds, self.settings.retry_after_cap))

    def _backoff(self, attempt: int) -> float:
        return self.jitter.uniform(0, min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** attempt))

    async def _resolve_ambiguous(self, job: Job) -> Job | Outcome:
        """A request that may have been saved, for a customer only its key can find: look it up first."""
        assert job.search_key is not None
        self.stats.searches += 1
        try:
            reply = await self._call(functools.partial(self.api.find_by_key, job.search_key))
        except FatalApiError as exc:
            self.stats.searches -= exc.before_sending  # refused unsent: not a search
            raise
        if not reply.ok:
            # Not "not found": the search said nothing, and sending the job as new could create it twice.
            return Outcome(job.key, Status.FAILED, error_code=ErrorCode.OUTCOME_UNKNOWN,
                           detail=f"customer search: {reply.message}")
        found = [uuid for uuid, _ in reply.matches]
        if len(found) == 1:
            return job.with_uuid(found[0])
        if len(found) > 1:
            return Outcome(job.key, Status.FAILED, error_code=ErrorCode.DUPLICATE_KEY,
                           detail=f"{len(found)} customers already carry customer key {job.search_key}")
        return job

    async def _post(self, text: str, *, retry: bool) -> Reply:
        """One POST through _call, reported to on_attempt with when it was sent and answered and how."""
        async def post() -> Reply:
            sent = self.clock()
            try:
                reply = await self.api.create_or_update(text)
            except RetryableError as exc:
                self.on_attempt(sent, self.clock(), "rate_limited" if exc.throttled else "error", retry)
                raise
            except FatalApiError as exc:
                if not exc.before_sending:
                    self.on_attempt(sent, self.clock(), "refused", retry)
                raise
            except asyncio.CancelledError:  # past its deadline, or abandoned by a stop
                self.on_attempt(sent, self.clock(), "error", retry)
                raise
            self.on_attempt(sent, self.clock(), "success" if reply.ok else "refused", retry)
            return reply

        return await self._call(post)

    async def _send(self, job: Job) -> Outcome:
        """Every attempt for one job, until an answer that settles it, or a stop."""
        try:
            return await self._attempts(job)
        except _Stopped as stopped:
            if stopped.sent:
                # Failed, not "not attempted": the customer may be saved, and the journal must keep saying so.
                return Outcome(job.key, Status.FAILED, error_code=ErrorCode.STOPPED_UNANSWERED,
                               detail=f"{self.stats.stop_reason}: {stopped.detail}")
            return Outcome(job.key, Status.NOT_ATTEMPTED, detail=self.stats.stop_reason or "")

    async def _attempts(self, job: Job) -> Outcome:
        """A 429 is no attempt: the request waits its turn and goes again, however many times, unless the
        run stops meanwhile. A stop raises _Stopped, saying whether this run may have saved the customer."""
        last_error = ""
        maybe_saved = job.maybe_saved
        #: an attempt of this run may have saved the customer
        sent = False
        attempt = 0
        try:
            while attempt < self.settings.max_attempts:
                if self.stopping:  # no new attempt, nor a retry, once the run is stopping
                    raise _Stopped
                attempt += 1
                if maybe_saved and job.search_key is not None:
                    try:
                        resolved = await self._resolve_ambiguous(job)
                    except RetryableError as exc:
                        if exc.throttled:
                            attempt -= 1
                            await self._wait_turn(exc)
                            continue
                        last_error = f"customer search: {exc}"
                        await self._wait(self._backoff(attempt))
                        continue
                    if isinstance(resolved, Outcome):
                        return resolved._replace(attempts=attempt - 1)
                    job = resolved
                self.stats.requests += 1
                if attempt > 1:
                    self.stats.retries += 1
                try:
                    reply = await self._post(job.text, retry=attempt > 1)
                except _Unanswered:
                    sent = True
                    raise
                except (FatalApiError, _Stopped) as exc:
                    # Refused by the client after an earlier refusal, or stopped before its turn came: nothing
                    # left, so not a request (the timeline does not count it either).
                    if isinstance(exc, _Stopped) or exc.before_sending:
                        self.stats.requests -= 1
                        self.stats.retries -= attempt > 1
                    raise
                except RetryableError as exc:
                    log.debug("customer %s attempt %d: %s", job.key, attempt, exc)
                    if exc.throttled:
                        attempt -= 1
                        await self._wait_turn(exc)
                        continue
                    last_error = str(exc)
                    maybe_saved = maybe_saved or exc.maybe_saved
                    sent = sent or exc.maybe_saved
                    if exc.retry_after is not None:
                        self._pause_everyone(exc.retry_after)
                    if attempt < self.settings.max_attempts:
                        await self._wait(self._backoff(attempt))
                    continue
                if reply.unknown_customer and "customerUuid" in job.body["customer"]:
                    # The customer saved under that uuid is gone (deleted or merged): send it again the way a
                    # new one is sent, and let the server's duplicate search find where it lives now.
                    log.info("customer %s: customerUuid unknown to the API; sending without it", job.key)
                    job = job.without_uuid()
                    continue
                if reply.ok:
                    return Outcome(job.key, Status.SUCCESS, reply.customer_uuid, reply.customer_id, attempt,
                                   warnings=reply.warnings)
                return Outcome(job.key, Status.FAILED, attempts=attempt, error_code=reply.error_code,
                               detail=reply.message, warnings=reply.warnings)
        except _Stopped as stopped:
            raise _Stopped(sent, stopped.detail or f"stopped before retrying after: {last_error}") from None
        return Outcome(job.key, Status.FAILED, attempts=self.settings.max_attempts,
                       error_code=ErrorCode.RETRIES_EXHAUSTED,
                       detail=f"gave up after {self.settings.max_attempts} attempts: {last_error}")

    async def _wait_turn(self, refusal: RetryableError) -> None:
        """After a 429: wait what the API asked, then go again; _Stopped when the run stops instead."""
        self.stats.rate_limited += 1
        wait = refusal.retry_after if refusal.retry_after is not None else 1.0
        if wait > PAUSE_ALL_AFTER:
            self._pause_everyone(wait)
        self._check_patience()
        # A little jitter, so that the requests refused together do not come back together.
        await self._wait(min(wait, self.settings.retry_after_cap) + self.jitter.uniform(0, 0.25))
        self._check_patience()

    async def _worker(self, queue: asyncio.Queue[tuple[int, Job] | None]) -> None:
        while (item := await queue.get()) is not None:
            ticket, job = item
            if self._past_deadline():
                self.stop("time budget (--max-duration) reached", StopCode.TIME_BUDGET)
            if self.stopping:
                await self.on_outcome(job, Outcome(job.key, Status.NOT_ATTEMPTED, detail=self.stats.stop_reason or ""))
                continue
            await self.gate.enter(ticket, job.identities)
            try:
                outcome = await self._send(job)
            except FatalApiError as exc:
                self.stop(str(exc), exc.stop_code)
                outcome = Outcome(job.key, Status.NOT_ATTEMPTED, error_code=exc.code, detail=str(exc))
            finally:
                await self.gate.leave(job.identities)
            await self.on_outcome(job, outcome)
            self._settled += 1

    def _past_deadline(self) -> bool:
        return self.settings.deadline is not None and self.clock() >= self.settings.deadline

    async def run(self, jobs: Iterable[Job]) -> PoolStats:
        """Send the jobs. Each job queued ends in exactly one on_outcome call; once the run is stopping,
        no further job is taken from `jobs`."""
        started = self._last_answer = self.clock()
        queue: asyncio.Queue[tuple[int, Job] | None] = asyncio.Queue(maxsize=self.settings.concurrency * 2)
        # One task group: a worker that fails (a defect) cancels the rest and this feeding, which would
        # otherwise wait forever for room in a queue that no worker drains.
        deadlines = asyncio.create_task(self._watch_deadlines())
        try:
            async with asyncio.TaskGroup() as workers:
                for _ in range(self.settings.concurrency):
                    workers.create_task(self._worker(queue))
                queued = 0
                for ticket, job in enumerate(jobs):
                    if self.stopping:
                        break  # the caller reports what was never queued as not attempted
                    await queue.put((ticket, job))
                    queued += 1
                self._queued = queued  # the rate knows from now on how many jobs are left
                for _ in range(self.settings.concurrency):
                    await queue.put(None)
        finally:
            deadlines.cancel()
        self.stats.final_rate = self.rate.rate
        self.stats.concurrency_limit = self.slots.limit
        self.stats.latency_p50 = self.latencies.percentile(0.5)
        self.stats.latency_p95 = self.latencies.percentile(0.95)
        self.stats.send_s = self.clock() - started
        return self.stats
