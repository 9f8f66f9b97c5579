"""Columns holding several fields: the mapping keys, the splitting rules, and the parts going through the same
normalizers and checks as separate columns, unreadable parts making the row one to fix."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.cli import main
from importer.error_codes import WARNINGS
from importer.errors import ConfigError
from importer.prepare.composites import split
from importer.prepare.mapping import load_mapping, parse_mapping, read_canonical
from importer.report.reasons import ReasonParser
from tests.helpers import read_csv, read_jsonl

VIN = "1HGCM82633A004352"  # a valid check digit


@pytest.mark.parametrize(("value", "city", "state", "zip_code"), [
    ("AUSTIN, TX 78701", "AUSTIN", "TX", "78701"),
    ("Austin TX 78701-1234", "Austin", "TX", "78701-1234"),
    ("SAN ANTONIO TX 78201", "SAN ANTONIO", "TX", "78201"),
    ("Salt Lake City, UT. 84101", "Salt Lake City", "UT", "84101"),
    ("Austin, Texas 78701", "Austin", "Texas", "78701"),
    ("Montréal, QC H2X 1Y4", "Montréal", "QC", "H2X 1Y4"),
    ("Laval QC h7n2k3", "Laval", "QC", "h7n2k3"),
    ("AUSTIN, TX", "AUSTIN", "TX", ""),
    ("Austin Texas 78701", "Austin", "Texas", "78701"),  # no comma before a state's name: usaddress
])
def test_city_state_zip(value, city, state, zip_code):
    parts = split("city_state_zip", pd.Series([value], dtype="str")).parts
    assert (parts["address.city"][0], parts["address.state"][0], parts["address.zip"][0]) == (city, state, zip_code)


@pytest.mark.parametrize(("value", "line1", "city", "state", "zip_code"), [
    ("12 Oak Ave, Austin, TX 73301", "12 Oak Ave", "Austin", "TX", "73301"),
    ("12 Oak Ave, Apt 4, Austin, TX 73301", "12 Oak Ave, Apt 4", "Austin", "TX", "73301"),
    ("12 OAK AVE APT 4 AUSTIN TX 73301", "12 OAK AVE APT 4", "AUSTIN", "TX", "73301"),
    ("PO Box 12, Boston, MA 02101", "PO Box 12", "Boston", "MA", "02101"),
    ("123 rue Principale, Montréal, QC H2X 1Y4", "123 rue Principale", "Montréal", "QC", "H2X 1Y4"),
])
def test_one_line_addresses(value, line1, city, state, zip_code):
    parts = split("one_line", pd.Series([value], dtype="str")).parts
    assert [parts[f"address.{p}"][0] for p in ("line1", "city", "state", "zip")] == [line1, city, state, zip_code]


@pytest.mark.parametrize(("value", "expected"), [
    (f"2018 HONDA ACCORD {VIN}", ("2018", "HONDA", "ACCORD", "", VIN)),
    ("2018 Honda Civic EX", ("2018", "Honda", "Civic", "EX", "")),
    ("2020 Tesla Model 3", ("2020", "Tesla", "Model 3", "", "")),
    ("2016 CHEVY SILVERADO 1500 LT", ("2016", "CHEVY", "SILVERADO 1500", "LT", "")),
    ("2019 JEEP GRAND CHEROKEE LIMITED", ("2019", "JEEP", "GRAND CHEROKEE", "LIMITED", "")),
    ("2017 LAND ROVER RANGE ROVER SPORT", ("2017", "LAND ROVER", "RANGE ROVER", "SPORT", "")),
    (f"VIN: {VIN} FORD F-150 XLT 2015", ("2015", "FORD", "F-150", "XLT", VIN)),
    ("HONDA ACCORD", ("", "HONDA", "ACCORD", "", "")),
    ("2015 Kenworth T680", ("2015", "", "", "", "")),  # a make the vocabulary lacks: not guessed
])
def test_vehicle_descriptions(value, expected):
    parts = split("description", pd.Series([value], dtype="str")).parts
    assert tuple(parts[p][0] for p in ("vehicleYear", "vehicleMake", "vehicleModel", "vehicleTrim", "vin")) == expected


def test_each_distinct_value_is_read_once_and_empty_cells_are_not_unread():
    values = pd.Series(["AUSTIN, TX 78701", "", "AUSTIN, TX 78701", "AUSTIN, TX"], dtype="str")
    result = split("city_state_zip", values)
    assert result.parts["address.city"].tolist() == ["AUSTIN", "", "AUSTIN", "AUSTIN"]
    assert result.unread["address.zip"].tolist() == [False, False, False, True]
    assert not result.unread["address.city"].any()


BASE = {"customer_key": "Key", "customer": {"lastName": "Last"}}


@pytest.mark.parametrize(("section", "message"), [
    ({"address": {"city_state_zip": {"column": "X"}}}, "address: city_state_zip: expected a column name"),
    ({"address": {"city_state_zip": ["X", "Y"]}}, "address: city_state_zip: expected a column name"),
    ({"address": {"cityStateZip": "X"}}, "unknown field 'cityStateZip'"),
    ({"address": {"city_state_zip": "X", "one_line": "Y"}}, "give city_state_zip or one_line, not both"),
    ({"vehicle": {"description": {"column": "V"}}}, "vehicle: description: expected a column name"),
    ({"vehicles": [{"vin": "V"}, {"descriptions": "D"}]}, "vehicles[2]: unknown field 'descriptions'"),
])
def test_malformed_composites_are_refused_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_mapping({**BASE, **section}, "m.yaml")


def test_a_malformed_composite_exits_2(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("customer: {lastName: Last}\naddress: {one_line: {column: A}}\n")
    assert main(["mappings", "show", str(path)]) == 2
    assert "address: one_line: expected a column name" in capsys.readouterr().err


def test_show_names_the_parts(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("customer: {lastName: Last}\naddress: {one_line: A}\nvehicles: [{vin: V}, {description: D}]\n")
    assert main(["mappings", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "# address.one_line: 'A' holds address.line1, address.city, address.state, address.zip" in out
    assert "# vehicle2.description: 'D' holds vehicle2.vehicleYear, vehicle2.vehicleMake" in out


def test_a_part_is_filled_only_where_its_own_column_is_empty_and_values_map_it():
    mapping = parse_mapping({**BASE, "address": {"city": "City", "city_state_zip": "CSZ"},
                             "vehicle": {"description": "Veh"}, "values": {"vehicleMake": {"chevy": "Chevrolet"}}},
                            "m.yaml")
    raw = pd.DataFrame({"Key": ["1", "2"], "Last": ["Lee", "Kim"], "City": ["Round Rock", ""],
                        "CSZ": ["AUSTIN, TX 78701", "N/A"], "Veh": ["2016 CHEVY SILVERADO", "FORD F-150"]}, dtype="str")
    canonical, unread = read_canonical(mapping, raw, {c: c for c in raw.columns})
    assert canonical["address.city"].tolist() == ["Round Rock", ""]
    assert canonical["address.zip"].tolist() == ["78701", ""]  # a placeholder is empty: nothing unread
    assert canonical["vehicleMake"].tolist() == ["Chevrolet", "FORD"]
    assert [(u.field, u.message, u.mask.tolist()) for u in unread] == [
        ("vehicleYear", "part not read, left out (model year)", [False, True])]
    assert mapping.source_of("address.zip") == "CSZ"
    assert mapping.source_of("address.city") == "City"
    assert mapping.source_of("vehicleYear") == "Veh"


def test_parts_go_through_the_normalizers_and_unread_parts_are_rows_to_fix(write_csv, tmp_path):
    path = write_csv([
        ["CUST#", "CUSTOMER NAME", "STREET ADDRESS", "CITY STATE ZIP", "VEHICLE", "VIN"],
        ["1", "GARCIA, CARLOS", "12 Oak Ave", "Boston, Massachusetts 2134", "2018 HONDA ACCORD", VIN],
        ["2", "SMITH, JOHN", "14 Elm St", "AUSTIN, TX", "HONDA CIVIC", ""],
        ["3", "LEE, ANN", "1 Main St", "garbage 123", f"2019 CHEVY SILVERADO 1500 LT {VIN}", ""],
        ["4", "KIM, MIN", "2 Main St", "AUSTIN, ZZ 78701", "2018 HONDA ACCORD", ""],
    ])
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customer_key: CUST#\ncustomer: {fullName: CUSTOMER NAME}\n"
                       "address: {line1: STREET ADDRESS, city_state_zip: CITY STATE ZIP}\n"
                       "vehicle: {description: VEHICLE, vin: VIN}\n")
    out = tmp_path / "out"
    assert main(["validate", str(path), "--mapping", str(mapping), "--out", str(out),
                 "--payloads", str(out / "p.jsonl")]) == 0
    bodies = {b["customer"]["customerKey"]: b for b in read_jsonl(out / "p.jsonl")}
    assert bodies["1"]["customer"]["addresses"] == [{"line1": "12 Oak Ave", "city": "Boston", "state": "MA",
                                                     "zip": "02134"}]
    assert bodies["1"]["vehicles"] == [{"vin": VIN, "vehicleYear": "2018", "vehicleMake": "HONDA",
                                        "vehicleModel": "ACCORD"}]
    assert bodies["3"]["vehicles"] == [{"vin": VIN, "vehicleYear": "2019", "vehicleMake": "CHEVY",
                                        "vehicleModel": "SILVERADO 1500", "vehicleTrim": "LT"}]
    rows = {r["source_row"]: r for r in read_csv(out / "results.csv")}
    assert "CITY STATE ZIP: part not read, left out (ZIP/postal code): 'AUSTIN, TX'" in rows["2"]["warnings"]
    assert "VEHICLE: part not read, left out (model year): 'HONDA CIVIC'" in rows["2"]["warnings"]
    assert ("CITY STATE ZIP: part not read, left out (city, state/province and ZIP/postal code): 'garbage 123'"
            in rows["3"]["warnings"])
    # a part read but not valid is dropped by the state's own normalizer, as from a State column
    assert "CITY STATE ZIP: not a US state or Canadian province: 'ZZ'" in rows["4"]["warnings"]
    reasons = ReasonParser(["CUST#", "CUSTOMER NAME", "STREET ADDRESS", "CITY STATE ZIP", "VEHICLE", "VIN"])
    said = reasons.warnings(rows["2"]["warnings"])
    assert [(r.column, r.problem) for r in said][:2] == [("CITY STATE ZIP", "part not read, left out"),
                                                          ("VEHICLE", "part not read, left out")]
    assert WARNINGS["part not read, left out"].meaning in (out / "report.html").read_text()
    to_fix = {r["mk_source_row"]: r for r in read_csv(out / "errors.csv")}
    # A state dropped by its normalizer is a row to fix too, as from a column of its own (one list of rows to fix).
    assert set(to_fix) == {"2", "3", "4"}
    assert "CITY STATE ZIP" in to_fix["2"]["mk_error_message"]
    assert "VEHICLE" in to_fix["2"]["mk_error_message"]
    assert "CITY STATE ZIP" in to_fix["3"]["mk_error_message"]


def test_a_builtin_mapping_has_no_composites():
    assert load_mapping("cdk").composites == ()


def _words(text: str) -> set[str]:
    return set(re.sub(r"[\W_]+", " ", text).split())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
                | st.lists(st.sampled_from(["12", "Oak", "Ave", ",", "AUSTIN", "TX", "78701", "H2X 1Y4", "QC", "&",
                                            "2018", "HONDA", "LAND", "ROVER", VIN, "#", "APT", "-", "Ste"]),
                           max_size=8).map(" ".join), min_size=1, max_size=5))
def test_any_text_splits_without_failing_and_parts_come_from_the_value(values):
    series = pd.Series([v.strip() for v in values], dtype="str")
    for kind in ("city_state_zip", "one_line", "description"):
        result = split(kind, series)
        for name, part in result.parts.items():
            for value, read in zip(series, part, strict=True):
                # every word of a part is a word of the value (usaddress drops punctuation, never invents)
                assert _words(read) <= _words(value), (kind, name)
            if name in result.unread:
                assert not (result.unread[name] & (series == "")).any()


def test_a_city_read_once_splits_later_addresses_without_usaddress(monkeypatch):
    import usaddress

    calls = []
    tag = usaddress.tag

    def counted(value):
        calls.append(value)
        return tag(value)

    monkeypatch.setattr(usaddress, "tag", counted)
    values = pd.Series(["12 OAK AVE SAN ANTONIO TX 78201", "9 MAIN ST STE 4 SAN ANTONIO TX 78205",
                        "3 LAKE RD AUSTIN TX 73301"], dtype="str")
    parts = split("one_line", values).parts
    assert parts["address.line1"].tolist() == ["12 OAK AVE", "9 MAIN ST STE 4", "3 LAKE RD"]
    assert parts["address.city"].tolist() == ["SAN ANTONIO", "SAN ANTONIO", "AUSTIN"]
    assert parts["address.zip"].tolist() == ["78201", "78205", "73301"]
    assert calls == ["12 OAK AVE SAN ANTONIO TX 78201", "3 LAKE RD AUSTIN TX 73301"]  # a city not seen before
