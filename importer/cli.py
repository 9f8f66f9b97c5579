"""Command line: arguments → one frozen config → the stage that does the work → exit code. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importer import __version__
from importer.config import DEFAULT_API_URL, PrepareConfig, RunConfig, ValidateConfig
from importer.errors import AfterSendingError, ConfigError, ImporterError, InputError
from importer.logs import REDACT, setup_logging
from importer.report.folders import ReportFolders
from importer.send.client import Credentials
from importer.send.pool import PoolSettings
from importer.send.progress import BarProgress, LogProgress, NoProgress, Progress
from importer.status import ExitCode, exit_code_for

if TYPE_CHECKING:  # the pipeline (pandas, pyarrow) is imported by the commands that need it, not by --help
    from importer.pipeline import Finished


class _Parser(argparse.ArgumentParser):
    """argparse that exits with the documented usage code and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


#: Requests per second a run may be asked for: below the floor a stop or a deadline would wait on a single
#: token for minutes; above the ceiling it is a typo.
RATE_RANGE = (0.1, 10_000.0)


def _rate(text: str) -> float:
    value = _positive(text)
    if not RATE_RANGE[0] <= value <= RATE_RANGE[1]:
        raise argparse.ArgumentTypeError(f"{text} is not between {RATE_RANGE[0]:g} and {RATE_RANGE[1]:g} requests/s")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a count")
    return value


#: A department is one path segment of every API URL: letters, digits, dashes, underscores (a UUID, or the
#: sandbox's names), so `..` or `a/b` can never change the endpoint a request goes to.
_DEPARTMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def _checked_department(department: str) -> str:
    """A department token: it is part of every request's path and of the default state file's name."""
    if not _DEPARTMENT.fullmatch(department):
        raise ConfigError(f"--department-uuid {department[:40]!r}: expected a department UUID (letters, digits "
                          "and dashes)")
    return department


