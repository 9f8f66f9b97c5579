"""Command line: arguments → one frozen config → the stage that does the work → exit code. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importer.arguments import RUN_DEFAULTS, build_parser
from importer.config import (
    DEFAULT_MAX_CHANGED,
    DEPARTMENT_RULE,
    Credentials,
    PoolSettings,
    PrepareConfig,
    ReportFolders,
    RunConfig,
    ValidateConfig,
    is_department,
)
from importer.errors import AfterSendingError, ConfigError, ImporterError, InputError
from importer.logs import REDACT, setup_logging
from importer.send.progress import BarProgress, LogProgress, NoProgress, Progress
from importer.status import ExitCode, exit_code_for, exit_words

if TYPE_CHECKING:  # the pipeline (pandas, pyarrow) is imported by the commands that need it, not by --help
    from importer.pipeline import Finished


def _checked_department(department: str) -> str:
    """A department token: it is part of every request's path and of the default state file's name."""
    if not is_department(department):
        raise ConfigError(f"--department-uuid {department[:40]!r}: {DEPARTMENT_RULE}")
    return department


def _defaults(args: argparse.Namespace) -> None:
    """The run options that neither the command line nor a dealers file gave take their defaults."""
    for key, value in RUN_DEFAULTS.items():
        if getattr(args, key, value) is None:
            setattr(args, key, value)


def _prepare_config(args: argparse.Namespace) -> PrepareConfig:
    _defaults(args)
    return PrepareConfig(input=args.file, mapping=args.mapping, strict=args.strict, validate_vin=args.validate_vin,
                         allow_empty=args.allow_empty, min_rows=args.min_rows, sheet=args.sheet,
                         max_unpacked_mb=args.max_unpacked_mb, max_ratio=args.max_ratio)


def _print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    """The closing summary: for a person on stderr, or one JSON log line with --log-format json.

    A `run` without a terminal (cron) stays silent when every row went well, so that only a night with
    something to look at produces output (and cron mail).
    """
    if args.log_format == "json":
        logging.getLogger("mk_import").info("finished", extra={"summary": summary})
        return
    if args.verbosity < 0:
        return
    all_well = summary["exit_code"] == ExitCode.OK and args.verbosity == 0
    if summary["command"] == "run" and all_well and not sys.stderr.isatty():
        return
    counts = ", ".join(f"{n:,} {status}" for status, n in sorted(summary["counts"].items(), key=lambda i: -i[1]))
    print(f"{summary['command']}: {summary['rows']:,} rows ({counts or 'none'}); "
          f"{summary['customers']:,} customers; {summary['duration_s']:.1f} s", file=sys.stderr)
    if "forecast" in summary:
        f = summary["forecast"]
        print(f"a run would create {f['create']:,} customers, update {f['update']:,}, leave {f['unchanged']:,} "
              f"unchanged; {f['invalid']:,} rows invalid", file=sys.stderr)
        changed = ", ".join(f"{n:,} {word}" for word, n in f.get("changes", {}).items() if n and word != "created")
        if changed:
            print(f"it would change: {changed}", file=sys.stderr)

    if summary["problems"]:
        print("most frequent problems:", file=sys.stderr)
        for p in summary["problems"]:
            print(f"  {p['rows']:>8,}  {p['column']}: {p['problem']} (e.g. row {p['example_row']})", file=sys.stderr)
    folder = Path(summary["reports"]).resolve()
    print(f"page:    {folder / 'report.html'}", file=sys.stderr)
    to_fix = int(summary.get("to_fix", 0))
    if to_fix:
        print(f"to fix:  {to_fix:,} row{'s' if to_fix != 1 else ''} in {folder / 'errors.csv'} and "
              f"{folder / 'errors.xlsx'}", file=sys.stderr)
    else:
        print(f"to fix:  nothing (reports in {folder})", file=sys.stderr)
    code = int(summary["exit_code"])
    words = exit_words(code)
    print(f"exit {code}: {words}" if words else f"exit {code}", file=sys.stderr)


def _folders(args: argparse.Namespace, root: Path | None) -> ReportFolders:
    if args.keep is not None and args.keep < 1:
        raise ConfigError("--keep must be at least 1")
    if args.out is not None and args.keep is not None:
        raise ConfigError("--keep prunes dated report folders; it does not go with --out")
    return ReportFolders(keep=args.keep, overwrite=args.overwrite, **({"root": root} if root else {}))


def _validate(args: argparse.Namespace) -> int:
    from importer.pipeline import validate
    from importer.send.state import default_state_path

    department = _checked_department(args.department_uuid) if args.department_uuid else None
    state = args.state or (default_state_path(department) if department else None)
    finished = validate(ValidateConfig(_prepare_config(args), out_dir=args.out, payloads=args.payloads,
                                       max_invalid=args.max_invalid, state_path=state, department=department,
                                       max_changed=args.max_changed,
                                       folders=_folders(args, None)))
    _print_summary(finished.summary, args)
    return exit_code_for(finished.result)


def _read_credentials_file(path: Path) -> Credentials:
    """MK_USERNAME=/MK_PASSWORD= lines (or user:password on one line) from a file only its owner can read."""
    values = _read_env_file(path)
    if not values.get("MK_USERNAME") or not values.get("MK_PASSWORD"):
        raise ConfigError(f"{path}: expected MK_USERNAME=... and MK_PASSWORD=... lines")
    return _remembered(Credentials(values["MK_USERNAME"], values["MK_PASSWORD"]))


def _read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines (or user:password on one line, as MK_USERNAME and MK_PASSWORD) from a file only its
    owner can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the credentials file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the credentials file is not UTF-8 text") from None
    if mode & 0o077:
        raise ConfigError(f"{path}: the credentials file can be read by others; chmod 600 it")
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep:
            values[name.strip()] = value.strip()
    if "MK_USERNAME" not in values and text.count(":") >= 1 and len(text.strip().splitlines()) == 1:
        user, _, password = text.strip().partition(":")
        values = {"MK_USERNAME": user, "MK_PASSWORD": password}
    return values


def _proxy_credentials(args: argparse.Namespace) -> Credentials | None:
    """MK_PROXY_USERNAME and MK_PROXY_PASSWORD, from the environment or the credentials file: for a proxy whose
    URL (in a dealers file, a crontab or a manifest) must not carry them."""
    values = {k: os.environ.get(k, "") for k in ("MK_PROXY_USERNAME", "MK_PROXY_PASSWORD")}
    if not all(values.values()) and args.credentials_file is not None and not args.sandbox:
        values = {k: v for k, v in _read_env_file(args.credentials_file).items() if k in values}
    user, password = values.get("MK_PROXY_USERNAME"), values.get("MK_PROXY_PASSWORD")
    if not user and not password:
        return None
    if not user or not password:
        raise ConfigError("MK_PROXY_USERNAME and MK_PROXY_PASSWORD go together: set both, or neither")
    return _remembered(Credentials(user, password))


def _remembered(credentials: Credentials) -> Credentials:
    """Credentials, after teaching the log filter to mask the password and its Basic token."""
    REDACT.add([credentials.password, credentials.authorization().split(" ", 1)[1]])
    return credentials


def _credentials(args: argparse.Namespace) -> Credentials | None:
    if args.sandbox:
        return None
    if args.credentials_file is not None:
        return _read_credentials_file(args.credentials_file)
    user, password = os.environ.get("MK_USERNAME"), os.environ.get("MK_PASSWORD")
    if not user or not password:
        raise ConfigError("no credentials: set MK_USERNAME and MK_PASSWORD, or give --credentials-file")
    return _remembered(Credentials(user, password))


def _progress(args: argparse.Namespace) -> Progress:
    choice = args.progress
    if choice == "auto":
        choice = "bar" if sys.stderr.isatty() else "log"
    if choice == "bar":
        return BarProgress()
    if choice == "log":
        return LogProgress(args.log_every)
    return NoProgress()


def _dealer_args(args: argparse.Namespace) -> Path | None:
    """Fill the run's options from the --dealer entry of --dealers; the state file, where known."""
    from importer.ops.dealers import load_dealers
    from importer.send.state import default_state_path

    if args.dealers is None:
        if args.dealer is not None:
            raise ConfigError("--dealer needs --dealers FILE")
        if args.file is None or args.mapping is None:
            raise ConfigError("give FILE and --mapping, or --dealers FILE --dealer NAME")
        state = args.state or (None if args.sandbox or not args.department_uuid
                               else default_state_path(args.department_uuid))
        return state
    if args.dealer is None:
        raise ConfigError("--dealers needs --dealer NAME: the entry to run")
    if args.file is not None or args.mapping is not None:
        raise ConfigError("with --dealers, the dealer's entry gives the file and the mapping")
    dealer = load_dealers(args.dealers).dealer(args.dealer)
    args.department_uuid, args.mapping, args.rate = dealer.department, dealer.mapping, dealer.rate
    args.state = args.state or dealer.state
    args.full = args.full or dealer.full
    if args.max_changed is None:
        args.max_changed = dealer.max_changed
    args.max_duration = args.max_duration or dealer.max_duration
    args.api_url = dealer.api_url or args.api_url
    args.proxy = dealer.proxy
    args.ca_bundle = args.ca_bundle or dealer.ca_bundle
    if args.keep is None and args.out is None:
        args.keep = dealer.keep
    args.reports_root = dealer.reports
    for key, value in dealer.run_options().items():
        if key == "allow_empty":
            args.allow_empty = args.allow_empty or value
        elif getattr(args, key) is None:  # given on the command line: that wins
            setattr(args, key, value)
    # A Kubernetes Secret arrives as MK_USERNAME/MK_PASSWORD; on a host, the entry's env file holds them.
    if not (os.environ.get("MK_USERNAME") and os.environ.get("MK_PASSWORD")) and args.credentials_file is None:
        if dealer.env_file is None:
            raise ConfigError(f"{args.dealers}: dealer {dealer.name}: credentials: no env_file, and MK_USERNAME "
                              "and MK_PASSWORD are not set")
        args.credentials_file = dealer.env_file
    args.metrics_labels = (dealer.name, dealer.department)
    try:
        args.file = str(dealer.newest_input())
    except InputError:
        _publish_metrics(args, {"exit_code": ExitCode.USAGE}, args.state)  # a missing export deserves an alert
        raise
    state_path: Path = args.state
    return state_path


