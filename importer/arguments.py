"""The command line's grammar: every command, option and argument type, and the usage errors they give."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from importer import __version__
from importer.config import DEFAULT_API_URL, DEFAULT_MAX_CHANGED, DEFAULT_MAX_RATIO, DEFAULT_MAX_UNPACKED_MB
from importer.status import ExitCode


class Parser(argparse.ArgumentParser):
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


def _megabytes(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a number of megabytes")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a count")
    return value


#: Run options a dealers file may also give: None on the command line means "not given here", so an entry's
#: value applies, else this default.
RUN_DEFAULTS: dict[str, Any] = {"concurrency": 64, "patience": 900.0, "request_timeout": 120.0, "min_rows": 0}


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a count of at least 1")
    return value


def _add_sandbox(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("sandbox", help="run the local myKaarma stand-in server",
                       description="Serve a local stand-in for myKaarma's Customer API until Ctrl-C.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--db", metavar="PATH", help="keep customers in this SQLite file across restarts")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (its chain after it)")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
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
    """The options of reading a file: which sheet, and the bounds of what a workbook or archive unpacks to."""
    p.add_argument("--sheet", metavar="NAME", help="the sheet of a workbook to read (default: the first)")
    p.add_argument("--max-unpacked-mb", type=_megabytes, default=DEFAULT_MAX_UNPACKED_MB, metavar="MB",
                   help="refuse a workbook or archive that unpacks to more (default "
                        f"{DEFAULT_MAX_UNPACKED_MB}): checked before it is read, so a zip bomb costs no memory")
    p.add_argument("--max-compression-ratio", dest="max_ratio", type=_positive, default=DEFAULT_MAX_RATIO,
                   metavar="N", help="refuse a workbook or archive that unpacks to more than N times its size "
                                     f"(default {DEFAULT_MAX_RATIO:g}; real exports pack 5-15 times)")


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
    p.add_argument("--min-rows", type=_count, metavar="N",
                   help="refuse a file with fewer than N data rows (a truncated export), exit 2, nothing sent")


def _add_validate(sub: argparse._SubParsersAction[Parser]) -> None:
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
    p.add_argument("--max-changed", type=_percentage, default=DEFAULT_MAX_CHANGED, metavar="PCT",
                   help="with a state: say whether a run would be refused as a mass change (more than PCT%% of the "
                        f"known customers changing name, phones, emails or addresses; default {DEFAULT_MAX_CHANGED:g})")


def _add_run(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("run", help="import a file into myKaarma",
                       description="Validate a file, send every new or changed customer to the create-or-update "
                                   "API with duplicate search, and report what became of every row. Credentials "
                                   "come from MK_USERNAME and MK_PASSWORD or --credentials-file, never argv.")
    _add_prepare_options(p, dealers=True)
    p.add_argument("--dealers", type=Path, metavar="FILE",
                   help="a dealers file: the --dealer entry gives FILE, --mapping, the department, credentials, "
                        "rate, API URL, state and report folders, and the run options it names (max_invalid, "
                        "min_rows, allow_empty, patience, request_timeout, concurrency); options given here win")
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
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="requests in flight at most; the number used follows the rate and the API's latency "
                        "(default 64)")
    p.add_argument("--patience", type=_positive, metavar="S",
                   help="stop (the rest not_attempted, exit 3, a rerun resumes) when the API accepts no request "
                        "for S seconds, answering only 429 or nothing (default 900)")
    p.add_argument("--max-attempts", type=int, default=6, metavar="N",
                   help="attempts per customer before it is failed; 429s are not counted (default 6)")
    p.add_argument("--request-timeout", type=_positive, metavar="S",
                   help="seconds one request may take in all, however slowly its answer comes (default 120)")
    p.add_argument("--state", type=Path, metavar="PATH",
                   help="state file (default $XDG_STATE_HOME/mk-import/<department>.sqlite)")
    p.add_argument("--full", action="store_true", help="send every customer, even those unchanged since last run")
    guard = p.add_mutually_exclusive_group()
    guard.add_argument("--max-changed", type=_percentage, metavar="PCT",
                       help="send nothing (exit 2) when more than PCT%% of the customers the state knows (at least 50) "
                            "would change name, phones, emails or addresses: a swapped or shifted column "
                            f"(default {DEFAULT_MAX_CHANGED:g}, or the dealer's max_changed)")
    guard.add_argument("--allow-mass-change", action="store_true",
                       help="send a change --max-changed would refuse, once it is known to be meant")
    p.add_argument("--max-duration", type=_positive, metavar="S",
                   help="start no request after S seconds; the rest are not_attempted (exit 3) and a rerun resumes")
    p.add_argument("--limit", type=_at_least_one, metavar="N",
                   help="a pilot: send only the file's first N customers; the others' rows are not_attempted "
                        "(code BEYOND_LIMIT, not exit 1), and a later run without --limit sends them")
    p.add_argument("--insecure-http", action="store_true", help="allow plain http to a host other than loopback")
    p.add_argument("--ca-bundle", type=Path, metavar="PATH",
                   help="PEM file of CA certificates trusted besides the system's: a private authority, or a proxy "
                        "that inspects TLS (also SSL_CERT_FILE); verification is never turned off. The proxy comes "
                        "from HTTPS_PROXY, NO_PROXY excepted")
    p.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                   help="a bar on a terminal, a log line every --log-every seconds otherwise (default auto)")
    p.add_argument("--log-every", type=_positive, default=60.0, metavar="S",
                   help="seconds between progress log lines (default 60)")


def _add_mappings(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("mappings", help="list, show, check or suggest mappings",
                       description="Built-in mappings; a mapping checked against a file; a mapping proposed for "
                                   "a file.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser, help="what to do")
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


def _add_report(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("report", help="(re)build report.html from a run's reports",
                       description="Build OUT_DIR/report.html from the reports a validate or run left in OUT_DIR "
                                   "(summary.json, results.csv, errors.csv, timeline.csv).")
    p.add_argument("out", type=Path, metavar="OUT_DIR", help="the report folder of a validate or run")
    p.add_argument("--mapping", "-m", metavar="M",
                   help="the run's mapping, to show its columns only (default: the mapping summary.json names, "
                        "if it is built in; otherwise every column)")


def _add_deploy(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("deploy", help="schedules for every dealer of a dealers file",
                       description="Generate a cron.d file or Kubernetes manifests that run every dealer of a "
                                   "dealers file each night, each with `run --dealers FILE --dealer NAME`.")
    p.add_argument("kind", choices=("crontab", "kubernetes", "alerts"),
                   help="the scheduler; or `alerts`: the Prometheus alert rules on the runs' metrics")
    p.add_argument("dealers", type=Path, metavar="DEALERS", nargs="?",
                   help="the dealers file (for crontab and kubernetes)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write crontab, kubernetes.yaml or alerts.yaml into DIR instead of standard output")


def build_parser() -> Parser:
    parser = Parser(
        prog="mk-import", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load a dealer's customer and vehicle CSV export into myKaarma's create-or-update\n"
                    "Customer API, and report what became of every row.",
        epilog="exit codes: 0 all rows fine · 1 some rows failed, or invalid beyond --max-invalid · 2 bad usage, "
               "mapping, state or input,\n            or a mass change refused: nothing sent · 3 stopped early (rerun "
               "resumes) · 4 fix before rerunning: credentials or department refused,\n            TLS certificate "
               "not trusted, proxy refused · 130 Ctrl-C after a clean stop")
    parser.add_argument("--version", action="version", version=f"mk-import {__version__}")
    _add_logging_options(parser, verbosity=0, log_format="text")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, help="the command")
    _add_validate(sub)
    _add_run(sub)
    _add_mappings(sub)
    _add_sandbox(sub)
    _add_report(sub)
    _add_deploy(sub)
    for command in _subparsers(parser):
        _add_logging_options(command)
    return parser


def _add_logging_options(p: argparse.ArgumentParser, verbosity: object = argparse.SUPPRESS,
                         log_format: object = argparse.SUPPRESS) -> None:
    """-v, -q and --log-format: on the top-level parser with their defaults, and on every command with
    SUPPRESS, so that written after the command they count, and not written there they leave the top
    level's value alone (a subparser's default would overwrite it)."""
    p.add_argument("-v", "--verbose", action="store_const", const=1, default=verbosity, dest="verbosity",
                   help="debug detail (one line per request; never a secret)")
    p.add_argument("-q", "--quiet", action="store_const", const=-1, default=verbosity, dest="verbosity",
                   help="warnings and errors only")
    p.add_argument("--log-format", choices=("text", "json"), default=log_format,
                   help="log lines as text or as JSON objects for log shippers (default text)")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command's parser, nested ones (`mappings check`) included."""
    found = []
    for action in parser._actions:  # argparse keeps its subparsers only there
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                found += [command, *_subparsers(command)]
    return found
