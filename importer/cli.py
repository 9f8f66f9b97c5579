"""Command line: arguments → one frozen config → the stage that does the work → exit code. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from collections.abc import Sequence

from importer import __version__
from importer.errors import ConfigError, ImporterError, InputError

#: Exit codes (PRODUCT.md): all rows fine; some rows invalid or failed; bad usage or input, nothing sent;
#: stopped early, rerun resumes; interrupted by Ctrl-C after a clean stop.
EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits with the documented usage code and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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


def build_parser() -> _Parser:
    parser = _Parser(prog="mk-import", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mk-import {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_sandbox(sub)
    return parser


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
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"sandbox": _sandbox}
    try:
        return commands[args.command](args)
    except (ConfigError, InputError) as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImporterError as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except OSError as exc:
        print(f"mk-import: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
