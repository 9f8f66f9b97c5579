"""How fast and how many at once: a rate that finds the API's limit and stays under it, and in-flight slots.

The API's limit is not documented and may be shared with other clients of the same account, so the rate is
found, not configured (`--rate` is only a ceiling):

- slow start: from a low rate, doubling every round trip while the API accepts everything, once the rate has
  carried a handful of requests (below 160/s, once the API has accepted one request sent at it);
- on a 429, the rate that held is what the API accepted from this process in the second before the refused
  request, counted exactly from the sending times (not the rate sent, which the API never sustained); the
  rate goes to BETA of it, and the answer's 429 siblings within the next second do not cut again. A second
  in which the API accepted nothing (a storm of 429s, another client taking the whole limit) keeps the rate
  that held before and only cuts the rate;
- then the rate regrows as TCP CUBIC's window does, as a function of the time since the cut, not of the
  answers (a run cut to the floor gets an answer every few seconds, and growth per answer stalled there):
  fast back towards the rate that held (0.9 of it within a second), flat a little under it (PLATEAU: the
  count is the limit itself, and a run sitting on it is refused at every jitter of its timers, while the
  room left lets a run with a small share grow), then convex beyond it, slowly at first, so that the next
  refusal comes late and costs a few 429s, not a burst; past it without a refusal the limit has moved
  (another client of the account finished) and a slow start takes the room back. However deep the cut, the
  rate is back at the rate that held REGROW x 1.7 seconds after the last 429.

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
#: answers to it are in), but after a tenth of a second at most ...
SLOW_START_PROOF = 16
#: ... and, at a rate too low to carry SLOW_START_PROOF requests in that tenth, as soon as the API has accepted
#: one request sent at it, a round trip after the last doubling: at 8/s a tenth of a second carries less than
#: one request, so the tenth proved nothing more than that first answer, and five tenths below 160/s held a
#: fast API half a second at a few hundred requests in all
SLOW_START_TENTH = 0.1
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
#: a wake-up this much later than its turn means the machine stalled: the next turn counts from the wake-up
STALL = 0.1
#: a turn due within this many seconds is taken now. An event loop waits in whole milliseconds (its timers
#: and its poll count them): a shorter wait cost a turn of the loop, a future and a timer, for a wake-up no
#: nearer its turn. At 10,000/s, where turns are 0.1 ms apart, a quarter to a half of a run's requests waited
#: so (7,010 and 14,498 of 29,610 in two runs against the sandbox).
EARLY = 0.001
#: the regrowth levels off at this share of the rate that held. At 1.0 (with an exact count, which is the
#: limit itself) runs sharing one limit each held their slots of a full window and a late run stayed at a
#: tenth of it; at 0.95 to 0.98 they share it, 0.97 keeping the most (simulated: tests/ratesim.py)
PLATEAU = 0.97
#: the jobs that take less than this many seconds at the rate are the run's last (see jobs_left)
LAST_SECONDS = 1.5
#: in-flight headroom over rate x latency
HEADROOM = 2.0


class _Times:
    """When the events of the last few seconds happened, each to the microsecond: a count over any second
    is exact (a count in tenths of a second was off by a few percent, which the curve then sat above)."""

    KEEP = 3.0

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def add(self, at: float, now: float) -> None:
        """One event that happened `at` (an answer may come long after its request: a slow one is dropped)."""
        self._times.append(at)
        while self._times and self._times[0] < now - self.KEEP:  # nearly in order: the oldest on the left
            self._times.popleft()

    def between(self, start: float, end: float) -> int:
        """Events at `start` or later and before `end` (within the last KEEP seconds): once per cut, not per
        request."""
        return sum(start <= t < end for t in self._times)


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
        #: when the requests were sent that the API accepted, refused, and all requests sent
        self._accepted, self._refused, self._sent = _Times(), _Times(), _Times()
        self._started = clock()
        self._last_change = self._started
        self._last_cut = -math.inf
        self._last_jobs = False
        #: when a request last had to wait for the rate (growth only makes sense while the rate binds)
        self._bound_at = -math.inf
        #: the regrowth curve: rate(t) = PLATEAU x limit_seen + _c x (t - _epoch - _k)^3
        self._epoch = self._started
        self._c = 0.0
        self._k = 0.0
        self.round_trip = 0.05
        self._guessed_rtt = True
        #: requests sent at the slow start's current rate that the API accepted (counted since _last_change)
        self._proved = 0

    def jobs_left(self, count: int) -> None:
        """Only `count` jobs are left to send. Once they last under LAST_SECONDS at the rate, no probing
        beyond the plateau any more: the room it would find comes too late to be used, and its 429 holds
        the last customers a Retry-After longer (one in the last second of a 16 s run made it 6% longer)."""
        if self._last_jobs or count > self.rate * LAST_SECONDS:
            return
        self._last_jobs = True
        if self.limit_seen is not None and not self.slow_start:
            self.rate = min(self.rate, max(self.floor, PLATEAU * self.limit_seen))

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
        sent = now - (round_trip or 0.0)
        self._accepted.add(sent, now)
        if self.slow_start and sent >= self._last_change:
            self._proved += 1
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
        sent = now - (round_trip if round_trip is not None else self.round_trip)
        self._refused.add(sent, now)
        if now - self._last_cut < max(SAME_OVERSHOOT, 2 * self.round_trip):
            return  # the 429s of one overshoot arrive together: they count once
        # A count, not a rate over a shorter span: an API limits what it accepts in a second, however fast
        # the first ones came. Counted by sending time, close to when the API counted them: the second before
        # the refused request was sent is what the API counted when it refused it. The answers to the requests
        # sent in the last round trip are still on their way (20 of 100 at 200 ms); the API accepted as many
        # of those as of the answered ones (all of them when 429s come at once, as from a gateway).
        answered, refused = self._accepted.between(sent - 1.0, sent), self._refused.between(sent - 1.0, sent)
        unanswered = max(0, self._sent.between(sent - 1.0, sent) - answered - refused)
        accepted = answered + unanswered * (answered / (answered + refused) if answered + refused else 1.0)
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
        plateau = self.limit_seen * PLATEAU
        self._c = plateau * (1 - BETA) / REGROW**3
        self._k = ((plateau - self.rate) / self._c) ** (1 / 3) if plateau > self.rate else 0.0

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
            # to say the API takes it: SLOW_START_PROOF of them, or a tenth of a second's worth; below
            # 160/s, one accepted.
            proof = SLOW_START_PROOF / self.rate
            if elapsed >= SLOW_START_TRIPS * self.round_trip and (
                    elapsed >= min(SLOW_START_TENTH, proof) or (proof > SLOW_START_TENTH and self._proved > 0)):
                self.rate = min(self.ceiling, self.rate * 2)
                self._last_change = now
                self._proved = 0
            return
        if elapsed < 0.01:
            return  # a hundred updates a second are plenty
        self._last_change = now
        held = self.limit_seen if self.limit_seen is not None else self.rate
        t = now - self._epoch - self._k
        c = self._c if t < 0 else 0.0 if self._last_jobs else self._c * (REGROW / PROBE) ** 3
        self.rate = min(self.ceiling, max(self.floor, self.rate, PLATEAU * held + c * t * t * t))
        if self.rate >= 2 * held:
            # Twice the rate that held without a 429 (PROBE x 1.7 seconds past it): the limit has moved
            # (another client finished, or a storm set a small rate that held), and a curve scaled to a small
            # rate would take minutes to find a large one. Start again, proving each rate anew.
            self.slow_start = True
            self._proved = 0


class Pacer:
    """Spaces requests 1/rate apart (no bursts: a server counting a trailing second sees an even flow); a
    request may go up to EARLY before its turn, the turns themselves staying 1/rate apart. Waiters queue;
    only the first sleeps, until the last turn plus 1/rate at the rate of the moment, so a change of rate
    applies to the next turn. (Turns reserved ahead at the rate of their reservation held a slow start at
    8/s for a round trip after it had doubled, and sent a slow start's turns reserved at 500/s after its
    first 429: most of its overshoot.)"""

    def __init__(self, controller: RateController, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.controller, self.sleep, self.clock = controller, sleep, clock
        self._last = -math.inf
        #: a waiter is first in line (sleeping until its turn)
        self._head = False
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()

    def due(self) -> float:
        """When the next turn is due, at the rate of now."""
        return self._last + 1.0 / self.controller.rate

    def take(self, due: float, now: float) -> None:
        """The turn due at `due` is taken `now`. A timer a little late, as on any busy machine, keeps its
        time: counting from when it woke would slow the rate itself. Woken much later (the machine stalled),
        the next turn counts from now: a burst of the turns missed meanwhile is what a server counting a
        trailing second refuses."""
        self._last = due if now - due <= max(STALL, 4.0 / self.controller.rate) else now

    def take_now(self) -> bool:
        """Take the next turn if nobody waits and it is due now (within EARLY); False (and nothing taken) when
        acquire() must wait."""
        if self._head or self._queue:
            return False
        now, due = self.clock(), self.due()
        if due > now + EARLY:
            return False
        self.take(due, now)
        return True

    async def acquire(self) -> None:
        if self.take_now():
            return
        if self._head or self._queue:
            waiter = asyncio.get_running_loop().create_future()
            self._queue.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._next_in_line()  # made first as it was cancelled: hand it on
                elif waiter in self._queue:
                    self._queue.remove(waiter)
                raise
        self._head = True
        controller = self.controller
        try:
            while True:
                controller.bound()  # the rate, not the API or the input, sets the pace (may grow it)
                now, due = self.clock(), self.due()
                if due <= now + EARLY:
                    self.take(due, now)
                    return
                # In the slow start the rate may double with any answer, and the turn with it: a sleep to the
                # turn of the rate of now held each doubling back to the turn of the rate before (125 ms at
                # 8/s). It wakes after a round trip at most (EARLY at least) to look again.
                look_again = max(EARLY, controller.round_trip) if controller.slow_start else math.inf
                await self.sleep(min(due - now, look_again))
        finally:
            self._next_in_line()

    def _next_in_line(self) -> None:
        self._head = False
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                self._head = True
                waiter.set_result(None)
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
