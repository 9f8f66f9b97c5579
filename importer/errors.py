"""The exception tree: exceptions stop a run or ask for a retry; per-row results are values.

    ImporterError
    ├── ConfigError        bad flags, mapping file, missing columns, state file   → exit 2
    ├── InputError         unreadable file, encoding, broken CSV                  → exit 2
    └── ApiError
        ├── RetryableError   429, 5xx, timeouts, resets (retried inside the pool)
        └── FatalApiError    401/403: abort the run                               → exit 3

Every message is one line a user can act on. None of them carries a secret or a response body.
"""

from __future__ import annotations


class ImporterError(Exception):
    """Something stopped mk-import."""


class ConfigError(ImporterError):
    """The command line, a mapping file, the credentials or the state file are not usable."""


class InputError(ImporterError):
    """The input file cannot be read as a CSV export."""


class ApiError(ImporterError):
    """The API answered in a way that is not a per-row result."""


class RetryableError(ApiError):
    """The request may succeed if sent again later (429, 5xx, timeout, connection reset)."""

    def __init__(self, message: str, *, retry_after: float | None = None, maybe_saved: bool = True,
                 throttled: bool = False) -> None:
        super().__init__(message)
        #: Seconds the server asked every client to wait (Retry-After), if it said.
        self.retry_after = retry_after
        #: False when the server surely did not act on the request (a 429, a refused connection).
        self.maybe_saved = maybe_saved
        #: True for a 429: the client is going faster than the API allows.
        self.throttled = throttled


class FatalApiError(ApiError):
    """The API refused the credentials or the department: no further request can succeed."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code
