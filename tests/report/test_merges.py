"""Different customer keys the API answered with one customerUuid: warned on their rows, counted for the summary."""

from __future__ import annotations

import pandas as pd

from importer.report.merges import flag_merged


def test_keys_saved_as_one_uuid_are_warned_on_every_saved_row_of_it():
    table = pd.DataFrame({"status": ["success", "unchanged", "success", "failed", "success", "success"],
                          "customer_key": ["B", "A", "B", "C", "D", "E"],
                          "customer_uuid": ["u1", "u1", "u1", "u1", "u2", ""],
                          "warnings": ["", "x", "", "", "", ""]},
                         index=pd.RangeIndex(1, 7, name="source_row"))
    flagged, counts = flag_merged(table)
    assert counts == {"uuids": 1, "customer_keys": 2, "rows": 3}
    note = ("customer keys A, B were all saved as one myKaarma customer by the API's duplicate search; "
            "check them in myKaarma")
    assert flagged["warnings"].tolist() == [note, "x; " + note, note, "", "", ""]
    assert flag_merged(table[table["customer_key"] != "A"])[1] == {"uuids": 0, "customer_keys": 0, "rows": 0}


def test_a_uuid_that_took_many_keys_names_the_first_ones_and_counts_the_rest():
    keys = [f"K{n:02d}" for n in range(25)]
    table = pd.DataFrame({"status": "success", "customer_key": keys, "customer_uuid": "u1", "warnings": ""},
                         index=pd.RangeIndex(1, 26, name="source_row"))
    flagged, counts = flag_merged(table)
    assert counts == {"uuids": 1, "customer_keys": 25, "rows": 25}
    assert set(flagged["warnings"]) == {"customer keys " + ", ".join(keys[:10]) + " and 15 more were all saved as "
                                        "one myKaarma customer by the API's duplicate search; check them in myKaarma"}


def test_one_key_on_one_uuid_is_no_warning_however_many_rows_it_has():
    table = pd.DataFrame({"status": ["success", "unchanged", "success", "success", "failed"],
                          "customer_key": ["A", "A", "A", "B", "C"],
                          "customer_uuid": ["u1", "u1", "u1", "u2", ""],
                          "warnings": ["", "phone1: too short", "", "", ""]},
                         index=pd.RangeIndex(1, 6, name="source_row"))
    flagged, counts = flag_merged(table)
    assert counts == {"uuids": 0, "customer_keys": 0, "rows": 0}
    assert flagged["warnings"].tolist() == ["", "phone1: too short", "", "", ""]


def test_the_counts_for_the_summary_add_up_every_shared_uuid_and_only_saved_rows():
    # u1: keys A and B over three rows; u2: keys C, D and E; u3 one key only; rows the run never saved (no uuid,
    # or not saved) share nothing, whatever their key.
    table = pd.DataFrame({"status": ["success", "success", "unchanged", "success", "success", "unchanged", "success",
                                     "not_attempted", "not_attempted", "invalid"],
                          "customer_key": ["A", "B", "A", "C", "D", "E", "F", "G", "H", ""],
                          "customer_uuid": ["u1", "u1", "u1", "u2", "u2", "u2", "u3", "", "", ""],
                          "warnings": ""},
                         index=pd.RangeIndex(1, 11, name="source_row"))
    flagged, counts = flag_merged(table)
    assert counts == {"uuids": 2, "customer_keys": 5, "rows": 6}
    ab = ("customer keys A, B were all saved as one myKaarma customer by the API's duplicate search; "
          "check them in myKaarma")
    cde = ("customer keys C, D, E were all saved as one myKaarma customer by the API's duplicate search; "
           "check them in myKaarma")
    assert flagged["warnings"].tolist() == [ab, ab, ab, cde, cde, cde, "", "", "", ""]
