"""The rate controller, pacer and in-flight slots on an injected clock, and simulated shared limits."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.send.rate import (
    BETA,
    EARLY,
    PLATEAU,
    START_RATE,
    Latencies,
    Pacer,
    RateController,
    Slots,
    in_flight_needed,
)
from tests.helpers import FakeClock
from tests.ratesim import accepted_between, simulate


def test_slow_start_begins_low_and_doubles_while_everything_is_accepted():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=500, floor=0.5, clock=clock)
    assert rate.rate == START_RATE
    seen, reached = [rate.rate], None
    while clock.now < 501:  # every request at the rate accepted, its answer in 10 ms
        clock.now += 1 / rate.rate
        rate.bound()
        rate.accepted(0.01)
        if rate.rate != seen[-1]:
            seen.append(rate.rate)
            reached = clock.now - 500
    assert seen == [8, 16, 32, 64, 128, 256, 500]  # doubling, never more at once
    assert reached is not None
    assert reached < 0.4  # where a tenth of a second per doubling below 160/s took 0.6 s


def test_below_a_tenth_of_a_second_of_proof_the_slow_start_doubles_on_the_first_answer_at_each_rate():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=100_000, floor=0.5, clock=clock)
    seen = []
    while rate.rate < 160:  # 16 requests take more than a tenth of a second
        clock.now += 1 / rate.rate  # the next turn at the rate
        rate.bound()
        clock.now += 0.002
        rate.accepted(0.002)  # its answer, 2 ms later
        seen.append(rate.rate)
    assert seen == [16, 32, 64, 128, 256]
    assert clock.now - 500 < 0.26  # where a tenth of a second per doubling took half a second
    # An answer to a request sent before the last doubling says nothing of the new rate.
    rate = RateController(ceiling=100_000, floor=0.5, clock=clock)
    clock.now += 0.125
    rate.bound()
    clock.now += 0.002
    rate.accepted(0.002)
    assert rate.rate == 16
    clock.now += 0.02
    rate.bound()
    rate.accepted(0.05)  # sent 50 ms ago, at 8/s
    assert rate.rate == 16
    rate.accepted(0.001)
    assert rate.rate == 32


def _accepted_then_refused(rate: RateController, clock: FakeClock, accepted: int, every: float) -> None:
    """`accepted` requests sent `every` seconds apart, each accepted at once, then a 429."""
    for _ in range(accepted):
        clock.now += every
        rate.bound()
        rate.sent()
        rate.accepted()
    rate.refused(0.0)


def test_a_slow_start_begun_again_proves_each_rate_anew():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=1000, floor=0.5, clock=clock)
    rate.rate = 20
    _accepted_then_refused(rate, clock, 20, 0.05)  # the API accepted 20 in the last second, then refused one
    assert not rate.slow_start
    while not rate.slow_start:  # no 429 since: the curve climbs to twice the rate that held, then starts again
        clock.now += 0.01
        rate.bound()
        rate.sent()
        rate.accepted(0.001)
    again = rate.rate
    assert again < 160
    clock.now += 0.02
    rate.bound()
    rate.accepted(0.05)  # sent before the slow start began again: proves nothing of its rate
    assert rate.rate == again
    rate.accepted(0.001)
    assert rate.rate == 2 * again


def test_slow_start_doubles_faster_once_a_handful_of_requests_come_within_a_tenth_of_a_second():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=100_000, floor=0.5, clock=clock)
    rate.rate = 1600.0  # SLOW_START_PROOF requests take 10 ms at this rate
    for _ in range(40):
        clock.now += 0.0002
        rate.bound()
        rate.accepted(0.001)  # answers in 1 ms: two round trips are soon over
    assert rate.rate == 1600  # 8 ms carried 13 requests, too few to say the API takes this rate
    clock.now += 0.003
    rate.bound()
    rate.accepted(0.001)
    assert rate.rate == 3200  # after 11 ms, not a tenth of a second
    slow = RateController(ceiling=100_000, floor=0.5, clock=clock)
    slow.rate = 1600.0
    for _ in range(5):
        clock.now += 0.011
        slow.bound()
        slow.accepted(0.2)  # answers take 200 ms: the rate doubles once they are in, not before
    assert slow.rate == 1600


def test_the_rate_does_not_grow_when_it_is_not_what_holds_the_run_back():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=500, floor=0.5, clock=clock)
    for _ in range(20):
        clock.now += 0.5
        rate.accepted(0.01)  # no request waited for the rate: the input or the API sets the pace
    assert rate.rate == START_RATE


def test_a_429_sets_the_rate_from_what_the_api_accepted_in_the_last_second():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=500, floor=0.5, clock=clock)
    rate.rate = 200
    _accepted_then_refused(rate, clock, 50, 0.02)  # the API accepted 50 in the last second
    assert not rate.slow_start
    assert rate.rate == pytest.approx(BETA * 50, rel=0.03)  # of the 50 it accepted (in tenths of a second), not of 200
    assert rate.limit_seen == pytest.approx(50, rel=0.03)
    cut = rate.rate
    rate.refused(0.0)
    assert rate.rate == cut  # its siblings of the same second do not cut again


def _at_limit(clock: FakeClock, held: float) -> RateController:
    """A controller past its slow start whose last 429 came at `held` requests/s."""
    rate = RateController(ceiling=10_000, floor=0.5, clock=clock)
    rate.rate = held
    for _ in range(max(2, int(held))):
        clock.now += 1 / held
        rate.bound()
        rate.sent()
        rate.accepted()
    clock.now += 1 / held  # the next request, at the same rate, is the first refused
    rate.sent()
    rate.refused(0.0)
    return rate


def _drive(rate: RateController, clock: FakeClock, seconds: float) -> None:
    """Requests waiting for the rate and answered, as fast as the rate allows, for `seconds`."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now += min(0.05, 1 / rate.rate)
        rate.bound()
        rate.accepted()


