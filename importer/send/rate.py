"""How fast and how many at once: a rate that finds the API's limit and stays under it, and in-flight slots.

The API's limit is not documented and may be shared with other clients of the same account, so the rate is
found, not configured (`--rate` is only a ceiling):

- slow start: from a low rate, doubling every couple of round trips (and a handful of requests) while the API
  accepts everything;
- on a 429, the new rate is what the API actually accepted from this process in the last second, a little
  under it (not a fixed cut of a rate the API never sustained), and the answer's 429 siblings within the
  next second do not cut again;
- then it probes upward additively: briskly while well under the last limit found, slowly just under it,
  so that the next refusal comes late and costs one 429, not a burst; past that limit without a refusal
  the limit has moved (another client of the account finished), and the probe speeds up, doubling every
  three seconds, to take the room back (as TCP CUBIC does).

Additive increase in requests per second, equal for every process, and a decrease proportional to what
each was accepted, is the rule by which TCP flows share a link: several processes on one account converge
on equal shares without talking to each other.

The in-flight limit follows Little's law: the rate times the observed latency, with headroom, never above
the `--concurrency` ceiling.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable

#: the rate the slow start begins at (requests/s), unless the ceiling is lower
START_RATE = 8.0
#: the slow start doubles once the API has accepted about this many requests at the current rate (and the
#: answers to it are in), but after a tenth of a second at most
SLOW_START_PROOF = 16
#: after a 429, the new rate is this share of what the API accepted in the last second
BELOW_ACCEPTED = 0.9
#: additive increase per second, in requests/s, far from the last limit found ...
PROBE_STEP = 0.5
#: ... and this share of it between NEAR x that limit and the limit
NEAR_STEP_SHARE = 0.2
NEAR = 0.95
#: past the limit without a refusal, the step doubles every this many seconds (up to MAX_SPEEDUP times)
SPEEDUP_EVERY = 3.0
MAX_SPEEDUP = 32.0
#: a wake-up this much later than its turn means the machine stalled: the turn is taken again
STALL = 0.1
#: in-flight headroom over rate x latency
HEADROOM = 2.0


class _Window:
    """Counts of events in tenth-of-a-second buckets over the last two seconds (cheap at any rate)."""

    SLOTS = 20

    def __init__(self) -> None:
        self._counts = [0] * self.SLOTS
        self._tick = 0

    def _advance(self, now: float) -> int:
        tick = int(now * 10)
        if tick - self._tick >= self.SLOTS:
            self._counts = [0] * self.SLOTS
        else:
            for t in range(self._tick + 1, tick + 1):
                self._counts[t % self.SLOTS] = 0
        self._tick = max(self._tick, tick)
        return tick

    def add(self, at: float, now: float) -> None:
        """One event that happened `at` (at most two seconds before `now`)."""
        tick, latest = int(at * 10), self._advance(now)
        if latest - self.SLOTS < tick <= latest:
            self._counts[tick % self.SLOTS] += 1

    def last_second(self, now: float, lag: float = 0.0) -> int:
        """Events in the second that ended `lag` seconds ago (lag at most one second)."""
        tick = self._advance(now) - min(9, round(lag * 10))
        return sum(self._counts[t % self.SLOTS] for t in range(tick - 9, tick + 1))


class Latencies:
    """Answer latencies: a recent average for the in-flight limit, and a log histogram for percentiles
    (within 2.5%) that costs the same for a hundred answers as for a million."""

    RATIO = 1.05

    def __init__(self) -> None:
        self.recent: float | None = None
        self._bins: collections.Counter[int] = collections.Counter()
        self.count = 0

    def add(self, seconds: float) -> None:
        seconds = max(seconds, 1e-6)
        self.recent = seconds if self.recent is None else 0.9 * self.recent + 0.1 * seconds
        self._bins[round(math.log(seconds, self.RATIO))] += 1
        self.count += 1

    def percentile(self, share: float) -> float | None:
        """Seconds under which `share` of the answers came; None before any answer."""
        if not self.count:
            return None
        rank, seen = share * self.count, 0
        for b in sorted(self._bins):
            seen += self._bins[b]
            if seen >= rank:
                return float(self.RATIO ** b)
        return float(self.RATIO ** max(self._bins))


class RateController:
    """The rate this process sends at, from what the API accepts and refuses (see the module docstring)."""

    def __init__(self, ceiling: float, floor: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling, self.floor, self.clock = ceiling, min(floor, ceiling), clock
        #: requests per second now
        self.rate = min(ceiling, max(self.floor, START_RATE))
        self.slow_start = True
        #: what the API accepted in the second before its last 429 (None before any 429)
        self.limit_seen: float | None = None
        self._accepted = _Window()
        self._started = clock()
        self._last_change = self._started
        self._last_cut = -math.inf
        #: when a request last had to wait for the rate (growth only makes sense while the rate binds)
        self._bound_at = -math.inf
        #: since when the rate has been over `limit_seen` without a refusal
        self._above_since: float | None = None
        self.round_trip = 0.05

    def bound(self) -> None:
        """A request waited for the rate: the rate, not the API or the input, sets the pace."""
        self._bound_at = self.clock()

    def accepted(self, round_trip: float | None = None) -> None:
        """The API processed a request (any answer but a 429) sent `round_trip` seconds ago."""
        now = self.clock()
        # Counted when it was sent, close to when the API counted it: answers handled late by a busy
        # machine would otherwise seem to have been accepted in a bunch.
        self._accepted.add(now - (round_trip or 0.0), now)
        if round_trip is not None:
            self.round_trip = 0.8 * self.round_trip + 0.2 * round_trip
        self._grow(now)

    def refused(self) -> bool:
        """The API answered 429: go back under what it accepted from us in the last second. True when this
        ends the slow start: the rate may then have been far over the limit, and the API's trailing count
        is full for a while, so everyone should wait out its Retry-After before going on."""
        now = self.clock()
        if now - self._last_cut < max(1.0, 2 * self.round_trip):
            return False  # the 429s of one overshoot arrive together: they count once
        # A count, not a rate over a shorter span: an API limits what it accepts in a second, however fast
        # the first ones came.
        # Counted by sending time, over the last second whose answers are all in.
        accepted = self._accepted.last_second(now, lag=self.round_trip)
        self.limit_seen = accepted
        target = BELOW_ACCEPTED * min(accepted, self.rate) if accepted > 0 else self.rate / 2
        self.rate = min(self.ceiling, max(self.floor, target))
        overshoot, self.slow_start = self.slow_start, False
        self._last_cut = self._last_change = now
        self._above_since = None
        return overshoot

    def _grow(self, now: float) -> None:
        elapsed = now - self._last_change
        if self.rate >= self.ceiling or now - self._bound_at > 1.0:
            self._last_change = now
            return
        if self.slow_start:
            # Double once the answers to the last rate are in (two round trips) and it carried enough requests
            # to say the API takes it. A fixed tenth of a second per doubling kept a fast API waiting a whole
            # second before 8/s reached thousands; below 160/s it is still that tenth.
            if elapsed >= max(2 * self.round_trip, min(0.1, SLOW_START_PROOF / self.rate)):
                self.rate = min(self.ceiling, self.rate * 2)
                self._last_change = now
            return
        if now - self._last_cut < max(1.0, 2 * self.round_trip) or elapsed < 0.1:
            return  # let the cut show before probing again
        step = max(PROBE_STEP, 0.01 * self.rate)
        if self.limit_seen is not None and self.rate > self.limit_seen:
            self._above_since = self._above_since if self._above_since is not None else now
            step *= min(MAX_SPEEDUP, 2 ** ((now - self._above_since) / SPEEDUP_EVERY))
        elif self.limit_seen is not None and self.rate >= NEAR * self.limit_seen:
            step *= NEAR_STEP_SHARE
        self.rate = min(self.ceiling, self.rate + step * elapsed)
        self._last_change = now


class Pacer:
    """Spaces requests 1/rate apart (no bursts: a server counting a trailing second sees an even flow).
    Each caller reserves the next free slot, so many waiters cost one timer each."""

    def __init__(self, controller: RateController, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.controller, self.sleep, self.clock = controller, sleep, clock
        self._next = -math.inf

    def take_now(self) -> bool:
        """Take the current turn if it is due now; False (and nothing taken) when acquire() must wait."""
        now = self.clock()
        if self._next > now:
            return False
        self._next = now + 1.0 / self.controller.rate
        return True

    async def acquire(self) -> None:
        for _ in range(2):  # a second turn at most: a machine busy for longer has no burst left to avoid
            now = self.clock()
            slot = max(now, self._next)
            interval = 1.0 / self.controller.rate
            self._next = slot + interval
            if slot <= now:
                return
            self.controller.bound()
            await self.sleep(slot - now)
            # Woken much later than asked (the machine was busy for a while): the turns reserved meanwhile
            # are all due at once. Take a new turn instead of joining a burst. A timer a little late, as on
            # any busy machine, keeps its turn: re-queueing on every late timer would slow the rate itself.
            if self.clock() - slot <= max(STALL, 4 * interval):
                return


class Slots:
    """At most `limit` holders at once, in arrival order; the limit may change at any time."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.held = 0
        #: the most ever held at once
        self.peak = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take_now(self) -> bool:
        """Take a free slot if nobody waits for one; False (and nothing taken) when acquire() must wait."""
        if self.held < self.limit and not self._waiters:
            self._take()
            return True
        return False

    async def acquire(self) -> None:
        if self.take_now():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as it was cancelled: hand it on
            elif waiter in self._waiters:  # a cancelled waiter that _wake passed over is gone already
                self._waiters.remove(waiter)
            raise

    def _take(self) -> None:
        self.held += 1
        self.peak = max(self.peak, self.held)

    def release(self) -> None:
        self.held -= 1
        self._wake()

    def resize(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.held < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)


def in_flight_needed(rate: float, latency: float | None, ceiling: int) -> int:
    """Requests in flight that carry `rate` at `latency` (Little's law), with headroom, within the ceiling."""
    if latency is None:
        return min(ceiling, 4)
    return max(2, min(ceiling, math.ceil(rate * latency * HEADROOM) + 2))
