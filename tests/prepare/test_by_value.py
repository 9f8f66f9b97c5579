"""prepare/by_value and the warnings built from it: texts handled in Arrow read as Python makes them one by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.prepare.by_value import python_repr
from importer.prepare.normalize import FieldProblem
from importer.prepare.stage import _NOTHING_TO_FIX, ProblemTally, _dropped_fields, _warning_texts
from importer.read.reader import TEXT_DTYPE


def test_every_character_kept_between_quotes_is_one_repr_keeps() -> None:
    for code in range(0x250):
        text = chr(code)
        assert python_repr(pa.array([text])).to_pylist() == [repr(text)], hex(code)


@settings(max_examples=300)
@given(st.lists(st.text(st.characters(max_codepoint=0x2FF)) | st.text(), max_size=30))
def test_python_repr_is_reprs(texts: list[str]) -> None:
    assert python_repr(pa.array(texts, pa.large_string())).to_pylist() == [repr(t) for t in texts]


class _Mapping:
    """What _warning_texts asks of a mapping: the source column of a field."""

    @staticmethod
    def source_of(field: str) -> str:
        return {"email": "Email 1", "zip": "Zip"}.get(field, field)


def _one_by_one(problems: list[FieldProblem], index: pd.Index) -> list[str]:
    texts: dict[int, list[str]] = {}
    for problem in problems:
        column = _Mapping.source_of(problem.field)
        values = problem.values.to_numpy(dtype=object)
        for position in np.flatnonzero(problem.mask.to_numpy()).tolist():
            texts.setdefault(position, []).append(f"{column}: {problem.message}: {values[position]!r}")
    return ["; ".join(texts.get(p, [])) for p in range(len(index))]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.text(max_size=6), st.booleans(), st.booleans(), st.booleans()), max_size=25))
def test_a_rows_warnings_are_its_problems_in_order(rows: list[tuple[str, bool, bool, bool]]) -> None:
    index = pd.Index(np.arange(len(rows)) * 3 + 2)
    values = pd.Series([r[0] for r in rows], index=index, dtype=TEXT_DTYPE)
    problems = [FieldProblem(field, message, pd.Series([r[at] for r in rows], index=index, dtype=bool), values)
                for at, field, message in ((1, "email", "not an email"), (2, "zip", "not a ZIP"),
                                           (3, "email", "a placeholder"))]
    tally = ProblemTally()
    made = _warning_texts(problems, _Mapping(), index, tally)  # type: ignore[arg-type]
    assert made.tolist() == _one_by_one(problems, index)
    assert made.dtype == TEXT_DTYPE
    assert made.index.equals(index)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), max_size=25))
def test_a_rows_dropped_fields_are_named_once_each_in_order(rows: list[tuple[bool, ...]]) -> None:
    index = pd.Index(np.arange(len(rows)) + 2)
    values = pd.Series("x", index=index, dtype=TEXT_DTYPE)
    # The zip twice with the same words (two fields of one column holding several), and words nothing fixes.
    problems = [FieldProblem(field, message, pd.Series([r[at] for r in rows], index=index, dtype=bool), values)
                for at, field, message in ((0, "email", "not an email"), (1, "zip", "could not be read"),
                                           (2, "zip", "could not be read"), (3, "email", next(iter(_NOTHING_TO_FIX))))]
    expected = []
    for row in range(len(rows)):
        named = [f"{_Mapping.source_of(p.field)} ({p.message})" for p in problems
                 if p.mask.iloc[row] and p.message not in _NOTHING_TO_FIX]
        expected.append(", ".join(dict.fromkeys(named)))
    assert _dropped_fields(problems, _Mapping(), index).tolist() == expected  # type: ignore[arg-type]
