"""Wires the stages: validate(config) and run_import(config) → a summary (also written as summary.json)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import platform
import secrets
import signal
import sqlite3
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pyarrow.compute as pc

from importer import __version__
from importer.config import Credentials, RunConfig, ValidateConfig
from importer.errors import AfterSendingError, ConfigError
from importer.logs import REDACT
from importer.memory import ParkedFrame, release_memory, use_system_allocator
from importer.prepare.by_value import arrow_of
from importer.prepare.mapping import load_mapping
from importer.prepare.stage import ProblemTally, prepare
from importer.read.containers import Bounds
from importer.read.reader import InputFile, open_input
from importer.report.files import (
    write_changes,
    write_errors,
    write_payloads,
    write_results,
    write_summary,
    write_timeline,
)
from importer.report.folders import claimed as claimed_out_dir
from importer.report.folders import finish as finish_out_dir
from importer.report.folders import make_private_dir, refuse_overwriting_input
from importer.report.known_problems import KnownProblems
from importer.report.merges import flag_merged
from importer.report.outcomes import RowOutcomes, tally_failures, with_outcomes
from importer.report.page import PAGE_RESULT_COLUMNS, write_report_page
from importer.report.trend import remember as remember_run
from importer.report.trend import run_record
from importer.report.workbook import beside as errors_xlsx_beside
from importer.send.changes import MassChange, guard
from importer.send.client import ApiClient, check_api_url, encode_body
from importer.send.network import Proxy, choose_proxy, tls_for
from importer.send.plan import Planner, forecast, no_customers, state_to_read
from importer.send.pool import Job, Pool, PoolStats, event_loop_factory
from importer.send.progress import NoProgress, Progress
from importer.send.recorder import Recorder
from importer.send.state import StateStore, default_state_path
from importer.send.timeline import Timeline
from importer.status import RunResult, Status, StopCode, StopSwitch, exit_code_for

log = logging.getLogger("mk_import")


@dataclass(frozen=True)
class Finished:
    """What a command did: the summary (also written as summary.json) and the typed result the exit code
    is decided from."""

    summary: dict[str, Any]
    result: RunResult


def sandbox_state_path(sandbox_db: Path) -> Path:
    """The state of runs into a sandbox that keeps its customers in `sandbox_db`: beside it."""
    return sandbox_db.with_name(sandbox_db.name + ".state.sqlite")


def _summary(command: str, source: InputFile, mapping: str, table: pd.DataFrame, problems: ProblemTally,
             started: float, out: Path, result: RunResult, **extra: Any) -> dict[str, Any]:
    duration = time.monotonic() - started
    valid = table["status"] != Status.INVALID.value
    return {
        "command": command,
        "program": f"mk-import {__version__}",
        "python": platform.python_version(),
        "input": {"file": source.name, "sha256": source.sha256, "encoding": source.encoding,
                  "delimiter": source.delimiter},
        "mapping": mapping,
        "rows": len(table),
        "customers": _customers(table.loc[valid, "customer_key"]),
        "counts": {str(status): n for status, n in result.counts.items()},
        "requests_sent": 0,
        "retries": 0,
        "rate_limited": 0,
        "duration_s": round(duration, 3),
        "rows_per_s": round(len(table) / duration, 1) if duration > 0 else None,
        "problems": problems.most_common(),
        "reports": str(out),
        "max_invalid": result.max_invalid,
        **extra,
        "stop_code": str(result.stop) if result.stop else None,
        "exit_code": int(exit_code_for(result)),
    }


def _customers(keys: pd.Series) -> int:
    """How many customers these keys name: counted by pyarrow's hash of the keys, where pandas' nunique made
    Python strings of a million keys first."""
    return int(pc.count_distinct(arrow_of(keys)).as_py())


def _counts(table: pd.DataFrame) -> dict[Status, int]:
    return {Status(str(k)): int(v) for k, v in table["status"].value_counts().items()}


def validate(config: ValidateConfig) -> Finished:
    """Read, map, validate and group; send nothing; write the reports a run would, with valid/invalid."""
    started = time.monotonic()
    refuse_overwriting_input(config.prepare.input, config.out_dir, config.payloads)
    with claimed_out_dir(config.out_dir, config.folders) as out:
        mapping = load_mapping(config.prepare.mapping)
        use_system_allocator()
        with open_input(config.prepare.input, config.prepare.sheet, bounds=Bounds.of(config.prepare)) as source:
            wants_requests = config.payloads is not None or config.state_path is not None
            prepared = prepare(source, mapping, config.prepare, keep_rows=wants_requests)
            release_memory()
            extra: dict[str, Any] = {}
            remembered = None
            with contextlib.ExitStack() as stack:
                store = None if config.state_path is None else stack.enter_context(
                    state_to_read(config.state_path, config.department))
                saved = None if config.state_path is None else store.load() if store is not None else no_customers()
                if saved is not None:
                    prepared.recognise_known_keys(saved.index, mapping.customer_key)
                if store is not None:
                    remembered = store.problems()  # read only: the next run, not validate, counts tonight's
                # Built once, after the keys the state knows are recognised: the forecast and the payloads share it.
                requests = prepared.requests(mapping, config.prepare.validate_vin) if wants_requests else None
                if saved is not None and requests is not None:
                    invalid = int((prepared.rows["status"] == Status.INVALID.value).sum())
                    told = forecast(requests, saved, invalid, store.bodies if store is not None else lambda keys: {},
                                    store.hashes if store is not None else lambda keys: {})
                    extra["forecast"] = told.as_dict()
                    mass = guard(told.changes, told.known, config.max_changed)
                    if mass is not None:
                        extra["forecast"]["mass_change"] = mass.message("validate")
                        log.warning("%s", mass.message("validate"))
                    extra["state"] = str(config.state_path)
            make_private_dir(out)
            if config.payloads is not None and requests is not None:
                write_payloads(config.payloads, (encode_body(r.body) for r in requests))
            table = prepared.rows.assign(customer_uuid="", customer_id="", changes="")
            known_problems = KnownProblems(remembered)
            with errors_xlsx_beside(out / "errors.xlsx", out / "errors.csv") as workbook:
                to_fix = write_errors(out / "errors.csv", source, table, prepared.invalid_raw, known_problems, workbook)
                release_memory()  # errors.csv (a quarter of a messy million), before the page
                # results.csv while the workbook is written too: nothing was sent, and the workbook is what a
                # messy migration's validate waits for last.
                write_results(out / "results.csv", table)
                release_memory()  # what formatting a million rows needed, as a run does
                result = RunResult(_counts(table), max_invalid=config.max_invalid, rows=len(table))
                summary = _summary("validate", source, mapping.name, table, prepared.problems, started, out, result,
                                   to_fix=to_fix, api_url=None, problems_new=known_problems.new_rows,
                                   problems_known=known_problems.known_rows, **extra)
                write_summary(out / "summary.json", summary)
                write_report_page(out, mapping=mapping, results=table)
        finish_out_dir(out, config.folders)
    return Finished(summary, result)


# -- run ---------------------------------------------------------------------------------------------
async def _send(config: RunConfig, recorder: Recorder, jobs: Iterator[Job], stops: StopSwitch,
                timeline: Timeline, tls: ssl.SSLContext | None) -> tuple[PoolStats, bool, str]:
    """Send the jobs with a pool, over `tls` (network.tls_for: made once, loading the authorities takes tens
    of milliseconds; None where no connection speaks TLS); (stats, interrupted by Ctrl-C, the API URL used)."""
    credentials = config.credentials
    async with contextlib.AsyncExitStack() as stack:
        api_url = config.api_url
        if config.sandbox:
            # Imported here, by the one command that starts it: a production run never loads the sandbox.
            from importer.sandbox.server import SandboxConfig, running_sandbox

            credentials = Credentials("sandbox", secrets.token_urlsafe(16))
            api_url = await stack.enter_async_context(
                running_sandbox(SandboxConfig(users={credentials.username: credentials.password},
                                              db_path=str(config.sandbox_db) if config.sandbox_db else None)))
        if credentials is None:
            raise ConfigError("no credentials: set MK_USERNAME and MK_PASSWORD, or --credentials-file")
        # trust_env stays off: the proxy is chosen by network.choose_proxy, and aiohttp would also take the
        # API host's credentials from ~/.netrc, which cannot go with the Authorization header sent.
        session = await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.pool.concurrency, ssl=True if tls is None else tls),
            timeout=ApiClient.timeouts(config.connect_timeout, config.read_timeout), trust_env=False))
        settings = config.pool
        if config.max_duration is not None:
            settings = replace(settings, deadline=time.monotonic() + config.max_duration)
        # The embedded sandbox is on this machine's loopback: never through a proxy.
        proxy = None if config.sandbox else run_proxy(config, api_url)
        pool = Pool(ApiClient(session, api_url, config.department, credentials, proxy), settings, recorder.answer,
                    on_attempt=timeline.attempt)
        stops.listen(pool.stop)
        interrupted = False

        def on_sigint() -> None:
            nonlocal interrupted
            if interrupted:
                # A second Ctrl-C abandons the requests in flight too, instead of waiting out their grace.
                pool.stop("interrupted (Ctrl-C)", StopCode.INTERRUPTED, at_once=True)
            interrupted = True
            stops("interrupted (Ctrl-C)", StopCode.INTERRUPTED)

        loop = asyncio.get_running_loop()
        if config.max_duration is not None:
            # A timer, not only a check between jobs: a stop cuts short every wait of the run.
            stack.callback(loop.call_later(config.max_duration, stops, "time budget (--max-duration) reached",
                                           StopCode.TIME_BUDGET).cancel)
        # Signals reach only the main thread (asyncio says so with RuntimeError, uvloop with ValueError): a
        # run started from another thread, as an embedding program may, leaves them to that program.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            loop.add_signal_handler(signal.SIGTERM, stops, "terminated (SIGTERM)", StopCode.TERMINATED)
        try:
            stats = await pool.run(jobs)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
    return stats, interrupted, api_url


def run_proxy(config: RunConfig, api_url: str) -> Proxy | None:
    """The proxy of a run to `api_url`, its password taught to the log filter."""
    proxy = choose_proxy(api_url, config.proxy, credentials=config.proxy_credentials)
    if proxy is not None and proxy.credentials is not None:
        REDACT.add([proxy.credentials.password, proxy.credentials.authorization().split(" ", 1)[1]])
    return proxy


#: What the rows of a refused mass change say (summary.json's stop_reason has the whole message).
MASS_CHANGE_ROWS = "not sent: the run was refused as a mass change (see summary.json's stop_reason)"


def _guard_facts(mass: MassChange | None, limit: float) -> dict[str, Any]:
    """summary.json's `max_changed` and, for a refused run, what the guard found (the page shows it)."""
    facts: dict[str, Any] = {"max_changed": limit}
    if mass is not None:
        facts["mass_change"] = {"known": mass.known, "over": [
            {"category": category, "customers": count, "share": round(100 * count / mass.known, 1),
             "examples": [{k: e[k] for k in ("key", "old", "new")} for e in examples[:3]]}
            for category, count, examples in mass.over]}
    return facts


