"""A row's error and warnings (as results.csv words them) → reasons in plain words, each tied to its column.

results.csv says what went wrong in one text per row (`Cell Phone: not a valid phone number: '555'; VIN:
...`); the report page and errors.xlsx put each reason next to the cell it concerns, so they need it split
by column. The column names come from the input's header, which both have at hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from importer.error_codes import WARNINGS, Explanation, explain, explain_warning
from importer.read.columns import header_key

#: Where a warning's quoted value begins: what comes before it decides the reason.
_QUOTED_VALUE = re.compile(r": ['\"]")
#: Warnings' words remembered at most (a file's own words are a few hundred).
_REMEMBERED = 10_000
#: Row-level error codes whose column a mapping names, when the message does not.
_FIELD_OF_CODE = {"MISSING_LAST_NAME": "lastName", "MISSING_COMPANY": "company"}
#: Distinct (code, message) pairs whose reasons are kept: bounded, as a file can word each row differently.
_CACHED_ERRORS = 10_000


@dataclass(frozen=True, slots=True)
class Reason:
    #: the input column it concerns; None when it concerns the row as a whole (an API refusal, say)
    column: str | None
    #: what went wrong, without the value: rows with the same problem share it (a code or a message)
    problem: str
    #: plain words: what it means
    meaning: str
    #: plain words: what to change
    fix: str
    #: an error (the row was not saved) rather than a warning (a field was left out)
    error: bool


class ReasonParser:
    """Splits results.csv's error and warnings texts by the columns of one input header."""

    def __init__(self, columns: Sequence[str], fields: dict[str, str] | None = None) -> None:
        # Messages spell a column as the mapping does, which may differ from the header in case and
        # surrounding spaces ("First Name " in the file): match as header matching does, answer the header's.
        self._header_of = {header_key(c): c for c in columns if header_key(c)}
        #: longest first, so "Cell Phone 2" is not taken for "Cell Phone"
        self._keys = sorted(self._header_of, key=len, reverse=True)
        #: canonical field → source column, from the mapping when known
        self.fields = {name: self._header_of.get(header_key(c), c) for name, c in (fields or {}).items()}
        #: When no column's name holds ": ", the column a warning starts with is the text before its first
        #: ": ", found by one lookup instead of a try of every column (the longest-first rule cannot then
        #: differ: a column matching ends exactly where the first ": " begins).
        self._by_prefix = not any(": " in k for k in self._keys)
        #: A row's error reasons by (code, message): rows to fix share a few messages, thousands of times.
        self._errors: dict[tuple[str, str], list[Reason]] = {}
        names = "|".join(re.escape(k) for k in [*self._keys, "api"])
        self._split = re.compile(f"; (?=(?:{names}): )", re.IGNORECASE)
        # A warning's reason depends on its text before the value it quotes (`Email: characters ...: 'zoë@…'`):
        # remembered by that text, a migration's hundreds of thousands of rows are parsed in a few hundred
        # ways. Not where a column's own name could hold such a quote.
        self._by_words: dict[str, list[Reason]] | None = (
            None if any(_QUOTED_VALUE.search(k) for k in [*self._keys, *WARNINGS]) else {})

    def column_in(self, text: str) -> str | None:
        """The column a message is about: one it starts with, or one that opens a parenthesis in it
        (`a person needs a last name (Last Name is empty)`). Not any column named anywhere: a column called
        "Name" is not what "a person needs a last name" is about."""
        folded = text.casefold()
        return next((self._header_of[k] for k in self._keys
                     if folded.startswith(f"{k} ") or folded.startswith(f"{k}:") or f"({k} " in folded), None)

    def _column_of(self, piece: str) -> tuple[str | None, str]:
        """The column a warning starts with, and the rest of the warning."""
        folded = piece.casefold()
        if self._by_prefix:
            end = folded.find(": ")
            column = self._header_of.get(folded[:end]) if end >= 0 else None
            return (column, piece[end + 2:]) if column is not None else (None, piece)
        for key in self._keys:
            if folded.startswith(f"{key}: "):
                return self._header_of[key], piece[len(key) + 2:]
        return None, piece

    def _warning(self, piece: str) -> list[Reason]:
        if piece.startswith("API: "):
            return [Reason(None, f"API warning {w.split(' ', 1)[0]}", *_words(explain_warning(w)), error=False)
                    for w in piece[5:].split(", ") if w]
        column, rest = self._column_of(piece)
        message = next((m for m in WARNINGS if rest.startswith(m)), None)
        if message is None:
            message = re.split(r": ['\"]", rest, maxsplit=1)[0]
        return [Reason(column, message, *_words(explain_warning(message)), error=False)]

    def warnings(self, text: str) -> list[Reason]:
        # Most rows carry one warning: without "; " there is nothing for the column names' expression to split.
        pieces = self._split.split(text) if "; " in text else (text,)
        return [r for piece in pieces if piece for r in self._remembered_warning(piece)]

    def _remembered_warning(self, piece: str) -> list[Reason]:
        if self._by_words is None or piece.startswith("API: "):
            return self._warning(piece)
        words = _QUOTED_VALUE.split(piece, maxsplit=1)[0]
        found = self._by_words.get(words)
        if found is None:
            found = self._warning(piece)
            # Remembered only if the words hold the whole problem: a value right after the column's name
            # (`Email: 'x' ...`) is part of it.
            if all(r.problem in words for r in found):
                if len(self._by_words) > _REMEMBERED:
                    self._by_words.clear()
                self._by_words[words] = found
        return found

    def reasons(self, error_code: str, error_message: str, warnings: str) -> list[Reason]:
        """Every reason of one row: its error first (if any), then its warnings."""
        found = self._errors.get((error_code, error_message))
        if found is None:
            found = self._error(error_code, error_message)
            if len(self._errors) < _CACHED_ERRORS:
                self._errors[error_code, error_message] = found
        found = list(found)
        if warnings and warnings != error_message:
            found += self.warnings(warnings)
        return found

    def _error(self, error_code: str, error_message: str) -> list[Reason]:
        found: list[Reason] = []
        if error_code == "INVALID_FIELD":  # --strict: the message is the field warnings themselves
            found += [Reason(r.column, r.problem, r.meaning, r.fix, error=True)
                      for r in self.warnings(error_message)]
        elif error_code:
            column = self.fields.get(_FIELD_OF_CODE.get(error_code, "")) or self.column_in(error_message)
            found.append(Reason(column, error_code, *_words(explain(error_code)), error=True))
        return found


def _words(explanation: Explanation) -> tuple[str, str]:
    return explanation.meaning, explanation.fix
