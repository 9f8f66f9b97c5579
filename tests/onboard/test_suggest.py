"""`mappings suggest`: on eight layouts no built-in fits (plus an .xlsx and a .zip copy), two of them joining
fields into one column, the suggestion, used untouched, maps at least 98% of the fields a person maps, and builds
the payloads they expect."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from importer.cli import main
from importer.onboard.suggest import suggest
from importer.onboard.vocabulary import match_header
from importer.prepare.mapping import MappingSpec, load_mapping
from importer.read.reader import header_key, open_input
from tests.helpers import read_csv, read_jsonl

DATA = Path(__file__).parents[1] / "data" / "onboarding"
#: file → the layout (reference mapping and expected payloads) it holds
FILES = {"dealertrack_two_vehicles.csv": "dealertrack_two_vehicles", "automate_last_first.csv": "automate_last_first",
         "pbs_dotted.csv": "pbs_dotted", "quebec_french.csv": "quebec_french", "silent_headers.csv": "silent_headers",
         "lying_headers.csv": "lying_headers",
         "report_writer_joined.csv": "report_writer_joined", "one_line_address.csv": "one_line_address",
         "dealertrack_two_vehicles.xlsx": "dealertrack_two_vehicles", "quebec_french.zip": "quebec_french"}
TARGET = 0.98


def fields_of(mapping: MappingSpec) -> dict[str, str]:
    """What a person decides in a mapping, one entry per field: the column (matched as the header is,
    ignoring case and surrounding spaces), with a contact's label and flag."""
    def key(column: str | None) -> str:
        return header_key(column) if column else ""

    out = {"customer_key": key(mapping.customer_key)}
    out.update({name: key(column) for name, column in mapping.fields.items()})
    out.update({composite.key: key(composite.column) for composite in mapping.composites})
    if mapping.full_name:
        out["fullName"] = f"{key(mapping.full_name.column)}|{mapping.full_name.order}|{mapping.full_name.businesses}"
    for kind, contacts in (("phone", mapping.phones), ("email", mapping.emails)):
        for contact in contacts:
            out[f"{kind}:{key(contact.column)}"] = (f"{contact.label}|block={key(contact.block)}"
                                                   f"|consent={key(contact.consent)}")
    for name, value in mapping.address_defaults.items():
        out[f"default.{name}"] = value
    for name, value in mapping.customer_defaults.items():
        out[f"default.{name}"] = value
    return out


def suggested(tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}.yaml"
    assert main(["mappings", "suggest", str(DATA / name), "--out", str(out)]) == 0
    return out


