"""Text columns of the row table changed in Arrow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from importer.report.outcomes import append_notes, given_else_own


def test_a_note_joins_the_cells_it_is_for_and_leaves_the_others_alone():
    warnings = pd.concat([pd.Series(["", "phone1: too short"], dtype="str"),
                          pd.Series(["", "email1: no domain"], dtype="str")], ignore_index=True)
    rows = np.array([True, True, False, False])
    appended = append_notes(warnings, rows, pa.chunked_array([["merged A"], ["merged B"]]))
    assert appended.tolist() == ["merged A", "phone1: too short; merged B", "", "email1: no domain"]
    assert appended.dtype == warnings.dtype
    assert appended.index.equals(warnings.index)


def test_given_values_replace_a_rows_own_and_a_null_keeps_it():
    own = pd.concat([pd.Series(["a", ""], dtype="str"), pd.Series(["c"], dtype="str")], ignore_index=True)
    replaced = given_else_own(own, pa.array(["x", None, "z"], pa.string()))
    assert replaced.tolist() == ["x", "", "z"]
    assert replaced.dtype == own.dtype
    assert replaced.index.equals(own.index)
