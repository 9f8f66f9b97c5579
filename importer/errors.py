"""The exception tree: exceptions stop a run or ask for a retry; per-row results are values.

    ImporterError
    ├── AfterSendingError  the run failed after requests were sent (reports unwritable, Ctrl-C) → exit 3/130
    ├── ConfigError        bad flags, mapping file, missing columns, state file   → exit 2
    ├── InputError         unreadable file, encoding, broken CSV                  → exit 2
    └── ApiError
        ├── RetryableError   429, 5xx, timeouts, resets (retried inside the pool)
        └── FatalApiError    401/403: abort the run                               → exit 4
            └── ApiUnavailableError  no answer, or answers not from the API, again and again  → exit 3

Every message is one line a user can act on. None of them carries a secret or a response body.
"""

from __future__ import annotations

from typing import ClassVar

from importer.status import ExitCode, RunResult, StopCode


class ImporterError(Exception):
    """Something stopped mk-import."""

    #: the process exit code when this stops a command (status.exit_code_for)
    exit_code: ClassVar[ExitCode] = ExitCode.STOPPED


class AfterSendingError(ImporterError):
    """The run failed after requests were sent: never "nothing sent"; the state knows what was saved."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        #: what the run did, for the exit code
        self.result = result


class ConfigError(ImporterError):
    """The command line, a mapping file, the credentials or the state file are not usable."""

    exit_code = ExitCode.USAGE


class InputError(ImporterError):
    """The input file cannot be read as a CSV export."""

    exit_code = ExitCode.USAGE


class ApiError(ImporterError):
    """The API answered in a way that is not a per-row result."""


class RetryableError(ApiError):
    """The request may succeed if sent again later (429, 5xx, timeout, connection reset)."""

    def __init__(self, message: str, *, retry_after: float | None = None, maybe_saved: bool = True,
                 throttled: bool = False, from_api: bool = False) -> None:
        super().__init__(message)
        #: Seconds the server asked every client to wait (Retry-After), if it said.
        self.retry_after = retry_after
        #: False when the server surely did not act on the request (a 429, a refused connection).
        self.maybe_saved = maybe_saved
        #: True for a 429: the client is going faster than the API allows.
        self.throttled = throttled
        #: True when the API itself answered (its JSON envelope with a 5xx), not a proxy or the network
        self.from_api = from_api


class FatalApiError(ApiError):
    """The API refused the credentials or the department: no further request can succeed."""

    def __init__(self, message: str, *, code: str, stop_code: StopCode = StopCode.CREDENTIALS_REFUSED,
                 before_sending: bool = False) -> None:
        super().__init__(message)
        #: the error code for the rows of the request it stopped
        self.code = code
        #: why the run stopped, as summary.json names it
        self.stop_code = stop_code
        #: the client refused the request itself, after an earlier refusal: nothing of it left this machine
        self.before_sending = before_sending


class ApiUnavailableError(FatalApiError):
    """Requests get no answer, or answers that are not the API's (a login page, a wrong URL), one after
    another: the run stops, resumable once the API or the URL is right."""