@pytest.mark.parametrize("held", [2.0, 40.0, 100.0, 1000.0])
def test_after_a_429_the_rate_is_back_near_it_within_three_seconds_and_probes_beyond_it_slowly(held):
    clock = FakeClock(500.0)
    rate = _at_limit(clock, held)
    assert rate.limit_seen == pytest.approx(held, rel=0.15)
    held = rate.limit_seen
    assert rate.rate < 0.9 * held
    _drive(rate, clock, 3.0)
    assert rate.rate >= 0.9 * held  # fast back to the rate that held
    assert rate.rate <= 1.02 * held  # ... and flat around it
    _drive(rate, clock, 2.0)
    assert rate.rate <= 1.1 * held  # carefully beyond it
    _drive(rate, clock, 10.0)
    assert rate.rate >= 1.5 * held  # but beyond it all the same: the limit may have moved


def test_the_rate_regrows_on_time_not_on_answers_so_a_run_at_the_floor_rises_again():
    # What held a run at 0.5/s: growth came with answers, and only when a request had waited for the rate
    # within the last second; at 0.5/s answers are two seconds apart, so the rate never moved again.
    clock = FakeClock(500.0)
    rate = _at_limit(clock, 40.0)
    clock.now += 1.0
    for _ in range(20):  # a storm: every request refused for twenty seconds
        clock.now += 1.0
        rate.refused(0.2)
    assert rate.rate == 0.5
    held = rate.limit_seen
    assert held is not None
    assert held >= 30  # a second with nothing accepted says nothing of it
    pacer = Pacer(rate, clock.sleep, clock)
    storm_over = clock.now

    async def go() -> None:
        while clock.now < storm_over + 4.0:  # requests sent as the pool sends them: a turn, then the answer
            await pacer.acquire()
            clock.now += 0.2
            rate.accepted(0.2)

    asyncio.run(go())
    assert rate.rate >= 0.9 * held  # within REGROW x 1.7 s of the last 429


def test_the_rate_does_not_regrow_while_it_does_not_bind():
    clock = FakeClock(500.0)
    rate = _at_limit(clock, 40.0)
    for _ in range(20):
        clock.now += 0.5
        rate.accepted(0.01)  # no request waited for the rate (for more than a second): the input sets the pace
        if clock.now - rate._last_cut < 1.6:
            held_back = rate.rate
    assert rate.rate == held_back
    _drive(rate, clock, 10.0)
    assert rate.rate >= 1.1 * held_back  # when it binds again, it regrows


