"""Mapping features real exports need: one full-name column, several vehicles in one row."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importer.cli import main
from importer.errors import ConfigError
from importer.prepare import full_names as names
from importer.prepare.full_names import split_name
from tests.helpers import VIN_A, VIN_B, read_csv, read_jsonl


@pytest.mark.parametrize(("name", "first", "middle", "last"), [
    ("SMITH, JOHN", "JOHN", "", "SMITH"),
    ("John Smith", "John", "", "Smith"),
    ("John Q. Smith", "John", "Q", "Smith"),
    ("SMITH JOHN Q", "JOHN", "Q", "SMITH"),
    ("SMITH, JOHN Q.", "JOHN", "Q", "SMITH"),
    ("Mr. John Smith Jr.", "John", "", "Smith Jr"),
    ("John Smith, Jr.", "John", "", "Smith Jr"),
    ("SMITH JR, JOHN", "JOHN", "", "SMITH JR"),
    ("Maria van der Berg", "Maria", "", "van der Berg"),
    ("de la Cruz, Ana María", "Ana", "María", "de la Cruz"),
    ("  Jean-François   Tremblay ", "Jean-François", "", "Tremblay"),
    ("Cher", "", "", "Cher"),
    ("", "", "", ""),
    ("MARY & JOHN SMITH", "MARY", "", "SMITH"),
    ("SMITH, JOHN & MARY", "JOHN", "", "SMITH"),
    ("Marie et Jean Roy", "Marie", "", "Roy"),
    ("Ann and Bo van der Berg", "Ann", "", "van der Berg"),
    ("John Smith & Mary Jones", "John", "", "Smith"),
])
def test_full_names_split_by_the_documented_rules(name, first, middle, last):
    assert split_name(name) == (first, middle, last, "")


def test_last_first_order_and_businesses():
    assert split_name("SMITH JOHN", "last-first") == ("JOHN", "", "SMITH", "")
    assert split_name("VAN DER BERG MARIA", "last-first") == ("MARIA", "", "VAN DER BERG", "")
    assert split_name("Bayside Plumbing LLC", businesses=True) == ("", "", "", "Bayside Plumbing LLC")
    assert split_name("A1 TOWING", businesses=True) == ("", "", "", "A1 TOWING")
    assert split_name("Bayside Plumbing LLC") == ("Bayside", "Plumbing", "LLC", "")  # no businesses: a person
    assert split_name("LEE, ANN", businesses=True) == ("ANN", "", "LEE", "")
    assert split_name("SMITH JOHN & MARY", "last-first") == ("JOHN", "", "SMITH", "")
    assert split_name("SMITH & WESSON LLC", businesses=True) == ("", "", "", "SMITH & WESSON LLC")


def test_full_name_and_two_vehicles_make_one_request(tmp_path, write_csv):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("""
customer_key: CUSTNO
customer:
  fullName: {column: NAME, businesses: true}
vehicles:
  - {vin: VIN1, vehicleYear: YR1, vehicleMake: MK1, vehicleModel: MDL1, estimatedMileage: MI1}
  - {vin: VIN2, vehicleYear: YR2, vehicleMake: MK2, vehicleModel: MDL2}
values:
  vehicleMake: {CHEV: Chevrolet}
