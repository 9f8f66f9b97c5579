"""A simulated account limit shared by several runs, each paced as the pool paces one, on a simulated clock."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from importer.send.rate import Latencies, Pacer, RateController, in_flight_needed


@dataclass
class Flow:
    controller: RateController
    pacer: Pacer
    start: float = 0.0
    #: customers to send (None: always more)
    customers: int | None = None
    stop: float = math.inf
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    accepted_at: list[float] = field(default_factory=list)
    refused_at: list[float] = field(default_factory=list)
    #: (time, rate) after every answer
    rates: list[tuple[float, float]] = field(default_factory=list)
    finished: float | None = None
    in_flight: int = 0
    #: customers waiting for a worker's turn (a slot, then the rate), and waiting out a Retry-After
    ready: int = 0
    retrying: int = 0
    #: customers waiting for a turn of the pacer
    waiting: int = 0
    done: int = 0
    latencies: Latencies = field(default_factory=Latencies)
    #: requests that took their turn while the first request was unanswered, held until its answer (the
    #: client sends one request at a time until the API has answered once); None once it has
    held: list[float] | None = field(default_factory=list)


def simulate(limit: int, ceilings: list[float], seconds: float, latency: float = 0.02,
             starts: list[float] | None = None, seed: int = 1, bucket: bool = False,
             customers: list[int | None] | None = None, stops: list[float] | None = None,
             storms: tuple[tuple[float, float], ...] | list[tuple[float, float]] = (),
             concurrency: int = 64) -> list[Flow]:
    """Runs that each send as the pool does: `concurrency` workers, each customer taking an in-flight slot
    (rate x latency, pool.in_flight_needed), then a turn of the real Pacer, and after a 429 waiting out a
    Retry-After of 1 s (plus the pool's jitter) before taking a turn again. The server accepts at most `limit`
    requests in any trailing second (refusals not counted), or with `bucket` takes a token from a bucket of
    `limit` refilled at `limit` per second, and refuses everything during `storms` ((start, end) spans);
    it answers after `latency` (+-20%), a 429 at once. A run stops taking customers at its `stops` time.
    As the client does, a run sends its first request alone: the requests that take their turns meanwhile
    leave together when its answer comes. As the pool does, a run of `customers` tells its controller how
    many are left (RateController.jobs_left)."""
    now = [0.0]
    rng = random.Random(seed)
    clock = lambda: now[0]  # noqa: E731
    n = len(ceilings)
    flows = []
    for i, ceiling in enumerate(ceilings):
        controller = RateController(ceiling, 0.5, clock=clock)
        flows.append(Flow(controller, Pacer(controller, clock=clock), start=(starts or [0.0] * n)[i],
                          customers=(customers or [None] * n)[i], stop=(stops or [math.inf] * n)[i]))
    window: deque[float] = deque()
    tokens, stamp = float(limit), 0.0
    events: list[tuple[float, int, int, str, float]] = []  # (time, order, flow, kind, sent at)
    order = 0

    def push(at: float, i: int, kind: str, sent: float = 0.0) -> None:
        nonlocal order
        heapq.heappush(events, (at, order, i, kind, sent))
        order += 1

    def head(i: int) -> None:
        """The first waiter for a turn, as Pacer.acquire's: the turn when it is due at the rate of then."""
        flows[i].controller.bound()
        due = flows[i].pacer.due()
        if due > now[0]:
            push(due, i, "head")
        else:
            flows[i].pacer.take(due, now[0])
            flows[i].waiting -= 1
            push(now[0], i, "send")
            if flows[i].waiting:
                push(now[0], i, "head")

    def take(i: int) -> None:
        """Start every customer that a worker and an in-flight slot are free for."""
        flow = flows[i]
        slots = in_flight_needed(flow.controller.rate, flow.latencies.recent, concurrency)
        while flow.in_flight < slots and now[0] < flow.stop:
            if flow.ready == 0:
                left = None if flow.customers is None else flow.customers - flow.done - flow.in_flight - flow.retrying
                if (left is not None and left <= 0) or flow.in_flight + flow.retrying >= concurrency:
                    return
                if flow.customers is not None:
                    flow.controller.jobs_left(flow.customers - flow.done)
                flow.ready += 1
            flow.ready -= 1
            flow.in_flight += 1
            if not flow.waiting and flow.pacer.take_now():
                push(now[0], i, "send")
            else:
                flow.waiting += 1
                if flow.waiting == 1:
                    push(now[0], i, "head")

    for i, flow in enumerate(flows):
        push(flow.start, i, "take")
    while events:
        at, _, i, kind, sent = heapq.heappop(events)
        if at > seconds:
            break
        now[0] = at
        flow = flows[i]
        if kind == "take":
            take(i)
        elif kind == "head":
            head(i)
        elif kind == "send":  # a turn taken: the request leaves, unless the first one is still unanswered
            flow.sent += 1
            flow.controller.sent()
            if flow.held is not None and flow.sent > 1:
                flow.held.append(at)
            else:
                push(at, i, "arrive", at)
        elif kind == "arrive":
            if any(a <= at < b for a, b in storms):
                ok = False
            elif bucket:
                tokens, stamp = min(float(limit), tokens + (at - stamp) * limit), at
                ok = tokens >= 1
                tokens -= ok
            else:
                while window and window[0] <= at - 1.0:
                    window.popleft()
                ok = len(window) < limit
                if ok:
                    window.append(at)
            # The 429 at once, as a gateway in front of the API answers it (and the sandbox does).
            push(at + (latency * rng.uniform(0.8, 1.2) if ok else 0.001), i, "ok" if ok else "429", sent)
        elif kind == "retry":
            flow.retrying -= 1
            flow.ready += 1
            take(i)
        else:
            flow.in_flight -= 1
            if flow.held is not None:
                for waited in flow.held:
                    push(at, i, "arrive", waited)
                flow.held = None
            if kind == "ok":
                flow.accepted += 1
                flow.done += 1
                flow.accepted_at.append(at)
                flow.latencies.add(at - sent)
                flow.controller.accepted(at - sent)
                if flow.customers is not None and flow.done == flow.customers:
                    flow.finished = at
            else:
                flow.refused += 1
                flow.refused_at.append(at)
                flow.controller.refused(at - sent)
                flow.retrying += 1
                push(at + 1.0 + rng.uniform(0, 0.25), i, "retry")
            flow.rates.append((at, flow.controller.rate))
            take(i)
    return flows


def accepted_between(flow: Flow, start: float, end: float) -> int:
    return sum(start <= t < end for t in flow.accepted_at)