def _remember_problems(state: StateStore, known: KnownProblems) -> None:
    """This run's problems replace the last run's in the state. The customers are saved already: a state that
    cannot take them costs only the next run's telling known problems from new ones."""
    try:
        state.replace_problems(known.current())
    except sqlite3.Error as exc:
        log.warning("the problems of this run could not be written to the state file (%s); the next run will "
                    "report them as new", exc)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _after_sending(what: str, saved: int, state_path: Path, result: RunResult) -> AfterSendingError:
    return AfterSendingError(
        f"{what} after requests were sent: {saved:,} customers were saved and the state file "
        f"{state_path} has them; rerunning the same command resumes", result)


def run_import(config: RunConfig, progress: Progress | None = None) -> Finished:
    """Validate, send what changed, reconcile: every input row ends with one status in results.csv."""
    started = time.monotonic()
    progress = progress or NoProgress()
    api_url = check_api_url(config.api_url, insecure_http=config.insecure_http)
    # Checked before any report: a wrong proxy setting or CA bundle is a usage error, exit 2.
    proxy = None if config.sandbox else run_proxy(config, api_url)
    tls = tls_for([] if config.sandbox else [api_url] + ([proxy.url] if proxy else []), config.ca_bundle)
    refuse_overwriting_input(config.prepare.input, config.out_dir)
    with claimed_out_dir(config.out_dir, config.folders) as out:
        mapping = load_mapping(config.prepare.mapping)
        use_system_allocator()
        with open_input(config.prepare.input, config.prepare.sheet, keep_rows=True,
                        bounds=Bounds.of(config.prepare)) as source:
            prepared = prepare(source, mapping, config.prepare, keep_rows=True)
            release_memory()  # reading's chunks, before the hours of sending
            # The sandbox forgets its customers when the run ends, so its state lives with the run's reports;
            # unless it keeps them (--sandbox-db), and then the state lives beside them.
            state_path = config.state_path or (
                sandbox_state_path(config.sandbox_db) if config.sandbox and config.sandbox_db
                else out / "state.sqlite" if config.sandbox else default_state_path(config.department))
            state = StateStore(state_path, config.department)  # refuses a bad state file before any report
            make_private_dir(out)
            stops = StopSwitch()
            try:
                prepared.recognise_known_keys(state.keys(), mapping.customer_key)
                rows, problems, invalid_raw = prepared.rows, prepared.problems, prepared.invalid_raw
                requests = prepared.requests(mapping, config.prepare.validate_vin)  # the normalized rows move in
                del prepared
                outcomes = RowOutcomes(rows.index)
                recorder = Recorder(state, progress, outcomes.set, stops)
                # Started before the plan: it counts the customers whose new rows build the body last saved.
                customers = _customers(rows.loc[rows["status"] == Status.VALID, "customer_key"])
                progress.start(customers if config.limit is None else min(customers, config.limit))
                # Not needed again before the reports: on disk through the plan and the sending.
                parked, row_count = ParkedFrame(rows), len(rows)
                del rows
                release_memory()
                plan = Planner(state, recorder).plan(requests, config.full, state.load, config.limit,
                                                     partial=source.is_error_report)
                progress.advance(Status.UNCHANGED, plan.unchanged_rows, len(plan.unchanged))
                timeline = Timeline()  # its seconds count from the start of sending
                # Decided before the pool starts: a refused mass change sends nothing at all.
                mass = None if config.allow_mass_change else guard(plan.changes, plan.known, config.max_changed)
                try:
                    if mass is not None:
                        log.error("%s", mass.message())
                        stats = PoolStats(stop_reason=mass.message(), stop_code=StopCode.MASS_CHANGE)
                        interrupted = False
                    else:
                        # What was read and planned lives through the sending: frozen, the collector no longer
                        # walks it whenever the sending's garbage calls for a full collection (80 ms each, for
                        # 30,000 customers). Refcounting still frees it; unfrozen once the sending is over.
                        # (Not in a program that froze objects of its own: unfreezing would thaw them too.)
                        freeze = gc.get_freeze_count() == 0
                        if freeze:
                            gc.freeze()
                        try:
                            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                                stats, interrupted, api_url = runner.run(_send(
                                    replace(config, api_url=api_url), recorder, plan.jobs, stops, timeline, tls))
                        finally:
                            if freeze:
                                gc.unfreeze()
                finally:
                    progress.close()
                    recorder.write_pending()
                remembered = state.problems()  # the last run's, to tell tonight's new problems from known ones
            except BaseException:
                state.close()
                raise
            unchanged, saved, changes, held = plan.unchanged, recorder.saved, recorder.changes(), plan.held
            change_tally = plan.changes
            # Every body is built: the normalized rows, the grouping and the bookkeeping are not needed for the reports.
            del requests, plan, recorder
            release_memory()
            stop = StopCode.INTERRUPTED if interrupted else stats.stop_code
            sent = stats.requests + stats.searches > 0
            result = RunResult({}, sent=sent, stop=stop, max_invalid=config.max_invalid, rows=row_count)
            try:
                rows = parked.back()
                # A refused mass change: each row says so in a few words, summary.json has the whole message.
                row_reason = MASS_CHANGE_ROWS if mass is not None else stats.stop_reason
                table = with_outcomes(rows.assign(customer_uuid="", customer_id=""), outcomes, unchanged, row_reason,
                                      held, config.limit)
                # The outcomes are on the rows now: their packed copies and the rows' columns from before the
                # sending go, with the per-row copies made to join them.
                del rows, outcomes, unchanged, held
                release_memory()
                table, merged = flag_merged(table)
                release_memory()
                tally_failures(problems, table)
                input_changed = source.changed_since_read()
                if input_changed:
                    log.warning("%s changed during the run; the reports hold the rows as they were read at the start",
                                source.name)
                result = replace(result, counts=_counts(table))
                write_results(out / "results.csv", table)
                release_memory()  # what formatting a million rows needed
                known_problems = KnownProblems(remembered)
                with errors_xlsx_beside(out / "errors.xlsx", out / "errors.csv") as workbook:
                    to_fix = write_errors(out / "errors.csv", source, table, invalid_raw, known_problems, workbook)
                    _remember_problems(state, known_problems)
                    release_memory()  # errors.csv (a quarter of a messy million), before the page
                    write_timeline(out / "timeline.csv", timeline.seconds())
                    # Only the examples' keys are looked for: a set of every key saved held a million texts.
                    wanted = change_tally.example_keys()
                    saved_keys = set(table.loc[(table["changes"] != "") & table["customer_key"].isin(wanted),
                                               "customer_key"].tolist()) if "changes" in table and wanted else set()
                    write_changes(out / "changes.json", change_tally.saved_only(saved_keys) if mass is None
                                  else change_tally.examples)
                    summary = _summary(
                        "run", source, mapping.name, table, problems, started, out, result, to_fix=to_fix,
                        api_url=api_url, department=config.department, state=str(state_path),
                        requests_sent=stats.requests,
                        retries=stats.retries, rate_limited=stats.rate_limited, searches=stats.searches,
                        final_rate=round(stats.final_rate, 2), send_s=round(stats.send_s, 3),
                        concurrency_used=stats.concurrency_used, concurrency_limit=stats.concurrency_limit,
                        latency_p50_ms=_ms(stats.latency_p50), latency_p95_ms=_ms(stats.latency_p95),
                        stop_reason=stats.stop_reason, input_changed=input_changed, merged_customers=merged,
                        limit=config.limit,
                        changes=changes, **_guard_facts(mass, config.max_changed),
                        proxy=proxy.url if proxy else None,
                        ca_bundle=str(config.ca_bundle) if config.ca_bundle else None,
                        problems_new=known_problems.new_rows, problems_known=known_problems.known_rows)
                    write_summary(out / "summary.json", summary)
                    try:
                        remember_run(state_path, run_record(summary, saved))  # before the page: it shows tonight's too
                    except OSError as exc:
                        log.warning("could not remember the run beside the state (%s): %s", state_path,
                                    exc.strerror or exc)
                    page_rows = table[PAGE_RESULT_COLUMNS]
                    del table  # the other columns of a million rows, while the page is made
                    release_memory()
                    write_report_page(out, mapping=mapping, results=page_rows)
            except OSError as exc:
                if not sent:
                    raise
                failed = f"the reports in {out} could not be written ({exc.strerror or exc})"
                raise _after_sending(failed, saved, state_path,
                                     replace(result, stop=StopCode.REPORT_WRITE_FAILED)) from None
            except KeyboardInterrupt:
                if not sent:
                    raise
                raise _after_sending("interrupted while the reports were written", saved, state_path,
                                     replace(result, stop=StopCode.INTERRUPTED)) from None
            finally:
                state.close()
        finish_out_dir(out, config.folders)
    return Finished(summary, result)
