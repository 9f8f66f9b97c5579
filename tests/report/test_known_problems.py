"""report/known_problems: what a row's problem is about, and how a problem is counted from night to night."""

from __future__ import annotations

import datetime

import pandas as pd

from importer.read.reader import TEXT_DTYPE
from importer.report.known_problems import KnownProblems, subjects


def _cells(rows: list[list[str]], index: list[int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["First", "Email"], index=pd.Index(index), dtype=TEXT_DTYPE)


def test_a_row_is_about_its_own_key_or_else_its_cells() -> None:
    cells = _cells([["Ann", "a@x"], ["Bob", "b@x"], ["Cy", "c@x"], ["Di", "d@x"]], [2, 3, 4, 5])
    keys = pd.Series(["K1", "~derived", "", None], index=cells.index, dtype=TEXT_DTYPE)
    found = subjects(keys, cells)
    assert found[2] == "K1"
    for row in (3, 4, 5):  # a derived key, an empty one and a missing one: the row's cells
        alone = pd.util.hash_pandas_object(cells.loc[[row]], index=False).iloc[0]
        assert found[row] == f"#{int(alone):016x}"
    assert found[3] != found[4]


def test_a_rows_subject_is_the_same_whichever_rows_come_with_it() -> None:
    cells = _cells([["Ann", "a@x"], ["Bob", "b@x"], ["Ann", "a@x"]], [2, 3, 9])
    keys = pd.Series(["", "K2", ""], index=cells.index, dtype=TEXT_DTYPE)
    together = subjects(keys, cells)
    assert together[2] == together[9] == subjects(keys.loc[[9]], cells.loc[[9]])[9]
    assert subjects(pd.Series(["K1", "K2"], index=[2, 3], dtype=TEXT_DTYPE), cells.loc[[2, 3]]).tolist() == ["K1", "K2"]


def test_a_problem_reported_again_keeps_its_first_night_and_counts_one_more() -> None:
    first = KnownProblems(now=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC))
    seen, times = first.mark(pd.Series(["K1", "K2"], dtype=TEXT_DTYPE), pd.Series(["E", "E"], dtype=TEXT_DTYPE))
    assert times.tolist() == ["1", "1"]
    second = KnownProblems(first.current(), now=datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC))
    again, times = second.mark(pd.Series(["K1", "K3"], dtype=TEXT_DTYPE), pd.Series(["E", "E"], dtype=TEXT_DTYPE))
    assert again.tolist() == [seen[0], "2026-12-02T00:00:00+00:00"]
    assert times.tolist() == ["2", "1"]
    assert (second.new_rows, second.known_rows) == (1, 1)
