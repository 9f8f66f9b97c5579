"""Stops that stop: every wait of a run is cut short by a stop, and a stopped run ends within seconds."""

from __future__ import annotations

import asyncio
import http.server
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from importer.cli import main
from importer.config import PoolSettings
from importer.errors import RetryableError
from importer.send.client import Reply
from importer.send.pool import Job, Outcome, Pool
from importer.status import Status, StopCode
from tests.conftest import DEPARTMENT, PASSWORD, USER
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary
from tests.send.test_pool import job


class Api:
    """Answers every POST with `answer()`: a Reply, an exception, or a wait that never ends."""

    def __init__(self, answer: Callable[[], Any]) -> None:
        self.answer = answer
        self.requests = 0

    async def create_or_update(self, body: str) -> Reply:
        self.requests += 1
        result = self.answer()
        if result is None:
            await asyncio.Event().wait()  # never answered
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, Reply)
        return result

    async def find_by_key(self, customer_key: str) -> Reply:
        return Reply(True)


def stopped_run(api: Api, jobs: list[Job], *, stop_after: float = 0.2, second_stop_after: float | None = None,
                **settings: Any) -> tuple[dict[str, Outcome], Pool]:
    """Run a pool with real sleeps, stop it after `stop_after` s; fails if the run does not end within 10 s."""
    outcomes: dict[str, Outcome] = {}

    async def record(j: Job, o: Outcome) -> None:
        outcomes[j.key] = o

    async def go() -> Pool:
        pool = Pool(api, PoolSettings(**{"rate": 1000, "concurrency": 2, **settings}), record)
        loop = asyncio.get_running_loop()
        loop.call_later(stop_after, pool.stop, "terminated (SIGTERM)", StopCode.TERMINATED)
        if second_stop_after is not None:
            loop.call_later(second_stop_after, lambda: pool.stop("interrupted", StopCode.INTERRUPTED, at_once=True))
        await asyncio.wait_for(pool.run(jobs), timeout=10)
        return pool

    return outcomes, asyncio.run(go())


def test_a_stop_cuts_a_retry_after_pause_short_and_nothing_is_retried():
    api = Api(lambda: RetryableError("429", retry_after=86400, maybe_saved=False, throttled=True))
    outcomes, pool = stopped_run(api, [job("A"), job("B")], retry_after_cap=86400)
    assert {o.status for o in outcomes.values()} == {Status.NOT_ATTEMPTED}
    assert 1 <= api.requests <= 2  # at most one each: no retry after the stop
    assert pool.stats.stop_reason == "terminated (SIGTERM)"


def test_a_stop_cuts_a_backoff_short_and_a_maybe_saved_customer_is_not_called_not_attempted():
    api = Api(lambda: RetryableError("server error (HTTP 503)"))
    outcomes, _ = stopped_run(api, [job("A")], backoff_base=1000, backoff_cap=1000)
    assert api.requests == 1
    assert outcomes["A"].status == Status.FAILED
    assert outcomes["A"].error_code == "STOPPED_UNANSWERED"
    assert "HTTP 503" in outcomes["A"].detail


def test_a_stop_cuts_the_rate_limit_wait_short():
    api = Api(lambda: Reply(True, "u", "1"))
    outcomes, _ = stopped_run(api, [job(k) for k in "ABCD"], rate=0.001, min_rate=0.0001)
    assert api.requests == 1  # the first token; the next would come in an hour
    assert sorted(o.status for o in outcomes.values()) == [Status.NOT_ATTEMPTED] * 3 + [Status.SUCCESS]


def test_an_unanswered_request_is_abandoned_after_the_grace_or_at_a_second_stop():
    api = Api(lambda: None)
    outcomes, _ = stopped_run(api, [job("A")], stop_grace=0.2)
    assert outcomes["A"].status == Status.FAILED
    assert outcomes["A"].error_code == "STOPPED_UNANSWERED"
    outcomes, _ = stopped_run(api, [job("B")], stop_grace=3600, second_stop_after=0.4)
    assert outcomes["B"].error_code == "STOPPED_UNANSWERED"


def test_every_request_has_a_total_deadline():
    async def record(j: Job, o: Outcome) -> None:
        outcomes[j.key] = o

    outcomes: dict[str, Outcome] = {}
    api = Api(lambda: None)
    settings = PoolSettings(rate=1000, request_timeout=0.2, max_attempts=2, backoff_base=0.0)
    asyncio.run(asyncio.wait_for(Pool(api, settings, record).run([job("A")]), timeout=10))
    assert api.requests == 2
    assert outcomes["A"].error_code == "RETRIES_EXHAUSTED"
    assert "no complete answer within 0.2 s" in outcomes["A"].detail


# -- the whole program against loopback servers that answer badly ----------------------------------------
class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    requests = 0
    closing = threading.Event()


