"""Keys a spreadsheet rewrote: which cells are the export's key, and what a re-import makes of them."""

from __future__ import annotations

import pandas as pd
import pytest

from importer.error_codes import WARNINGS
from importer.prepare.rewritten import KEY_CHANGED, KEY_RESTORED, give_back_keys, same_number, unreadable_keys


@pytest.mark.parametrize(("cell", "exported", "same"), [
    ("82", "0000082", True),
    ("82.0", "0000082", True),
    ("82.00", "82", True),
    ("1,234", "0001234", True),
    ("8.23457E+11", "823456789012", True),
    ("8,23457E+11", "823456789012", True),  # a comma locale
    ("8.2E+11", "820000000001", True),
    ("1.23456789012346E+018", "1234567890123456789", True),  # LibreOffice's form
    ("8.23458E+11", "823456789012", False),  # not that key, rounded either way
    ("83", "0000082", False),
    ("82.5", "0000082", False),
    ("082", "C-0082", False),  # a key of text is never rewritten as a number
    ("", "0000082", False),
    ("1,23", "123", False),
    ("10E2345", "10", False),
])
def test_which_cells_are_the_exports_key(cell, exported, same):
    assert same_number(cell, exported) is same


def test_keys_given_back_and_keys_changed():
    index = pd.RangeIndex(1, 6, name="source_row")
    keys = pd.Series(["82", "91", "0000083", "C-1", ""], index=index, dtype="str")
    exported = pd.Series(["0000082", "0000084", "0000083", "", "0000085"], index=index, dtype="str")
    given, notes, changed = give_back_keys(keys, exported, "CustNo")
    assert list(given) == ["0000082", "91", "0000083", "C-1", ""]
    assert list(changed) == [False, True, False, False, True]
    assert list(notes) == [f"CustNo: {KEY_RESTORED}: '82' read as '0000082'",
                           f"CustNo: {KEY_CHANGED}: '91' (the export had '0000084')", "", "",
                           f"CustNo: {KEY_CHANGED}: '' (the export had '0000085')"]
    assert KEY_RESTORED in WARNINGS
    assert KEY_CHANGED in WARNINGS


def test_keys_in_scientific_notation_are_unreadable():
    keys = pd.Series(["8.23457E+11", "1.2E+018", "82", "10E2345", "1E5", "A1.2E+11"], dtype="str")
    assert list(unreadable_keys(keys)) == [True, True, False, False, False, False]
