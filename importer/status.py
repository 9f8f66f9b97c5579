"""Row statuses and process exit codes, as PRODUCT.md defines them."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Status(StrEnum):
    SUCCESS = "success"  #: saved; customer_uuid set
    UNCHANGED = "unchanged"  #: identical to what was last saved for this department; not sent
    VALID = "valid"  #: `validate` only: would be sent
    INVALID = "invalid"  #: failed validation; not sent
    FAILED = "failed"  #: the API refused it, or retries were exhausted
    NOT_ATTEMPTED = "not_attempted"  #: the run stopped before this row


class ExitCode(IntEnum):
    OK = 0  #: every row success, unchanged or valid
    ROWS_FAILED = 1  #: finished; some rows invalid or failed
    USAGE = 2  #: bad usage, config, mapping or input file: nothing sent
    STOPPED = 3  #: stopped early (auth refused, time budget, interrupt); rerunning resumes
    INTERRUPTED = 130  #: Ctrl-C, after a clean stop


def exit_code_for(counts: dict[str, int], *, stopped: bool = False, interrupted: bool = False) -> ExitCode:
    if interrupted:
        return ExitCode.INTERRUPTED
    if stopped:
        return ExitCode.STOPPED
    if counts.get(Status.INVALID, 0) or counts.get(Status.FAILED, 0):
        return ExitCode.ROWS_FAILED
    return ExitCode.OK