def flatten(body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                flat.update(flatten(item, f"{prefix}{key}[{i}].") if isinstance(item, dict)
                            else {f"{prefix}{key}[{i}]": item})
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_untouched_suggestion_maps_at_least_98_percent_of_the_fields(tmp_path, capsys):
    right = total = 0
    lines = []
    for name, layout in FILES.items():
        expected = fields_of(load_mapping(str(DATA / f"{layout}.yaml")))
        got = fields_of(load_mapping(str(suggested(tmp_path, name))))
        hits = sum(got.get(field) == value for field, value in expected.items())
        wrong = sorted(f for f, v in expected.items() if got.get(f) != v)
        lines.append(f"{name}: {hits}/{len(expected)} {wrong or ''}")
        right, total = right + hits, total + len(expected)
    capsys.readouterr()
    with capsys.disabled():
        print(f"\nsuggested mappings: {right}/{total} fields right ({right / total:.1%})", *lines, sep="\n  ")
    assert total >= 130  # every layout counted (137 fields)
    assert right / total >= TARGET, lines


def test_on_the_built_in_layouts_the_suggestion_matches_their_hand_written_mappings(tmp_path, capsys):
    """The four built-in mappings were written by hand before suggest existed: an independent reference."""
    samples = Path(__file__).parents[2] / "sample_data"
    files = {"dealervault": "dealervault_sales.csv", "tekion-ro": "tekion_ro_history.csv",
             "reynolds-customers": "reynolds_customers.txt", "cdk": "cdk_customers.csv"}
    right = total = 0
    for builtin, name in files.items():
        out = tmp_path / f"{builtin}.yaml"
        assert main(["mappings", "suggest", str(samples / name), "--out", str(out)]) == 0
        expected, got = fields_of(load_mapping(builtin)), fields_of(load_mapping(str(out)))
        right += sum(got.get(field) == value for field, value in expected.items())
        total += len(expected)
    capsys.readouterr()
    with capsys.disabled():
        print(f"\nbuilt-in layouts: {right}/{total} fields right ({right / total:.1%})")
    assert right / total >= TARGET


def test_the_untouched_suggestion_builds_the_expected_payloads(tmp_path):
    right = total = 0
    for name, layout in FILES.items():
        out = tmp_path / f"out-{name}"
        code = main(["validate", str(DATA / name), "--mapping", str(suggested(tmp_path, name)), "--out", str(out),
                     "--payloads", str(out / "p.jsonl")])
        assert code in (0, 1)
        expected = [flatten(b) for b in read_jsonl(DATA / f"{layout}.payloads.jsonl")]
        got = [flatten(b) for b in read_jsonl(out / "p.jsonl")]
        assert len(got) == len(expected), name
        for want, have in zip(expected, got, strict=True):
            total += len(want)
            right += sum(have.get(k) == v for k, v in want.items())
    assert right / total >= TARGET


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_reference_mappings_give_the_expected_payloads(tmp_path, name):
    """The payloads the tests hold are what the person's mapping makes of each file (and of its copies)."""
    out = tmp_path / "out"
    layout = FILES[name]
    main(["validate", str(DATA / name), "--mapping", str(DATA / f"{layout}.yaml"), "--out", str(out),
          "--payloads", str(out / "p.jsonl")])
    assert read_jsonl(out / "p.jsonl") == read_jsonl(DATA / f"{layout}.payloads.jsonl")


def test_a_suggestion_is_a_complete_annotated_mapping_file(tmp_path):
    path = suggested(tmp_path, "automate_last_first.csv")
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    raw = yaml.safe_load(text)
    assert raw["name"] == "automate-last-first"
    assert "automate_last_first.csv" in raw["description"]
    assert raw["customer"]["fullName"] == {"column": "Customer Name", "businesses": True}
    assert "# Columns left unmapped" in text
    unmapped = [line for line in text.splitlines() if line.startswith("#   Sale Date: ")]
    assert unmapped, text  # an unmapped column, by name and why: its values stay out of the file
    assert not any(c.isdigit() for c in unmapped[0])
    assert "header 'Home Phone'; 100% of values are valid phones" in text
    assert all(p["block"] == "Do Not Call" and "consent" not in p for p in raw["phones"])


def test_quebec_file_gets_canada_french_and_its_consent_column(tmp_path):
    raw = yaml.safe_load(suggested(tmp_path, "quebec_french.zip").read_text())
    assert raw["defaults"]["address"]["country"] == "CA"
    assert raw["defaults"]["customer"] == {"preferredLocale": "fr-ca"}
    assert raw["emails"] == [{"column": "Courriel", "label": "home", "consent": "Consentement courriel"}]


@pytest.mark.parametrize(("header", "flag", "contact", "label"), [
    ("Block Email", "block", "email", ""),
    ("Do Not Call", "block", "phone", ""),
    ("Do Not Text", "block", "phone", "cell"),
    ("Email Opt Out", "block", "email", ""),
    ("Cust.Email.OptOut", "block", "email", ""),
    ("DNC", "block", "phone", ""),
    ("No Email", "block", "email", ""),
    ("Ne pas appeler", "block", "phone", ""),
    ("Email Opt In", "consent", "email", ""),
    ("OK to Text", "consent", "phone", "cell"),
    ("Consentement courriel", "consent", "email", ""),
    ("Cell Phone OK", "consent", "phone", "cell"),
])
def test_flag_headers_are_tied_to_their_contact(header, flag, contact, label):
    match = match_header(header)
    assert match is not None
    assert (match.flag, match.contact, match.label) == (flag, contact, label)


@pytest.mark.parametrize(("header", "target", "label", "group"), [
    ("No client", "customer_key", "", 1), ("Tél. cellulaire", "phone", "cell", 1),
    ("Code postal", "address.zip", "", 1),
    ("NIV", "vin", "", 1), ("CPHONE", "phone", "cell", 1), ("VIN2", "vin", "", 2), ("Veh 2 Year", "vehicleYear", "", 2),
    ("Address2", "address.line2", "", 1), ("BuyerFirstName", "firstName", "", 1),
    ("Cust.Address.City", "address.city", "", 1), ("Business Phone", "phone", "work", 1), ("Phone No", "phone", "", 1),
])
def test_header_vocabulary(header, target, label, group):
    match = match_header(header)
    assert match is not None
    assert (match.target, match.label, match.group) == (target, label, group)


def test_headers_that_say_nothing_or_something_else():
    assert match_header("F07") is None
    assert match_header("Field 3") is None
    other = match_header("Last Service Date")
    assert other is not None
    assert other.target is None


def test_values_win_over_a_header_that_lies(write_csv):
    path = write_csv([["CustNo", "Last Name", "Phone", "Notes"],
                      *[[str(i), f"Lee{i}", f"person{i}@example.com", "x"] for i in range(20)]])
    with open_input(str(path)) as source:
        proposal = suggest(str(path), source)
    raw = yaml.safe_load(proposal.text)
    assert raw["emails"][0]["column"] == "Phone"
    assert "phones" not in raw
    assert "values win" in proposal.text
    assert [p.name for p in proposal.unmapped] == ["Notes"]


def test_suggest_prints_to_stdout_and_reads_a_sheet(tmp_path, capsys):
    from tests.read.test_containers import ROWS, write_xlsx

    path = write_xlsx(tmp_path / "x.xlsx", ROWS, sheet="Export", first_sheet="Cover")
    assert main(["mappings", "suggest", str(path), "--sheet", "Export"]) == 0
    raw = yaml.safe_load(capsys.readouterr().out)
    assert raw["customer_key"] == "Customer Number"
    assert raw["vehicle"]["vin"] == "VIN"


def test_flags_about_no_phone_or_email_are_left_unmapped_and_general_ones_apply_to_all(write_csv):
    rows = [["Cust No", "Last Name", "Cell Phone", "Email", "Do Not Mail", "Do Not Contact", "Co-Buyer Last Name"]]
    rows += [[str(i), f"Lee{i}", f"310-555-01{i:02d}", f"a{i}@example.com", "N", "Y" if i % 3 else "N", "Ng"]
             for i in range(20)]
    path = write_csv(rows)
    with open_input(str(path)) as source:
        raw = yaml.safe_load(suggest(str(path), source).text)
    assert raw["phones"][0]["block"] == "Do Not Contact"
    assert raw["emails"][0]["block"] == "Do Not Contact"
    assert raw["customer"] == {"lastName": "Last Name"}
    text = yaml.safe_dump(raw)
    assert "Do Not Mail" not in text


def test_run_uses_the_untouched_suggestion(tmp_path):
    """The suggestion for the .xlsx copy imports into the sandbox as it is, every row accounted for."""
    mapping = suggested(tmp_path, "dealertrack_two_vehicles.xlsx")
    out = tmp_path / "run"
    code = main(["run", str(DATA / "dealertrack_two_vehicles.xlsx"), "--mapping", str(mapping), "--sandbox",
                 "--out", str(out)])
    assert code == 1  # the file has rows without a last name
    results = read_csv(out / "results.csv")
    assert len(results) == 80
    assert sorted({r["status"] for r in results}) == ["invalid", "success"]


JOINED = {"report_writer_joined.csv": "report_writer_joined", "one_line_address.csv": "one_line_address"}
ORIGINAL = ("dealertrack_two_vehicles.csv", "automate_last_first.csv", "pbs_dotted.csv", "quebec_french.csv",
            "silent_headers.csv", "lying_headers.csv")


def _payloads_of(tmp_path: Path, path: Path, mapping: Path) -> list[dict[str, Any]]:
    out = tmp_path / f"out-{path.stem}"
    assert main(["validate", str(path), "--mapping", str(mapping), "--out", str(out),
                 "--payloads", str(out / "p.jsonl")]) in (0, 1)
    return read_jsonl(out / "p.jsonl")


@pytest.mark.parametrize("name", sorted(JOINED))
def test_joined_columns_suggested_untouched_give_every_expected_field(tmp_path, name):
    """The expected payloads come from the same rows with every field in a column of its own (make_files.py)."""
    expected = fields_of(load_mapping(str(DATA / f"{JOINED[name]}.yaml")))
    got = fields_of(load_mapping(str(suggested(tmp_path, name))))
    assert got == expected
    payloads = _payloads_of(tmp_path, DATA / name, suggested(tmp_path, name))
    assert payloads == read_jsonl(DATA / f"{JOINED[name]}.payloads.jsonl")


def test_the_six_layouts_of_one_field_a_column_stay_at_100_percent(tmp_path):
    for name in ORIGINAL:
        expected = fields_of(load_mapping(str(DATA / f"{FILES[name]}.yaml")))
        assert fields_of(load_mapping(str(suggested(tmp_path, name)))) == expected, name


def test_the_export_of_the_issue_with_the_vin_inside_its_vehicle_column(tmp_path):
    """`CUST#, CUSTOMER NAME, STREET ADDRESS, CITY STATE ZIP, PHONE 1, PHONE 2, EMAIL, VEHICLE`: the VIN written
    inside the description ("2018 HONDA ACCORD 1HGCV..."), no VIN column."""
    rows = read_csv(DATA / "report_writer_joined.csv")
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow([c for c in rows[0] if c != "VIN"])
        for row in rows:
            row["VEHICLE"] = f"{row['VEHICLE']} {row.pop('VIN')}".strip()
            writer.writerow(row.values())
    mapping = tmp_path / "suggested.yaml"
    assert main(["mappings", "suggest", str(path), "--out", str(mapping)]) == 0
    raw = yaml.safe_load(mapping.read_text())
    assert raw["address"] == {"line1": "STREET ADDRESS", "city_state_zip": "CITY STATE ZIP"}
    assert raw["vehicle"] == {"description": "VEHICLE"}
    assert _payloads_of(tmp_path, path, mapping) == read_jsonl(DATA / "report_writer_joined.payloads.jsonl")


def test_check_previews_the_parts_of_a_joined_column(capsys):
    assert main(["mappings", "check", str(DATA / "report_writer_joined.csv"), "--mapping",
                 str(DATA / "report_writer_joined.yaml")]) == 0
    out = capsys.readouterr().out
    city = next(line for line in out.splitlines() if line.strip().startswith("address.city "))
    assert "← 'CITY STATE ZIP'" in city
    assert "'MIAMI, FL 33129-6130' → 'MIAMI'" in city
    zip_line = next(line for line in out.splitlines() if line.strip().startswith("address.zip "))
    assert "98% clean" in zip_line  # the two values without a ZIP count as not clean


def test_a_suggested_mapping_holds_names_and_reasons_never_values_from_the_file(tmp_path, capsys):
    source = tmp_path / "export.csv"
    rows = [["CustNo", "First Name", "Last Name", "SLSP", "Memo"]]
    rows += [[str(i), "Ann", f"Lee{i}", ["JDOE", "MSMITH", "RKIM"][i % 3], f"called 310-555-01{i:02d} re: Zyx{i}"]
             for i in range(1, 40)]
    source.write_text("\n".join(",".join(r) for r in rows) + "\n")
    out = tmp_path / "m.yaml"
    assert main(["mappings", "suggest", str(source), "--out", str(out)]) == 0
    text = out.read_text()
    for value in ("JDOE", "MSMITH", "RKIM", "Zyx", "310-555", "Lee1"):
        assert value not in text, value
    assert "#   SLSP: neither its header nor its values say which field it is" in text
    err = capsys.readouterr().err
    assert "'SLSP': MSMITH, RKIM, JDOE" in err, "values are shown on the terminal only"
    assert main(["mappings", "suggest", str(source)]) == 0
    printed = capsys.readouterr()
    assert "JDOE" not in printed.out
    assert "JDOE" in printed.err


def test_the_configmap_holds_a_suggested_mapping_as_a_readable_block(tmp_path):
    from tests.ops.test_deploy import three_dealers

    dealers = three_dealers(tmp_path, "http://127.0.0.1:1")
    mapping = tmp_path / "mappings" / "bravo-cdk.yaml"
    mapping.write_text(suggested(tmp_path, "automate_last_first.csv").read_text())  # its comments hold "·"
    out = tmp_path / "deploy"
    assert main(["deploy", "kubernetes", str(dealers), "--out", str(out)]) == 0
    manifest = (out / "kubernetes.yaml").read_text()
    assert "mapping-bravo-cdk.yaml: |" in manifest
    assert "\\xB7" not in manifest
    config = next(d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "ConfigMap")
    assert config["data"]["mapping-bravo-cdk.yaml"] == mapping.read_text()


def test_two_digit_years_are_recognised_as_years(write_csv):
    rows = [["CustNo", "Last Name", "YR", "MAKE", "MODEL"]]
    rows += [[str(i), f"Lee{i}", ("13", "98", "05", "21")[i % 4], "HONDA", "CIVIC"] for i in range(20)]
    with open_input(str(write_csv(rows))) as source:
        proposal = suggest("x.csv", source)
    assert yaml.safe_load(proposal.text)["vehicle"]["vehicleYear"] == "YR"
    assert "100% of values are model years" in proposal.text
    # Without a header naming a year, a column of two-digit numbers is not taken for one.
    rows = [["CustNo", "Last Name", "Q"]] + [[str(i), f"Lee{i}", f"{10 + i}"] for i in range(20)]
    with open_input(str(write_csv(rows, name="q.csv"))) as source:
        assert "vehicleYear" not in suggest("q.csv", source).text
