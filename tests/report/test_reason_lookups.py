"""The reasons of a row, split by column: the shortcuts taken for speed give what the full search gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from importer.report.reasons import ReasonParser

NAMES = ["Cell Phone", "Cell Phone 2", "cell phone", "Email 1", "Straße", "STRASSE", " First Name ", "Name", "ß",
         "Notes: extra", "Notes", "API", "a:", "VIN"]
MESSAGES = ["not a valid phone number", "not a valid email", "characters the API does not accept before the @",
            "not a US state", "an unknown warning"]
name = st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=8))


@st.composite
def warnings_texts(draw: st.DrawFn) -> tuple[list[str], str]:
    header = draw(st.lists(name, min_size=1, max_size=6))
    quote = st.sampled_from(["'", '"'])
    pieces = [f"{draw(st.one_of(st.sampled_from(header), name))}: {draw(st.sampled_from(MESSAGES))}: "
              f"{draw(quote)}{draw(st.text(max_size=10))}'" for _ in range(draw(st.integers(1, 4)))]
    if draw(st.booleans()):
        pieces.append("API: W123 something, W7 else")
    return header, "; ".join(pieces)


@settings(max_examples=300, deadline=None)
@given(warnings_texts(), warnings_texts())
def test_a_warnings_reason_by_the_shortcuts_is_the_full_searchs(case, other):
    header, text = case
    quick, full = ReasonParser(header), ReasonParser(header)
    quick.warnings(other[1])  # reasons kept from another row's warnings
    full._by_prefix = False  # every column tried, longest first
    expected = full.warnings(text)
    assert quick.warnings(text) == expected
    assert quick.warnings(text) == expected  # and from the kept reasons


@settings(max_examples=100, deadline=None)
@given(warnings_texts(), st.sampled_from(["", "MISSING_LAST_NAME", "SAVED_WITHOUT_FIELD", "INVALID_FIELD"]),
       st.sampled_from(["a person needs a last name (Last Name is empty)", "would be sent without Email 1 (x)", ""]))
def test_a_rows_reasons_are_the_same_the_second_time_from_the_kept_ones(case, code, message):
    header, warnings = case
    parser = ReasonParser([*header, "Last Name"])
    first = parser.reasons(code, message, warnings)
    if first:
        first.append(first[0])  # a caller changing its list changes nothing kept
    assert parser.reasons(code, message, warnings) == ReasonParser([*header, "Last Name"]).reasons(
        code, message, warnings)
