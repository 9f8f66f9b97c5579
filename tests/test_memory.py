"""importer.memory: a frame parked on disk comes back as it left, and the disk keeps nothing of it."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from importer.memory import _PARKED_ROWS_AT_A_TIME, ParkedFrame
from importer.read.reader import TEXT_DTYPE


def _rows(count: int) -> pd.DataFrame:
    """A row table as prepare makes it: text columns (empty, missing, non-ASCII), indexed by source row."""
    numbers = np.arange(count)
    return pd.DataFrame({
        "status": pd.Series(np.where(numbers % 3 == 0, "invalid", "valid"), dtype=TEXT_DTYPE),
        "error_message": pd.Series([f"e-mail «ü{n}» refused" if n % 7 == 0 else "" for n in numbers], dtype=TEXT_DTYPE),
        "warnings": pd.Series([None if n % 5 == 0 else "W" * (n % 4) for n in numbers], dtype=TEXT_DTYPE),
        "attempts": numbers % 4,
        "share": numbers / 3,
    }, index=pd.Index(numbers * 2 + 3, name="source_row"))


@pytest.mark.parametrize("count", [0, 1, 17, _PARKED_ROWS_AT_A_TIME + 5])
def test_a_parked_frame_comes_back_as_it_left(count: int) -> None:
    rows = _rows(count)
    back = ParkedFrame(rows).back()
    pd.testing.assert_frame_equal(back, rows)
    assert back["status"].dtype == TEXT_DTYPE
    assert back["warnings"].isna().sum() == rows["warnings"].isna().sum()


def test_a_repeated_column_name_comes_back_in_its_place() -> None:
    rows = pd.DataFrame([["a", "b"], ["c", "d"]], columns=["x", "x"], dtype=TEXT_DTYPE)
    pd.testing.assert_frame_equal(ParkedFrame(rows).back(), rows)


def test_the_parked_file_is_private_nameless_and_closed_once_read() -> None:
    parked = ParkedFrame(_rows(100))
    descriptor = parked._file.fileno()
    info = os.fstat(descriptor)
    assert info.st_nlink == 0  # no name on disk: nothing outlives the process, even a killed one
    assert stat.S_IMODE(info.st_mode) == 0o600
    parked.back()
    assert parked._file.closed
