"""A simulated account limit shared by several rate controllers, on a simulated clock (no real time)."""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from importer.send.rate import RateController


@dataclass
class Flow:
    controller: RateController
    start: float = 0.0
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    accepted_at: list[float] = field(default_factory=list)
    paused_until: float = 0.0


def simulate(limit: int, ceilings: list[float], seconds: float, latency: float = 0.02,
             starts: list[float] | None = None, seed: int = 1, bucket: bool = False) -> list[Flow]:
    """Each flow always has work and sends as fast as its controller allows; the server accepts at most
    `limit` requests in any trailing second (refusals not counted), or with `bucket` takes a token from a
    bucket of `limit` refilled at `limit` per second; it answers after `latency`."""
    now = [0.0]
    rng = random.Random(seed)
    flows = [Flow(RateController(c, 0.5, clock=lambda: now[0]), start=(starts or [0.0] * len(ceilings))[i])
             for i, c in enumerate(ceilings)]
    window: deque[float] = deque()
    tokens, stamp = float(limit), 0.0
    events: list[tuple[float, int, int, str]] = []  # (time, order, flow, kind)
    order = 0
    for i, flow in enumerate(flows):
        heapq.heappush(events, (flow.start, order, i, "send"))
        order += 1
    while events:
        at, _, i, kind = heapq.heappop(events)
        if at > seconds:
            break
        now[0] = at
        flow = flows[i]
        if kind == "send" and at < flow.paused_until:
            heapq.heappush(events, (flow.paused_until, order, i, "send"))
            order += 1
        elif kind == "send":
            flow.controller.bound()
            flow.sent += 1
            if bucket:
                tokens, stamp = min(float(limit), tokens + (at - stamp) * limit), at
                ok = tokens >= 1
                tokens -= ok
            else:
                while window and window[0] <= at - 1.0:
                    window.popleft()
                ok = len(window) < limit
                if ok:
                    window.append(at)
            answer = at + latency * rng.uniform(0.8, 1.2)
            heapq.heappush(events, (answer, order, i, "ok" if ok else "429"))
            heapq.heappush(events, (at + 1.0 / flow.controller.rate, order + 1, i, "send"))
            order += 2
        elif kind == "ok":
            flow.accepted += 1
            flow.accepted_at.append(at)
            flow.controller.accepted(latency)
        else:
            flow.refused += 1
            if flow.controller.refused():
                flow.paused_until = at + 1.0  # Retry-After: 1, for every request of the flow
    return flows
