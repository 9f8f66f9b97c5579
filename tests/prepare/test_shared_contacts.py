"""Phones and emails more customers of one file carry than the mapping's limit: found across chunks, warned on
every row that carries them, and dropped for all of those customers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from importer.prepare.shared_contacts import ContactCollector
from tests.helpers import DV_HEADER, dv_row, requests_from

DEALER = "+13105550199"
SOURCE_OF = {"phone1": "Cell Phone", "phone2": "Home Phone", "email1": "Email 1"}


def chunk(first_row: int, keys: list[str], phone1: list[str], email1: list[str] | None = None,
          ) -> tuple[pd.DataFrame, pd.Series]:
    """Normalized rows as prepare hands them over (text columns, indexed by source row), with their keys."""
    index = pd.RangeIndex(first_row, first_row + len(keys), name="source_row")
    frame = pd.DataFrame({"lastName": "Lee", "phone1": phone1, "phone2": "",
                          "email1": email1 if email1 is not None else [""] * len(keys)}, index=index).astype("str")
    return frame, pd.Series(keys, index=index, dtype="str")


def collected(*chunks: tuple[pd.DataFrame, pd.Series]) -> tuple[ContactCollector, pd.Index]:
    """The contacts of every row of the chunks, all of them valid."""
    collector = ContactCollector()
    for frame, keys in chunks:
        collector.add(frame, keys, np.ones(len(frame), dtype=bool))
    return collector, pd.Index(np.concatenate([frame.index.to_numpy() for frame, _ in chunks]))


def test_a_phone_on_more_customers_than_the_limit_is_warned_on_each_of_its_rows_and_emptied():
    # Four customers carry the dealer's number, one of them on two rows; read in two chunks.
    first = chunk(1, ["A", "B", "C"], [DEALER, DEALER, "+13105551234"])
    second = chunk(4, ["D", "A", "E"], [DEALER, DEALER, DEALER], email1=["", "", "e@example.com"])
    collector, valid = collected(first, second)
    shared = collector.shared(3, valid)
    assert shared
    assert sorted(shared.hits["row"].tolist()) == [1, 2, 4, 5, 6]
    assert set(shared.hits["column"]) == {"phone1"}
    assert set(shared.hits["customers"]) == {4}
    warning = ("Cell Phone: the value is carried by 4 different customers in this file (the dealer's own number "
               "or a placeholder?); dropped for all of them")
    assert shared.warnings(SOURCE_OF).to_dict() == {1: warning, 2: warning, 4: warning, 5: warning, 6: warning}
    frame = pd.concat([first[0], second[0]])
    dropped = shared.drop(frame)
    assert dropped["phone1"].tolist() == ["", "", "+13105551234", "", "", ""]
    assert dropped["email1"].tolist() == frame["email1"].tolist()
    assert frame["phone1"].tolist()[0] == DEALER  # the frame given is left as it was


def test_a_phone_on_exactly_as_many_customers_as_the_limit_is_kept():
    # Three customers, the limit, over more rows than the limit (A twice): counted by customer, not by row.
    rows = chunk(1, ["A", "B", "C", "A"], [DEALER] * 4)
    collector, valid = collected(rows)
    shared = collector.shared(3, valid)
    assert not shared
    assert shared.warnings(SOURCE_OF).empty
    assert shared.drop(rows[0])["phone1"].tolist() == [DEALER] * 4
    # one customer more, and it is dropped for all four
    collector, valid = collected(chunk(1, ["A", "B", "C", "A", "D"], [DEALER] * 5))
    assert sorted(collector.shared(3, valid).hits["row"].tolist()) == [1, 2, 3, 4, 5]


def test_the_same_contact_on_many_rows_of_one_customer_is_not_shared():
    collector, valid = collected(chunk(1, ["A"] * 8, [DEALER] * 8, email1=["ann@example.com"] * 8))
    assert not collector.shared(3, valid)


def test_a_value_counts_wherever_it_is_and_only_on_the_rows_that_are_sent():
    # The dealer's number as a cell phone for two customers and as a home phone for two more: four carry it.
    index = pd.RangeIndex(1, 7, name="source_row")
    frame = pd.DataFrame({"lastName": "Lee", "phone1": [DEALER, DEALER, "", "", DEALER, DEALER],
                          "phone2": ["", "", DEALER, DEALER, "", ""], "email1": ""}, index=index).astype("str")
    keys = pd.Series(["A", "B", "C", "D", "E", "F"], index=index, dtype="str")
    collector = ContactCollector()
    # rows 5 and 6 are not for sending (refused for good), and row 4 turns out invalid once the file is read
    collector.add(frame, keys, np.array([True, True, True, True, False, False]))
    shared = collector.shared(3, pd.Index([1, 2, 3, 5, 6]))
    assert not shared  # A, B and C: three, the limit
    collector = ContactCollector()
    collector.add(frame, keys, np.ones(6, dtype=bool))
    shared = collector.shared(3, index)
    assert sorted(zip(shared.hits["row"], shared.hits["column"], strict=True)) == [
        (1, "phone1"), (2, "phone1"), (3, "phone2"), (4, "phone2"), (5, "phone1"), (6, "phone1")]
    assert shared.warnings(SOURCE_OF)[3] == ("Home Phone: the value is carried by 6 different customers in this "
                                             "file (the dealer's own number or a placeholder?); dropped for all of "
                                             "them")


def test_prepare_drops_a_contact_shared_beyond_the_mappings_limit_from_every_body(write_csv):
    # dealervault's shared_contact_limit is the default, 3
    rows = [dv_row(str(600 + n), first=f"F{n}", last=f"L{n}", cell="(310) 555-0199", email=f"c{n}@example.com")
            for n in range(4)]
    family = [dv_row(str(700 + n), first=f"G{n}", last="Day", home="(310) 555-0142") for n in range(3)]
    requests = requests_from(write_csv([DV_HEADER, *rows, *family]))
    bodies = {request.key: request.body["customer"] for request in requests}
    for n in range(4):
        assert "phoneNumbers" not in bodies[str(600 + n)]
        assert bodies[str(600 + n)]["emails"] == [{"emailAddress": f"c{n}@example.com", "label": "home"}]
    for n in range(3):
        assert bodies[str(700 + n)]["phoneNumbers"] == [{"phoneNumber": "+13105550142", "label": "home"}]
