"""Row statuses, why a run stopped, and the process exit code: decided here, from a typed run result."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Status(StrEnum):
    SUCCESS = "success"  #: saved; customer_uuid set
    UNCHANGED = "unchanged"  #: identical to what was last saved for this department; not sent
    VALID = "valid"  #: `validate` only: would be sent
    INVALID = "invalid"  #: failed validation; not sent
    FAILED = "failed"  #: the API refused it, or retries were exhausted
    NOT_ATTEMPTED = "not_attempted"  #: the run stopped before this row


class ExitCode(IntEnum):
    OK = 0  #: every row success, unchanged or valid (invalid rows within --max-invalid, if given)
    ROWS_FAILED = 1  #: finished; some rows failed, or invalid beyond --max-invalid
    USAGE = 2  #: bad usage, config, mapping or input file, or a mass change refused: nothing sent
    STOPPED = 3  #: stopped early (time budget, interrupt, API unavailable, failure after sending); rerun resumes
    #: the API refused the credentials or the department, the API's TLS certificate was not trusted, or the
    #: proxy refused: fix them before rerunning
    REFUSED = 4
    INTERRUPTED = 130  #: Ctrl-C, after a clean stop


#: What each exit code means, in words: the closing lines of `validate` and `run`, and report.html.
EXIT_WORDS = {
    ExitCode.OK: "every row went through (invalid rows within --max-invalid, if given)",
    ExitCode.ROWS_FAILED: "finished, but some rows failed, or are invalid beyond --max-invalid: fix them from "
                          "errors.csv",
    ExitCode.USAGE: "bad usage, config, mapping or input, or a mass change refused: nothing sent",
    ExitCode.STOPPED: "stopped early: rerunning the same command resumes",
    ExitCode.REFUSED: "the API refused the credentials or the department, or its certificate or the proxy could "
                      "not be trusted or used: fix that before rerunning",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C) after a clean stop: rerunning the same command resumes",
}


def exit_words(code: int) -> str:
    """What an exit code means, in words ("" for a code mk-import does not give)."""
    return next((words for known, words in EXIT_WORDS.items() if known == code), "")


class StopCode(StrEnum):
    """Why a run stopped early: a stable token for schedulers, beside the free-text reason."""

    TIME_BUDGET = "time_budget"  #: --max-duration reached
    INTERRUPTED = "interrupted"  #: Ctrl-C
    TERMINATED = "terminated"  #: SIGTERM
    CREDENTIALS_REFUSED = "credentials_refused"  #: HTTP 401/403: credentials or department refused
    API_UNAVAILABLE = "api_unavailable"  #: requests got no answer (connection refused, DNS, timeouts, 502s)
    TLS_FAILED = "tls_failed"  #: the API's certificate was not trusted (issuer, name, dates) or TLS failed
    PROXY_REFUSED = "proxy_refused"  #: the proxy refused (407, its rules) or could not be connected to
    NOT_THE_API = "not_the_api"  #: answers were not the API's (a login page, a redirect, a wrong URL)
    RATE_LIMITED = "rate_limited"  #: the API answered only 429s (or nothing) for --patience seconds
    STATE_UNWRITABLE = "state_unwritable"  #: the state file stopped taking writes
    REPORT_WRITE_FAILED = "report_write_failed"  #: the reports could not be written after requests were sent
    MASS_CHANGE = "mass_change"  #: known customers would change beyond --max-changed: nothing was sent


#: Stops that a rerun cannot mend: the credentials, the trust store or the proxy setting must change first.
FIX_FIRST = frozenset({StopCode.CREDENTIALS_REFUSED, StopCode.TLS_FAILED, StopCode.PROXY_REFUSED})


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or stopped) command did, as far as its exit code is concerned."""

    #: rows per status
    counts: Mapping[Status, int]
    #: whether any request left for the API (a failure after that is never "nothing sent")
    sent: bool = False
    #: why the run stopped early; None when it went through every row
    stop: StopCode | None = None
    #: --max-invalid: invalid rows up to this percentage of the file do not make exit 1
    max_invalid: float | None = None
    rows: int = field(default=0)

    def count(self, status: Status) -> int:
        return int(self.counts.get(status, 0))


def exit_code_for(outcome: RunResult | BaseException) -> ExitCode:
    """The one place that turns what happened into the process exit code (docs/reports.md's contract): a
    command's result, or the exception that stopped it (an ImporterError says its code as `exit_code`)."""
    if isinstance(outcome, BaseException):
        result = getattr(outcome, "result", None)  # failed after sending: decided by what the run did
        if isinstance(result, RunResult):
            return exit_code_for(result)
        if isinstance(outcome, KeyboardInterrupt):
            return ExitCode.INTERRUPTED
        if isinstance(outcome, OSError):  # a file or folder named on the command line
            return ExitCode.USAGE
        return ExitCode(getattr(outcome, "exit_code", ExitCode.STOPPED))
    result = outcome
    if result.stop == StopCode.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if result.stop in FIX_FIRST:
        return ExitCode.REFUSED
    if result.stop == StopCode.MASS_CHANGE:
        return ExitCode.USAGE  # nothing was sent: the export is to be checked, or the change allowed
    if result.stop is not None:
        return ExitCode.STOPPED
    # not_attempted rows of a run that did not stop are a pilot's (--limit): held back on purpose, they do
    # not make exit 1 by themselves.
    if result.count(Status.FAILED):
        return ExitCode.ROWS_FAILED
    invalid = result.count(Status.INVALID)
    if invalid and (result.max_invalid is None or invalid * 100 > result.max_invalid * max(result.rows, 1)):
        return ExitCode.ROWS_FAILED
    return ExitCode.OK


class StopSwitch:
    """The run's one stop, given to every part that may stop it before the pool that obeys exists.

    The first stop's reason and code are kept; each listener (the pool) hears every stop.
    """

    def __init__(self) -> None:
        self.first: tuple[str, StopCode] | None = None
        self._listeners: list[Callable[[str, StopCode], None]] = []

    def listen(self, listener: Callable[[str, StopCode], None]) -> None:
        self._listeners.append(listener)
        if self.first is not None:
            listener(*self.first)

    def __call__(self, reason: str, code: StopCode) -> None:
        if self.first is None:
            self.first = (reason, code)
        for listener in self._listeners:
            listener(reason, code)