class _Trickle(socketserver.StreamRequestHandler):
    """Reads a request, then sends an answer one byte every half second, forever."""

    def handle(self) -> None:
        assert isinstance(self.server, _Server)
        while self.rfile.readline().strip():
            pass
        self.server.requests += 1
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        try:
            while not self.server.closing.wait(0.5):
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            return


class _TooMany(http.server.BaseHTTPRequestHandler):
    """429 with a day's Retry-After to every request."""

    def do_POST(self) -> None:
        assert isinstance(self.server, _Server)
        self.server.requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(429)
        self.send_header("Retry-After", "86400")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "13")
        self.end_headers()
        self.wfile.write(b'{"errors":[]}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[type[socketserver.BaseRequestHandler]], tuple[str, _Server]]]:
    servers: list[_Server] = []

    def start(handler: type[socketserver.BaseRequestHandler]) -> tuple[str, _Server]:
        server = _Server(("127.0.0.1", 0), handler)
        server.closing = threading.Event()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield start
    for server in servers:
        server.closing.set()
        server.shutdown()
        server.server_close()


def _start_run(url: str, tmp_path: Path, *extra: str, rows: int = 20) -> tuple[subprocess.Popen[bytes], Path]:
    source = tmp_path / "in.csv"
    source.write_text("\n".join(",".join(r) for r in [DV_HEADER, *(dv_row(str(i), first=f"P{i}")
                                                                   for i in range(rows))]) + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": PASSWORD}
    process = subprocess.Popen([sys.executable, "-m", "importer", "run", str(source), "-m", "dealervault",
                                "--department-uuid", DEPARTMENT, "--api-url", url, "--out", str(out),
                                "--state", str(tmp_path / "s.sqlite"), "--concurrency", "2", "--progress", "none",
                                *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, out


def _finish(process: subprocess.Popen[bytes]) -> int:
    """The exit code of a run that must end within seconds (30 s: a hang fails the test), without a traceback."""
    _, err = process.communicate(timeout=30)
    assert b"Traceback" not in err, err
    return process.returncode


def _wait_for_requests(server: _Server, count: int) -> None:
    deadline = time.monotonic() + 30
    while server.requests < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.requests >= count


def _all_rows_reported(out: Path, rows: int) -> list[dict[str, str]]:
    results = read_csv(out / "results.csv")
    assert [int(r["source_row"]) for r in results] == list(range(1, rows + 1))
    return results


def test_sigterm_during_a_day_long_retry_after_ends_the_run(serve, tmp_path: Path):
    url, server = serve(_TooMany)
    process, out = _start_run(url, tmp_path)
    _wait_for_requests(server, 1)
    time.sleep(0.5)  # the 429 has paused every worker for a day
    process.send_signal(signal.SIGTERM)
    assert _finish(process) == 3  # old behaviour: the pause (capped at 120 s) is waited out
    assert {r["status"] for r in _all_rows_reported(out, 20)} == {"not_attempted"}
    assert 1 <= server.requests <= 2  # the requests in flight when the first 429 came; none after


def test_max_duration_ends_a_run_stuck_in_a_retry_after_pause(serve, tmp_path: Path):
    url, _ = serve(_TooMany)
    process, out = _start_run(url, tmp_path, "--max-duration", "1")
    assert _finish(process) == 3
    assert {r["status"] for r in _all_rows_reported(out, 20)} == {"not_attempted"}
    assert "time budget" in read_summary(out)["stop_reason"]


def test_ctrl_c_ends_a_run_whose_answers_trickle_in(serve, tmp_path: Path):
    url, server = serve(_Trickle)
    process, out = _start_run(url, tmp_path)
    _wait_for_requests(server, 2)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    assert _finish(process) == 130
    results = _all_rows_reported(out, 20)
    assert sorted({r["error_code"] for r in results if r["status"] == "failed"}) == ["STOPPED_UNANSWERED"]
    assert {r["status"] for r in results} == {"failed", "not_attempted"}


def test_a_trickling_answer_is_cut_at_the_request_timeout(serve, tmp_path: Path):
    url, _ = serve(_Trickle)
    process, out = _start_run(url, tmp_path, "--request-timeout", "0.5", "--max-attempts", "1", rows=2)
    assert _finish(process) == 1
    results = _all_rows_reported(out, 2)
    assert {r["error_code"] for r in results} == {"RETRIES_EXHAUSTED"}
    assert "no complete answer within 0.5 s" in results[0]["error_message"]


@pytest.mark.parametrize("rate", ["nan", "inf", "1e-9", "-1", "1e9"])
def test_absurd_rates_are_refused(rate, write_csv, tmp_path: Path, capsys):
    source = write_csv([DV_HEADER, dv_row("1")])
    with pytest.raises(SystemExit) as exited:
        main(["run", str(source), "-m", "dealervault", "--sandbox", "--out", str(tmp_path / "o"), "--rate", rate])
    assert exited.value.code == 2
    assert "--rate" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
