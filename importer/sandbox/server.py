"""The sandbox's HTTP face: routes, HTTP Basic auth, per-account rate limit, injected faults, optional TLS.

Faults are drawn from one seeded random generator in the order requests arrive, so a run with `--seed`
and one client at a time is reproducible:
- `fail_rate`: answer 503 before saving (safe to retry);
- `commit_fail_rate`: save, then answer 503 (the ambiguous case: the client cannot know it was saved);
- `drop_rate`: save, then close the connection without answering (ambiguous too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import json
import math
import random
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from importer.errors import ConfigError
from importer.sandbox.customers import BadRequest, apply_request, message, parse_body
from importer.sandbox.matching import find_duplicate
from importer.sandbox.store import CustomerStore, comm_values, vins_of

BASE = "/customer/v2/department/{department}/customer"


@dataclass(frozen=True)
class SandboxConfig:
    #: Accounts allowed in: user name → password.
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Departments the accounts have scope for; empty means any.
    departments: frozenset[str] = frozenset()
    #: Requests per second per account; None for no limit.
    rate_limit: float | None = None
    #: How the limit counts: "bucket" (a token bucket holding a second's worth) or "window" (requests
    #: accepted in the trailing second; refused ones not counted).
    rate_limit_mode: str = "bucket"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    commit_fail_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int | None = None
    db_path: str | None = None
    #: serve HTTPS with this PEM certificate (chain) and its PEM private key; None for plain HTTP
    tls_cert: str | None = None
    tls_key: str | None = None


class _TokenBucket:
    """Per-account limit: a bucket of `rate` tokens refilled at `rate` per second."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens: dict[str, float] = {}
        self.stamp: dict[str, float] = {}

    def wait_needed(self, account: str) -> float:
        """0 if the account may go now (a token is taken), else seconds until a token is free."""
        now = self.clock()
        tokens = min(self.rate, self.tokens.get(account, self.rate)
                     + (now - self.stamp.get(account, now)) * self.rate)
        self.stamp[account] = now
        if tokens >= 1:
            self.tokens[account] = tokens - 1
            return 0.0
        self.tokens[account] = tokens
        return (1 - tokens) / self.rate