""")
    path = write_csv([["CUSTNO", "NAME", "VIN1", "YR1", "MK1", "MDL1", "MI1", "VIN2", "YR2", "MK2", "MDL2"],
                      ["1", "SMITH, JOHN Q", VIN_A, "2020", "HONDA", "ACCORD", "1,200", VIN_B, "2019", "CHEV", "TAHOE"],
                      ["2", "Acme Fleet Services", "", "2018", "FORD", "F150", "", "", "", "", ""],
                      ["3", "Ann Lee", "", "", "", "", "", "BADVIN", "2019", "CHEV", "TAHOE"],
                      ["4", "", "", "", "", "", "", "", "", "", ""]])
    out = tmp_path / "out"
    assert main(["validate", str(path), "--mapping", str(mapping), "--out", str(out),
                 "--payloads", str(out / "p.jsonl")]) == 1
    bodies = read_jsonl(out / "p.jsonl")
    assert bodies[0]["customer"] == {"customerKey": "1", "firstName": "JOHN", "middleName": "Q",
                                          "lastName": "SMITH"}
    assert bodies[0]["vehicles"] == [
        {"vin": VIN_A, "vehicleYear": "2020", "vehicleMake": "HONDA", "vehicleModel": "ACCORD",
         "estimatedMileage": "1200"},
        {"vin": VIN_B, "vehicleYear": "2019", "vehicleMake": "Chevrolet", "vehicleModel": "TAHOE"}]
    assert bodies[1]["customer"] == {"customerKey": "2", "company": "Acme Fleet Services", "isBusiness": True}
    assert bodies[1]["vehicles"] == [{"vehicleYear": "2018", "vehicleMake": "FORD", "vehicleModel": "F150"}]
    assert "vehicles" not in bodies[2]  # the only vehicle had a bad VIN
    results = read_csv(out / "results.csv")
    assert "VIN2: not a valid VIN" in results[2]["warnings"]
    assert results[3]["error_code"] == "MISSING_LAST_NAME"


@pytest.mark.parametrize(("text", "message"), [
    ("customer: {fullName: {col: N}}\n", "fullName: expected a column"),
    ("customer: {fullName: {column: N, order: backwards}}\n", "order must be one of"),
    ("customer: {lastName: L}\nvehicle: {vin: V}\nvehicles: [{vin: V2}]\n", "not both"),
    ("customer: {lastName: L}\nvehicles: [{vehicleMake: M}]\n", "a vehicle needs a vin"),
    ("customer: {lastName: L}\nvehicles: []\n", "expected a list of column groups"),
])
def test_bad_full_name_and_vehicles_are_refused(tmp_path, text, message):
    from importer.prepare.mapping import load_mapping

    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_mapping(str(path))


_RESERVED = names._TITLES | names._SUFFIXES | names._PARTICLES
_PLAIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéñ", min_size=2, max_size=10).map(str.capitalize).filter(
    lambda w: w.casefold() not in _RESERVED)


@given(first=_PLAIN, last=_PLAIN, initial=st.sampled_from("ABCDEJKMRTQ"))
def test_the_usual_spellings_of_one_name_split_the_same_way(first, last, initial):
    """`LAST, FIRST`, `First Last`, `LAST FIRST I` and `First I. Last` are one person, whatever the words."""
    assert split_name(f"{last}, {first}") == (first, "", last, "")
    assert split_name(f"{first} {last}") == (first, "", last, "")
    assert split_name(f"{first} {initial}. {last}") == (first, initial, last, "")
    assert split_name(f"{last.upper()} {first.upper()} {initial}") == (first.upper(), initial, last.upper(), "")
    assert split_name(f"{last.upper()}, {first.upper()} {initial}.") == (first.upper(), initial, last.upper(), "")


def test_a_customer_name_comes_whole_from_one_row_and_two_people_are_flagged(tmp_path, write_csv):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customer_key: CUSTNO\ncustomer:\n  fullName: {column: NAME, businesses: true}\n")
    path = write_csv([["CUSTNO", "NAME"],
                      ["144", "WILLIAMS, JOSE Q"], ["144", "GARCIA JR, CARLOS"],
                      ["91", "ACME FLEET SERVICES LLC"], ["91", "LOPEZ, LINDA A"],
                      ["7", "LEE, ANN M"], ["7", "LEE, A"], ["7", "LEE, ANN"]])
    out = tmp_path / "out"
    assert main(["validate", str(path), "--mapping", str(mapping), "--out", str(out),
                 "--payloads", str(out / "p.jsonl")]) == 0
    bodies = {b["customer"]["customerKey"]: b["customer"] for b in read_jsonl(out / "p.jsonl")}
    # The last row's name, whole: no middle initial of the first person on the second.
    assert bodies["144"] == {"customerKey": "144", "firstName": "CARLOS", "lastName": "GARCIA JR"}
    assert bodies["91"] == {"customerKey": "91", "firstName": "LINDA", "middleName": "A", "lastName": "LOPEZ"}
    # One person's rows: what the last leaves empty comes from an earlier row naming the same person.
    assert bodies["7"] == {"customerKey": "7", "firstName": "ANN", "middleName": "M", "lastName": "LEE"}
    results = read_csv(out / "results.csv")
    warned = [r["source_row"] for r in results if "two people under one customer key" in r["warnings"]]
    assert warned == ["1", "2", "3", "4"]  # an initial is the same person: key 7 is not warned
    assert "'JOSE Q WILLIAMS' here, sent as 'CARLOS GARCIA JR' (row 2)" in results[0]["warnings"]
    assert "'JOSE Q WILLIAMS' (row 1) too, sent as 'CARLOS GARCIA JR' (this row)" in results[1]["warnings"]
    assert "'ACME FLEET SERVICES LLC' here" in results[2]["warnings"]
    errors = read_csv(out / "errors.csv")
    assert [(e["mk_source_row"], e["mk_error_code"]) for e in errors] == [
        (str(n), "TWO_PEOPLE_ONE_KEY") for n in (1, 2, 3, 4)]
    assert all(e["mk_status"] == "valid" for e in errors)
