"""Rows → customer requests: grouped by key (or a derived one), merged into one body each, fingerprinted."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.prepare.customers import Requests
from tests.helpers import DV_HEADER, VIN_A, VIN_B, dv_row, requests_from
from tests.prepare.test_mapping import LAYOUT_FILES, SAMPLES

ADDRESS_DEFAULTS = {"country": "US", "type": "PRIMARY", "addressType": "P"}


def bodies(requests: Requests) -> dict[str, dict[str, object]]:
    return {request.key: request.body for request in requests}


def fingerprints(requests: Requests) -> dict[str, str]:
    table = requests.table()
    return dict(zip(table["key"], table["fingerprint"], strict=True))


def test_rows_of_one_key_are_one_request_answering_for_all_of_them(write_csv: Callable[..., Path]):
    requests = requests_from(write_csv([DV_HEADER, dv_row("100", last="Lee"), dv_row("200", last="Day"),
                                        dv_row("100", last="Lee"), dv_row("300", last="Ng"),
                                        dv_row("200", last="Day")]))
    assert [(r.key, r.source_rows) for r in requests] == [("100", (1, 3)), ("200", (2, 5)), ("300", (4,))]
    table = requests.table()
    assert table["key"].tolist() == ["100", "200", "300"]
    assert table["rows"].tolist() == [2, 2, 1]
    assert [(g.key, g.source_rows) for g in requests.groups()] == [("100", (1, 3)), ("200", (2, 5)), ("300", (4,))]


def test_rows_without_a_key_get_a_readable_derived_key_and_repeat_rows_of_one_person_merge(write_csv):
    cy = dv_row("", first="Cy", last="Ng", email="cy@example.com", zip_code="02134")
    namesake = dv_row("", first="Cy", last="Ng", email="cy2@example.com", zip_code="02134")
    requests = requests_from(write_csv([DV_HEADER, cy, dv_row("100", last="Lee"), cy, namesake, cy]))
    (person, keyed, other) = list(requests)
    assert keyed.key == "100"
    assert re.fullmatch(r"~Ng Cy 02134 #[0-9a-f]{12}", person.key)
    assert person.source_rows == (1, 3, 5)
    assert re.fullmatch(r"~Ng Cy 02134 #[0-9a-f]{12}", other.key)
    assert other.key != person.key  # namesakes told apart by the rest of their identity
    assert other.source_rows == (4,)
    assert "customerKey" not in person.body["customer"]  # a derived key is ours, never the DMS's
    assert person.body["customer"]["emails"] == [{"emailAddress": "cy@example.com", "label": "home"}]
    # The same person in another file, among other rows, gets the same key: the state knows them by it.
    again = requests_from(write_csv([DV_HEADER, dv_row("300", last="Ox"), cy], "again.csv"))
    assert [r.key for r in again] == ["300", person.key]


def test_a_group_merges_names_and_contacts_the_latest_non_empty_value_winning(write_csv):
    requests = requests_from(write_csv([
        DV_HEADER,
        dv_row("100", first="Ann", last="Lee", cell="(310) 555-1234", email="ann@example.com", line1="1 Main St",
               city="Boston", state="MA", zip_code="02134"),
        dv_row("100", first="Annie", last="Lee", home="(310) 555-2345", email="ANN@example.com"),
        dv_row("100", first="", last="Lee", cell="(310) 555-2345", line1="9 Elm St", city="Salem"),
        dv_row("100", first="", last="Lee")]))
    (customer,) = [request.body["customer"] for request in requests]
    assert customer == {
        "customerKey": "100", "firstName": "Annie", "lastName": "Lee",
        # the whole address of the last row that has one: never one row's street with another's ZIP
        "addresses": [{"line1": "9 Elm St", "city": "Salem", **ADDRESS_DEFAULTS}],
        # one email however it is cased, with its first label
        "emails": [{"emailAddress": "ann@example.com", "label": "home"}],
        # every distinct number once, in order of first appearance, with the label of its first row
        "phoneNumbers": [{"phoneNumber": "+13105551234", "label": "cell"},
                         {"phoneNumber": "+13105552345", "label": "home"}]}


def test_vehicles_of_several_rows_are_merged_once_each_with_the_latest_fields(write_csv):
    requests = requests_from(write_csv([
        DV_HEADER,
        dv_row("100", last="Lee", vin=VIN_A, year="2003", make="Honda", model="Accord", mileage="1000"),
        dv_row("100", last="Lee", vin=VIN_A, mileage="2000"),
        dv_row("100", last="Lee", vin=VIN_B, year="2019", make="Mack", model="Anthem"),
        dv_row("100", last="Lee", year="2010", make="FORD", model="focus"),
        dv_row("100", last="Lee", year="2010", make="Ford", model="Focus", mileage="5"),
        dv_row("100", last="Lee")]))
    (request,) = list(requests)
    assert request.source_rows == (1, 2, 3, 4, 5, 6)
    assert request.body["vehicles"] == [
        {"vin": VIN_A, "vehicleYear": "2003", "vehicleMake": "Honda", "vehicleModel": "Accord",
         "estimatedMileage": "2000"},
        {"vin": VIN_B, "vehicleYear": "2019", "vehicleMake": "Mack", "vehicleModel": "Anthem"},
        # no VIN: one vehicle by year, make and model, however they were cased
        {"vehicleYear": "2010", "vehicleMake": "Ford", "vehicleModel": "Focus", "estimatedMileage": "5"}]


def test_a_customer_with_nothing_in_a_list_sends_no_list_at_all(write_csv):
    # The API reads an empty list as "delete them all": a row with no phone, email, address or vehicle must not
    # wipe what the dealer's staff entered in myKaarma.
    requests = requests_from(write_csv([DV_HEADER, dv_row("200", first="Bo", last="Day"),
                                        dv_row("200", first="Bo", last="Day", block_phone="Y", block_email="Y")]))
    assert bodies(requests) == {"200": {"customer": {"customerKey": "200", "firstName": "Bo", "lastName": "Day"},
                                        "validateVin": True, "searchForDuplicate": True}}


def test_the_body_has_the_customer_with_its_vehicles_beside_it_and_asks_for_the_duplicate_search(write_csv):
    path = write_csv([DV_HEADER, dv_row("100", first="Ann", last="Lee", cell="(310) 555-1234", vin=VIN_A,
                                        year="2003", make="Honda", model="Accord")])
    (body,) = bodies(requests_from(path)).values()
    assert list(body) == ["customer", "vehicles", "validateVin", "searchForDuplicate"]
    assert body["customer"] == {"customerKey": "100", "firstName": "Ann", "lastName": "Lee",
                                "phoneNumbers": [{"phoneNumber": "+13105551234", "label": "cell"}]}
    assert body["vehicles"] == [{"vin": VIN_A, "vehicleYear": "2003", "vehicleMake": "Honda",
                                 "vehicleModel": "Accord"}]
    assert (body["validateVin"], body["searchForDuplicate"]) == (True, True)
    (unvalidated,) = bodies(requests_from(path, validate_vin=False)).values()
    assert (unvalidated["validateVin"], unvalidated["searchForDuplicate"]) == (False, True)


def test_fingerprints_do_not_depend_on_how_many_rows_are_hashed_at_once(monkeypatch):
    path = SAMPLES / LAYOUT_FILES["dealervault"]
    whole = requests_from(path).table()
    monkeypatch.setattr(Requests, "HASHED_AT_ONCE", 3)
    sliced = requests_from(path).table()
    assert len(whole) > 3
    assert sliced["fingerprint"].tolist() == whole["fingerprint"].tolist()


def test_groups_built_a_few_customers_at_a_time_are_the_same_groups(monkeypatch):
    path = SAMPLES / LAYOUT_FILES["dealervault"]

    def grouped() -> list[tuple[str, tuple[int, ...], str, dict[str, object]]]:
        requests = requests_from(path)
        return [(g.key, g.source_rows, g.fingerprint, requests.request(g).body) for g in requests.groups()]

    whole = grouped()
    monkeypatch.setattr(Requests, "BATCH", 7)
    assert len(whole) > 7
    assert grouped() == whole

def test_a_fingerprint_changes_with_its_customers_rows_alone(write_csv):
    ann = dv_row("100", first="Ann", last="Lee", vin=VIN_A, mileage="1000")
    bo = dv_row("200", first="Bo", last="Day")
    before = fingerprints(requests_from(write_csv([DV_HEADER, ann, bo, ann], "before.csv")))
    # the same again, in another file: the same fingerprints
    assert fingerprints(requests_from(write_csv([DV_HEADER, ann, bo, ann], "same.csv"))) == before
    newer = dv_row("100", first="Ann", last="Lee", vin=VIN_A, mileage="1200")
    changed = fingerprints(requests_from(write_csv([DV_HEADER, ann, bo, newer], "changed.csv")))
    assert changed["100"] != before["100"]
    assert changed["200"] == before["200"]
    # the order of a customer's rows matters (the latest row wins), not where other customers' rows are
    reordered = fingerprints(requests_from(write_csv([DV_HEADER, newer, bo, ann], "reordered.csv")))
    assert reordered["100"] not in (before["100"], changed["100"])
    moved = fingerprints(requests_from(write_csv([DV_HEADER, bo, ann, ann], "moved.csv")))
    assert moved == before
    # and what else builds the body is in every fingerprint
    unvalidated = fingerprints(requests_from(write_csv([DV_HEADER, ann, bo, ann], "v.csv"), validate_vin=False))
    assert set(unvalidated.values()).isdisjoint(before.values())


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=50))
def test_the_fingerprints_column_spells_each_number_as_the_batches_do(numbers):
    from importer.prepare.customers import _hex_column

    assert _hex_column(np.array(numbers, dtype=np.uint64)).tolist() == [format(n, "016x") for n in numbers]