def _add_sandbox(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("sandbox", help="run the local myKaarma stand-in server",
                       description="Serve a local stand-in for myKaarma's Customer API until Ctrl-C.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--db", metavar="PATH", help="keep customers in this SQLite file across restarts")
    p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                   help="an account allowed in (repeatable); without one a demo account is made and printed")
    p.add_argument("--department", action="append", default=[], metavar="UUID",
                   help="a department the accounts have scope for (repeatable); others get 403")
    p.add_argument("--rate-limit", type=_positive, metavar="N", help="requests per second per account")
    p.add_argument("--rate-limit-mode", choices=("bucket", "window"), default="bucket",
                   help="bucket: a token bucket holding a second's worth; window: N accepted in any trailing "
                        "second, every request over it answered 429 (default bucket)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="latency varies by up to this much")
    p.add_argument("--fail-rate", type=_fraction, default=0.0, help="share answered 503 before saving")
    p.add_argument("--commit-fail-rate", type=_fraction, default=0.0,
                   help="share saved, then answered 503")
    p.add_argument("--drop-rate", type=_fraction, default=0.0,
                   help="share saved, then the connection closed without an answer")
    p.add_argument("--seed", type=int, help="seed for latency jitter and faults")


def _percentage(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage between 0 and 100")
    return value


_FILE_HELP = "the export: CSV/TSV text, an .xlsx/.xls workbook, or either in a .gz or single-file .zip; - reads stdin"


def _add_sheet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sheet", metavar="NAME", help="the sheet of a workbook to read (default: the first)")


def _add_prepare_options(p: argparse.ArgumentParser, *, dealers: bool = False) -> None:
    # With --dealers (run only), the dealer's entry gives the file and the mapping.
    p.add_argument("file", metavar="FILE", nargs="?" if dealers else None, help=_FILE_HELP)
    p.add_argument("--mapping", "-m", required=not dealers, metavar="M",
                   help="a built-in mapping name or a mapping file")
    _add_sheet(p)
    p.add_argument("--out", type=Path, metavar="DIR", help="report folder (default ./mk-import-out/<timestamp>/)")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out name a folder that already holds an earlier run's reports")
    p.add_argument("--keep", type=int, metavar="N",
                   help="without --out: keep the N newest dated report folders, delete older ones")
    p.add_argument("--strict", action="store_true",
                   help="a bad phone, email, VIN or other field makes the row invalid instead of being dropped")
    p.add_argument("--no-validate-vin", dest="validate_vin", action="store_false",
                   help="send validateVin: false (the API then keeps vehicles it deems invalid)")
    p.add_argument("--max-invalid", type=_percentage, metavar="PCT",
                   help="invalid rows up to PCT%% of the file do not make exit code 1 (failed rows always do)")
    p.add_argument("--allow-empty", action="store_true",
                   help="accept a file with a header and no data rows (refused by default: exit 2)")
    p.add_argument("--min-rows", type=_count, default=0, metavar="N",
                   help="refuse a file with fewer than N data rows (a truncated export), exit 2, nothing sent")


def _add_validate(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("validate", help="read, map and validate a file; send nothing",
                       description="Read, map, validate and group a file; send nothing; write the reports a "
                                   "run would, with status valid/invalid.")
    _add_prepare_options(p)
    p.add_argument("--payloads", type=Path, metavar="FILE.jsonl",
                   help="also write the exact JSON requests a run would send, one per line")
    p.add_argument("--state", type=Path, metavar="PATH",
                   help="say what a run with this state would do: customers to create, update, leave unchanged")
    p.add_argument("--department-uuid", metavar="D",
                   help="the same, from this department's default state file")


def _add_run(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("run", help="import a file into myKaarma",
                       description="Validate a file, send every new or changed customer to the create-or-update "
                                   "API with duplicate search, and report what became of every row. Credentials "
                                   "come from MK_USERNAME and MK_PASSWORD or --credentials-file, never argv.")
    _add_prepare_options(p, dealers=True)
    p.add_argument("--dealers", type=Path, metavar="FILE",
                   help="a dealers file: the --dealer entry gives FILE, --mapping, the department, credentials, "
                        "rate, API URL, state and report folders; --max-duration and --full given here win")
    p.add_argument("--dealer", metavar="NAME", help="the entry of --dealers to run")
    p.add_argument("--metrics-file", type=Path, metavar="PATH",
                   help="write the run's metrics in Prometheus text format (node_exporter's textfile collector)")
    p.add_argument("--pushgateway", metavar="URL", help="push the run's metrics to this Prometheus Pushgateway")
    p.add_argument("--department-uuid", metavar="D", default=os.environ.get("MK_DEPARTMENT_UUID"),
                   help="the dealer department to import into (or MK_DEPARTMENT_UUID)")
    p.add_argument("--api-url", metavar="URL", default=os.environ.get("MK_API_URL", DEFAULT_API_URL),
                   help=f"API base URL (or MK_API_URL; default {DEFAULT_API_URL})")
    p.add_argument("--credentials-file", type=Path, metavar="FILE",
                   help="a file only you can read with MK_USERNAME=... and MK_PASSWORD=... lines")
    p.add_argument("--sandbox", action="store_true",
                   help="import into an embedded sandbox server on a free loopback port (no credentials needed)")
    p.add_argument("--sandbox-db", type=Path, metavar="PATH",
                   help="with --sandbox: keep the sandbox's customers in this SQLite file, and the state beside "
                        "it, so a later run (a re-import) meets the same customers")
    p.add_argument("--rate", type=_rate, default=20.0, metavar="N",
                   help="requests per second at most, retries included; the rate used is found under it from "
                        "the API's answers (default 20)")
    p.add_argument("--concurrency", type=int, default=64, metavar="N",
                   help="requests in flight at most; the number used follows the rate and the API's latency "
                        "(default 64)")
    p.add_argument("--patience", type=_positive, default=900.0, metavar="S",
                   help="stop (the rest not_attempted, exit 3, a rerun resumes) when the API accepts no request "
                        "for S seconds, answering only 429 or nothing (default 900)")
    p.add_argument("--max-attempts", type=int, default=6, metavar="N",
                   help="attempts per customer before it is failed; 429s are not counted (default 6)")
    p.add_argument("--request-timeout", type=_positive, default=120.0, metavar="S",
                   help="seconds one request may take in all, however slowly its answer comes (default 120)")
    p.add_argument("--state", type=Path, metavar="PATH",
                   help="state file (default $XDG_STATE_HOME/mk-import/<department>.sqlite)")
    p.add_argument("--full", action="store_true", help="send every customer, even those unchanged since last run")
    p.add_argument("--max-duration", type=_positive, metavar="S",
                   help="start no request after S seconds; the rest are not_attempted (exit 3) and a rerun resumes")
    p.add_argument("--insecure-http", action="store_true", help="allow plain http to a host other than loopback")
    p.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                   help="a bar on a terminal, a log line every --log-every seconds otherwise (default auto)")
    p.add_argument("--log-every", type=_positive, default=60.0, metavar="S",
                   help="seconds between progress log lines (default 60)")


def _add_mappings(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("mappings", help="list, show, check or suggest mappings",
                       description="Built-in mappings; a mapping checked against a file; a mapping proposed for "
                                   "a file.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=_Parser, help="what to do")
    actions.add_parser("list", help="the built-in mappings", description="List the built-in mappings.")
    show = actions.add_parser("show", help="print a mapping file", description="Print a mapping's YAML.")
    show.add_argument("name", metavar="M", help="a built-in mapping name or a mapping file")
    check = actions.add_parser("check", help="check a mapping against a file, with a preview of its fields",
                               description="Name mapped columns missing from the header, and header columns "
                                           "nothing maps; then, for each mapped field, three sample values before "
                                           "and after normalization and the share that normalizes cleanly.")
    check.add_argument("file", metavar="FILE", help=_FILE_HELP)
    check.add_argument("--mapping", "-m", required=True, metavar="M", help="a built-in mapping name or a file")
    _add_sheet(check)
    suggest = actions.add_parser("suggest", help="propose a complete, annotated mapping for a file",
                                 description="Propose a mapping for a file from its header and its values: every "
                                             "field it could place, with why and how sure, and the columns left "
                                             "unmapped with sample values.")
    suggest.add_argument("file", metavar="FILE", help=_FILE_HELP)
    suggest.add_argument("--out", type=Path, metavar="FILE.yaml", help="write the mapping here (default: print it)")
    _add_sheet(suggest)


def _add_report(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("report", help="(re)build report.html from a run's reports",
                       description="Build OUT_DIR/report.html from the reports a validate or run left in OUT_DIR "
                                   "(summary.json, results.csv, errors.csv, timeline.csv).")
    p.add_argument("out", type=Path, metavar="OUT_DIR", help="the report folder of a validate or run")
    p.add_argument("--mapping", "-m", metavar="M",
                   help="the run's mapping, to show its columns only (default: the mapping summary.json names, "
                        "if it is built in; otherwise every column)")


def _add_deploy(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("deploy", help="schedules for every dealer of a dealers file",
                       description="Generate a cron.d file or Kubernetes manifests that run every dealer of a "
                                   "dealers file each night, each with `run --dealers FILE --dealer NAME`.")
    p.add_argument("kind", choices=("crontab", "kubernetes"), help="the scheduler")
    p.add_argument("dealers", type=Path, metavar="DEALERS", help="the dealers file")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write crontab or kubernetes.yaml into DIR instead of standard output")


def build_parser() -> _Parser:
    parser = _Parser(
        prog="mk-import", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load a dealer's customer and vehicle CSV export into myKaarma's create-or-update\n"
                    "Customer API, and report what became of every row.",
        epilog="exit codes: 0 all rows fine · 1 some rows failed, or invalid beyond --max-invalid · 2 bad usage, "
               "mapping, state or input: nothing sent\n            3 stopped early (rerun resumes) · 4 credentials "
               "or department refused · 130 Ctrl-C after a clean stop")
    parser.add_argument("--version", action="version", version=f"mk-import {__version__}")
    parser.add_argument("-v", "--verbose", action="store_const", const=1, default=0, dest="verbosity",
                        help="debug detail (one line per request; never a secret)")
    parser.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity",
                        help="warnings and errors only")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines as text or as JSON objects for log shippers (default text)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, help="the command")
    _add_validate(sub)
    _add_run(sub)
    _add_mappings(sub)
    _add_sandbox(sub)
    _add_report(sub)
    _add_deploy(sub)
    return parser


def _prepare_config(args: argparse.Namespace) -> PrepareConfig:
    return PrepareConfig(input=args.file, mapping=args.mapping, strict=args.strict, validate_vin=args.validate_vin,
                         allow_empty=args.allow_empty, min_rows=args.min_rows, sheet=args.sheet)


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
    if summary["problems"]:
        print("most frequent problems:", file=sys.stderr)
        for p in summary["problems"]:
            print(f"  {p['rows']:>8,}  {p['column']}: {p['problem']} (e.g. row {p['example_row']})", file=sys.stderr)
    print(f"reports: {summary['reports']}", file=sys.stderr)


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
                                       folders=_folders(args, None)))
    _print_summary(finished.summary, args)
    return exit_code_for(finished.result)


def _read_credentials_file(path: Path) -> Credentials:
    """MK_USERNAME=/MK_PASSWORD= lines (or user:password on one line) from a file only its owner can read."""
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
    if not values.get("MK_USERNAME") or not values.get("MK_PASSWORD"):
        raise ConfigError(f"{path}: expected MK_USERNAME=... and MK_PASSWORD=... lines")
    return _remembered(Credentials(values["MK_USERNAME"], values["MK_PASSWORD"]))


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
    args.max_duration = args.max_duration or dealer.max_duration
    args.api_url = dealer.api_url or args.api_url
    if args.keep is None and args.out is None:
        args.keep = dealer.keep
    args.reports_root = dealer.reports
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
    except AfterSendingError as exc:
        _publish_metrics(args, {"exit_code": int(exit_code_for(exc.result)), "stop_code": exc.result.stop}, state)
        raise
    except (ConfigError, InputError, OSError):
        _publish_metrics(args, {"exit_code": ExitCode.USAGE}, state)
        raise
    except ImporterError:
        _publish_metrics(args, {"exit_code": ExitCode.STOPPED}, state)
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
        insecure_http=args.insecure_http, sandbox=args.sandbox, sandbox_db=args.sandbox_db,
        max_invalid=args.max_invalid, folders=_folders(args, args.reports_root))
    return run_import(config, _progress(args))


def _deploy(args: argparse.Namespace) -> int:
    from importer.ops.dealers import load_dealers
    from importer.ops.deploy import FILE_NAMES, render

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
    from importer.read.reader import open_input

    if args.action == "list":
        for name in builtin_names():
            print(f"{name:<20} {load_mapping(name).description}")
        return ExitCode.OK
    if args.action == "show":
        load_mapping(args.name)  # refuse what would not load
        print(mapping_text(args.name), end="")
        return ExitCode.OK
    if args.action == "suggest":
        return _suggest(args)
    mapping = load_mapping(args.mapping)
    with open_input(args.file, args.sheet) as source:
        result = check_header(mapping, source.header)
    for column in result.missing:
        print(f"missing: {column!r} is mapped but not in the header of {args.file}")
    for column in result.unmapped:
        print(f"unmapped: {column!r} is in the header but nothing maps it")
    if result.missing:
        return ExitCode.USAGE
    print(f"ok: every column mapping {mapping.name} reads is in the header")
    from importer.onboard.preview import preview, render

    with open_input(args.file, args.sheet) as source:
        previews = preview(mapping, source, result.resolved)
    print("each mapped field: share of its values that normalize cleanly, and samples before → after")
    print("\n".join(render(previews)))
    return ExitCode.OK


def _suggest(args: argparse.Namespace) -> int:
    from importer.onboard.suggest import suggest
    from importer.read.reader import open_input
    from importer.report.files import private_file

    with open_input(args.file, args.sheet) as source:
        proposal = suggest(args.file, source)
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
    except AfterSendingError as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return exit_code_for(exc.result)
    except (ConfigError, InputError) as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ImporterError as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return ExitCode.STOPPED
    except OSError as exc:
        print(f"mk-import: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        # Ctrl-C before any request was sent (while reading the file): nothing to report.
        print("mk-import: interrupted; nothing was sent", file=sys.stderr)
        return ExitCode.INTERRUPTED
