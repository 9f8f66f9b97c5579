"""Wires the stages: validate(config) and run_import(config) → a summary (also written as summary.json)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import platform
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd

from importer import __version__
from importer.client import ApiClient, Credentials, check_api_url
from importer.config import RunConfig, ValidateConfig
from importer.errors import ConfigError
from importer.mapping import load_mapping
from importer.pool import Job, Outcome, Pool, PoolStats
from importer.prepare import Prepared, prepare
from importer.progress import NoProgress, Progress
from importer.reader import InputFile, open_input
from importer.records import CustomerRequest, encode_body
from importer.report import make_private_dir, write_errors, write_payloads, write_results, write_summary
from importer.sandbox.server import SandboxConfig, running_sandbox
from importer.state import Saved, StateStore, default_state_path, payload_hash
from importer.status import Status, exit_code_for


def default_out_dir(root: Path = Path("mk-import-out")) -> Path:
    """./mk-import-out/<timestamp>/, with a suffix if a run in the same second took the name."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = root / stamp, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{n}"
    return candidate


def _summary(command: str, source: InputFile, mapping: str, table: pd.DataFrame, prepared: Prepared,
             started: float, out: Path, **extra: Any) -> dict[str, Any]:
    counts = {str(k): int(v) for k, v in table["status"].value_counts().items()}
    duration = time.monotonic() - started
    valid = table["status"] != Status.INVALID.value
    summary: dict[str, Any] = {
        "command": command,
        "program": f"mk-import {__version__}",
        "python": platform.python_version(),
        "input": {"file": source.name, "sha256": source.sha256, "encoding": source.encoding,
                  "delimiter": source.delimiter},
        "mapping": mapping,
        "rows": len(table),
        "customers": int(table.loc[valid, "customer_key"].nunique()),
        "counts": counts,
        "requests_sent": 0,
        "retries": 0,
        "rate_limited": 0,
        "duration_s": round(duration, 3),
        "rows_per_s": round(len(table) / duration, 1) if duration > 0 else None,
        "problems": prepared.problems.most_common(),
        "reports": str(out),
        **extra,
    }
    summary["exit_code"] = int(exit_code_for(counts, stopped=summary.get("stopped", False),
                                             interrupted=summary.get("interrupted", False)))
    return summary


def validate(config: ValidateConfig) -> dict[str, Any]:
    """Read, map, validate and group; send nothing; write the reports a run would, with valid/invalid."""
    started = time.monotonic()
    mapping = load_mapping(config.prepare.mapping)
    with open_input(config.prepare.input) as source:
        prepared = prepare(source, mapping, config.prepare, keep_rows=config.payloads is not None)
        out = make_private_dir(config.out_dir or default_out_dir())
        if config.payloads is not None:
            write_payloads(config.payloads, (encode_body(r.body) for r in
                                             prepared.requests(mapping, config.prepare.validate_vin)))
        table = prepared.rows.assign(customer_uuid="", customer_id="")
        write_results(out / "results.csv", table)
        write_errors(out / "errors.csv", source, table, prepared.invalid_raw)
        summary = _summary("validate", source, mapping.name, table, prepared, started, out, api_url=None)
        write_summary(out / "summary.json", summary)
    return summary


# -- run ---------------------------------------------------------------------------------------------
def _identities(request: CustomerRequest) -> frozenset[str]:
    customer = request.body["customer"]
    found = {f"key:{request.key}"}
    found.update(p["phoneNumber"] for p in customer.get("phoneNumbers", ()))
    found.update(e["emailAddress"] for e in customer.get("emails", ()))
    found.update(v["vin"] for v in request.body.get("vehicles", ()) if v.get("vin"))
    return frozenset(found)


