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
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiolimiter import AsyncLimiter

from importer.client import Reply, encode_body
from importer.errors import FatalApiError, RetryableError
from importer.status import Status

log = logging.getLogger("mk_import.pool")


class Api(Protocol):
    async def create_or_update(self, body: str) -> Reply: ...

    async def find_by_key(self, customer_key: str) -> list[str]: ...


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
    fingerprint: str = ""
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
        self.rate = AdaptiveRate(self.settings.rate, self.settings.min_rate, self.clock)
        self.gate = IdentityGate()
        self._resume_at = 0.0
        self._stopping = asyncio.Event()

    def stop(self, reason: str) -> None:
        """Take no new job; jobs in flight finish; the rest are reported not attempted."""
        if self.stats.stop_reason is None:
            self.stats.stop_reason = reason
            log.warning("stopping: %s; requests in flight finish, the rest is not attempted", reason)
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _throttle(self) -> None:
        """Wait out a Retry-After pause, then take a token from the shared rate limit."""
        while (wait := self._resume_at - self.clock()) > 0:
            await self.sleep(wait)
        await self.rate.acquire()

    def _pause_everyone(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, self.clock() + min(seconds, self.settings.retry_after_cap))

    def _backoff(self, attempt: int) -> float:
        return self.jitter.uniform(0, min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** attempt))

    async def _resolve_ambiguous(self, job: Job) -> Job | Outcome:
        """A request that may have been saved, for a customer only its key can find: look it up first."""
        assert job.search_key is not None
        await self._throttle()
        self.stats.searches += 1
        found = await self.api.find_by_key(job.search_key)
        if len(found) == 1:
            return job.with_uuid(found[0])
        if len(found) > 1:
            return Outcome(job.key, Status.FAILED, error_code="DUPLICATE_KEY",
                           detail=f"{len(found)} customers already carry customer key {job.search_key}")
        return job

    async def _attempt(self, text: str, *, retry: bool) -> Reply:
        """One POST, reported to on_attempt with when it was sent and answered and how."""
        sent = self.clock()
        try:
            reply = await self.api.create_or_update(text)
        except RetryableError as exc:
            self.on_attempt(sent, self.clock(), "rate_limited" if exc.throttled else "error", retry)
            raise
        except FatalApiError:
            self.on_attempt(sent, self.clock(), "refused", retry)
            raise
        self.on_attempt(sent, self.clock(), "success" if reply.ok else "refused", retry)
        return reply

    async def _send(self, job: Job) -> Outcome:
        """Every attempt for one job, until an answer that settles it."""
        last_error = ""
        maybe_saved = job.maybe_saved
        for attempt in range(1, self.settings.max_attempts + 1):
            if maybe_saved and job.search_key is not None:
                try:
                    resolved = await self._resolve_ambiguous(job)
                except RetryableError as exc:
                    last_error = f"customer search: {exc}"
                    await self.sleep(self._backoff(attempt))
                    continue
                if isinstance(resolved, Outcome):
                    return replace(resolved, attempts=attempt - 1)
                job = resolved
            await self._throttle()
            self.stats.requests += 1
            if attempt > 1:
                self.stats.retries += 1
            try:
                reply = await self._attempt(job.text, retry=attempt > 1)
            except RetryableError as exc:
                last_error = str(exc)
                log.debug("customer %s attempt %d: %s", job.key, attempt, last_error)
                maybe_saved = maybe_saved or exc.maybe_saved
                if exc.retry_after is not None:
                    self._pause_everyone(exc.retry_after)
                if exc.throttled:
                    self.stats.rate_limited += 1
                    self.rate.throttled()
                if attempt < self.settings.max_attempts:
                    await self.sleep(self._backoff(attempt))
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
                self.stop("time budget (--max-duration) reached")
            if self.stopping:
                await self.on_outcome(job, Outcome(job.key, Status.NOT_ATTEMPTED, detail=self.stats.stop_reason or ""))
                continue
            await self.gate.enter(ticket, job.identities)
            try:
                outcome = await self._send(job)
            except FatalApiError as exc:
                self.stop(f"the API refused the credentials ({exc.code})")
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
