"""Command line: arguments → one frozen config → the stage that does the work → exit code. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from importer import __version__
from importer.config import PrepareConfig, ValidateConfig
from importer.errors import ConfigError, ImporterError, InputError
from importer.status import ExitCode


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
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


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
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="latency varies by up to this much")
    p.add_argument("--fail-rate", type=_fraction, default=0.0, help="share answered 503 before saving")
    p.add_argument("--commit-fail-rate", type=_fraction, default=0.0,
                   help="share saved, then answered 503")
    p.add_argument("--drop-rate", type=_fraction, default=0.0,
                   help="share saved, then the connection closed without an answer")
    p.add_argument("--seed", type=int, help="seed for latency jitter and faults")


def _add_prepare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the CSV export; - reads standard input")
    p.add_argument("--mapping", "-m", required=True, metavar="M", help="a built-in mapping name or a mapping file")
    p.add_argument("--out", type=Path, metavar="DIR", help="report folder (default ./mk-import-out/<timestamp>/)")
    p.add_argument("--strict", action="store_true",
                   help="a bad phone, email, VIN or other field makes the row invalid instead of being dropped")
    p.add_argument("--no-validate-vin", dest="validate_vin", action="store_false",
                   help="send validateVin: false (the API then keeps vehicles it deems invalid)")


def _add_validate(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("validate", help="read, map and validate a file; send nothing",
                       description="Read, map, validate and group a file; send nothing; write the reports a "
                                   "run would, with status valid/invalid.")
    _add_prepare_options(p)
    p.add_argument("--payloads", type=Path, metavar="FILE.jsonl",
                   help="also write the exact JSON requests a run would send, one per line")


def _add_mappings(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("mappings", help="list, show or check mappings", description="Built-in mappings.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=_Parser, help="what to do")
    actions.add_parser("list", help="the built-in mappings", description="List the built-in mappings.")
    show = actions.add_parser("show", help="print a mapping file", description="Print a mapping's YAML.")
    show.add_argument("name", metavar="M", help="a built-in mapping name or a mapping file")
    check = actions.add_parser("check", help="check a mapping against a file's header",
                               description="Name mapped columns missing from the header, and header columns "
                                           "nothing maps.")
    check.add_argument("file", metavar="FILE", help="the CSV export; - reads standard input")
    check.add_argument("--mapping", "-m", required=True, metavar="M", help="a built-in mapping name or a file")


def build_parser() -> _Parser:
    parser = _Parser(prog="mk-import", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mk-import {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, help="the command")
    _add_validate(sub)
    _add_mappings(sub)
    _add_sandbox(sub)
    return parser


def _prepare_config(args: argparse.Namespace) -> PrepareConfig:
    return PrepareConfig(input=args.file, mapping=args.mapping, strict=args.strict, validate_vin=args.validate_vin)


def _print_summary(summary: dict[str, Any]) -> None:
    counts = ", ".join(f"{n:,} {status}" for status, n in sorted(summary["counts"].items(), key=lambda i: -i[1]))
    print(f"{summary['command']}: {summary['rows']:,} rows ({counts or 'none'}); "
          f"{summary['customers']:,} customers; {summary['duration_s']:.1f} s", file=sys.stderr)
    if summary["problems"]:
        print("most frequent problems:", file=sys.stderr)
        for p in summary["problems"]:
            print(f"  {p['rows']:>8,}  {p['column']}: {p['problem']} (e.g. row {p['example_row']})", file=sys.stderr)
    print(f"reports: {summary['reports']}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    from importer.pipeline import validate

    summary = validate(ValidateConfig(_prepare_config(args), out_dir=args.out, payloads=args.payloads))
    _print_summary(summary)
    return int(summary["exit_code"])


def _mappings(args: argparse.Namespace) -> int:
    from importer.mapping import builtin_names, check_header, load_mapping, mapping_text
    from importer.reader import open_input

    if args.action == "list":
        for name in builtin_names():
            print(f"{name:<20} {load_mapping(name).description}")
        return ExitCode.OK
    if args.action == "show":
        load_mapping(args.name)  # refuse what would not load
        print(mapping_text(args.name), end="")
        return ExitCode.OK
    mapping = load_mapping(args.mapping)
    with open_input(args.file) as source:
        result = check_header(mapping, source.header)
    for column in result.missing:
        print(f"missing: {column!r} is mapped but not in the header of {args.file}")
    for column in result.unmapped:
        print(f"unmapped: {column!r} is in the header but nothing maps it")
    if not result.missing:
        print(f"ok: every column mapping {mapping.name} reads is in the header")
    return ExitCode.USAGE if result.missing else ExitCode.OK


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"validate": _validate, "mappings": _mappings, "sandbox": _sandbox}
    try:
        return int(commands[args.command](args))
    except (ConfigError, InputError) as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ImporterError as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return ExitCode.STOPPED
    except OSError as exc:
        print(f"mk-import: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return ExitCode.USAGE