def _publish_metrics(args: argparse.Namespace, summary: dict[str, Any], state: Path | None) -> None:
    if args.metrics_file is None and args.pushgateway is None:
        return
    from importer.ops.metrics import publish

    department = args.department_uuid or ("sandbox-department" if args.sandbox else "")
    dealer, department = getattr(args, "metrics_labels", (department, department))
    publish(summary, dealer=dealer, department=department, metrics_file=args.metrics_file,
            pushgateway=args.pushgateway, state=state)


def _run(args: argparse.Namespace) -> int:
    args.reports_root = None
    state = _dealer_args(args)
    try:
        finished = _import(args)
    except (ImporterError, OSError) as exc:
        stop = exc.result.stop if isinstance(exc, AfterSendingError) else None
        _publish_metrics(args, {"exit_code": int(exit_code_for(exc)), "stop_code": stop}, state)
        raise
    _publish_metrics(args, finished.summary, state)
    _print_summary(finished.summary, args)
    return exit_code_for(finished.result)


def _import(args: argparse.Namespace) -> Finished:
    from importer.pipeline import run_import

    department = args.department_uuid or ("sandbox-department" if args.sandbox else None)
    if not department:
        raise ConfigError("no department: give --department-uuid or set MK_DEPARTMENT_UUID")
    _checked_department(department)
    _defaults(args)
    if args.sandbox_db is not None and not args.sandbox:
        raise ConfigError("--sandbox-db needs --sandbox")
    if args.concurrency < 1 or args.max_attempts < 1:
        raise ConfigError("--concurrency and --max-attempts must be at least 1")
    config = RunConfig(
        prepare=_prepare_config(args), department=department, api_url=args.api_url,
        credentials=_credentials(args), pool=PoolSettings(rate=args.rate, concurrency=args.concurrency,
                                                          max_attempts=args.max_attempts,
                                                          request_timeout=args.request_timeout,
                                                          patience=args.patience),
        out_dir=args.out, state_path=args.state, full=args.full, max_duration=args.max_duration,
        insecure_http=args.insecure_http, ca_bundle=args.ca_bundle, proxy=getattr(args, "proxy", None),
        proxy_credentials=_proxy_credentials(args), sandbox=args.sandbox, sandbox_db=args.sandbox_db,
        max_invalid=args.max_invalid, folders=_folders(args, args.reports_root),
        max_changed=DEFAULT_MAX_CHANGED if args.max_changed is None else args.max_changed,
        allow_mass_change=args.allow_mass_change, limit=args.limit)
    return run_import(config, _progress(args))


