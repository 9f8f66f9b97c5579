"""A run's requests second by second (attempts, successes, 429s, retries, latency), kept as timeline.csv.

The pool reports every finished attempt to `Timeline.attempt`; the seconds are counted from the start of
sending, so `mk-import report` can redraw the requests per second and latency of a run long after it.
Latencies are held only for the last few seconds: a bucket is closed (its percentiles computed, its list
dropped) once attempts finish well past it, so a night of requests costs one small row a second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

#: The result of one attempt, as the pool reports it.
SUCCESS, REFUSED, RATE_LIMITED, ERROR = "success", "refused", "rate_limited", "error"
#: Attempts finish out of order by at most a request's duration; older buckets than this are closed.
_OPEN_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Second:
    """What happened in one second of the run (attempts counted in the second they finished)."""

    #: seconds since sending started
    second: int
    attempts: int = 0
    successes: int = 0
    #: answered 429 Too Many Requests
    rate_limited: int = 0
    #: attempts that repeated an earlier one for the same customer
    retries: int = 0
    #: 5xx answers, timeouts and dropped connections
    errors: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0


COLUMNS = tuple(f.name for f in fields(Second))


def _percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ordered list."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class _Bucket:
    __slots__ = ("attempts", "errors", "latencies", "rate_limited", "retries", "successes")

    def __init__(self) -> None:
        self.attempts = self.successes = self.rate_limited = self.retries = self.errors = 0
        self.latencies: list[float] = []

    def close(self, second: int) -> Second:
        ordered = sorted(self.latencies)
        p50 = _percentile(ordered, 0.5) * 1000 if ordered else 0.0
        p95 = _percentile(ordered, 0.95) * 1000 if ordered else 0.0
        return Second(second, self.attempts, self.successes, self.rate_limited, self.retries, self.errors,
                      round(p50, 1), round(p95, 1))


class Timeline:
    """Per-second counts of a run's attempts; `attempt` is the pool's `on_attempt` hook."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self._open: dict[int, _Bucket] = {}
        self._closed: list[Second] = []

    def attempt(self, sent: float, finished: float, result: str, retry: bool) -> None:
        """One finished attempt: when it was sent and answered (the pool's clock), what came of it."""
        second = max(0, int(finished - self.started))
        bucket = self._open.get(second)
        if bucket is None:
            bucket = self._open[second] = _Bucket()
            self._close_before(second - _OPEN_SECONDS)
        bucket.attempts += 1
        bucket.retries += retry
        bucket.successes += result == SUCCESS
        bucket.rate_limited += result == RATE_LIMITED
        bucket.errors += result == ERROR
        bucket.latencies.append(max(0.0, finished - sent))

    def _close_before(self, second: int) -> None:
        for old in sorted(s for s in self._open if s < second):
            self._closed.append(self._open.pop(old).close(old))

    def seconds(self) -> list[Second]:
        """Every second from the start to the last attempt, the quiet ones included (zero attempts)."""
        done = self._closed + [bucket.close(s) for s, bucket in sorted(self._open.items())]
        return fill_gaps(done)


def fill_gaps(seconds: Iterable[Second]) -> list[Second]:
    """The seconds in order, with a zero row for every second in which no attempt finished."""
    by_second = {s.second: s for s in seconds}
    if not by_second:
        return []
    return [by_second.get(n, Second(n)) for n in range(max(by_second) + 1)]
