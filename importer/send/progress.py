"""Progress of a run: a tqdm bar on a terminal, a log line every few seconds without one (cron)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from importer.status import Status

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger("mk_import")


class Progress(Protocol):
    def start(self, customers: int) -> None: ...

    def advance(self, status: Status, rows: int, customers: int) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def start(self, customers: int) -> None:
        pass

    def advance(self, status: Status, rows: int, customers: int) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A bar of customers with rows/s and the success/failed counts."""

    def __init__(self) -> None:
        self._bar: tqdm[Any] | None = None
        self._counts: Counter[str] = Counter()
        self._rows = 0

    def start(self, customers: int) -> None:
        # smoothing=0: rates are averages over the run, so customers/s and rows/s read alike.
        from tqdm import tqdm  # here: a run without a bar (cron, --progress none) does not import it

        self._bar = tqdm(total=customers, unit="cust", dynamic_ncols=True, leave=True, smoothing=0)

    def advance(self, status: Status, rows: int, customers: int) -> None:
        self._counts[status] += customers
        self._rows += rows
        if self._bar is not None:
            self._bar.update(customers)
            elapsed = max(float(self._bar.format_dict["elapsed"]), 1e-6)
            self._bar.set_postfix_str(f"{self._rows / elapsed:,.0f} rows/s ok={self._counts[Status.SUCCESS]} "
                                      f"same={self._counts[Status.UNCHANGED]} failed={self._counts[Status.FAILED]}",
                                      refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class LogProgress:
    """One log line every `every` seconds."""

    def __init__(self, every: float = 30.0) -> None:
        self.every = every
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._done = 0
        self._rows = 0
        self._started = self._last = time.monotonic()

    def start(self, customers: int) -> None:
        self._total = customers
        self._started = self._last = time.monotonic()

    def advance(self, status: Status, rows: int, customers: int) -> None:
        self._counts[status] += customers
        self._done += customers
        self._rows += rows
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = self._done / elapsed
        eta = (self._total - self._done) / rate if rate else 0.0
        counts = " ".join(f"{k}={v}" for k, v in sorted(self._counts.items()))
        # The same figures as fields, for log shippers (--log-format json): no parsing of the message.
        fields = {"customers_done": self._done, "customers_total": self._total, "rows_done": self._rows,
                  "rows_per_s": round(self._rows / elapsed, 1), "eta_s": round(eta, 1),
                  "counts": {str(k): v for k, v in sorted(self._counts.items())}}
        log.info("progress %d/%d customers, %.0f rows/s, eta %.0fs, %s", self._done, self._total,
                 self._rows / elapsed, eta, counts, extra=fields)

    def close(self) -> None:
        pass
