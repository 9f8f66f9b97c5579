"""The quote that defuses a formula-like cell, and taking it away again."""

from __future__ import annotations

import re

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from importer.read.formulas import _UNDEFUSE, defuse_text, undefuse, undefuse_text

cells = st.text(st.sampled_from("'=+-@\t\rab0 "), max_size=5) | st.text(max_size=8)


@given(cells)
@example("'")  # a lone quote stays: nothing follows it to give back
@example("''=")
def test_undefuse_text_is_undefuse_of_one_value_and_undoes_defuse_text(value):
    assert undefuse_text(value) == re.sub(_UNDEFUSE, r"\1", value, count=1)
    assert undefuse_text(value) == undefuse(pd.Series([value], dtype="string")).iloc[0]
    assert undefuse_text(defuse_text(value)) == value


@given(st.lists(cells | st.none(), max_size=12))
def test_defuse_in_arrow_is_defuse_text_of_each_value_and_keeps_the_columns_dtype(values):
    from importer.read.formulas import defuse
    from importer.read.reader import TEXT_DTYPE

    column = pd.Series(values, dtype=TEXT_DTYPE, name="Cell Phone", index=range(5, 5 + len(values)))
    defused = defuse(column)
    assert defused.dtype == TEXT_DTYPE
    assert defused.name == column.name
    assert defused.index.equals(column.index)
    assert [None if pd.isna(v) else v for v in defused] == [None if v is None else defuse_text(v) for v in values]
    as_objects = defuse(column.astype(object))  # any other column: by the regular expression, the same
    assert [None if pd.isna(v) else v for v in as_objects] == [None if pd.isna(v) else v for v in defused]


@given(st.lists(cells | st.none(), max_size=12))
@example(["'", "''", "'=", "x'=", "'a"])
def test_undefuse_in_arrow_is_undefuse_text_of_each_value(values):
    from importer.read.reader import TEXT_DTYPE

    column = pd.Series(values, dtype=TEXT_DTYPE, name="Email 1")
    undone = undefuse(column)
    assert undone.dtype == TEXT_DTYPE
    assert undone.name == column.name
    assert [None if pd.isna(v) else v for v in undone] == [None if v is None else undefuse_text(v) for v in values]
