"""Wires the stages: validate(config) and run_import(config) → a summary (also written as summary.json)."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd

from importer import __version__
from importer.client import ApiClient, Credentials, check_api_url, encode_body
from importer.config import RunConfig, ValidateConfig
from importer.errors import ConfigError
from importer.ledger import Ledger, RowOutcomes
from importer.mapping import load_mapping
from importer.outdir import choose as choose_out_dir
from importer.outdir import finish as finish_out_dir
from importer.pool import Job, Pool, PoolStats
from importer.prepare import Prepared, prepare
from importer.progress import NoProgress, Progress
from importer.reader import InputFile, open_input
from importer.report import make_private_dir, write_errors, write_payloads, write_results, write_summary
from importer.sandbox.server import SandboxConfig, running_sandbox
from importer.state import StateStore, default_state_path
from importer.status import Status, exit_code_for


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
    out = choose_out_dir(config.out_dir, config.folders)
    mapping = load_mapping(config.prepare.mapping)
    with open_input(config.prepare.input) as source:
        prepared = prepare(source, mapping, config.prepare, keep_rows=config.payloads is not None)
        make_private_dir(out)
        if config.payloads is not None:
            write_payloads(config.payloads, (encode_body(r.body) for r in
                                             prepared.requests(mapping, config.prepare.validate_vin)))
        table = prepared.rows.assign(customer_uuid="", customer_id="")
        write_results(out / "results.csv", table)
        write_errors(out / "errors.csv", source, table, prepared.invalid_raw)
        summary = _summary("validate", source, mapping.name, table, prepared, started, out, api_url=None)
        write_summary(out / "summary.json", summary)
    finish_out_dir(out, config.folders)
    return summary


# -- run ---------------------------------------------------------------------------------------------
async def _send(config: RunConfig, ledger: Ledger, jobs: Iterator[Job]) -> tuple[PoolStats, bool, str]:
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
        ledger.stop_run = pool.stop
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
    out = choose_out_dir(config.out_dir, config.folders)
    mapping = load_mapping(config.prepare.mapping)
    with open_input(config.prepare.input) as source:
        prepared = prepare(source, mapping, config.prepare, keep_rows=True)
        # The sandbox forgets its customers when the run ends, so its state lives with the run's reports.
        state_path = config.state_path or (out / "state.sqlite" if config.sandbox
                                           else default_state_path(config.department))
        state = StateStore(state_path, config.department)  # refuses a bad state file before any report
        make_private_dir(out)
        try:
            ledger = Ledger(state, state.unsettled(), progress, RowOutcomes(prepared.rows.index))
            requests = prepared.requests(mapping, config.prepare.validate_vin)
            progress.start(int(prepared.rows.loc[prepared.rows["status"] == Status.VALID, "customer_key"].nunique()))
            try:
                stats, interrupted, api_url = asyncio.run(_send(replace(config, api_url=api_url), ledger,
                                                                ledger.jobs(requests, config.full)))
            finally:
                progress.close()
                ledger.write_pending()
        finally:
            state.close()
        table = ledger.apply(prepared.rows.assign(customer_uuid="", customer_id=""), stats.stop_reason)
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
    finish_out_dir(out, config.folders)
    return summary