def test_the_rate_never_leaves_floor_and_ceiling():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=40, floor=2, clock=clock)
    for _ in range(30):
        clock.now += 1.5
        rate.refused(0.1)
    assert rate.rate == 2
    for _ in range(1000):
        clock.now += 0.5
        rate.bound()
        rate.accepted()
    assert rate.rate == 40


def _steady_pacer(ceiling: float, at: float | None = None) -> tuple[FakeClock, RateController, Pacer]:
    """A pacer on a fake clock whose controller is past its slow start, at `at` requests/s (else where it
    starts)."""
    clock = FakeClock(500.0)
    rate = RateController(ceiling=ceiling, floor=1, clock=clock)
    rate.slow_start = False
    if at is not None:
        rate.rate = at
    return clock, rate, Pacer(rate, clock.sleep, clock)


def test_pacer_spaces_requests_evenly_without_a_burst():
    clock, _, pacer = _steady_pacer(ceiling=10)

    async def go() -> None:
        for _ in range(5):
            await pacer.acquire()

    asyncio.run(go())
    assert clock.sleeps == pytest.approx([0.125] * 4)  # 8/s: the slow start's first rate


def test_a_due_turn_and_a_free_slot_are_taken_without_waiting_and_only_then():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=10, floor=1, clock=clock)
    pacer = Pacer(rate, clock.sleep, clock)
    assert pacer.take_now()
    assert not pacer.take_now()  # the next turn is 1/8 s away (the slow start's first rate)
    clock.now += 0.125
    assert pacer.take_now()
    slots = Slots(1)
    assert slots.take_now()
    assert not slots.take_now()
    assert slots.held == 1
    slots.release()
    assert slots.take_now()


def test_slots_hold_at_most_the_limit_and_follow_a_new_limit():
    async def go() -> tuple[list[int], int]:
        slots = Slots(2)
        held: list[int] = []

        async def user() -> None:
            await slots.acquire()
            held.append(slots.held)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            slots.release()

        await asyncio.gather(*(user() for _ in range(6)))
        slots.resize(4)
        await asyncio.gather(*(user() for _ in range(8)))
        return held, slots.peak

    held, peak = asyncio.run(go())
    assert max(held[:6]) == 2
    assert peak == 4


def test_in_flight_follows_rate_times_latency_within_the_ceiling():
    assert in_flight_needed(100, 0.2, 64) == 42  # 20 needed, twice that, and two more
    assert in_flight_needed(100, 0.001, 64) == 3
    assert in_flight_needed(1_000_000, 0.01, 32) == 32
    assert in_flight_needed(20, None, 64) == 4  # before any answer


def test_latency_percentiles():
    latencies = Latencies()
    for ms in range(1, 101):
        latencies.add(ms / 1000)
    assert latencies.percentile(0.5) == pytest.approx(0.050, rel=0.05)
    assert latencies.percentile(0.95) == pytest.approx(0.095, rel=0.05)
    assert Latencies().percentile(0.5) is None


@pytest.mark.parametrize(("limit", "ceiling", "latency", "bucket"), [(50, 500, 0.02, False), (20, 200, 0.02, False),
                                                                       (50, 500, 0.02, True), (100, 500, 0.2, False)])
def test_one_process_finds_the_limit_and_stays_just_under_it(limit, ceiling, latency, bucket):
    [flow] = simulate(limit, [ceiling], 60, latency=latency, bucket=bucket)
    # Past the slow start, whose overshoot is a one-time cost of a few dozen 429s at most.
    accepted, refused = accepted_between(flow, 5, 60), sum(t >= 5 for t in flow.refused_at)
    assert refused <= 0.04 * (accepted + refused)
    assert accepted >= 0.88 * limit * 55
    assert flow.refused <= 3 * limit


