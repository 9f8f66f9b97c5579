"""Shared fixtures: a running sandbox over loopback HTTP (or HTTPS with certificates made here), a CSV writer, a
small HTTP helper, and no proxy or CA setting from the machine."""

from __future__ import annotations

import base64
import datetime
import inspect
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import aioresponses.core as aioresponses_core
import pytest
import trustme
from aioresponses import aioresponses
from hypothesis import settings

from importer.sandbox import SandboxConfig, SandboxThread

# Examples are checked for what they prove, not for speed: a loaded machine must not fail them.
settings.register_profile("mk-import", deadline=None)
settings.load_profile("mk-import")

USER, PASSWORD = "tester", "s3cret-pass"
DEPARTMENT = "dept-0001"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Api:
    """A tiny synchronous client for poking the sandbox in tests."""

    def __init__(self, url: str, user: str = USER, password: str = PASSWORD) -> None:
        self.url = url
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             auth: str | None = None) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if (auth if auth is not None else self.auth):
            request.add_header("Authorization", auth if auth is not None else self.auth)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, dict(response.headers), json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), json.loads(exc.read()))

    def post(self, customer: dict[str, Any], vehicles: list[Any] | None = None, *, search: bool = True,
             validate_vin: bool = True, department: str = DEPARTMENT) -> Answer:
        body: dict[str, Any] = {"customer": customer, "searchForDuplicate": search, "validateVin": validate_vin}
        if vehicles is not None:
            body["vehicles"] = vehicles
        return self.call("POST", f"/customer/v2/department/{department}/customer", body)

    def get(self, uuid: str, department: str = DEPARTMENT) -> Answer:
        return self.call("GET", f"/customer/v2/department/{department}/customer/{uuid}")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/_sandbox/stats").body
        return result


#: What decides how a run reaches the API, besides its arguments: set on a machine, they are not the tests'.
NETWORK_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
                     "MK_PROXY_USERNAME", "MK_PROXY_PASSWORD")


@pytest.fixture(autouse=True)
def _no_machine_network_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test reaches the sandbox directly unless it sets a proxy itself (subprocesses inherit this too)."""
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@dataclass
class Tls:
    """A certificate authority made for one test, and the PEM files of a server certificate it issued."""

    ca: trustme.CA
    #: the authority's certificate: what --ca-bundle names
    ca_file: Path
    cert_file: Path
    key_file: Path

    def sandbox(self) -> dict[str, str]:
        """The start_sandbox overrides that serve HTTPS with this certificate."""
        return {"tls_cert": str(self.cert_file), "tls_key": str(self.key_file)}


@pytest.fixture
def make_tls(tmp_path: Path) -> Callable[..., Tls]:
    """A fresh authority and a server certificate for 127.0.0.1 (other names, or past dates, if asked)."""

    def make(*names: str, not_after: datetime.datetime | None = None, name: str = "tls") -> Tls:
        ca = trustme.CA()
        not_before = None if not_after is None else not_after - datetime.timedelta(days=30)
        leaf = ca.issue_cert(*(names or ("127.0.0.1", "localhost")), not_before=not_before, not_after=not_after)
        folder = tmp_path / name
        folder.mkdir()
        files = Tls(ca, folder / "ca.pem", folder / "server.pem", folder / "server.key")
        ca.cert_pem.write_to_path(files.ca_file)
        leaf.private_key_pem.write_to_path(files.key_file)
        for index, pem in enumerate(leaf.cert_chain_pems):
            pem.write_to_path(files.cert_file, append=index > 0)
        return files

    return make


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., SandboxThread]]:
    """Start a sandbox on a free 127.0.0.1 port with the given config; stopped after the test."""
    running: list[SandboxThread] = []

    def start(**overrides: Any) -> SandboxThread:
        config = SandboxConfig(**{"users": {USER: PASSWORD}, **overrides})
        sandbox = SandboxThread(config).__enter__()
        running.append(sandbox)
        return sandbox

    yield start
    for sandbox in running:
        sandbox.__exit__(None, None, None)


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox account's credentials in MK_USERNAME and MK_PASSWORD, as a run reads them."""
    monkeypatch.setenv("MK_USERNAME", USER)
    monkeypatch.setenv("MK_PASSWORD", PASSWORD)


@pytest.fixture
def sandbox(start_sandbox: Callable[..., SandboxThread]) -> SandboxThread:
    return start_sandbox()


@pytest.fixture
def api(sandbox: SandboxThread) -> Api:
    return Api(sandbox.url)


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (first row the header) as a CSV file in tmp_path, in the given encoding."""

    def write(rows: list[list[str]], name: str = "input.csv", *, delimiter: str = ",",
              encoding: str = "utf-8", newline: str = "\r\n") -> Path:
        import csv
        import io

        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows(rows)
        path = tmp_path / name
        path.write_bytes(buffer.getvalue().encode(encoding))
        return path

    return write


_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.x builds responses without the `stream_writer` that aiohttp 3.14 requires
    (pnuckowski/aioresponses#289); a written-out request has nothing left to report, so a stub will do.
    Older aiohttp (the floor CI also tests) takes no such argument."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def aiomock(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses, made to work with the installed aiohttp."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mocked:
        yield mocked
