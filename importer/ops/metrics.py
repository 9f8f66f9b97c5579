"""A run's figures for Prometheus: a textfile for node_exporter, or a push to a Pushgateway.

Prometheus only sees the last run, so what needs several runs (the time of the last successful one, how
many runs in a row the time budget stopped) is remembered in a small JSON file beside the state file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from importer.report.folders import private_file
from importer.status import Status, StopCode

log = logging.getLogger("mk_import.metrics")

JOB = "mk-import"
LABELS = ("dealer", "department")


@dataclass(frozen=True)
class RunFacts:
    """What the metrics say about one run, read from its summary.json keys."""

    counts: Mapping[str, int]
    requests: int
    retries: int
    rate_limited: int
    duration_s: float
    exit_code: int
    #: every row got its status (the run was not stopped before the end)
    finished: bool
    #: stopped by --max-duration
    out_of_time: bool


def facts_from_summary(summary: Mapping[str, Any]) -> RunFacts:
    """The one place that reads summary.json's keys; a summary-less failure gives just its exit code."""
    stop_code = summary.get("stop_code")
    return RunFacts(
        counts={str(k): int(v) for k, v in (summary.get("counts") or {}).items()},
        requests=int(summary.get("requests_sent") or 0),
        retries=int(summary.get("retries") or 0),
        rate_limited=int(summary.get("rate_limited") or 0),
        duration_s=float(summary.get("duration_s") or 0.0),
        exit_code=int(summary["exit_code"]),
        finished="counts" in summary and not stop_code,
        out_of_time=stop_code == StopCode.TIME_BUDGET,
    )


@dataclass(frozen=True)
class History:
    """What Prometheus cannot know from the last run alone."""

    #: Unix time the last finished run ended; None if none has
    last_success: float | None = None
    #: runs in a row stopped by the time budget, up to and including the last one
    out_of_time_in_a_row: int = 0

    @classmethod
    def load(cls, path: Path | None) -> History:
        if path is None:
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data.get("last_success"), int(data.get("out_of_time_in_a_row", 0)))
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()  # none yet, or unreadable: the next finished run starts it again

    def after(self, facts: RunFacts, now: float) -> History:
        return History(now if facts.finished else self.last_success,
                       self.out_of_time_in_a_row + 1 if facts.out_of_time else 0)

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with private_file(path) as stream:
            json.dump({"last_success": self.last_success, "out_of_time_in_a_row": self.out_of_time_in_a_row}, stream)


def registry_for(facts: RunFacts, history: History, dealer: str, department: str, now: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = {"dealer": dealer, "department": department}

    def gauge(name: str, text: str, value: float) -> None:
        Gauge(name, text, LABELS, registry=registry).labels(**labels).set(value)

    rows = Gauge("mk_import_rows", "Rows of the last run, by status", (*LABELS, "status"), registry=registry)
    for status in Status:
        rows.labels(status=status.value, **labels).set(facts.counts.get(status.value, 0))
    gauge("mk_import_requests", "Requests the last run sent, retries included", facts.requests)
    gauge("mk_import_retries", "Retries in the last run", facts.retries)
    gauge("mk_import_rate_limited", "HTTP 429 answers in the last run", facts.rate_limited)
    gauge("mk_import_duration_seconds", "Duration of the last run", facts.duration_s)
    gauge("mk_import_exit_code", "Exit code of the last run", facts.exit_code)
    gauge("mk_import_last_run_timestamp_seconds", "Unix time the last run ended", now)
    gauge("mk_import_time_budget_stops_in_a_row", "Runs in a row stopped by --max-duration",
          history.out_of_time_in_a_row)
    if history.last_success is not None:
        gauge("mk_import_last_success_timestamp_seconds", "Unix time the last finished run ended",
              history.last_success)
    return registry


def history_path(state: Path) -> Path:
    return state.with_name(state.name + ".runs.json")


def publish(summary: Mapping[str, Any], *, dealer: str, department: str, metrics_file: Path | None,
            pushgateway: str | None, state: Path | None, now: float | None = None) -> None:
    """Write and/or push the run's metrics.

    The import is over when this runs: a metric that cannot be written or pushed is a warning, and the run's
    exit code stands.
    """
    now = time.time() if now is None else now
    facts = facts_from_summary(summary)
    memory = history_path(state) if state is not None else None
    history = History.load(memory).after(facts, now)
    try:
        history.save(memory)
    except OSError as exc:
        log.warning("could not remember the run for the metrics in %s: %s", memory, exc.strerror or exc)
    registry = registry_for(facts, history, dealer, department, now)
    if metrics_file is not None:
        try:
            metrics_file.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(metrics_file), registry)  # through a temporary file: never read half written
        except OSError as exc:
            log.warning("could not write the metrics to %s: %s", metrics_file, exc.strerror or exc)
    if pushgateway is not None:
        try:
            push_to_gateway(pushgateway, job=JOB, registry=registry, grouping_key={"dealer": dealer}, timeout=10)
        except (URLError, OSError) as exc:
            # The URL may carry credentials: name the failure, never the address.
            log.warning("could not push the metrics to the Pushgateway: %s", getattr(exc, "reason", exc))