def test_processes_sharing_one_limit_share_it_fairly_without_talking():
    flows = simulate(40, [100] * 4, 120, starts=[0.0, 0.3, 0.7, 1.1])
    sent, refused = sum(f.sent for f in flows), sum(f.refused for f in flows)
    assert refused <= 0.05 * sent
    assert sum(f.accepted for f in flows) >= 0.85 * 40 * 120
    assert min(f.accepted for f in flows) >= 0.5 * 40 * 120 / 4


def test_a_late_process_gets_its_share():
    flows = simulate(40, [100] * 2, 240, starts=[0.0, 60.0])
    late = [t for t in flows[1].accepted_at if t > 120]
    early = [t for t in flows[0].accepted_at if t > 120]
    assert len(late) >= 0.5 * len(early)


def test_below_the_limit_the_ceiling_is_the_rate():
    [flow] = simulate(50, [40], 30)
    assert flow.refused == 0
    assert flow.accepted >= 0.95 * 40 * 29


def test_pacer_spreads_turns_that_a_busy_machine_made_late_instead_of_bursting():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=10, floor=1, clock=clock)
    pacer = Pacer(rate, clock.sleep, clock)
    sent: list[float] = []

    async def stalled_sleep(seconds: float) -> None:
        await clock.sleep(seconds + (2.0 if len(clock.sleeps) == 3 else 0.01))  # one wake-up 2 s late

    pacer.sleep = stalled_sleep

    async def go() -> None:
        for _ in range(8):
            await pacer.acquire()
            sent.append(clock.now)

    asyncio.run(go())
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    # Never two at once, even after the stall: each turn 1/8 s after the last, less the 10 ms a wake-up may
    # be late (a late timer keeps its turn's time).
    assert min(gaps) >= 0.125 - 0.01 - 1e-9


def test_in_the_slow_start_a_doubling_while_the_next_request_waits_brings_its_turn_forward():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=1000, floor=1, clock=clock)
    sent: list[float] = []

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if len(sent) == 1 and rate.rate == START_RATE:
            rate.accepted(clock.now - sent[0])  # the first request's answer, while the second waits its turn

    pacer = Pacer(rate, sleep, clock)

    async def go() -> None:
        for _ in range(2):
            await pacer.acquire()
            sent.append(clock.now)

    asyncio.run(go())
    assert rate.rate == 2 * START_RATE
    # The turn at the doubled rate, not the one at 8/s the second request began to wait for.
    assert sent[1] - sent[0] == pytest.approx(1 / (2 * START_RATE))


def test_a_round_trip_measured_as_nothing_does_not_make_the_slow_start_wait_forever():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=1000, floor=1, clock=clock)
    pacer = Pacer(rate, clock.sleep, clock)

    async def go() -> None:
        await pacer.acquire()
        rate.accepted(0.0)  # an answer at once (a clock that does not move)
        await asyncio.wait_for(pacer.acquire(), 1)  # looks again every EARLY, and its clock moves on

    asyncio.run(go())
    assert rate.round_trip == 0.0
    assert min(clock.sleeps) == EARLY


@settings(max_examples=int(os.environ.get("RATE_EXAMPLES", "30")), deadline=None)
@given(storms=st.lists(st.tuples(st.floats(2, 40), st.floats(0.5, 20)), min_size=1, max_size=4),
       latency=st.sampled_from([0.02, 0.2]), limit=st.sampled_from([20, 100]), bucket=st.booleans())
def test_after_any_storm_of_429s_the_rate_returns_to_the_limit_within_a_bounded_time(storms, latency, limit, bucket):
    spans = [(start, start + length) for start, length in storms]
    end = max(b for _, b in spans)
    [flow] = simulate(limit, [10 * limit], end + 30, latency=latency, storms=spans, bucket=bucket)
    # Every request refused, then none: from fifteen seconds after the storm on, the run is at the limit
    # (a storm that ended the slow start leaves a small rate that held: the curve doubles it, then a slow
    # start finds the limit).
    after = [accepted_between(flow, s, s + 5) / 5 for s in range(int(end) + 15, int(end) + 30, 5)]
    assert sum(after) / len(after) >= 0.8 * limit, after
    assert min(after) >= 0.7 * limit, after  # and no five seconds of it far under


