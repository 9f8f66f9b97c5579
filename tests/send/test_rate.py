"""The rate controller, pacer and in-flight slots on an injected clock, and simulated shared limits."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from importer.send.rate import START_RATE, Latencies, Pacer, RateController, Slots, in_flight_needed
from tests.helpers import FakeClock
from tests.ratesim import simulate


def test_slow_start_begins_low_and_doubles_while_everything_is_accepted():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=500, floor=0.5, clock=clock)
    assert rate.rate == START_RATE
    seen = []
    for _ in range(6):
        clock.now += 0.11
        rate.bound()
        rate.accepted(0.01)
        seen.append(rate.rate)
    assert seen == [16, 32, 64, 128, 256, 500]


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
    for _ in range(50):  # the API accepted 50 in the last second
        clock.now += 0.02
        rate.bound()
        rate.accepted()
    rate.slow_start = True
    assert rate.refused() is True  # the end of the slow start: everyone waits out the Retry-After
    assert rate.rate == pytest.approx(45, rel=0.03)  # 0.9 x 50 (counted in tenths of a second), not 0.9 x 200
    assert rate.limit_seen == pytest.approx(50, rel=0.03)
    cut = rate.rate
    assert rate.refused() is False  # its siblings of the same second do not cut again
    assert rate.rate == cut


def test_probing_is_additive_and_slow_near_the_limit_found():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=500, floor=0.5, clock=clock)
    rate.slow_start, rate.limit_seen, rate.rate = False, 50.0, 40.0
    for _ in range(10):
        clock.now += 0.2
        rate.bound()
        rate.accepted()
    far = rate.rate - 40
    assert far == pytest.approx(1.0)  # 0.5 per second, far from 50
    rate.rate = 49.0
    for _ in range(10):
        clock.now += 0.2
        rate.bound()
        rate.accepted()
    assert rate.rate - 49 == pytest.approx(0.2)  # a fifth of that close to it


def test_the_rate_never_leaves_floor_and_ceiling():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=40, floor=2, clock=clock)
    for _ in range(30):
        clock.now += 1.5
        rate.refused()
    assert rate.rate == 2
    for _ in range(1000):
        clock.now += 0.5
        rate.bound()
        rate.accepted()
    assert rate.rate == 40


def test_pacer_spaces_requests_evenly_without_a_burst():
    clock = FakeClock(500.0)
    rate = RateController(ceiling=10, floor=1, clock=clock)
    rate.slow_start = False
    pacer = Pacer(rate, clock.sleep, clock)

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


@pytest.mark.parametrize(("limit", "ceiling", "seconds", "bucket"), [(50, 500, 30, False), (20, 200, 10, False),
                                                                       (50, 500, 30, True)])
def test_one_process_finds_the_limit_and_stays_just_under_it(limit, ceiling, seconds, bucket):
    [flow] = simulate(limit, [ceiling], seconds, bucket=bucket)
    assert flow.refused <= 0.03 * flow.sent
    assert flow.accepted >= 0.9 * limit * seconds


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
    assert min(gaps) >= 0.125 - 1e-9  # never two at once, even after the stall
