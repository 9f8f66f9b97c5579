"""Every error code a report can carry, in plain words: the one table the README and report.html read.

A code names why a row is `invalid`, `failed` or `not_attempted`. Codes mk-import decides are members
of `ErrorCode`; the API's own codes (numeric, such as 10015) and `HTTP_<status>` pass through as the
server sent them and are explained by `explain`, which never fails: an unknown code still gets words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Explanation:
    #: what happened, for the person reading the report
    meaning: str
    #: what to change (in the file, the mapping or the setup) so the row goes through next time
    fix: str


class ErrorCode(StrEnum):
    """The codes mk-import itself writes to results.csv and errors.csv."""

    MISSING_LAST_NAME = "MISSING_LAST_NAME"
    MISSING_COMPANY = "MISSING_COMPANY"
    INVALID_FIELD = "INVALID_FIELD"
    INTERNAL_FORMAT = "INTERNAL_FORMAT"
    DUPLICATE_KEY = "DUPLICATE_KEY"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
    NOT_JSON = "NOT_JSON"
    SAVED_WITHOUT_FIELD = "SAVED_WITHOUT_FIELD"


EXPLANATIONS: dict[ErrorCode, Explanation] = {
    ErrorCode.MISSING_LAST_NAME: Explanation(
        "the row has no usable last name, and a person needs one",
        "fill in the last name, or mark the row as a business and give its company name"),
    ErrorCode.MISSING_COMPANY: Explanation(
        "the row is a business without a company name",
        "fill in the company name, or clear the business flag and give the person's name"),
    ErrorCode.INVALID_FIELD: Explanation(
        "with --strict, a field that could not be read (a phone, email, VIN...) makes the row invalid",
        "correct the field named in the message, or run without --strict to send the row without it"),
    ErrorCode.INTERNAL_FORMAT: Explanation(
        "a value broke its format after normalization: a defect in mk-import, so the row was not sent",
        "nothing in the file: report it with the row's values"),
    ErrorCode.DUPLICATE_KEY: Explanation(
        "the department already holds several customers with this customer key, so it is unclear which to update",
        "merge the duplicates in myKaarma, then run again"),
    ErrorCode.RETRIES_EXHAUSTED: Explanation(
        "the API did not answer successfully after every attempt (server errors or no answer)",
        "nothing to fix in the file: the next run retries it"),
    ErrorCode.NOT_JSON: Explanation(
        "the API answered with something that is not its JSON reply (a login page or a proxy?)",
        "check --api-url and the network path to the API; the next run retries it"),
    ErrorCode.SAVED_WITHOUT_FIELD: Explanation(
        "the customer was saved, but without a phone, email or VIN that could not be read (errors.csv only)",
        "correct the cell named in the message and import the row again: the same customer is completed"),
}

_HTTP = re.compile(r"^HTTP_(\d{3})$")
#: The API's own error codes, where API.md names them.
_API_CODES = {
    "100001": "no credentials were sent",
    "100002": "access forbidden",
    "100003": "wrong credentials",
    "100004": "the request is not authorized",
    "100013": "invalid department",
    "100014": "the account has no scope for this department",
}


def explain(code: str) -> Explanation:
    """Plain words for any code a report can carry, ours, HTTP_<status> or the API's."""
    if code in ErrorCode.__members__:
        return EXPLANATIONS[ErrorCode(code)]
    http = _HTTP.match(code)
    if http:
        status = int(http.group(1))
        if status in (401, 403):
            return Explanation(f"the API refused the credentials or the department (HTTP {status})",
                               "check MK_USERNAME, MK_PASSWORD and --department-uuid, then run again")
        if 300 <= status < 400:
            return Explanation(f"the API answered with a redirect (HTTP {status}), which is not followed",
                               "check --api-url; the next run retries it")
        return Explanation(f"the API refused the request (HTTP {status})",
                           "read the message next to it; correct the row if it names a field")
    if code in _API_CODES:
        return Explanation(f"the API said: {_API_CODES[code]}",
                           "check MK_USERNAME, MK_PASSWORD and --department-uuid, then run again")
    return Explanation(f"the API refused the customer with its code {code}",
                       "read the API's message next to it; correct the row if it names a field")
