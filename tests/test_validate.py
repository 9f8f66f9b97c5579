"""`mk-import validate` end to end: reports, grouping, payloads, re-importing errors.csv, bad input."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from importer.cli import main
from tests.helpers import DV_HEADER, VIN_A, VIN_B, dv_row, read_csv, read_jsonl, read_summary
from tests.prepare.test_mapping import LAYOUT_FILES, SAMPLES


@pytest.mark.parametrize("layout", sorted(LAYOUT_FILES))
def test_samples_account_for_every_row(layout, tmp_path: Path):
    out = tmp_path / "out"
    code = main(["validate", str(SAMPLES / LAYOUT_FILES[layout]), "--mapping", layout, "--out", str(out),
                 "--payloads", str(tmp_path / "p.jsonl")])
    results = read_csv(out / "results.csv")
    summary = read_summary(out)
    assert [int(r["source_row"]) for r in results] == list(range(1, summary["rows"] + 1))
    assert summary["rows"] == 250
    invalid = [r for r in results if r["status"] == "invalid"]
    assert code == (1 if invalid else 0)
    assert summary["exit_code"] == code
    assert {r["status"] for r in results} <= {"valid", "invalid"}
    errors = read_csv(out / "errors.csv")
    to_fix = [e for e in errors if e["mk_status"] == "invalid"]
    assert [e["mk_source_row"] for e in to_fix] == [r["source_row"] for r in invalid]
    # the other rows listed are sent without an unreadable phone, email or VIN, marked so
    incomplete = [e for e in errors if e["mk_status"] != "invalid"]
    assert {(e["mk_status"], e["mk_error_code"]) for e in incomplete} <= {("valid", "SAVED_WITHOUT_FIELD")}
    assert all(e["mk_error_message"].startswith("would be sent without ") for e in incomplete)
    payloads = read_jsonl(tmp_path / "p.jsonl")
    assert len(payloads) == summary["customers"] == len({r["customer_key"] for r in results if r["status"] == "valid"})


def test_reports_are_private(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1")])
    out = tmp_path / "out"
    main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--payloads", str(tmp_path / "p.jsonl")])
    for report in [*out.iterdir(), tmp_path / "p.jsonl"]:
        assert stat.S_IMODE(report.stat().st_mode) == 0o600, report
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_rows_of_one_customer_become_one_merged_request(tmp_path: Path, write_csv):
    path = write_csv([
        DV_HEADER,
        dv_row("42", first="Ann", last="Lee", email="ANN@Example.com ", cell="(310) 555-1234", line1="1 Old St",
               city="Boston", state="Massachusetts", zip_code="2134", block_phone="Y", vin=VIN_A, year="2003",
               make="Honda", model="Accord", mileage="10,000"),
        dv_row("7", first="Bob", last="Day"),
        dv_row("42", first="Annie", last="Lee", email="ann@example.com", cell="310-555-1234", home="617 555 0100",
               line1="2 New St", city="Newton", state="MA", zip_code="02458", block_phone="N", vin=VIN_A.lower(),
               mileage="12000"),
        dv_row("42", first="", last="Lee", vin=VIN_B, year="2019", make="CHEVY", model="Bolt"),
    ])
    out, payloads = tmp_path / "out", tmp_path / "p.jsonl"
    assert main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--payloads", str(payloads)]) == 0
    first, second = read_jsonl(payloads)
    assert second["customer"] == {"customerKey": "7", "firstName": "Bob", "lastName": "Day"}
    assert first == {
        "customer": {
            "customerKey": "42", "firstName": "Annie", "lastName": "Lee",
            "addresses": [{"line1": "2 New St", "city": "Newton", "state": "MA", "zip": "02458", "country": "US",
                           "type": "PRIMARY", "addressType": "P"}],
            "emails": [{"emailAddress": "ann@example.com", "label": "home"}],
            "phoneNumbers": [
                # blocked on the first row; the later "N" is no consent, so the block stands
                {"phoneNumber": "+13105551234", "label": "cell", "okToCall": False, "okToText": False},
                {"phoneNumber": "+16175550100", "label": "home"},
            ],
        },
        "vehicles": [
            {"vin": VIN_A, "vehicleYear": "2003", "vehicleMake": "Honda", "vehicleModel": "Accord",
             "estimatedMileage": "12000"},
            {"vin": VIN_B, "vehicleYear": "2019", "vehicleMake": "Chevrolet", "vehicleModel": "Bolt"},
        ],
        "validateVin": True, "searchForDuplicate": True,
    }
    results = read_csv(out / "results.csv")
    assert [r["customer_key"] for r in results] == ["42", "7", "42", "42"]


def test_payloads_are_byte_identical_between_runs(tmp_path: Path):
    sample = str(SAMPLES / LAYOUT_FILES["cdk"])
    for n in (1, 2):
        main(["validate", sample, "-m", "cdk", "--out", str(tmp_path / f"o{n}"), "--payloads", str(tmp_path / f"{n}")])
    assert (tmp_path / "1").read_bytes() == (tmp_path / "2").read_bytes()


def test_empty_lists_and_empty_keys_are_never_sent(tmp_path: Path):
    sample = str(SAMPLES / LAYOUT_FILES["dealervault"])
    main(["validate", sample, "-m", "dealervault", "--out", str(tmp_path / "o"), "--payloads", str(tmp_path / "p")])

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                assert item not in ([], {}, "", None), key
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for body in read_jsonl(tmp_path / "p"):
        walk(body)


def test_bad_fields_are_dropped_with_warnings_or_invalid_when_strict(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1", cell="555-12", email="nope@", vin="1HGCM82633A004353", state="Narnia"),
                      dv_row("2", last="")])
    out = tmp_path / "o"
    assert main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--payloads", str(tmp_path / "p")]) == 1
    first, second = read_csv(out / "results.csv")
    assert first["status"] == "valid"
    for text in ("Cell Phone: not a valid phone number: '555-12'", "Email 1: not a valid email address",
                 "VIN: not a valid VIN", "State: not a US state"):
        assert text in first["warnings"]
    assert read_jsonl(tmp_path / "p")[0]["customer"] == {"customerKey": "1", "firstName": "Ann", "lastName": "Lee"}
    assert second["status"] == "invalid"
    assert second["error_code"] == "MISSING_LAST_NAME"
    strict = tmp_path / "strict"
    main(["validate", str(path), "-m", "dealervault", "--out", str(strict), "--strict"])
    first, _ = read_csv(strict / "results.csv")
    assert first["status"] == "invalid"
    assert first["error_code"] == "INVALID_FIELD"


def test_business_needs_a_company(tmp_path: Path, write_csv):
    header = ["CustNo", "FirstName", "LastName", "BusinessName"]
    path = tmp_path / "m.yaml"
    path.write_text("customer_key: CustNo\ncustomer: {firstName: FirstName, lastName: LastName, company: BusinessName,"
                    " isBusiness: Biz}\n")
    data = write_csv([[*header, "Biz"], ["1", "", "", "Acme", "Y"], ["2", "", "", "", "Y"], ["3", "A", "", "", "N"]])
    out = tmp_path / "o"
    main(["validate", str(data), "-m", str(path), "--out", str(out)])
    assert [r["error_code"] for r in read_csv(out / "results.csv")] == ["", "MISSING_COMPANY", "MISSING_LAST_NAME"]


def test_errors_csv_defuses_formulas_and_reimports_the_same_rows(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1", first="=HYPERLINK(\"x\")", last="", cell="+1 310 555 1234"),
                      dv_row("2"), dv_row("3", first="@Bob", last="-", email="'quoted@x.com")])
    out = tmp_path / "o"
    main(["validate", str(path), "-m", "dealervault", "--out", str(out)])
    text = (out / "errors.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "'+1 310 555 1234" in text
    assert "'@Bob" in text
    errors = read_csv(out / "errors.csv")
    assert [e["mk_source_row"] for e in errors] == ["1", "3"]
    assert list(errors[0])[:len(DV_HEADER)] == DV_HEADER
    again = tmp_path / "again"
    main(["validate", str(out / "errors.csv"), "-m", "dealervault", "--out", str(again)])
    reread = read_csv(again / "errors.csv")
    assert [e["mk_source_row"] for e in reread] == ["1", "2"]
    for before, after in zip(errors, reread, strict=True):
        assert {k: before[k] for k in DV_HEADER} == {k: after[k] for k in DV_HEADER}


def test_fixed_errors_csv_imports_cleanly(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1", last=""), dv_row("2")])
    out = tmp_path / "o"
    main(["validate", str(path), "-m", "dealervault", "--out", str(out)])
    rows = read_csv(out / "errors.csv")
    rows[0]["Last Name"] = "Fixed"
    fixed = write_csv([list(rows[0]), list(rows[0].values())], name="fixed.csv")
    assert main(["validate", str(fixed), "-m", "dealervault", "--out", str(tmp_path / "f"),
                 "--payloads", str(tmp_path / "p")]) == 0
    assert read_jsonl(tmp_path / "p")[0]["customer"]["lastName"] == "Fixed"


def test_terminal_summary_lists_frequent_problems(tmp_path: Path, write_csv, capsys):
    path = write_csv([DV_HEADER, dv_row("1", cell="12"), dv_row("2", cell="13"), dv_row("3", last="")])
    main(["validate", str(path), "-m", "dealervault", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert "3 rows (2 valid, 1 invalid)" in err
    assert "2  Cell Phone: not a valid phone number (e.g. row 1)" in err
    assert "a person needs a last name (e.g. row 3)" in err
    # The closing lines name the page and the error files as paths, and say what the exit code means.
    out = (tmp_path / "o").resolve()
    assert err.splitlines()[-3:] == [
        f"page:    {out / 'report.html'}",
        f"to fix:  3 rows in {out / 'errors.csv'} and {out / 'errors.xlsx'}",
        "exit 1: finished, but some rows failed, or are invalid beyond --max-invalid: fix them from errors.csv"]
    main(["validate", str(write_csv([DV_HEADER, dv_row("1")], name="ok.csv")), "-m", "dealervault", "--out",
          str(tmp_path / "ok"), "-v"])
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"to fix:  nothing (reports in {(tmp_path / 'ok').resolve()})",
        "exit 0: every row went through (invalid rows within --max-invalid, if given)"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_logging_options_work_before_or_after_the_command(tmp_path: Path, write_csv, capsys, where):
    path = write_csv([DV_HEADER, dv_row("1", cell="12")])
    command = ["validate", str(path), "-m", "dealervault"]

    def args(options: list[str], out: str) -> list[str]:
        return ([*options, *command] if where == "before" else [*command, *options]) + ["--out", str(tmp_path / out)]

    assert main(args(["-q"], "quiet")) == 0
    assert capsys.readouterr().err == ""
    assert main(args(["-v"], "verbose")) == 0
    assert "1 rows (1 valid)" in capsys.readouterr().err
    assert main(args(["--log-format", "json"], "json")) == 0
    finished = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["summary"]["rows"] for line in finished if "summary" in line] == [1]
    # Nested commands take them too.
    assert main(["mappings", "list", "-q"]) == 0


def test_standard_input(tmp_path: Path):
    data = ",".join(DV_HEADER) + "\n" + ",".join(dv_row("1")) + "\n"
    out = tmp_path / "o"
    done = subprocess.run([sys.executable, "-m", "importer", "validate", "-", "-m", "dealervault", "--out", str(out)],
                          input=data.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert read_summary(out)["input"]["file"] == "-"
    assert len(read_csv(out / "results.csv")) == 1


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, [], "no such file"),
    (b"", [], "the file is empty"),
    (b"\x00\x01binary", [], "not a text file"),
    (",".join(DV_HEADER).encode() + b"\n1,\"open\n", [], "broken CSV"),
    (b"Customer Number,Last Name,last name\n1,a,b\n", [], "duplicate column"),
    (b"Customer Number,Last Name\n1,a\n", [], "of mapping dealervault not in the header"),
    (b"a\n1\n", ["--mapping", "no-such-mapping"], "unknown mapping 'no-such-mapping'"),
])
def test_bad_input_exits_2_with_one_line_and_no_report(tmp_path: Path, content, args, message):
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "importer", "validate", str(path), "-m", "dealervault",
                           "--out", str(out), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_invalid_mapping_yaml_exits_2(tmp_path: Path, write_csv):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customer: {lastName: [\n")
    done = subprocess.run([sys.executable, "-m", "importer", "validate", str(write_csv([["a"], ["1"]])),
                           "-m", str(mapping)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 2
    assert f"{mapping}: invalid YAML at line" in done.stderr
    assert not (tmp_path / "mk-import-out").exists()


def test_every_command_has_help():
    from importer.arguments import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    choices = actions[0].choices
    assert isinstance(choices, dict)
    for name, sub in choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.dest}"


def test_a_value_that_breaks_its_normalized_format_refuses_the_row():
    import pandas as pd

    from importer.prepare.schema import ROW_RULES, row_errors

    frame = pd.DataFrame({"lastName": ["Lee", "Day"], "company": ["", ""], "phone1": ["+13105551234", "3105551234"],
                          "isBusiness": [False, False]}).astype({"lastName": "str", "company": "str", "phone1": "str"})
    assert list(row_errors(frame)) == ["", "INTERNAL_FORMAT"]
    assert "defect" in ROW_RULES["INTERNAL_FORMAT"]


def test_the_rows_kept_for_sending_are_one_block_per_column_however_many_chunks_were_read(monkeypatch):
    import pyarrow as pa

    from importer.config import PrepareConfig
    from importer.prepare.mapping import load_mapping
    from importer.prepare.stage import prepare
    from importer.read import reader

    monkeypatch.setattr(reader, "ARROW_BLOCK_BYTES", 4096)  # a few dozen rows a chunk
    path = str(SAMPLES / LAYOUT_FILES["dealervault"])
    with reader.open_input(path) as source:
        prepared = prepare(source, load_mapping("dealervault"), PrepareConfig(input=path, mapping="dealervault"),
                           keep_rows=True)
    assert prepared.frame is not None
    assert len(prepared.frame) > 2
    texts = [name for name in prepared.frame.columns if str(prepared.frame[name].dtype) == "str"]
    assert texts
    assert all(getattr(pa.array(prepared.frame[name]), "num_chunks", 1) == 1 for name in texts)
