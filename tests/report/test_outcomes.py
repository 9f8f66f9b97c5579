"""Each row's outcome collected as answers arrive (RowOutcomes), and text columns of the row table changed in
Arrow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from importer.report.outcomes import RowOutcomes, append_notes, given_else_own
from importer.send.pool import Outcome
from importer.status import Status


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


def test_every_row_of_a_customer_gets_its_outcome_and_rows_without_one_keep_theirs():
    table = pd.DataFrame({"status": ["valid", "invalid", "valid", "valid"], "customer_key": ["A", "", "A", "B"],
                          "customer_uuid": "", "customer_id": "", "error_code": ["", "MISSING_LAST_NAME", "", ""],
                          "error_message": ["", "a person needs a last name", "", ""],
                          "warnings": ["Cell: not a valid phone number: 'x'", "", "", ""]},
                         index=pd.RangeIndex(1, 5, name="source_row"))
    outcomes = RowOutcomes(table.index)
    outcomes.set((1, 3), Outcome("A", Status.SUCCESS, "uuid-A", "7", warnings=("10017 VIN not decoded",)))
    result = outcomes.apply(table)
    assert result["status"].tolist() == ["success", "invalid", "success", "valid"]
    assert result["customer_uuid"].tolist() == ["uuid-A", "", "uuid-A", ""]
    assert result["customer_id"].tolist() == ["7", "", "7", ""]
    assert result["error_message"].tolist() == ["", "a person needs a last name", "", ""]
    assert result["warnings"].tolist() == ["Cell: not a valid phone number: 'x'; API: 10017 VIN not decoded", "",
                                           "API: 10017 VIN not decoded", ""]
    outcomes.set((4,), Outcome("B", Status.FAILED, error_code="10015", detail="bad request", attempts=1))
    failed = outcomes.apply(table).loc[4]
    assert (failed["status"], failed["error_code"], failed["error_message"]) == ("failed", "10015", "bad request")


def test_row_numbers_must_be_the_readers_consecutive_ones():
    with pytest.raises(ValueError, match="consecutive"):
        RowOutcomes(pd.Index([1, 2, 5]))


def test_outcomes_packed_in_blocks_reach_their_rows_and_a_later_outcome_wins(monkeypatch):
    monkeypatch.setattr(RowOutcomes, "BLOCK", 2)
    table = pd.DataFrame({"status": "valid", "customer_key": ["A", "B", "C", "D", "E"], "customer_uuid": "",
                          "customer_id": "", "error_code": "", "error_message": "", "warnings": ""},
                         index=pd.RangeIndex(1, 6, name="source_row"))
    outcomes = RowOutcomes(table.index)
    for row, key in zip((1, 2, 3, 4), "ABCD", strict=True):
        outcomes.set((row,), Outcome(key, Status.SUCCESS, f"uuid-{key}", str(row)))
    outcomes.set((2,), Outcome("B", Status.FAILED, error_code="10015", detail="bad request"))
    result = outcomes.apply(table)
    assert result["status"].tolist() == ["success", "failed", "success", "success", "valid"]
    assert result["customer_uuid"].tolist() == ["uuid-A", "", "uuid-C", "uuid-D", ""]
    assert result["customer_id"].tolist() == ["1", "", "3", "4", ""]
    assert result["warnings"].tolist() == [""] * 5
    assert result["customer_uuid"].dtype == pd.Series([""], dtype="str").dtype