def _deploy(args: argparse.Namespace) -> int:
    from importer.ops.dealers import load_dealers
    from importer.ops.deploy import FILE_NAMES, alert_rules, render

    if args.kind == "alerts":
        text = alert_rules()
    elif args.dealers is None:
        raise ConfigError(f"deploy {args.kind} needs the dealers file: mk-import deploy {args.kind} DEALERS")
    else:
        text = render(args.kind, load_dealers(args.dealers))
    if args.out is None:
        print(text, end="")
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / FILE_NAMES[args.kind]
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return ExitCode.OK


def _mappings(args: argparse.Namespace) -> int:
    from importer.prepare.mapping import builtin_names, check_header, load_mapping, mapping_text
    from importer.read.containers import Bounds
    from importer.read.reader import open_input

    if args.action == "list":
        for name in builtin_names():
            print(f"{name:<20} {load_mapping(name).description}")
        return ExitCode.OK
    if args.action == "show":
        shown = load_mapping(args.name)  # refuse what would not load
        print(mapping_text(args.name), end="")
        for composite in shown.composites:  # what a column holding several fields gives, read as the importer does
            print(f"# {composite.key}: {composite.column!r} holds {', '.join(composite.parts())}")
        return ExitCode.OK
    if args.action == "suggest":
        return _suggest(args)
    mapping = load_mapping(args.mapping)
    with open_input(args.file, args.sheet, bounds=Bounds(args.max_unpacked_mb, args.max_ratio)) as source:
        result = check_header(mapping, source.header, source.unnamed)
    for column in result.missing:
        print(f"missing: {column!r} is mapped but not in the header of {args.file}")
    for column in result.unmapped:
        print(f"unmapped: {column!r} is in the header but nothing maps it")
    if result.missing:
        return ExitCode.USAGE
    print(f"ok: every column mapping {mapping.name} reads is in the header")
    from importer.onboard.preview import preview, render

    with open_input(args.file, args.sheet, bounds=Bounds(args.max_unpacked_mb, args.max_ratio)) as source:
        previews = preview(mapping, source, result.resolved)
    print("each mapped field: share of its values that normalize cleanly, and samples before → after")
    print("\n".join(render(previews)))
    return ExitCode.OK


