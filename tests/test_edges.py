"""Trust at the edges: answers that are not the API's, searches that say nothing, failures after sending and the
exit codes a scheduler acts on, each end to end against real loopback servers."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from importer import pipeline
from importer.cli import main
from tests.conftest import DEPARTMENT, Api
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary

LOGIN_PAGE = b"<html><body><form action='/sso/login'>Sign in</form></body></html>"


def run(path: Path, url: str, out: Path, *extra: str) -> int:
    return main(["run", str(path), "--mapping", "dealervault", "--department-uuid", DEPARTMENT, "--api-url", url,
                 "--out", str(out), "--state", str(out.parent / "state.sqlite"), "--progress", "none", *extra])


Behaviour = Callable[[BaseHTTPRequestHandler, bytes], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], tuple[str, list[str]]]]:
    """Start a plain HTTP server on 127.0.0.1 whose every answer `behaviour` writes; (URL, request lines)."""
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Behaviour) -> tuple[str, list[str]]:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                seen.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                behaviour(self, body)

            do_GET = do_POST = _any

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json",
           **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def forward(handler: BaseHTTPRequestHandler, body: bytes, upstream: str) -> tuple[int, bytes]:
    request = urllib.request.Request(upstream + handler.path, data=body or None, method=handler.command)
    for name in ("Authorization", "Content-Type", "Accept"):
        if handler.headers.get(name):
            request.add_header(name, handler.headers[name])
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


SEARCH_ANSWERS = {
    "400 with the error envelope": (400, b'{"errors": [{"errorCode": "400002", "errorMessage": "bad search"}]}',
                                    "application/json", {}),
    "404 with the error envelope": (404, b'{"errors": [{"errorCode": "404000", "errorMessage": "not found"}]}',
                                    "application/json", {}),
    "a redirect to a login page": (302, b"", "text/html", {"Location": "https://sso.example.test/login"}),
    "an HTML page": (200, LOGIN_PAGE, "text/html", {}),
}


@pytest.mark.parametrize("search_answer", list(SEARCH_ANSWERS))
def test_a_search_that_says_nothing_never_leads_to_a_second_create(sandbox, creds, serve, write_csv, tmp_path,
                                                                  search_answer):
    # A key-only customer (no phone, email or VIN: the server's matching cannot find it again). Its first POST
    # is saved, but the answer is lost (503); the search that should tell answers something that is not a result.
    status, page, content_type, headers = SEARCH_ANSWERS[search_answer]
    posts: list[int] = []

    def behaviour(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if "/listMinimal" in handler.path:
            answer(handler, status, page, content_type, **headers)
            return
        code, text = forward(handler, body, sandbox.url)
        posts.append(code)
        if len(posts) == 1:
            answer(handler, 503, b'{"errors": [{"errorCode": "503", "errorMessage": "gateway"}]}')
        else:
            answer(handler, code, text)

    url, _ = serve(behaviour)
    source = write_csv([DV_HEADER, dv_row("501", first="Kay", last="Only")])
    out = tmp_path / "first"
    assert run(source, url, out, "--max-attempts", "3") == 1
    (row,) = read_csv(out / "results.csv")
    assert (row["status"], row["error_code"]) == ("failed", "OUTCOME_UNKNOWN")
    assert "customer search" in row["error_message"]
    assert Api(sandbox.url).stats()["creates"] == 1
    assert len(posts) == 1, "never sent again while its fate is unknown"
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        assert [key for (key,) in db.execute("SELECT customer_key FROM sending")] == ["501"]  # still in doubt

    # The next run, with a search that answers, finds the customer saved and updates it.
    assert run(source, sandbox.url, tmp_path / "second") == 0
    (row,) = read_csv(tmp_path / "second" / "results.csv")
    stats = Api(sandbox.url).stats()
    assert row["status"] == "success"
    assert (stats["creates"], stats["updates"], stats["customers"]) == (1, 1, 1)


def _customers(count: int) -> list[list[str]]:
    return [dv_row(str(i), first=f"P{i}", cell=f"(310) 555-{1000 + i}") for i in range(count)]


def test_a_login_page_in_front_of_the_api_stops_the_run_within_20_requests(creds, serve, write_csv, tmp_path):
    url, seen = serve(lambda handler, body: answer(handler, 200, LOGIN_PAGE, "text/html; charset=utf-8"))
    source = write_csv([DV_HEADER, *_customers(300), dv_row("x", last="")])
    out = tmp_path / "out"
    assert run(source, url, out, "--rate", "1000", "--concurrency", "8") == 3
    assert len(seen) <= 20
    results = read_csv(out / "results.csv")
    assert len(results) == 301
    statuses = [r["status"] for r in results]
    assert statuses.count("failed") == len(seen)  # the rows a login page answered, reported as such
    assert statuses.count("not_attempted") == 300 - len(seen)
    assert statuses[-1] == "invalid"
    summary = read_summary(out)
    assert (summary["exit_code"], summary["stop_code"]) == (3, "not_the_api")
    assert "text/html" in summary["stop_reason"]
    assert len(seen) <= summary["requests_sent"] <= 20  # counted as the workers take them; a few never left


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_an_api_nobody_answers_stops_early_and_a_rerun_resumes(sandbox, creds, write_csv, tmp_path):
    source = write_csv([DV_HEADER, *_customers(200)])
    out = tmp_path / "out"
    code = run(source, f"http://127.0.0.1:{_free_port()}", out, "--rate", "1000", "--concurrency", "4")
    assert code == 3
    results = read_csv(out / "results.csv")
    assert {r["status"] for r in results} == {"not_attempted"}
    summary = read_summary(out)
    assert (summary["exit_code"], summary["stop_code"]) == (3, "api_unavailable")
    assert "no answer" in summary["stop_reason"] or "cannot connect" in summary["stop_reason"]
    assert summary["requests_sent"] <= 20
    assert not read_csv(out / "errors.csv"), "nothing for the user to fix in the file"

    assert run(source, sandbox.url, tmp_path / "again", "--rate", "1000") == 0
    assert Api(sandbox.url).stats()["customers"] == 200


def test_reports_that_cannot_be_written_after_saves_exit_3_and_say_what_was_saved(
        sandbox, creds, write_csv, tmp_path, monkeypatch, capsys):
    def full_disk(path: Path, table: object) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(pipeline, "write_results", full_disk)
    source = write_csv([DV_HEADER, *_customers(3)])
    assert run(source, sandbox.url, tmp_path / "out") == 3
    message = capsys.readouterr().err
    assert "No space left on device" in message
    assert "3 customers were saved" in message
    assert str(tmp_path / "state.sqlite") in message
    assert "nothing was sent" not in message
    assert Api(sandbox.url).stats()["creates"] == 3


def test_ctrl_c_while_the_reports_are_written_does_not_claim_nothing_was_sent(
        sandbox, creds, write_csv, tmp_path, monkeypatch, capsys):
    def interrupted(path: Path, table: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_results", interrupted)
    assert run(write_csv([DV_HEADER, *_customers(2)]), sandbox.url, tmp_path / "out") == 130
    message = capsys.readouterr().err
    assert "2 customers were saved" in message
    assert "nothing was sent" not in message


def test_a_refused_department_exits_4(start_sandbox, creds, write_csv, tmp_path):
    sandbox = start_sandbox(departments=frozenset({"another-department"}))
    out = tmp_path / "out"
    assert run(write_csv([DV_HEADER, *_customers(5)]), sandbox.url, out) == 4
    summary = read_summary(out)
    assert (summary["exit_code"], summary["stop_code"]) == (4, "credentials_refused")
    assert {r["status"] for r in read_csv(out / "results.csv")} == {"not_attempted"}


def _one_invalid_in_ten(write_csv):
    return write_csv([DV_HEADER, *_customers(9), dv_row("99", last="")])


@pytest.mark.parametrize(("max_invalid", "code"), [(None, 1), ("10", 0), ("9.9", 1), ("100", 0)])
def test_max_invalid_lets_a_normal_night_exit_0(write_csv, tmp_path, max_invalid, code):
    out = tmp_path / "out"
    extra = ["--max-invalid", max_invalid] if max_invalid else []
    assert main(["validate", str(_one_invalid_in_ten(write_csv)), "-m", "dealervault", "--out", str(out),
                 *extra]) == code
    summary = read_summary(out)
    assert summary["exit_code"] == code
    assert summary["max_invalid"] == (float(max_invalid) if max_invalid else None)


def test_max_invalid_never_hides_failed_rows(start_sandbox, creds, write_csv, tmp_path):
    sandbox = start_sandbox(fail_rate=1.0)
    out = tmp_path / "out"
    assert run(_one_invalid_in_ten(write_csv), sandbox.url, out, "--max-invalid", "100", "--max-attempts", "1",
               "--rate", "1000") == 1
    assert {r["status"] for r in read_csv(out / "results.csv")} == {"failed", "invalid"}


def test_max_invalid_is_a_percentage(write_csv, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["validate", str(_one_invalid_in_ten(write_csv)), "-m", "dealervault", "--max-invalid", "150"])
    assert stopped.value.code == 2
    assert "percentage" in capsys.readouterr().err


def test_summary_json_is_valid_json_with_a_stop_code(sandbox, creds, write_csv, tmp_path):
    out = tmp_path / "out"
    assert run(write_csv([DV_HEADER, *_customers(2)]), sandbox.url, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_code"] is None
    assert summary["stop_reason"] is None


def test_emails_go_out_as_a_strict_api_accepts_them_or_not_at_all(write_csv, tmp_path):
    source = write_csv([DV_HEADER, dv_row("1", first="Zoë", last="Wilson", email="zoë.wilson6@example.com",
                                          cell="(310) 555-1234"),
                        dv_row("2", first="Ann", last="Bauer", email="Ann@Bücher.de")])
    out, payloads = tmp_path / "out", tmp_path / "requests.jsonl"
    assert main(["validate", str(source), "-m", "dealervault", "--out", str(out), "--payloads", str(payloads)]) == 0
    bodies = {b["customer"]["customerKey"]: b["customer"] for b in map(json.loads, payloads.read_text().splitlines())}
    assert "emails" not in bodies["1"]  # dropped: the rest of the customer is still sent
    assert bodies["1"]["phoneNumbers"][0]["phoneNumber"] == "+13105551234"
    assert bodies["2"]["emails"][0]["emailAddress"] == "ann@xn--bcher-kva.de"
    results = {r["customer_key"]: r for r in read_csv(out / "results.csv")}
    assert results["1"]["status"] == "valid"
    assert "zoë.wilson6@example.com" in results["1"]["warnings"]
    assert results["2"]["warnings"] == ""
