"""How fast and how many at once: a rate that finds the API's limit and stays under it, and in-flight slots.

The API's limit is not documented and may be shared with other clients of the same account, so the rate is
found, not configured (`--rate` is only a ceiling):

- slow start: from a low rate, doubling every couple of round trips (and a handful of requests) while the API
  accepts everything;
- on a 429, the rate that held is what the API accepted from this process in the last second (not the rate
  sent, which the API never sustained); the rate goes to BETA of it, and the answer's 429 siblings within
  the next second do not cut again. A second in which the API accepted nothing (a storm of 429s, another
  client taking the whole limit) keeps the rate that held before and only cuts the rate;
- then the rate regrows as TCP CUBIC's window does, as a function of the time since the cut, not of the
  answers (a run cut to the floor gets an answer every few seconds, and growth per answer stalled there):
  fast back towards the rate that held (0.9 of it within a second), flat around it, then convex beyond it,
  slowly at first, so that the next refusal comes late and costs a few 429s, not a burst; past it without
  a refusal the limit has moved (another client of the account finished) and a slow start takes the room
  back. However deep the cut, the rate is back at the rate that held REGROW x 1.7 seconds after
  the last 429.

A cut proportional to what each process was accepted, and a regrowth on the same clock for every process,
is the rule by which TCP CUBIC flows share a link: several processes on one account converge on equal shares
without talking to each other (a process whose share shrank gives a little more room, CUBIC's fast
convergence).

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
#: ... and a round trip after the last doubling (the answers to the first requests at that rate are in)
SLOW_START_TRIPS = 1.0
#: after a 429, the rate goes to this share of the rate that held (CUBIC's beta)
BETA = 0.8
#: seconds from a cut to the rate that held (CUBIC's K), when the cut was BETA of it
REGROW = 2.0
#: beyond the rate that held the curve is this much flatter: (1 - BETA) x that rate more after PROBE seconds,
#: eight times that after twice as long
PROBE = 5.0
#: two 429s closer than this (or than two round trips) are one overshoot: they cut once
SAME_OVERSHOOT = 1.0
#: a 429 whose rate that held is under this share of the last one means our share shrank (not noise)
FAST_CONVERGENCE = 0.97
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

    def last_second(self, now: float, lag: float = 0.0, tenths: int = 10) -> int:
        """Events in the `tenths` tenths of a second that ended `lag` seconds ago (lag at most one second)."""
        tick = self._advance(now) - min(9, round(lag * 10))
        return sum(self._counts[t % self.SLOTS] for t in range(tick - tenths + 1, tick + 1))


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
        #: the rate that held before the last 429: what the API accepted from us in the second before it
        #: (None before any 429)
        self.limit_seen: float | None = None
        self._accepted = _Window()
        self._sent = _Window()
        self._started = clock()
        self._last_change = self._started
        self._last_cut = -math.inf
        #: when a request last had to wait for the rate (growth only makes sense while the rate binds)
        self._bound_at = -math.inf
        #: the regrowth curve: rate(t) = limit_seen + _c x (t - _epoch - _k)^3
        self._epoch = self._started
        self._c = 0.0
        self._k = 0.0
        self.round_trip = 0.05
        self._guessed_rtt = True

    def bound(self) -> None:
        """A request waited for the rate: the rate, not the API or the input, sets the pace."""
        now = self._bound_at = self.clock()
        if not self.slow_start:
            # Also here, not only on answers: at a low rate answers are seconds apart, and the wait this
            # request is about to take should be at the rate of now.
            self._grow(now)

    def sent(self) -> None:
        """A request goes out now."""
        now = self.clock()
        self._sent.add(now, now)

    def accepted(self, round_trip: float | None = None) -> None:
        """The API processed a request (any answer but a 429) sent `round_trip` seconds ago."""
        now = self.clock()
        # Counted when it was sent, close to when the API counted it: answers handled late by a busy
        # machine would otherwise seem to have been accepted in a bunch.
        self._accepted.add(now - (round_trip or 0.0), now)
        if round_trip is not None:
            # The first answer replaces the guess: a slow start paced by a guess of 50 ms doubled four
            # times before the first answer from an API 200 ms away could say anything.
            self.round_trip = round_trip if self._guessed_rtt else 0.8 * self.round_trip + 0.2 * round_trip
            self._guessed_rtt = False
        self._grow(now)

    def refused(self, round_trip: float | None = None) -> None:
        """The API answered 429 to a request sent `round_trip` seconds ago: go under the rate that held.
        Also at the end of the slow start, when the rate may have been far over the limit, nobody pauses:
        BETA of what the API accepted in a second is what a trailing count or a token bucket takes at once,
        and a limit that wants a pause says so with a long Retry-After (the pool pauses everyone for one)."""
        now = self.clock()
        if now - self._last_cut < max(SAME_OVERSHOOT, 2 * self.round_trip):
            return  # the 429s of one overshoot arrive together: they count once
        # A count, not a rate over a shorter span: an API limits what it accepts in a second, however fast
        # the first ones came. Counted by sending time, over the last second whose answers are all in.
        # The second before the refused request was sent is what the API counted when it refused. A 429 often
        # comes at once, while the answers to the requests sent just before it are still on their way (a
        # round trip's worth: 20 of 100 at 200 ms): those count as the requests sent then, accepted as often
        # as the answered ones were.
        sent = round_trip if round_trip is not None else self.round_trip
        unanswered = min(5, math.ceil(self.round_trip * 12))  # a round trip, and the slower answers of it
        answered = min(1.0, sent + unanswered / 10), 10 - unanswered
        accepted = float(self._accepted.last_second(now, *answered))
        if accepted:  # as many of those as of the answered ones were accepted (none in a storm)
            accepted += (self._sent.last_second(now, min(1.0, sent), unanswered)
                         * min(1.0, accepted / max(1, self._sent.last_second(now, *answered))))
            if round(sent * 10) == 0:
                # The current tenth has only begun: the count covers a little less than a second, and a
                # few percent low would pass for another client taking a share.
                accepted /= 0.9 + (now * 10 - math.floor(now * 10)) / 10
        if accepted > 0:
            held = min(accepted, self.rate)
            if self.limit_seen is not None and held < FAST_CONVERGENCE * self.limit_seen:
                # Our share shrank (another client came): leave it a little more room (fast convergence;
                # not for a count a little under the last one, which is only the count's noise).
                held *= (1 + BETA) / 2
            self.limit_seen = max(held, self.floor)
            self.rate = BETA * min(accepted, self.rate)
        else:
            # Nothing accepted for a second: a storm, or another client holds the whole limit. Cut the rate,
            # but keep what held before as where to regrow to: the storm says nothing about our share.
            self.rate *= BETA
            if self.limit_seen is None:
                self.limit_seen = self.rate / BETA
        self.rate = min(self.ceiling, max(self.floor, self.rate))
        self.slow_start = False
        self._last_cut = self._last_change = self._epoch = now
        held = self.limit_seen
        self._c = held * (1 - BETA) / REGROW**3
        self._k = ((held - self.rate) / self._c) ** (1 / 3) if held > self.rate else 0.0

    def _grow(self, now: float) -> None:
        elapsed = now - self._last_change
        if self.rate >= self.ceiling or now - self._bound_at > max(1.0, 3.0 / self.rate):
            # The rate does not bind (the input or the API sets the pace): the regrowth waits, or it would
            # run up a rate that nobody tried.
            self._epoch += elapsed
            self._last_change = now
            return
        if self.slow_start:
            # Double once the answers to the last rate are in (a round trip) and it carried enough requests
            # to say the API takes it. A fixed tenth of a second per doubling kept a fast API waiting a whole
            # second before 8/s reached thousands; below 160/s it is still that tenth.
            if elapsed >= max(SLOW_START_TRIPS * self.round_trip, min(0.1, SLOW_START_PROOF / self.rate)):
                self.rate = min(self.ceiling, self.rate * 2)
                self._last_change = now
            return
        if elapsed < 0.01:
            return  # a hundred updates a second are plenty
        self._last_change = now
        held = self.limit_seen if self.limit_seen is not None else self.rate
        t = now - self._epoch - self._k
        c = self._c if t < 0 else self._c * (REGROW / PROBE) ** 3
        self.rate = min(self.ceiling, max(self.floor, self.rate, held + c * t * t * t))
        if self.rate >= 2 * held:
            # Twice the rate that held without a 429 (PROBE x 1.7 seconds past it): the limit has moved
            # (another client finished, or a storm set a small rate that held), and a curve scaled to a small
            # rate would take minutes to find a large one. Start again.
            self.slow_start = True


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

    def reserve(self) -> float:
        """Reserve the next free turn; the clock time it is due (now when it is due already)."""
        now = self.clock()
        if self._next > now:
            self.controller.bound()  # before the interval is taken: bound() may let the rate grow
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.controller.rate
        return slot

    async def acquire(self) -> None:
        for _ in range(2):  # a second turn at most: a machine busy for longer has no burst left to avoid
            slot = self.reserve()
            now = self.clock()
            if slot <= now:
                return
            interval = 1.0 / self.controller.rate
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