def _suggest(args: argparse.Namespace) -> int:
    from importer.onboard.suggest import suggest
    from importer.read.containers import Bounds
    from importer.read.reader import open_input
    from importer.report.folders import private_file

    with open_input(args.file, args.sheet, bounds=Bounds(args.max_unpacked_mb, args.max_ratio)) as source:
        proposal = suggest(args.file, source)
    if proposal.unmapped:
        # Values are for the person at the terminal; the mapping holds column names and reasons only.
        print("columns left unmapped, with sample values (not written into the mapping):", file=sys.stderr)
        for line in proposal.samples():
            print(f"  {line}", file=sys.stderr)
    if args.out is None:
        print(proposal.text, end="")
        return ExitCode.OK
    with private_file(args.out) as stream:
        stream.write(proposal.text)
    print(f"mapping written to {args.out}: {len(proposal.choices)} columns placed, {len(proposal.unmapped)} left "
          "unmapped; review it, then: mk-import mappings check FILE --mapping " + str(args.out), file=sys.stderr)
    return ExitCode.OK


def _sandbox(args: argparse.Namespace) -> int:
    from importer.sandbox.server import SandboxConfig, running_sandbox

    users = {}
    for entry in args.user:
        name, sep, password = entry.partition(":")
        if not sep or not name or not password:
            raise ConfigError(f"--user {name}:…: expected NAME:PASSWORD")
        users[name] = password
    if not users:
        users = {"demo": secrets.token_urlsafe(12)}
        print(f"demo account: MK_USERNAME=demo MK_PASSWORD={users['demo']}", file=sys.stderr)
    config = SandboxConfig(
        users=users, departments=frozenset(args.department), rate_limit=args.rate_limit,
        rate_limit_mode=args.rate_limit_mode,
        latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, fail_rate=args.fail_rate,
        commit_fail_rate=args.commit_fail_rate, drop_rate=args.drop_rate, seed=args.seed, db_path=args.db,
        tls_cert=args.tls_cert, tls_key=args.tls_key,
    )

    async def serve() -> None:
        async with running_sandbox(config, args.host, args.port) as url:
            print(f"mk-import sandbox listening on {url} (Ctrl-C stops)", file=sys.stderr, flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return ExitCode.OK


def _report(args: argparse.Namespace) -> int:
    import json

    from importer.prepare.mapping import builtin_names, load_mapping
    from importer.report.page import write_report_page

    name = args.mapping
    if name is None:
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads((args.out / "summary.json").read_text(encoding="utf-8")).get("mapping")
            name = recorded if recorded in builtin_names() else None
    path = write_report_page(args.out, mapping=load_mapping(name) if name else None)
    print(f"report: {path}", file=sys.stderr)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbosity, args.log_format)
    commands = {"validate": _validate, "run": _run, "mappings": _mappings, "sandbox": _sandbox, "report": _report,
                "deploy": _deploy}
    try:
        return int(commands[args.command](args))
    except (ImporterError, OSError, KeyboardInterrupt) as exc:
        print(f"mk-import: {_in_words(exc)}", file=sys.stderr)
        return exit_code_for(exc)


def entry() -> int:
    """The process: `mk-import` and `python -m importer` run main(), and then the interpreter ends."""
    code = main()
    # At its end the interpreter collects garbage over every object still alive (pandas', pandera's, a run's
    # last reports): 0.15 to 0.2 s after the last report is written, for nothing, since the system takes the
    # memory back whole. Frozen, they are left to it. Files are closed by now, and what runs at exit (the
    # logs' flush, temporary folders' removal) still runs.
    gc.freeze()
    return code


def _in_words(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        # Ctrl-C before any request was sent (while reading the file): nothing to report.
        return "interrupted; nothing was sent"
    return f"error: {_error_text(exc)}"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return str(exc)
