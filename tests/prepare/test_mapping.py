"""Mapping files: built-ins, validation of the YAML, header checks, canonical columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from importer.cli import main
from importer.errors import ConfigError
from importer.prepare.mapping import builtin_names, check_header, load_mapping, to_canonical

SAMPLES = Path(__file__).parents[2] / "sample_data"
LAYOUT_FILES = {"dealervault": "dealervault_sales.csv", "tekion-ro": "tekion_ro_history.csv",
                "reynolds-customers": "reynolds_customers.txt", "cdk": "cdk_customers.csv"}


def test_builtins_are_the_four_layouts():
    assert builtin_names() == sorted(LAYOUT_FILES)


@pytest.mark.parametrize("name", sorted(LAYOUT_FILES))
def test_each_builtin_fits_its_sample_file(name, capsys):
    assert main(["mappings", "check", str(SAMPLES / LAYOUT_FILES[name]), "--mapping", name]) == 0
    out = capsys.readouterr().out
    assert "missing" not in out
    assert "unmapped" not in out


def test_header_matching_ignores_case_and_spaces():
    mapping = load_mapping("dealervault")
    header = [" customer number", "FIRST NAME ", "Last Name", "Extra"]
    result = check_header(mapping, header)
    assert result.resolved["First Name"] == "FIRST NAME "
    assert "Email 1" in result.missing
    assert result.unmapped == ["Extra"]


def test_check_command_names_missing_and_unmapped(write_csv, capsys):
    path = write_csv([["Customer Number", "First Name", "Last Name", "Shoe Size"], ["1", "a", "b", "9"]])
    assert main(["mappings", "check", str(path), "--mapping", "dealervault"]) == 2
    out = capsys.readouterr().out
    assert "missing: 'Email 1'" in out
    assert "unmapped: 'Shoe Size'" in out


def test_list_and_show(capsys):
    assert main(["mappings", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in LAYOUT_FILES)
    assert main(["mappings", "show", "cdk"]) == 0
    assert "customer_key: CustNo" in capsys.readouterr().out


def test_placeholders_value_maps_and_trimming():
    mapping = load_mapping("dealervault")
    raw = pd.DataFrame({"Customer Number": [" 7 ", "8"], "First Name ": ["N/A", " Ann "], "Make": ["chevy", "Ford"],
                        "Last Name": ["none", "Lee"]}, dtype="str")
    resolved = {"Customer Number": "Customer Number", "First Name": "First Name ", "Make": "Make",
                "Last Name": "Last Name"}
    narrow = mapping.__class__(**{**mapping.__dict__, "phones": (), "emails": (),
                                  "fields": {"firstName": "First Name", "lastName": "Last Name",
                                             "vehicleMake": "Make"}})
    canonical = to_canonical(narrow, raw, resolved)
    assert list(canonical["customerKey"]) == ["7", "8"]
    assert list(canonical["firstName"]) == ["", "Ann"]
    assert list(canonical["lastName"]) == ["", "Lee"]
    assert list(canonical["vehicleMake"]) == ["Chevrolet", "Ford"]


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\ncustomer: [1, 2\n", "invalid YAML at line"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("customer:\n  lastName: L\ncolour: red\n", "unknown key 'colour'"),
    ("customer:\n  surname: L\n", "unknown field 'surname'"),
    ("customer:\n  firstName: F\n", "must map customer.lastName, customer.fullName or customer.company"),
    ("customer:\n  lastName: L\nphones:\n  - label: cell\n", "needs a column"),
    ("customer:\n  lastName: L\nphones:\n  - {column: P, block: B, consent: C}\n", "block or consent"),
])
def test_bad_mapping_files_are_refused(tmp_path: Path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_mapping(str(path))
    assert str(path) in str(caught.value)


def test_a_key_written_twice_in_a_mapping_file_is_refused_with_both_lines(tmp_path: Path, capsys, write_csv):
    path = tmp_path / "m.yaml"
    path.write_text("customer:\n  lastName: L\nvalues:\n  vehicleMake: {CHEV: Chevrolet}\n"
                    "address: {city: C}\nvalues:\n  vehicleMake: {VW: Volkswagen}\n")
    with pytest.raises(ConfigError, match=r"the key 'values' is written twice, at lines 3 and 6"):
        load_mapping(str(path))
    # Nested too, and from the command line: exit 2, one line, no traceback.
    path.write_text("customer:\n  lastName: L\n  firstName: F\n  lastName: M\n")
    assert main(["validate", str(write_csv([["L", "F"], ["Lee", "Ann"]])), "-m", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the key 'lastName' is written twice, at lines 2 and 4" in err
    assert "Traceback" not in err
    # A `<<` merge overriding a key is not a key written twice.
    path.write_text("base: &b {lastName: L}\ncustomer:\n  <<: *b\n  lastName: M\n")
    with pytest.raises(ConfigError, match="unknown key 'base'"):
        load_mapping(str(path))


def test_unknown_mapping_name_is_refused():
    with pytest.raises(ConfigError, match=r"unknown mapping 'nope'.*dealervault"):
        load_mapping("nope")


def test_check_previews_each_field_before_and_after_normalization(write_csv, tmp_path, capsys):
    """A wrong column shows at a glance: its share of clean values is low, and it is pointed out."""
    path = write_csv([["Id", "Name", "Cell", "Mail", "Stop", "VIN"],
                      ["1", "SMITH, JOHN Q", "(310) 555-0134", "555-1234", "Y", "1hgcm82633a004352"],
                      ["2", "Ann Lee", "310.555.0199", "bad", "N", "1HGCM82633A004353"],
                      ["3", "Bo Ng", "N/A", "", "N", ""]])
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customer_key: Id\ncustomer: {fullName: Name}\nvehicle: {vin: VIN}\n"
                       "phones: [{column: Cell, label: cell, block: Stop}]\nemails: [{column: Mail}]\n")
    assert main(["mappings", "check", str(path), "--mapping", str(mapping)]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_field = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert list(by_field)[:3] == ["customerKey", "fullName", "vin"]
    assert "'SMITH, JOHN Q' → 'JOHN / Q / SMITH'" in by_field["fullName"]
    assert "50% clean of       2" in by_field["vin"]
    assert "'1hgcm82633a004352' → '1HGCM82633A004352'" in by_field["vin"]
    assert "'1HGCM82633A004353' → (dropped)" in by_field["vin"]
    assert "100% clean of       2" in by_field["phone1"]
    assert "'(310) 555-0134' → '+13105550134'" in by_field["phone1"]
    assert "'Y' → 'do not contact'" in by_field["phone1.block"]
    assert "0% clean of       2" in by_field["email1"]
    assert "is this the right column?" in by_field["email1"]
    assert "is this the right column?" not in by_field["phone1"]


def test_check_never_rounds_a_share_up_to_100_percent(write_csv, tmp_path, capsys):
    rows = [["Id", "Last", "Cell"]] + [[str(i), "Lee", f"310-555-{i:04d}"] for i in range(1, 300)]
    path = write_csv([*rows, ["300", "Lee", "555-12"]])  # 299 readable phones of 300
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customer_key: Id\ncustomer: {lastName: Last}\nphones: [{column: Cell}]\n")
    assert main(["mappings", "check", str(path), "--mapping", str(mapping)]) == 0
    by_field = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "99.7% clean of     300" in by_field["phone1"]
    assert " 100% clean of     300" in by_field["lastName"]