@dataclass
class _Ledger:
    """Every request's rows and, once known, its outcome; written to the state as answers arrive."""

    state: StateStore
    saved: dict[str, Saved]
    #: keys an earlier run sent without learning the outcome
    unsettled: set[str]
    progress: Progress
    rows_of: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outcomes: list[tuple[tuple[int, ...], Outcome]] = field(default_factory=list)

    def jobs(self, requests: Iterator[CustomerRequest], full: bool) -> Iterator[Job]:
        for request in requests:
            text = encode_body(request.body)
            fingerprint = payload_hash(text)
            known = self.saved.get(request.key)
            if known is not None and known.payload_hash == fingerprint and not full:
                self._settle(request.source_rows, Outcome(request.key, Status.UNCHANGED, known.customer_uuid,
                                                          known.customer_id))
                continue
            self.rows_of[request.key] = request.source_rows
            if known is not None:
                yield Job(request.key, request.body, _identities(request), fingerprint=fingerprint,
                          text=text).with_uuid(known.customer_uuid)
                continue
            identities = _identities(request)
            findable = len(identities) > 1  # more than the key: the server's matching can find it again
            search_key = None if findable or request.key.startswith("~") else request.key
            if search_key is not None:
                # Journal it first: if this run dies with the request in flight, the next one searches
                # for the customer before sending, instead of creating it a second time.
                self.state.sending(request.key)
            yield Job(request.key, request.body, identities, fingerprint=fingerprint, search_key=search_key,
                      maybe_saved=request.key in self.unsettled, text=text)

    def answer(self, job: Job, outcome: Outcome) -> None:
        if outcome.status == Status.SUCCESS and outcome.customer_uuid:
            self.state.record(job.key, Saved(job.fingerprint, outcome.customer_uuid, outcome.customer_id),
                              journaled=job.search_key is not None or job.maybe_saved)
        elif job.search_key is not None and outcome.status == Status.NOT_ATTEMPTED and not job.maybe_saved:
            self.state.settled(job.key)  # never sent. Anything else keeps the mark: a rerun searches first.
        self._settle(self.rows_of.pop(job.key), outcome)

    def _settle(self, rows: tuple[int, ...], outcome: Outcome) -> None:
        self.outcomes.append((rows, outcome))
        self.progress.advance(outcome.status, len(rows))

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """The row table with every request's outcome on each of its rows."""
        rows = [r for rows, _ in self.outcomes for r in rows]
        per_row = [o for rows, o in self.outcomes for _ in rows]
        positions = table.index.get_indexer(pd.Index(rows))
        columns = {name: table[name].to_numpy(dtype=object).copy() for name in
                   ("status", "customer_uuid", "customer_id", "error_code", "error_message", "warnings")}
        for position, outcome in zip(positions, per_row, strict=True):
            columns["status"][position] = outcome.status.value
            columns["customer_uuid"][position] = outcome.customer_uuid or ""
            columns["customer_id"][position] = outcome.customer_id or ""
            columns["error_code"][position] = outcome.error_code or ""
            columns["error_message"][position] = outcome.detail
            if outcome.warnings:
                api = "API: " + ", ".join(outcome.warnings)
                row_warnings = columns["warnings"][position]
                columns["warnings"][position] = f"{row_warnings}; {api}" if row_warnings else api
        return table.assign(**{name: pd.Series(values, index=table.index, dtype="str")
                               for name, values in columns.items()})


async def _send(config: RunConfig, ledger: _Ledger, jobs: Iterator[Job]) -> tuple[PoolStats, bool, str]:
    """Send the jobs with a pool; (stats, interrupted by Ctrl-C, the API URL used)."""
    credentials = config.credentials
    async with contextlib.AsyncExitStack() as stack:
        api_url = config.api_url
        if config.sandbox:
            credentials = Credentials("sandbox", secrets.token_urlsafe(16))
            api_url = await stack.enter_async_context(
                running_sandbox(SandboxConfig(users={credentials.username: credentials.password})))
        if credentials is None:
            raise ConfigError("no credentials: set MK_USERNAME and MK_PASSWORD, or --credentials-file")
        session = await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.pool.concurrency),
            timeout=ApiClient.timeouts(config.connect_timeout, config.read_timeout)))
        settings = config.pool
        if config.max_duration is not None:
            settings = replace(settings, deadline=time.monotonic() + config.max_duration)
        pool = Pool(ApiClient(session, api_url, config.department, credentials), settings, ledger.answer)
        interrupted = False

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            pool.stop("interrupted (Ctrl-C)")

        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            loop.add_signal_handler(signal.SIGTERM, pool.stop, "terminated (SIGTERM)")
        try:
            stats = await pool.run(jobs)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
    return stats, interrupted, api_url


def run_import(config: RunConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Validate, send what changed, reconcile: every input row ends with one status in results.csv."""
    started = time.monotonic()
    progress = progress or NoProgress()
    api_url = check_api_url(config.api_url, insecure_http=config.insecure_http)
    mapping = load_mapping(config.prepare.mapping)
    with open_input(config.prepare.input) as source:
        prepared = prepare(source, mapping, config.prepare, keep_rows=True)
        out = config.out_dir or default_out_dir()
        # The sandbox forgets its customers when the run ends, so its state lives with the run's reports.
        state_path = config.state_path or (make_private_dir(out) / "state.sqlite" if config.sandbox
                                           else default_state_path(config.department))
        state = StateStore(state_path, config.department)  # refuses a bad state file before any report
        make_private_dir(out)
        try:
            ledger = _Ledger(state, state.load(), state.unsettled(), progress)
            requests = prepared.requests(mapping, config.prepare.validate_vin)
            progress.start(int(prepared.rows.loc[prepared.rows["status"] == Status.VALID, "customer_key"].nunique()))
            try:
                stats, interrupted, api_url = asyncio.run(_send(replace(config, api_url=api_url), ledger,
                                                                ledger.jobs(requests, config.full)))
            finally:
                progress.close()
        finally:
            state.close()
        table = ledger.apply(prepared.rows.assign(customer_uuid="", customer_id=""))
        write_results(out / "results.csv", table)
        write_errors(out / "errors.csv", source, table, prepared.invalid_raw)
        summary = _summary(
            "run", source, mapping.name, table, prepared, started, out, api_url=api_url,
            department=config.department, state=str(state_path), requests_sent=stats.requests,
            retries=stats.retries, rate_limited=stats.rate_limited, searches=stats.searches,
            final_rate=round(stats.final_rate, 2), send_s=round(stats.send_s, 3),
            stopped=stats.stop_reason is not None and not interrupted, interrupted=interrupted,
            stop_reason=stats.stop_reason)
        write_summary(out / "summary.json", summary)
    return summary
