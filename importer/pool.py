"""Workers that send jobs as fast as the API allows, never faster, and account for every one.

- `--concurrency` workers take jobs from a bounded queue that a producer fills from a lazy iterator of
  requests, so bodies are built only as fast as they are sent.
- One rate limit (aiolimiter) is taken before every attempt, retries and searches included. It adapts:
  each 429 cuts it multiplicatively (at most once a second, so one burst of 429s counts once), every
  second without a 429 raises it additively, never above the configured rate. It starts at a quarter of
  the configured rate and doubles each clean second until the first 429 (slow start), so a run set ten
  times too fast finds the server's limit without a storm of 429s.
- `Retry-After` pauses every worker, not only the one that got it.
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
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from aiolimiter import AsyncLimiter

from importer.client import Reply, encode_body
from importer.codes import ErrorCode
from importer.errors import FatalApiError, RetryableError
from importer.status import Status, StopCode

log = logging.getLogger("mk_import.pool")


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


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    status: Status
    customer_uuid: str | None = None
    customer_id: str | None = None
    attempts: int = 0
    error_code: str | None = None
    #: no secrets, no response bodies
    detail: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolSettings:
    rate: float = 20.0
    concurrency: int = 8
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    #: the adaptive rate never drops below this
    min_rate: float = 0.5
    #: stop taking new jobs at this time.monotonic() value
    deadline: float | None = None
    #: seconds an attempt may take in all, however slowly its answer trickles in
    request_timeout: float = 120.0
    #: seconds a request in flight is given to finish once the run is stopping
    stop_grace: float = 5.0


@dataclass
class PoolStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    searches: int = 0
    #: the adaptive rate when the run ended
    final_rate: float = 0.0
    #: seconds from the first job queued to the last outcome
    send_s: float = 0.0
    stop_reason: str | None = None
    stop_code: StopCode | None = None


class AdaptiveRate:
    """An aiolimiter limiter whose rate follows the API's 429s (AIMD with slow start)."""

    def __init__(self, ceiling: float, floor: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling, self.floor, self.clock = ceiling, min(floor, ceiling), clock
        self.rate = max(self.floor, ceiling / 4)
        self.slow_start = True
        self._last_change = clock()
        self._limiter = AsyncLimiter(1, 1)
        self._apply()

    def _apply(self) -> None:
        # Bursts of at most a quarter second's worth keep the server's own bucket from being emptied at once.
        burst = max(1.0, self.rate / 4)
        self._limiter.max_rate = burst
        self._limiter.time_period = burst / self.rate
        self._limiter._rate_per_sec = self.rate  # aiolimiter reads the rate from here

    async def acquire(self) -> None:
        await self._limiter.acquire()

    def throttled(self) -> None:
        now = self.clock()
        if now - self._last_change >= 1.0 or self.slow_start:
            self.slow_start = False
            self.rate = max(self.floor, self.rate * 0.7)
            self._last_change = now
            self._apply()

    def succeeded(self) -> None:
        now = self.clock()
        if now - self._last_change >= 1.0 and self.rate < self.ceiling:
            step = self.rate if self.slow_start else max(1.0, self.ceiling / 50)
            self.rate = min(self.ceiling, self.rate + step)
            self._last_change = now
            self._apply()


class IdentityGate:
    """Lets a job in only when no job in flight, nor an earlier one waiting, shares an identity with it."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}
        self._waiting: list[tuple[int, frozenset[str]]] = []
        self._changed = asyncio.Condition()

    def _blocked(self, ticket: int, identities: frozenset[str]) -> bool:
        if any(i in self._in_flight for i in identities):
            return True
        return any(t < ticket and not identities.isdisjoint(ids) for t, ids in self._waiting)

    async def enter(self, ticket: int, identities: frozenset[str]) -> None:
        async with self._changed:
            entry = (ticket, identities)
            self._waiting.append(entry)
            try:
                await self._changed.wait_for(lambda: not self._blocked(ticket, identities))
            finally:
                self._waiting.remove(entry)
            for identity in identities:
                self._in_flight[identity] = self._in_flight.get(identity, 0) + 1
            self._changed.notify_all()

    async def leave(self, identities: frozenset[str]) -> None:
        async with self._changed:
            for identity in identities:
                left = self._in_flight.pop(identity) - 1
                if left:
                    self._in_flight[identity] = left
            self._changed.notify_all()


T = TypeVar("T")


class _Stopped(Exception):
    """The run is stopping: this job's wait or unanswered attempt was cut short."""

    def __init__(self, sent: bool = False, detail: str = "") -> None:
        super().__init__(detail)
        #: this run sent the job, and the API may have saved it (an abandoned or ambiguous attempt)
        self.sent = sent
        self.detail = detail


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

    def __post_init__(self) -> None:
        self.rate = AdaptiveRate(self.settings.rate, self.settings.min_rate, self.clock)
        self.gate = IdentityGate()
        self._resume_at = 0.0
        self._stopping = asyncio.Event()
        #: tasks in a wait that a stop cuts short, and tasks awaiting an answer (cut after the grace)
        self._waiting: set[asyncio.Task[Any]] = set()
        self._answering: set[asyncio.Task[Any]] = set()
        self._abandoned = False
        self._cancelled: set[asyncio.Task[Any]] = set()

    def stop(self, reason: str, code: StopCode, *, at_once: bool = False) -> None:
        """Take no new job and cut every wait short; requests in flight get `stop_grace` seconds to finish
        (none `at_once`); the rest are reported not attempted."""
        first = not self._stopping.is_set()
        if self.stats.stop_reason is None:
            self.stats.stop_reason, self.stats.stop_code = reason, code
            log.warning("stopping: %s; requests in flight finish, the rest is not attempted", reason)
        elif at_once and not self._abandoned:
            log.warning("stopping at once: requests in flight are abandoned")
        self._stopping.set()
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
        tasks: set[asyncio.Task[Any]] = getattr(self, which)
        setattr(self, which, set())
        for task in tasks:
            self._cancelled.add(task)
            task.cancel()

    async def _interruptible(self, waiting: Awaitable[T], which: str = "_waiting") -> T:
        """`waiting`'s result, unless the stop (or, for "_answering", the end of the grace) cancels it:
        then _Stopped. Cancelling the task that waits costs nothing until a stop, where racing every
        wait against the stop event would cost two tasks per request."""
        task = asyncio.current_task()
        assert task is not None
        if self.stopping if which == "_waiting" else self._abandoned:
            if asyncio.iscoroutine(waiting):
                waiting.close()
            raise _Stopped
        getattr(self, which).add(task)
        try:
            return await waiting
        except asyncio.CancelledError:
            # Cancelled by the stop, and by nothing else (a worker group that is failing cancels too).
            if task in self._cancelled:
                self._cancelled.discard(task)
                if task.uncancel() == 0:
                    raise _Stopped from None
            raise
        finally:
            getattr(self, which).discard(task)

    async def _wait(self, seconds: float) -> None:
        """Sleep, cut short by a stop (_Stopped)."""
        await self._interruptible(self.sleep(seconds))

    async def _within_deadline(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                return await call
        except TimeoutError:
            raise RetryableError(f"no complete answer within {self.settings.request_timeout:g} s") from None

    async def _attempt(self, call: Awaitable[T]) -> T:
        """An API call: at most `request_timeout` seconds in all; once the run is stopping, `stop_grace`
        seconds more at most (none after a second stop), then abandoned (_Stopped)."""
        return await self._interruptible(self._within_deadline(call), "_answering")

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _throttle(self) -> None:
        """Wait out a Retry-After pause, then take a token from the shared rate limit."""
        while (wait := self._resume_at - self.clock()) > 0:
            await self._wait(wait)
        await self._interruptible(self.rate.acquire())

    def _pause_everyone(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, self.clock() + min(seconds, self.settings.retry_after_cap))

    def _backoff(self, attempt: int) -> float:
        return self.jitter.uniform(0, min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** attempt))

    async def _resolve_ambiguous(self, job: Job) -> Job | Outcome:
        """A request that may have been saved, for a customer only its key can find: look it up first."""
        assert job.search_key is not None
        await self._throttle()
        self.stats.searches += 1
        reply = await self._attempt(self.api.find_by_key(job.search_key))
        if not reply.ok:
            # Not "not found": the search said nothing, and sending the job as new could create it twice.
            return Outcome(job.key, Status.FAILED, error_code=ErrorCode.OUTCOME_UNKNOWN,
                           detail=f"customer search: {reply.message}")
        found = [uuid for uuid, _ in reply.matches]
        if len(found) == 1:
            return job.with_uuid(found[0])
        if len(found) > 1:
            return Outcome(job.key, Status.FAILED, error_code="DUPLICATE_KEY",
                           detail=f"{len(found)} customers already carry customer key {job.search_key}")
        return job

    async def _send(self, job: Job) -> Outcome:
        """Every attempt for one job, until an answer that settles it, or a stop."""
        try:
            return await self._attempts(job)
        except _Stopped as stopped:
            if stopped.sent:
                # Failed, not "not attempted": the customer may be saved, and the journal must keep saying so.
                return Outcome(job.key, Status.FAILED, error_code="STOPPED_UNANSWERED",
                               detail=f"{self.stats.stop_reason}: {stopped.detail}")
            return Outcome(job.key, Status.NOT_ATTEMPTED, detail=self.stats.stop_reason or "")

    async def _attempts(self, job: Job) -> Outcome:
        last_error = ""
        maybe_saved = job.maybe_saved
        #: an attempt of this run may have saved the customer
        sent = False
        for attempt in range(1, self.settings.max_attempts + 1):
            if self.stopping:  # no new attempt, nor a retry, once the run is stopping
                raise _Stopped(sent, f"stopped before retrying after: {last_error}")
            try:
                if maybe_saved and job.search_key is not None:
                    try:
                        resolved = await self._resolve_ambiguous(job)
                    except RetryableError as exc:
                        last_error = f"customer search: {exc}"
                        await self._wait(self._backoff(attempt))
                        continue
                    if isinstance(resolved, Outcome):
                        return replace(resolved, attempts=attempt - 1)
                    job = resolved
                await self._throttle()
            except _Stopped:
                raise _Stopped(sent, f"stopped before retrying after: {last_error}") from None
            self.stats.requests += 1
            if attempt > 1:
                self.stats.retries += 1
            try:
                reply = await self._attempt(self.api.create_or_update(job.text))
            except _Stopped:
                raise _Stopped(True, "stopped while the request was unanswered; it may have been saved") from None
            except RetryableError as exc:
                last_error = str(exc)
                log.debug("customer %s attempt %d: %s", job.key, attempt, last_error)
                maybe_saved = maybe_saved or exc.maybe_saved
                sent = sent or exc.maybe_saved
                if exc.retry_after is not None:
                    self._pause_everyone(exc.retry_after)
                if exc.throttled:
                    self.stats.rate_limited += 1
                    self.rate.throttled()
                if attempt < self.settings.max_attempts:
                    try:
                        await self._wait(self._backoff(attempt))
                    except _Stopped:
                        raise _Stopped(sent, f"stopped before retrying after: {last_error}") from None
                continue
            self.rate.succeeded()
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
        return Outcome(job.key, Status.FAILED, attempts=self.settings.max_attempts, error_code="RETRIES_EXHAUSTED",
                       detail=f"gave up after {self.settings.max_attempts} attempts: {last_error}")

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

    def _past_deadline(self) -> bool:
        return self.settings.deadline is not None and self.clock() >= self.settings.deadline

    async def run(self, jobs: Iterable[Job]) -> PoolStats:
        """Send the jobs. Each job queued ends in exactly one on_outcome call; once the run is stopping,
        no further job is taken from `jobs`."""
        started = self.clock()
        queue: asyncio.Queue[tuple[int, Job] | None] = asyncio.Queue(maxsize=self.settings.concurrency * 2)
        # One task group: a worker that fails (a defect) cancels the rest and this feeding, which would
        # otherwise wait forever for room in a queue that no worker drains.
        async with asyncio.TaskGroup() as workers:
            for _ in range(self.settings.concurrency):
                workers.create_task(self._worker(queue))
            for ticket, job in enumerate(jobs):
                if self.stopping:
                    break  # the caller reports what was never queued as not attempted
                await queue.put((ticket, job))
            for _ in range(self.settings.concurrency):
                await queue.put(None)
        self.stats.final_rate = self.rate.rate
        self.stats.send_s = self.clock() - started
        return self.stats
