"""A run's figures for Prometheus: a textfile for node_exporter, or a push to a Pushgateway.

Prometheus only sees the last run, so what needs several runs (the time of the last successful one, how
many runs in a row the time budget stopped) is remembered in the JSON file beside the state file that keeps
the department's recent runs (report/trend.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from importer.report.trend import read as read_runs_file
from importer.report.trend import runs_path
from importer.report.trend import update as update_runs_file
from importer.send.changes import WORDS
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
    #: why the run stopped early (summary.json's stop_code), None if it did not
    stop_code: str | None = None
    #: customers saved per change word (created, name, phones...)
    changes: Mapping[str, int] | None = None
    #: rows to fix whose problem is new tonight, and those reported by earlier runs too
    problems_new: int = 0
    problems_known: int = 0


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
        stop_code=str(stop_code) if stop_code else None,
        changes={str(k): int(v) for k, v in (summary.get("changes") or {}).items()},
        problems_new=int(summary.get("problems_new") or 0),
        problems_known=int(summary.get("problems_known") or 0),
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
        data = read_runs_file(path)
        try:
            return cls(data.get("last_success"), int(data.get("out_of_time_in_a_row", 0)))
        except (ValueError, TypeError):
            return cls()  # unreadable: the next finished run starts it again

    def after(self, facts: RunFacts, now: float) -> History:
        return History(now if facts.finished else self.last_success,
                       self.out_of_time_in_a_row + 1 if facts.out_of_time else 0)

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        # The runs the page draws share the file: only these two keys are replaced.
        update_runs_file(path, last_success=self.last_success, out_of_time_in_a_row=self.out_of_time_in_a_row)


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
    changes = Gauge("mk_import_changes", "Customers the last run saved, by what changed (created, name, phones...)",
                    (*LABELS, "category"), registry=registry)
    for word in WORDS:
        changes.labels(category=word, **labels).set((facts.changes or {}).get(word, 0))
    problems = Gauge("mk_import_problems", "Rows to fix in the last run: problems new tonight, or known from earlier "
                     "runs", (*LABELS, "kind"), registry=registry)
    problems.labels(kind="new", **labels).set(facts.problems_new)
    problems.labels(kind="known", **labels).set(facts.problems_known)
    stopped = Gauge("mk_import_stopped", "1 for why the last run stopped early (its stop_code), 0 for the others",
                    (*LABELS, "stop_code"), registry=registry)
    for code in StopCode:
        stopped.labels(stop_code=code.value, **labels).set(1 if facts.stop_code == code.value else 0)
    if history.last_success is not None:
        gauge("mk_import_last_success_timestamp_seconds", "Unix time the last finished run ended",
              history.last_success)
    return registry


def history_path(state: Path) -> Path:
    return runs_path(state)


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
