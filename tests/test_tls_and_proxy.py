"""`mk-import run` over HTTPS against the TLS sandbox, through a real forwarding proxy, with certificates made here:
success, NO_PROXY, untrusted and expired certificates, a proxy that refuses, and no credential in any output."""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEPARTMENT, PASSWORD, USER, Tls
from tests.helpers import DV_HEADER, dv_row, read_csv, read_summary
from tests.proxy import ForwardProxy

PROXY_USER, PROXY_PASSWORD = "egress", "Pr0xy-Passw0rd-Secret"
PROXY_TOKEN = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
ROWS = 40


@pytest.fixture
def start_proxy() -> Iterator[Callable[..., ForwardProxy]]:
    running: list[ForwardProxy] = []

    def start(credentials: tuple[str, str] | None = (PROXY_USER, PROXY_PASSWORD)) -> ForwardProxy:
        running.append(ForwardProxy(credentials))
        return running[-1]

    yield start
    for proxy in running:
        proxy.close()


@pytest.fixture
def export(write_csv) -> Path:
    path: Path = write_csv([DV_HEADER, *(dv_row(str(1000 + i), last=f"Lee{i}", cell=f"(310) 555-{1000 + i}")
                                         for i in range(ROWS))])
    return path


def run_cli(tmp_path: Path, source: Path, url: str, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, with debug logging, in a child process (its output kept)."""
    environ = {**os.environ, "MK_USERNAME": USER, "MK_PASSWORD": PASSWORD, **env}
    return subprocess.run(
        [sys.executable, "-m", "importer", "-v", "run", str(source), "-m", "dealervault", "--department-uuid",
         DEPARTMENT, "--api-url", url, "--out", str(tmp_path / "out"), "--state", str(tmp_path / "state.sqlite"),
         "--progress", "log", "--concurrency", "4", *extra],
        env=environ, capture_output=True, text=True, check=False, cwd=tmp_path, timeout=300)


def everything_left_behind(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> str:
    texts = [done.stdout, done.stderr]
    texts += [p.read_bytes().decode("utf-8", errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    return "\n".join(texts)


def assert_no_proxy_secret(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> None:
    left = everything_left_behind(tmp_path, done)
    assert PROXY_PASSWORD not in left
    assert PROXY_TOKEN not in left


def proxy_url(proxy: ForwardProxy, user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> str:
    return f"http://{user}:{password}@127.0.0.1:{proxy.port}"


def test_import_over_https_through_the_proxy(start_sandbox, make_tls, start_proxy, export, tmp_path: Path):
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    assert sandbox.url.startswith("https://127.0.0.1:")
    proxy = start_proxy()
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(tls.ca_file), HTTPS_PROXY=proxy_url(proxy))
    assert done.returncode == 0, done.stderr
    results = read_csv(tmp_path / "out" / "results.csv")
    assert len(results) == ROWS
    assert {r["status"] for r in results} == {"success"}
    port = sandbox.url.rsplit(":", 1)[1]
    assert proxy.tunnels
    assert set(proxy.tunnels) == {f"127.0.0.1:{port}"}
    assert set(proxy.authorizations) == {f"Basic {PROXY_TOKEN}"}  # with the credentials of its URL
    summary = read_summary(tmp_path / "out")
    assert summary["proxy"] == f"http://127.0.0.1:{proxy.port}"
    assert summary["stop_code"] is None
    assert_no_proxy_secret(tmp_path, done)


def test_ssl_cert_file_and_the_proxy_credentials_from_the_environment(start_sandbox, make_tls, start_proxy, export,
                                                                     tmp_path: Path):
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    proxy = start_proxy()
    done = run_cli(tmp_path, export, sandbox.url, https_proxy=f"127.0.0.1:{proxy.port}",
                   SSL_CERT_FILE=str(tls.ca_file), MK_PROXY_USERNAME=PROXY_USER, MK_PROXY_PASSWORD=PROXY_PASSWORD)
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in read_csv(tmp_path / "out" / "results.csv")} == {"success"}
    assert proxy.tunnels
    assert_no_proxy_secret(tmp_path, done)


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.0/8", "*"])
def test_no_proxy_covering_the_api_host_bypasses_the_proxy(start_sandbox, make_tls, start_proxy, export,
                                                           tmp_path: Path, no_proxy):
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    proxy = start_proxy()
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(tls.ca_file), HTTPS_PROXY=proxy_url(proxy),
                   NO_PROXY=no_proxy)
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in read_csv(tmp_path / "out" / "results.csv")} == {"success"}
    assert proxy.connections == 0
    assert read_summary(tmp_path / "out")["proxy"] is None


def assert_stopped_on_tls(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> str:
    """Exit 4 and stop code tls_failed within a few requests, nothing reaching the API; the message."""
    assert done.returncode == 4, done.stderr
    summary = read_summary(tmp_path / "out")
    assert summary["stop_code"] == "tls_failed"
    assert summary["requests_sent"] == 1  # one request until one is answered: it met the certificate
    assert summary["counts"].get("not_attempted", 0) >= ROWS - 4
    assert "success" not in summary["counts"]
    results = read_csv(tmp_path / "out" / "results.csv")
    assert {r["error_code"] for r in results} <= {"TLS_FAILED", ""}
    reason: str = summary["stop_reason"]
    assert reason in done.stderr
    return reason


def test_an_untrusted_certificate_stops_at_once_with_exit_4(start_sandbox, make_tls, start_proxy, export,
                                                            tmp_path: Path):
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    proxy = start_proxy()
    stranger: Tls = make_tls(name="other")  # a bundle, but of another authority
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(stranger.ca_file), HTTPS_PROXY=proxy_url(proxy))
    reason = assert_stopped_on_tls(tmp_path, done)
    port = sandbox.url.rsplit(":", 1)[1]
    assert f"the certificate of 127.0.0.1:{port} was refused" in reason
    assert "unable to get local issuer certificate" in reason
    assert "--ca-bundle" in reason
    assert f"through the proxy http://127.0.0.1:{proxy.port}" in reason
    assert len(proxy.tunnels) == 1  # the one request that met the certificate; no other left
    assert_no_proxy_secret(tmp_path, done)


def test_an_expired_certificate_stops_at_once_with_exit_4(start_sandbox, make_tls, export, tmp_path: Path):
    tls: Tls = make_tls(not_after=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2))
    sandbox = start_sandbox(**tls.sandbox())
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(tls.ca_file))
    reason = assert_stopped_on_tls(tmp_path, done)
    assert "it has expired (certificate has expired)" in reason
    assert "renewed" in reason


def test_a_certificate_for_another_name_stops_with_exit_4(start_sandbox, make_tls, export, tmp_path: Path):
    tls: Tls = make_tls("api.example.test")
    sandbox = start_sandbox(**tls.sandbox())
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(tls.ca_file))
    reason = assert_stopped_on_tls(tmp_path, done)
    assert "is not valid for the name 127.0.0.1" in reason


def test_a_proxy_refusing_the_credentials_stops_with_exit_4(start_sandbox, make_tls, start_proxy, export,
                                                           tmp_path: Path):
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    proxy = start_proxy()
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(tls.ca_file),
                   HTTPS_PROXY=proxy_url(proxy, password=PROXY_PASSWORD + "-wrong"))
    assert done.returncode == 4, done.stderr
    summary = read_summary(tmp_path / "out")
    assert summary["stop_code"] == "proxy_refused"
    assert 407 in proxy.refused
    assert not proxy.tunnels
    assert f"the proxy http://127.0.0.1:{proxy.port} asked for credentials (HTTP 407)" in summary["stop_reason"]
    left = everything_left_behind(tmp_path, done)
    assert PROXY_PASSWORD not in left
    assert base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}-wrong".encode()).decode() not in left


def test_a_proxy_that_is_not_there_stops_within_a_few_requests(start_sandbox, make_tls, start_proxy, export,
                                                              tmp_path: Path):
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    proxy = start_proxy()
    proxy.close()  # its port is free now: connections to it are refused
    done = run_cli(tmp_path, export, sandbox.url, "--ca-bundle", str(tls.ca_file), "--max-attempts", "1",
                   HTTPS_PROXY=proxy_url(proxy))
    assert done.returncode == 4, done.stderr
    summary = read_summary(tmp_path / "out")
    assert summary["stop_code"] == "proxy_refused"
    assert f"cannot connect to the proxy http://127.0.0.1:{proxy.port} (set by HTTPS_PROXY)" in summary["stop_reason"]
    assert summary["counts"].get("not_attempted", 0) >= ROWS - 10
    assert_no_proxy_secret(tmp_path, done)


def test_a_missing_ca_bundle_is_a_usage_error(export, tmp_path: Path):
    done = run_cli(tmp_path, export, "https://127.0.0.1:9", "--ca-bundle", str(tmp_path / "missing.pem"))
    assert done.returncode == 2
    assert "--ca-bundle" in done.stderr
    assert "missing.pem" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_dealer_behind_a_proxy_with_its_own_ca_bundle(start_sandbox, make_tls, start_proxy, export,
                                                        tmp_path: Path):
    """The dealers file's proxy (a bare URL) and ca_bundle; the proxy's credentials in the dealer's env file."""
    tls: Tls = make_tls()
    sandbox = start_sandbox(**tls.sandbox())
    proxy = start_proxy()
    env_file = tmp_path / "dealer.env"
    env_file.write_text(f"MK_USERNAME={USER}\nMK_PASSWORD={PASSWORD}\nMK_PROXY_USERNAME={PROXY_USER}\n"
                        f"MK_PROXY_PASSWORD={PROXY_PASSWORD}\n", encoding="utf-8")
    env_file.chmod(0o600)
    dealers = tmp_path / "dealers.yaml"
    dealers.write_text(yaml.safe_dump({
        "defaults": {"state_dir": "state", "reports": "reports", "proxy": proxy.url, "ca_bundle": str(tls.ca_file),
                     "api_url": sandbox.url, "credentials": {"env_file": str(env_file)}},
        "dealers": [{"name": "north", "department": DEPARTMENT, "input": str(export), "mapping": "dealervault"}]}))
    environ = {k: v for k, v in os.environ.items() if k not in ("MK_USERNAME", "MK_PASSWORD")}
    done = subprocess.run([sys.executable, "-m", "importer", "-v", "run", "--dealers", str(dealers), "--dealer",
                           "north", "--progress", "none"], env=environ, capture_output=True, text=True, check=False,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert proxy.tunnels
    assert set(proxy.authorizations) == {f"Basic {PROXY_TOKEN}"}
    summary = read_summary(tmp_path / "reports" / "north" / "latest")
    assert summary["counts"] == {"success": ROWS}
    assert summary["proxy"] == proxy.url
    texts = [done.stdout, done.stderr, *(p.read_bytes().decode("utf-8", errors="replace")
                                         for p in (tmp_path / "reports").rglob("*") if p.is_file())]
    assert not any(PROXY_PASSWORD in t or PROXY_TOKEN in t for t in texts)


def test_https_to_a_plain_http_server_stops_on_the_handshake_within_a_few_requests(start_sandbox, export,
                                                                                   tmp_path: Path):
    sandbox = start_sandbox()  # plain HTTP
    done = run_cli(tmp_path, export, sandbox.url.replace("http://", "https://"), "--max-attempts", "1")
    assert done.returncode == 4, done.stderr
    summary = read_summary(tmp_path / "out")
    assert summary["stop_code"] == "tls_failed"
    assert "TLS: the handshake with 127.0.0.1" in summary["stop_reason"]
    assert "check that --api-url is an https server" in summary["stop_reason"]
    assert summary["counts"].get("not_attempted", 0) >= ROWS - 10