def test_a_run_sharing_the_limit_takes_it_all_back_when_the_other_run_ends():
    flows = simulate(100, [500, 500], 100, latency=0.2, stops=[1e9, 40.0])
    assert accepted_between(flows[0], 60, 100) >= 0.85 * 100 * 40


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_against_a_window_of_100_per_second_gets_0_9_of_it_over_the_whole_run(seed):
    # bench_rate's window100: 1,500 customers, --rate 500, 200 ms answers; the first request alone, the slow
    # start, its overshoot and the last customer's answer all count.
    [flow] = simulate(100, [500], 60, latency=0.2, customers=[1500], seed=seed)
    assert flow.finished is not None
    assert 1500 / flow.finished >= 0.9 * 100
    assert flow.refused <= 0.03 * flow.sent


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_four_runs_on_one_window_share_it_fairly_with_few_429s(seed):
    # bench_rate's fleet4: four runs of 490 customers, each --rate 100, started within half a second.
    starts = [0.0, 0.1 * seed, 0.2, 0.05 * seed]
    flows = simulate(40, [100] * 4, 120, latency=0.003, customers=[490] * 4, starts=starts, seed=seed)
    assert sum(f.refused for f in flows) <= 0.05 * sum(f.sent for f in flows)
    for flow, start in zip(flows, starts, strict=True):
        assert flow.finished is not None
        assert 490 / (flow.finished - start) >= 0.5 * 40 / 4


def test_a_change_of_rate_applies_to_the_next_turn_not_after_the_turns_already_waiting():
    clock, rate, pacer = _steady_pacer(ceiling=1000, at=100.0)
    sent: list[float] = []

    async def request() -> None:
        await pacer.acquire()
        sent.append(clock.now)
        if len(sent) == 3:
            rate.rate = 10.0  # a 429's cut, while seven more wait for their turns

    async def go() -> None:
        await asyncio.gather(*(request() for _ in range(10)))

    asyncio.run(go())
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps[:2] == pytest.approx([0.01, 0.01])
    assert gaps[2:] == pytest.approx([0.1] * 7)  # turns reserved at 100/s sent at 100/s made the overshoot
    rate.rate = 1000.0  # a slow start's doubling: the next turn comes at once, not after one at the old rate
    clock.now += 0.001
    asyncio.run(go())
    # Ten turns 1 ms apart, each sent up to EARLY before it.
    assert 9 * 0.001 - EARLY - 1e-9 <= sent[-1] - sent[-10] <= 9 * 0.001 + 1e-9


def test_a_turn_due_within_a_millisecond_goes_without_a_wait_and_the_turns_keep_the_rate():
    clock, _, pacer = _steady_pacer(ceiling=10_000, at=10_000.0)
    sent: list[float] = []

    async def go() -> None:
        for _ in range(1_000):
            await pacer.acquire()
            sent.append(clock.now)

    asyncio.run(go())
    # No loop can wait a tenth of a millisecond: the turns due within EARLY go at once, and the pacer sleeps
    # only for a turn further off ...
    assert sent[:11] == [500.0] * 11
    assert min(clock.sleeps) > EARLY
    # ... while the turns stay 0.1 ms apart: a thousand of them take a tenth of a second, less EARLY at most.
    assert 999 / 10_000 - EARLY - 1e-9 <= sent[-1] - sent[0] <= 999 / 10_000 + 1e-9
    assert all(count <= 10_000 * 0.01 + 11 for count in
               (sum(1 for t in sent if start <= t < start + 0.01) for start in sent))  # never more than EARLY ahead


def test_the_last_jobs_of_a_run_do_not_probe_beyond_the_plateau():
    clock = FakeClock(500.0)
    rate = _at_limit(clock, 100.0)
    held = rate.limit_seen
    assert held is not None
    rate.jobs_left(1000)  # ten seconds of jobs: probing goes on
    _drive(rate, clock, 8.0)
    assert rate.rate > 1.01 * held
    rate.jobs_left(140)  # under LAST_SECONDS at the rate: the probe stops, back at the plateau
    _drive(rate, clock, 10.0)
    assert rate.rate == pytest.approx(PLATEAU * held)