class _SlidingWindow:
    """Per-account limit: at most `rate` requests accepted in any trailing second. Refused requests do not
    count, so a client that keeps knocking is not locked out, only refused while the window is full."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, math.floor(rate))
        self.clock = clock
        self.accepted: dict[str, deque[float]] = {}

    def wait_needed(self, account: str) -> float:
        """0 if the account may go now (the request is counted), else seconds until the window has room."""
        now = self.clock()
        window = self.accepted.setdefault(account, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) < self.limit:
            window.append(now)
            return 0.0
        return window[0] + 1.0 - now


@dataclass
class _Stats:
    requests: int = 0
    creates: int = 0
    updates: int = 0
    rate_limited: int = 0
    bad_requests: int = 0
    unauthorized: int = 0
    forbidden: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    #: POSTs that arrived while another POST sharing a key, phone, email or VIN was being handled.
    identity_overlaps: int = 0
    #: time.monotonic() when the first POST arrived and when the last one was answered: a run's span as the
    #: API saw it, to the millisecond (a benchmark's sampling once a second was up to a second off)
    first_post_at: float | None = None
    last_answer_at: float | None = None


def _envelope(errors: list[Any] | None = None, warnings: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"errors": errors or [], "warnings": warnings or [], **extra}


def _error(status: int, code: str, title: str, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(_envelope([message(code, title, text, kind="error")]), status=status,
                             headers=headers)


class Sandbox:
    """The application state behind the routes."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = CustomerStore(config.db_path)
        self.stats = _Stats()
        self.random = random.Random(config.seed)
        self.limiter: _TokenBucket | _SlidingWindow | None = None
        if config.rate_limit:
            mode = _SlidingWindow if config.rate_limit_mode == "window" else _TokenBucket
            self.limiter = mode(config.rate_limit)
        self.in_flight: Counter[str] = Counter()
        self.update_seq = 0

    # -- gatekeeping -------------------------------------------------------------------------------
    def _account(self, request: web.Request) -> str | web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            self.stats.unauthorized += 1
            return _error(401, "100001", "NULL_CREDENTIALS", "credentials are missing")
        try:
            user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if self.config.users.get(user) != password or not user:
            self.stats.unauthorized += 1
            return _error(401, "100003", "WRONG_CREDENTIAL", "wrong user name or password")
        department = request.match_info.get("department", "")
        if self.config.departments and department not in self.config.departments:
            self.stats.forbidden += 1
            return _error(403, "100014", "INVALID_SCOPE_DEPARTMENT", "no scope for this department")
        return user

    def _admit(self, request: web.Request) -> web.Response | None:
        """None if the request may proceed, else the 401/403/429 answer."""
        self.stats.requests += 1
        account = self._account(request)
        if isinstance(account, web.Response):
            return account
        if self.limiter is not None:
            wait = self.limiter.wait_needed(account)
            if wait > 0:
                self.stats.rate_limited += 1
                # The window mode always says 1 s, as a server counting a trailing second would.
                after = 1 if isinstance(self.limiter, _SlidingWindow) else max(1, math.ceil(wait))
                return _error(429, "429001", "TOO_MANY_REQUESTS", "rate limit exceeded",
                              headers={"Retry-After": str(after)})
        return None

    async def _latency(self) -> None:
        if self.config.latency_ms or self.config.jitter_ms:
            jitter = self.random.uniform(-self.config.jitter_ms, self.config.jitter_ms)
            await asyncio.sleep(max(0.0, self.config.latency_ms + jitter) / 1000)

    def _draw(self, rate: float) -> bool:
        return rate > 0 and self.random.random() < rate

    # -- routes ----------------------------------------------------------------------------------
    async def create_or_update(self, request: web.Request) -> web.StreamResponse:
        if self.stats.first_post_at is None:
            self.stats.first_post_at = time.monotonic()
        try:
            return await self._create_or_update(request)
        finally:
            self.stats.last_answer_at = time.monotonic()

    async def _create_or_update(self, request: web.Request) -> web.StreamResponse:
        refused = self._admit(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.stats.bad_requests += 1
            return _error(400, "400000", "MALFORMED_JSON", "the body is not valid JSON")
        try:
            customer, vehicles, validate_vin, search = parse_body(body)
        except BadRequest as exc:
            self.stats.bad_requests += 1
            return web.json_response(_envelope([exc.error]), status=400)
        identities = self._identities(customer, vehicles)
        if any(self.in_flight[i] for i in identities):
            self.stats.identity_overlaps += 1
        self.in_flight.update(identities)
        try:
            return await self._save(request, customer, vehicles, validate_vin, search)
        finally:
            self.in_flight.subtract(identities)

    @staticmethod
    def _identities(customer: dict[str, Any], vehicles: list[dict[str, Any]]) -> set[str]:
        ids = comm_values(customer) | vins_of(vehicles)
        if customer.get("customerKey"):
            ids.add("key:" + customer["customerKey"])
        return ids

    async def _save(self, request: web.Request, customer: dict[str, Any], vehicles: list[dict[str, Any]],
                    validate_vin: bool, search: bool) -> web.StreamResponse:
        department = request.match_info["department"]
        await self._latency()
        if self._draw(self.config.fail_rate):
            self.stats.faults["fail"] += 1
            return _error(503, "503001", "SERVICE_UNAVAILABLE", "injected failure before saving")
        existing = None
        if customer.get("customerUuid"):
            existing = self.store.get(department, customer["customerUuid"])
            if existing is None:
                return _error(404, "404001", "CUSTOMER_NOT_FOUND", "no customer with this customerUuid")
        elif search:
            existing = find_duplicate(self.store, department, customer, vehicles)
        record, warnings = apply_request(existing, customer, vehicles, validate_vin)
        if existing is None:
            record["customerUuid"], record["customerId"] = self.store.new_identity()
            record["department"] = department
            self.stats.creates += 1
        else:
            self.stats.updates += 1
        self.update_seq += 1
        record["updatedSeq"] = self.update_seq
        self.store.save(record)
        if self._draw(self.config.commit_fail_rate):
            self.stats.faults["commit_fail"] += 1
            return _error(503, "503002", "SERVICE_UNAVAILABLE", "injected failure after saving")
        if self._draw(self.config.drop_rate):
            self.stats.faults["drop"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is answered on an aborted connection
        return web.json_response(_envelope(warnings=warnings, customerUuid=record["customerUuid"],
                                           customerId=record["customerId"]))

    async def get_customer(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        record = self.store.get(request.match_info["department"], request.match_info["uuid"])
        if record is None:
            return _error(404, "404001", "CUSTOMER_NOT_FOUND", "no customer with this customerUuid")
        customer = {k: v for k, v in record.items() if k not in ("vehicles", "department", "updatedSeq")}
        return web.json_response(_envelope(customerWithVehicles={"customer": customer,
                                                                 "vehicles": record["vehicles"]}))

    async def list_minimal(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        department = request.match_info["department"]
        term = request.query.get("searchTerm", "").strip()
        if not term:
            return _error(400, "400005", "MISSING_SEARCH_TERM", "searchTerm is required")
        fields = {f.strip() for f in request.query.get("fieldsToBeSearched", "").split(",") if f.strip()}
        fields = fields or {"fname", "lname", "company", "customerKey", "communications.commValue", "vehicles.vin"}
        try:
            limit = int(request.query.get("maxResults", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _error(400, "400006", "INVALID_MAX_RESULTS", "maxResults must be 1 to 100")
        found = []
        needle = term.casefold()
        for record in self.store.all_in(department):
            values: dict[str, list[Any]] = {
                "fname": [record.get("firstName")], "lname": [record.get("lastName")],
                "company": [record.get("company")], "customerKey": [record.get("customerKey")],
                "communications.commValue": sorted(comm_values(record)),
                "vehicles.vin": sorted(vins_of(record["vehicles"])),
            }
            if any(str(v).casefold() == needle for f in fields for v in values.get(f, []) if v):
                found.append({
                    "uuid": record["customerUuid"], "customerKey": record.get("customerKey"),
                    "fname": record.get("firstName"), "lname": record.get("lastName"),
                    "company": record.get("company"), "communications": values["communications.commValue"],
                    "vehicles": values["vehicles.vin"],
                })
        return web.json_response(_envelope(matchingCustomers=found[:limit]))

    async def stats_view(self, request: web.Request) -> web.Response:
        s = self.stats
        return web.json_response({
            "requests": s.requests, "creates": s.creates, "updates": s.updates,
            "rate_limited": s.rate_limited, "bad_requests": s.bad_requests,
            "unauthorized": s.unauthorized, "forbidden": s.forbidden,
            "faults": dict(s.faults), "identity_overlaps": s.identity_overlaps,
            "customers": len(self.store), "vehicles": self.store.vehicle_count(),
            "first_post_at": s.first_post_at, "last_answer_at": s.last_answer_at,
        })


def build_app(config: SandboxConfig) -> web.Application:
    sandbox = Sandbox(config)
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(BASE, sandbox.create_or_update)
    app.router.add_get(BASE + "/listMinimal", sandbox.list_minimal)
    app.router.add_get(BASE + "/{uuid}", sandbox.get_customer)
    app.router.add_get("/_sandbox/stats", sandbox.stats_view)

    async def close_store(_: web.Application) -> None:
        sandbox.store.close()

    app.on_cleanup.append(close_store)
    return app


def server_tls(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server side of TLS from a PEM certificate (its chain after it) and its PEM key; None for neither."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:  # an OSError too: first
        raise ConfigError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its matching private key "
                          f"({exc.reason or exc})") from None
    except OSError as exc:
        raise ConfigError(f"--tls-cert/--tls-key: cannot read {exc.filename or cert} ({exc.strerror or exc})") \
            from None
    return context


@contextlib.asynccontextmanager
async def running_sandbox(config: SandboxConfig, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the sandbox on this event loop; yields its base URL."""
    tls = server_tls(config.tls_cert, config.tls_key)
    runner = web.AppRunner(build_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ConfigError(f"sandbox: cannot listen on {host}:{port}: {reason}; give another --port, or --port 0 "
                          "for a free one") from None
    bound_host, bound_port = runner.addresses[0][:2]
    try:
        yield f"{'https' if tls else 'http'}://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()


class SandboxThread:
    """The sandbox on its own event loop in a background thread, for synchronous callers and tests."""

    def __init__(self, config: SandboxConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config, self.host, self.port = config, host, port
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="mk-import-sandbox", daemon=True)
        self._failure: BaseException | None = None

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with running_sandbox(self.config, self.host, self.port) as url:
                self.url = url
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._failure is not None or not self.url:
            raise RuntimeError(f"sandbox did not start: {self._failure}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
