"""Every error code a report can carry, in plain words: the one table docs/reports.md and report.html read.

A code names why a row is `invalid`, `failed` or `not_attempted`. Every code mk-import writes is a member
of `ErrorCode`, those that classify the API's answers included; the API's own codes (numeric, such as
10015) pass through as the server sent them. `explain` gives words for any of them and never fails
(`HTTP_<status>`, written by earlier versions, included). The error-code table of docs/reports.md is
`readme_table()`, checked by a test.
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
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    REDIRECTED = "REDIRECTED"
    API_REFUSED = "API_REFUSED"
    NO_RESULT = "NO_RESULT"
    CREDENTIALS_REFUSED = "CREDENTIALS_REFUSED"
    API_UNAVAILABLE = "API_UNAVAILABLE"
    TLS_FAILED = "TLS_FAILED"
    PROXY_REFUSED = "PROXY_REFUSED"
    NOT_THE_API = "NOT_THE_API"
    MALFORMED_LINE = "MALFORMED_LINE"
    FIELD_TOO_LONG = "FIELD_TOO_LONG"
    STOPPED_UNANSWERED = "STOPPED_UNANSWERED"
    SAVED_WITHOUT_FIELD = "SAVED_WITHOUT_FIELD"
    KEY_UNREADABLE = "KEY_UNREADABLE"
    TWO_PEOPLE_ONE_KEY = "TWO_PEOPLE_ONE_KEY"
    BEYOND_LIMIT = "BEYOND_LIMIT"


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
    ErrorCode.OUTCOME_UNKNOWN: Explanation(
        "a request for this customer may have been saved, and the search that would tell did not answer with a "
        "result, so it was not sent again (that could create the customer twice)",
        "nothing to fix in the file: the next run searches again and sends it only if it is not there"),
    ErrorCode.REDIRECTED: Explanation(
        "the API answered with a redirect, which is not followed (a login page or a wrong address?)",
        "check --api-url; the next run retries it"),
    ErrorCode.API_REFUSED: Explanation(
        "the API refused the request without saying why (an HTTP 4xx without an error code)",
        "read the message next to it; correct the row if it names a field"),
    ErrorCode.NO_RESULT: Explanation(
        "the API answered success without the customer it saved (no customerUuid)",
        "nothing to fix in the file: the next run sends it again"),
    ErrorCode.CREDENTIALS_REFUSED: Explanation(
        "the API refused the credentials or the department (HTTP 401/403), so the run stopped",
        "check MK_USERNAME, MK_PASSWORD and --department-uuid, then run again"),
    ErrorCode.API_UNAVAILABLE: Explanation(
        "the API did not answer (connection refused, unknown host, timeouts) request after request, so the "
        "run stopped",
        "nothing to fix in the file: check the network path and --api-url, then run again to resume"),
    ErrorCode.TLS_FAILED: Explanation(
        "the API's TLS certificate was not trusted (an unknown issuer, another host's name, expired) or the "
        "TLS handshake failed, so the run stopped before sending",
        "nothing to fix in the file: when a proxy or a private authority re-signs the traffic, give its CA "
        "certificate with --ca-bundle (or SSL_CERT_FILE); otherwise check --api-url and the clock, then run again"),
    ErrorCode.PROXY_REFUSED: Explanation(
        "the proxy refused the request (HTTP 407: its credentials; 403: its rules) or could not be connected "
        "to, so the run stopped",
        "nothing to fix in the file: check HTTPS_PROXY (or the dealers file's proxy) and MK_PROXY_USERNAME and "
        "MK_PROXY_PASSWORD, then run again"),
    ErrorCode.NOT_THE_API: Explanation(
        "something other than the API answered request after request (a login page, a proxy, a redirect), so "
        "the run stopped",
        "check --api-url and any proxy or single sign-on in front of the API, then run again to resume"),
    ErrorCode.MALFORMED_LINE: Explanation(
        "the line has more or fewer fields than the header (an unquoted comma, a line cut short), so its "
        "values cannot be put in their columns; the line as written is in errors.csv's mk_raw_line",
        "correct the line (quote the value holding the delimiter, join a line cut in two) and import it again"),
    ErrorCode.FIELD_TOO_LONG: Explanation(
        "a cell holds more text than any customer field can (an unclosed quote that swallowed other lines?); "
        "it was not sent nor kept",
        "correct the quoting around the named column in the export and import the row again"),
    ErrorCode.STOPPED_UNANSWERED: Explanation(
        "the run stopped (interrupt, time budget) while this customer's request was unanswered or waiting "
        "to be retried, so it may or may not have been saved",
        "nothing to fix in the file: the next run sends it again and finds the customer if it was saved"),
    ErrorCode.SAVED_WITHOUT_FIELD: Explanation(
        "the customer was saved (or, from validate, would be sent) without a value that could not be used: a "
        "phone, email, VIN, state, ZIP, model year, mileage, flag, formula-like text, or a part of a column "
        "holding several fields; the message says why (errors.csv only)",
        "correct the cell named in the message and import the row again: the same customer is completed"),
    ErrorCode.KEY_UNREADABLE: Explanation(
        "a spreadsheet saved the customer key as a number in scientific notation (8.2E+11), which keeps only its "
        "first digits, so which customer the row belongs to cannot be known; it was not sent",
        "type the key as the export has it (errors.csv's mk_customer_key holds it; errors.xlsx keeps keys as "
        "text), or import the export itself rather than a copy saved by a spreadsheet"),
    ErrorCode.TWO_PEOPLE_ONE_KEY: Explanation(
        "the rows of this customer key name different people (two last names, two first names, a company and "
        "a person): one customer was saved, with the name of the key's last row that has one (errors.csv only)",
        "give each person their own customer number in the DMS (or correct the misspelt name), then import "
        "these rows again"),
    ErrorCode.BEYOND_LIMIT: Explanation(
        "a pilot run (--limit N) sent only the file's first N customers, and this row's customer is not among "
        "them, so it was not sent (not_attempted; this alone does not make exit code 1)",
        "nothing to fix in the file: run again without --limit to send it; the pilot's customers are left "
        "unchanged"),
}


def readme_table() -> str:
    """The table of error codes in docs/reports.md, generated from EXPLANATIONS (a test keeps the page equal to it)."""
    lines = ["| code | meaning | what to do |", "|---|---|---|"]
    lines += [f"| `{code.value}` | {words.meaning} | {words.fix} |" for code, words in EXPLANATIONS.items()]
    return "\n".join(lines)


#: Failures that no change to the data fixes: the next run sends the row again.
RETRIED_NEXT_RUN = frozenset({
    ErrorCode.RETRIES_EXHAUSTED, ErrorCode.NOT_JSON, ErrorCode.OUTCOME_UNKNOWN, ErrorCode.REDIRECTED,
    ErrorCode.NO_RESULT, ErrorCode.API_UNAVAILABLE, ErrorCode.NOT_THE_API, ErrorCode.STOPPED_UNANSWERED,
})

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


# -- warnings ----------------------------------------------------------------------------------------
# A warning does not stop a row: the field it names was left out of the request (or the API kept the
# customer and said something about it). Field warnings are keyed by the message normalization writes
# after the column name in results.csv (`Cell Phone: not a valid phone number: '555'`); the API's by code.
WARNINGS: dict[str, Explanation] = {
    "not a valid phone number": Explanation(
        "the phone number could not be read as a real number (too short, wrong area code, letters...), so it "
        "was left out", "correct the number, with its area code; the rest of the customer goes through without it"),
    "written in scientific notation by a spreadsheet, its digits lost": Explanation(
        "a spreadsheet saved the phone number as a number in scientific notation (3.05E+09), which keeps only "
        "its first digits, so the number cannot be known and it was left out",
        "type the whole number again from the export or the customer (fix errors.xlsx, whose cells stay text, "
        "or set the column to Text before typing); the rest of the customer goes through without it"),
    "not a valid email address": Explanation(
        "the email address is not a usable address (no @, spaces, a missing domain...), so it was left out",
        "correct the address; the rest of the customer goes through without it"),
    "characters the API does not accept before the @": Explanation(
        "the address is well formed, but has characters before the @ that the API does not accept (it takes "
        "only plain ASCII there: letters without accents, digits, . _ + -...; ë or é are refused), so it was "
        "left out",
        "ask the customer for an address without such characters before the @ (zoe.smith@ is another mailbox "
        "than zoë.smith@, so do not just remove the accent), or leave it out; the rest of the customer goes "
        "through without it"),
    "not a yes/no flag": Explanation(
        "a yes/no column holds something else, so it was read as no",
        "write Y or N (yes/no, true/false and 1/0 work too)"),
    "not a valid VIN; vehicle not sent": Explanation(
        "the VIN is not 17 valid characters (or its check digit is wrong), so the vehicle was not sent",
        "correct the VIN from the registration or the vehicle; letters I, O and Q never appear in a VIN"),
    "not a US ZIP or Canadian postal code": Explanation(
        "the ZIP is neither a 5 or 9 digit US ZIP nor a Canadian postal code, so it was left out",
        "correct the ZIP (for example 02134 or K1A 0B1)"),
    "not a US state or Canadian province": Explanation(
        "the state is not a US state or Canadian province, by name or 2-letter code, so it was left out",
        "write the 2-letter code, for example MA or QC"),
    "not a model year": Explanation(
        "the vehicle's year is not a model year (4 digits from 1900 to next year + 1, or 2 digits: 13 is 2013, "
        "98 is 1998), so it was left out", "write the model year, like 2019"),
    "not a mileage": Explanation(
        "the mileage is not a whole number, so it was left out", "write the mileage as digits, like 42150"),
    "part not read, left out": Explanation(
        "the column holds several fields (city, state and ZIP; a whole address; a vehicle description) and the "
        "part named in brackets could not be read from it, so it was left out; the row is in errors.csv",
        "write the cell as the column's other values are written (AUSTIN, TX 78701; 12 Oak Ave, Austin, TX "
        "73301; 2018 HONDA ACCORD) and import the row again: the same customer is completed"),
    "would run as a spreadsheet formula; not sent": Explanation(
        "the value starts as a spreadsheet formula does (=, +, -, @, a tab or a carriage return): never a real "
        "name or address, and a trap for whoever opens the export, so it was left out",
        "write the value as it should read, without the leading =, +, -, @, tab or carriage return"),
    "a placeholder, not the customer's own; treated as empty": Explanation(
        "the phone or email is a known stand-in for none (noemail@..., 555-555-5555): sent, it would merge "
        "strangers, so the customer is saved without it",
        "nothing to fix: the customer gave none (enter their own if they give one)"),
    "the value is carried by": Explanation(
        "the phone or email is carried by more customers of the file than the mapping's shared_contact_limit "
        "(the dealer's own number, a placeholder?), so it was left out for all of them",
        "nothing to fix for the customer; correct it in the DMS where it is not the customer's own"),
    "two people under one customer key": Explanation(
        "rows of one customer key name different people; one customer is sent, with the name of the key's "
        "last row that has one, and this row's other details are merged into it",
        "give each person their own customer number in the DMS, or correct the name, and import the rows again"),
    "no VIN, nor a year, make and model; vehicle not sent": Explanation(
        "the row describes a vehicle without a VIN and without all of year, make and model, so the API "
        "could not identify it and it was not sent", "add the VIN, or the year, make and model"),
    "the key the export had, whose leading zeros or format a spreadsheet lost": Explanation(
        "a spreadsheet saved errors.csv with the customer key read as a number (0000082 as 82, 82.0 or "
        "8.2E+11); the key the export had, kept in mk_customer_key, was used, so the row is the same customer",
        "nothing; to keep keys as the export has them, fix errors.xlsx, whose cells stay text"),
    "not the key the export had; the key typed is used": Explanation(
        "the customer key is not the one the export had (errors.csv's mk_customer_key) nor that key as a "
        "spreadsheet rewrites it, so it was taken as changed on purpose and the row was saved under the key typed",
        "if the key was not meant to change, write back the key in mk_customer_key and import the row again"),
}


def warnings_table() -> str:
    """docs/reports.md's table of warnings, generated from WARNINGS (a test keeps the page equal to it)."""
    lines = ["| warning | what it means | what to change |", "|---|---|---|"]
    lines += [f"| {message} | {words.meaning} | {words.fix} |" for message, words in WARNINGS.items()]
    return "\n".join(lines)


#: The API's warning codes (API.md: Kcustomer API v2).
_API_WARNINGS = {
    "10001": "no customer was found",
    "10005": "all of the customer's phone numbers were deleted (an empty phone list was sent)",
    "10006": "all of the customer's email addresses were deleted (an empty email list was sent)",
    "10007": "the phone list was empty",
    "10008": "the email list was empty",
    "10011": "a phone number was empty",
    "10012": "an email address was empty",
    "10013": "none of the phone numbers was valid",
    "10014": "none of the email addresses was valid",
    "10015": "a phone number was not in the +1310xxxxxxx form",
    "10016": "a phone number had invalid fields",
}


def explain_warning(warning: str) -> Explanation:
    """Plain words for a warning: a field mk-import left out (by its message) or the API's (by its code).

    Never fails: an unknown warning still gets words, so a new message never breaks a report.
    """
    for message, explanation in WARNINGS.items():
        if warning.startswith(message):
            return explanation
    code = warning.removeprefix("API:").strip().split(" ", 1)[0]
    if code in _API_WARNINGS:
        return Explanation(f"the API saved the customer and said: {_API_WARNINGS[code]}",
                           "check the customer's phones and emails in the row")
    return Explanation(f"a field was left out or questioned: {warning}", "correct the value named")
