"""The sandbox over real HTTP on 127.0.0.1: endpoints, auth, matching, validation, limits and faults."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from importer.prepare.vin import check_digit
from tests.conftest import DEPARTMENT, Api

PHONE, EMAIL = "+13105551234", "ann@example.com"
VIN = "1HGCM82633A004352"


def person(last: str = "Lee", first: str = "Ann", **extra):
    return {"firstName": first, "lastName": last, **extra}


def phones(*numbers: str):
    return [{"phoneNumber": n, "label": "cell", "okToCall": True, "okToText": True} for n in numbers]


def test_create_then_get_round_trip(api: Api):
    answer = api.post(person(customerKey="K1", phoneNumbers=phones(PHONE),
                             emails=[{"emailAddress": EMAIL, "label": "home"}]),
                      [{"vin": VIN, "vehicleYear": "2003", "vehicleMake": "Honda", "vehicleModel": "Accord"}])
    assert answer.status == 200
    assert answer.body["errors"] == []
    assert answer.body["customerId"]
    got = api.get(answer.body["customerUuid"])
    assert got.status == 200
    stored = got.body["customerWithVehicles"]
    assert stored["customer"]["customerKey"] == "K1"
    assert stored["customer"]["phoneNumbers"][0]["phoneNumber"] == PHONE
    assert [v["vin"] for v in stored["vehicles"]] == [VIN]
    assert api.get("no-such-uuid").status == 404


def test_duplicate_search_matches_on_phone_and_name(api: Api):
    first = api.post(person(phoneNumbers=phones(PHONE)))
    again = api.post(person(phoneNumbers=phones(PHONE), emails=[{"emailAddress": EMAIL}]))
    assert again.body["customerUuid"] == first.body["customerUuid"]
    other_name = api.post(person(first="Bob", phoneNumbers=phones(PHONE)))
    assert other_name.body["customerUuid"] != first.body["customerUuid"]
    assert api.stats()["creates"] == 2


def test_duplicate_search_matches_on_vin(api: Api):
    first = api.post(person(), [{"vin": VIN}])
    again = api.post(person(), [{"vin": VIN}])
    assert again.body["customerUuid"] == first.body["customerUuid"]


def test_without_search_every_request_creates(api: Api):
    first = api.post(person(phoneNumbers=phones(PHONE)), search=False)
    again = api.post(person(phoneNumbers=phones(PHONE)), search=False)
    assert again.body["customerUuid"] != first.body["customerUuid"]


def test_customer_without_comms_or_vin_is_never_found_again(api: Api):
    first = api.post(person(customerKey="K9"))
    again = api.post(person(customerKey="K9"))
    assert again.body["customerUuid"] != first.body["customerUuid"]


def test_customer_key_breaks_a_tie_between_namesakes(api: Api):
    a = api.post(person(customerKey="A", phoneNumbers=phones(PHONE)), search=False)
    b = api.post(person(customerKey="B", phoneNumbers=phones(PHONE)), search=False)
    assert api.post(person(customerKey="A", phoneNumbers=phones(PHONE))).body["customerUuid"] == a.body["customerUuid"]
    assert api.post(person(customerKey="B", phoneNumbers=phones(PHONE))).body["customerUuid"] == b.body["customerUuid"]


def test_step_four_prefers_the_candidate_matching_comms_and_vin(api: Api):
    api.post(person(phoneNumbers=phones(PHONE)), search=False)
    both = api.post(person(phoneNumbers=phones(PHONE)), [{"vin": VIN}], search=False)
    api.post(person(phoneNumbers=phones("+13105550000")), [{"vin": VIN}], search=False)
    found = api.post(person(phoneNumbers=phones(PHONE)), [{"vin": VIN}])
    assert found.body["customerUuid"] == both.body["customerUuid"]


def test_known_uuid_updates_that_customer_without_matching(api: Api):
    first = api.post(person(customerKey="K1"))
    uuid = first.body["customerUuid"]
    moved = api.post(person(customerKey="K1", customerUuid=uuid,
                            addresses=[{"line1": "2 New St", "zip": "02134", "type": "PRIMARY"}]))
    assert moved.body["customerUuid"] == uuid
    assert api.get(uuid).body["customerWithVehicles"]["customer"]["addresses"][0]["line1"] == "2 New St"
    assert api.post(person(customerUuid="unknown")).status == 404


def test_phone_not_in_e164_is_not_stored_and_warned(api: Api):
    answer = api.post(person(phoneNumbers=phones("(310) 555-1234", PHONE)))
    assert [w["warningCode"] for w in answer.body["warnings"]] == ["10015"]
    stored = api.get(answer.body["customerUuid"]).body["customerWithVehicles"]["customer"]
    assert [p["phoneNumber"] for p in stored["phoneNumbers"]] == [PHONE]


def test_empty_lists_delete_stored_phones_and_emails(api: Api):
    uuid = api.post(person(customerKey="K", phoneNumbers=phones(PHONE), emails=[{"emailAddress": EMAIL}])).body[
        "customerUuid"]
    answer = api.post(person(customerUuid=uuid, phoneNumbers=[], emails=None))
    assert {w["warningCode"] for w in answer.body["warnings"]} == {"10005", "10006"}
    stored = api.get(uuid).body["customerWithVehicles"]["customer"]
    assert stored["phoneNumbers"] == []
    assert stored["emails"] == []


def test_omitted_lists_keep_stored_ones(api: Api):
    uuid = api.post(person(phoneNumbers=phones(PHONE))).body["customerUuid"]
    answer = api.post(person(customerUuid=uuid))
    assert answer.body["warnings"] == []
    assert api.get(uuid).body["customerWithVehicles"]["customer"]["phoneNumbers"][0]["phoneNumber"] == PHONE


def test_validate_vin_rejects_bad_vin_with_warning(api: Api):
    bad = VIN[:8] + ("0" if VIN[8] != "0" else "1") + VIN[9:]
    assert check_digit(bad) != bad[8]
    answer = api.post(person(), [{"vin": bad}, {"vin": VIN}])
    assert [w["warningCode"] for w in answer.body["warnings"]] == ["10017"]
    vehicles = api.get(answer.body["customerUuid"]).body["customerWithVehicles"]["vehicles"]
    assert [v["vin"] for v in vehicles] == [VIN]
    kept = api.post(person(first="Zed"), [{"vin": bad}], validate_vin=False)
    assert kept.body["warnings"] == []


@pytest.mark.parametrize(("customer", "title"), [
    ({"firstName": "", "lastName": ""}, "MISSING_NAME"),
    ({"isBusiness": True, "lastName": "Lee"}, "MISSING_COMPANY"),
    ({"lastName": 5}, "INVALID_FIELD_TYPE"),
    ({"lastName": "Lee", "phoneNumbers": "+13105551234"}, "INVALID_FIELD_TYPE"),
    ({"lastName": "Lee", "emails": [{"emailAddress": "a@b.co", "okToEmail": "yes"}]}, "INVALID_FIELD_TYPE"),
])
def test_invalid_bodies_get_400_with_errors(api: Api, customer, title):
    answer = api.post(customer)
    assert answer.status == 400
    assert answer.body["errors"][0]["errorTitle"] == title


def test_business_with_company_is_accepted(api: Api):
    assert api.post({"isBusiness": True, "company": "Acme Fleet"}).status == 200


def test_malformed_json_gets_400(api: Api):
    answer = api.call("POST", f"/customer/v2/department/{DEPARTMENT}/customer", raw=b"{not json")
    assert answer.status == 400
    assert answer.body["errors"][0]["errorTitle"] == "MALFORMED_JSON"
    assert api.call("POST", f"/customer/v2/department/{DEPARTMENT}/customer", body=[1]).status == 400


def test_missing_and_wrong_credentials_get_401(api: Api, sandbox):
    assert api.call("GET", "/_sandbox/stats").status == 200
    missing = api.call("POST", f"/customer/v2/department/{DEPARTMENT}/customer", person(), auth="")
    assert missing.status == 401
    assert missing.body["errors"][0]["errorCode"] == "100001"
    wrong = Api(sandbox.url, password="nope").post(person())
    assert wrong.status == 401
    assert wrong.body["errors"][0]["errorCode"] == "100003"


def test_department_scope_gives_403(start_sandbox):
    api = Api(start_sandbox(departments=frozenset({"allowed"})).url)
    assert api.post(person(), department="allowed").status == 200
    refused = api.post(person(), department="other")
    assert refused.status == 403
    assert refused.body["errors"][0]["errorCode"] == "100014"


def test_list_minimal_finds_by_key_comm_and_vin(api: Api):
    uuid = api.post(person(customerKey="C-77", phoneNumbers=phones(PHONE)), [{"vin": VIN}]).body["customerUuid"]
    base = f"/customer/v2/department/{DEPARTMENT}/customer/listMinimal"
    for term, fields in [("C-77", "customerKey"), (PHONE, "communications.commValue"), (VIN, "vehicles.vin")]:
        found = api.call("GET", f"{base}?searchTerm={term.replace('+', '%2B')}&fieldsToBeSearched={fields}")
        assert [c["uuid"] for c in found.body["matchingCustomers"]] == [uuid]
    assert api.call("GET", f"{base}?searchTerm=C-77&fieldsToBeSearched=lname").body["matchingCustomers"] == []
    assert api.call("GET", f"{base}?searchTerm=x&maxResults=0").status == 400
    assert api.call("GET", base).status == 400


def test_rate_limit_answers_429_with_retry_after(start_sandbox):
    api = Api(start_sandbox(rate_limit=5).url)
    answers = [api.post(person(first=str(i))) for i in range(12)]
    limited = [a for a in answers if a.status == 429]
    assert limited, "12 quick requests against 5/s must be limited"
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert limited[0].body["errors"][0]["errorTitle"] == "TOO_MANY_REQUESTS"
    assert api.stats()["rate_limited"] == len(limited)


def test_stats_give_when_the_first_post_came_and_the_last_was_answered(start_sandbox):
    api = Api(start_sandbox(rate_limit=2, rate_limit_mode="window").url)
    assert api.stats()["first_post_at"] is None
    before = time.monotonic()
    answers = [api.post(person(first=str(i))).status for i in range(4)]  # 429s are answers too
    after = time.monotonic()
    stats = api.stats()
    assert 429 in answers
    # The sandbox's monotonic clock is the machine's: a benchmark takes the span of a run from it.
    assert before <= stats["first_post_at"] < stats["last_answer_at"] <= after


def test_fail_rate_answers_503_before_saving(start_sandbox):
    api = Api(start_sandbox(fail_rate=1.0).url)
    assert api.post(person()).status == 503
    stats = api.stats()
    assert stats["customers"] == 0
    assert stats["faults"] == {"fail": 1}


def test_commit_fail_rate_saves_then_answers_503(start_sandbox):
    api = Api(start_sandbox(commit_fail_rate=1.0).url)
    assert api.post(person()).status == 503
    stats = api.stats()
    assert stats["customers"] == 1
    assert stats["faults"] == {"commit_fail": 1}


def test_drop_rate_closes_the_connection_without_answer(start_sandbox):
    sandbox = start_sandbox(drop_rate=1.0)
    host, port = urlsplit(sandbox.url).hostname, urlsplit(sandbox.url).port
    connection = http.client.HTTPConnection(host or "", port, timeout=5)
    body = '{"customer": {"lastName": "Lee"}}'
    connection.request("POST", f"/customer/v2/department/{DEPARTMENT}/customer", body,
                       {"Authorization": Api(sandbox.url).auth, "Content-Type": "application/json"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        connection.getresponse()
    assert Api(sandbox.url).stats()["faults"] == {"drop": 1}


def test_faults_are_reproducible_with_a_seed(start_sandbox):
    def statuses(seed: int) -> list[int]:
        api = Api(start_sandbox(fail_rate=0.5, seed=seed).url)
        return [api.post(person(first=str(i))).status for i in range(20)]

    assert statuses(7) == statuses(7)
    assert set(statuses(7)) == {200, 503}


def test_latency_is_added(start_sandbox):
    api = Api(start_sandbox(latency_ms=150).url)
    started = time.monotonic()
    api.post(person())
    assert time.monotonic() - started >= 0.14


def test_db_keeps_customers_across_restarts(start_sandbox, tmp_path: Path):
    db = str(tmp_path / "sandbox.sqlite")
    first = start_sandbox(db_path=db)
    uuid = Api(first.url).post(person(phoneNumbers=phones(PHONE))).body["customerUuid"]
    first.__exit__(None, None, None)
    api = Api(start_sandbox(db_path=db).url)
    assert api.get(uuid).status == 200
    assert api.post(person(phoneNumbers=phones(PHONE))).body["customerUuid"] == uuid
    assert api.stats()["customers"] == 1


def test_overlapping_identities_are_counted(start_sandbox):
    import threading

    api = Api(start_sandbox(latency_ms=300).url)
    threads = [threading.Thread(target=api.post, args=(person(phoneNumbers=phones(PHONE)),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert api.stats()["identity_overlaps"] == 1


def test_cli_sandbox_serves_and_prints_demo_account():
    process = subprocess.Popen([sys.executable, "-m", "importer", "sandbox", "--port", "0"],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        account = process.stderr.readline()
        listening = process.stderr.readline()
        password = account.strip().rsplit("MK_PASSWORD=", 1)[1]
        url = listening.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        api = Api(url, user="demo", password=password)
        assert api.post(person()).status == 200
        assert Api(url, user="demo", password="wrong").post(person()).status == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_window_limit_counts_accepted_requests_in_the_trailing_second():
    from importer.sandbox.server import _SlidingWindow

    now = [100.0]
    window = _SlidingWindow(3, clock=lambda: now[0])
    assert [window.wait_needed("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert window.wait_needed("a") == pytest.approx(1.0)  # full: refused, and the refusal is not counted
    assert window.wait_needed("b") == 0.0  # each account has its own window
    now[0] += 0.5
    assert window.wait_needed("a") == pytest.approx(0.5)
    now[0] += 0.5  # the first three leave the trailing second together
    assert [window.wait_needed("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]


def test_window_mode_answers_429_with_retry_after_one_second(start_sandbox):
    api = Api(start_sandbox(rate_limit=5, rate_limit_mode="window").url)
    answers = [api.post(person(first=str(i))) for i in range(12)]
    limited = [a for a in answers if a.status == 429]
    assert len(answers) - len(limited) <= 10  # 5 a second at most, however the 12 fall across seconds
    assert limited
    assert all(a.headers["Retry-After"] == "1" for a in limited)


def test_the_sandbox_command_serves_https_with_the_certificate_given(make_tls, tmp_path: Path):
    import re
    import ssl

    tls = make_tls()
    process = subprocess.Popen([sys.executable, "-m", "importer", "sandbox", "--port", "0", "--user", "u:p",
                                "--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file)],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
        assert match, line
        trusting = ssl.create_default_context(cafile=str(tls.ca_file))
        connection = http.client.HTTPSConnection("127.0.0.1", int(match.group(1)), context=trusting, timeout=10)
        connection.request("GET", "/_sandbox/stats")
        assert connection.getresponse().status == 200
        connection.close()
        stranger = http.client.HTTPSConnection("127.0.0.1", int(match.group(1)), timeout=10,
                                               context=ssl.create_default_context())
        with pytest.raises(ssl.SSLCertVerificationError):
            stranger.request("GET", "/_sandbox/stats")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize("which", ["cert only", "key is not the cert's"])
def test_the_sandbox_refuses_a_certificate_it_cannot_serve(make_tls, which: str):
    tls, other = make_tls(name="one"), make_tls(name="two")
    args = ["--tls-cert", str(tls.cert_file)]
    if which != "cert only":
        args += ["--tls-key", str(other.key_file)]
    done = subprocess.run([sys.executable, "-m", "importer", "sandbox", "--port", "0", *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--tls-" in done.stderr
    assert "Traceback" not in done.stderr
