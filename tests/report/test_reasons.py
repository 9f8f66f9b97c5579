"""Reasons split from results.csv's texts: the parser remembers a warning's words, never its value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from importer.error_codes import WARNINGS
from importer.report.reasons import ReasonParser

COLUMNS = ["Email 1", "Email", "Cell Phone", "Cell Phone 2", "Last Name", "Zip"]
_piece = st.builds(
    lambda column, message, quote, value, shape: {
        "after the message": f"{column}: {message}: {quote}{value}{quote}",
        "value first": f"{column}: {quote}{value}{quote} {message}",
        "no quote": f"{column}: {message} {value}",
        "api": f"API: W{len(value)} {value}",
    }[shape],
    st.sampled_from(COLUMNS), st.sampled_from([*WARNINGS, "something else"]), st.sampled_from(["'", '"']),
    st.text(alphabet="ab' :\"é;", max_size=6), st.sampled_from(["after the message", "value first", "no quote", "api"]))


@settings(max_examples=300)
@given(st.lists(st.lists(_piece, min_size=1, max_size=3).map("; ".join), min_size=1, max_size=30))
def test_remembered_reasons_are_those_of_a_fresh_parser(texts):
    shared = ReasonParser(COLUMNS)
    for text in texts:
        assert shared.warnings(text) == ReasonParser(COLUMNS).warnings(text), text


def test_a_value_is_never_taken_for_the_problem_of_another_row():
    parser = ReasonParser(COLUMNS)
    first = parser.warnings("Email: 'ann@x' was refused")
    second = parser.warnings("Email: 'bob@y' was refused")
    assert first[0].problem != second[0].problem
    same = [parser.warnings(f"Cell Phone: not a valid phone number: '{v}'")[0] for v in ("555", "123")]
    assert same[0] == same[1]
    assert same[0].column == "Cell Phone"
