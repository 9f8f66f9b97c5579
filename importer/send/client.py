"""Requests to the Customer API: auth, the HTTP call, and the classification of every answer of every endpoint.

`classify` is the single place that decides what an HTTP answer means, for the create-or-update POST and
for the listMinimal search alike:

    2xx with the endpoint's result        → Reply(ok): customerUuid (POST) or matchingCustomers (search)
    2xx/4xx with the API's errors         → Reply(failed), the API's code and message (404: unknown_customer)
    2xx/4xx envelope without a result     → Reply(failed, NO_RESULT / API_REFUSED)
    2xx/4xx that is not the JSON envelope → Reply(failed, NOT_JSON): an HTML login page, a proxy
    3xx                                   → Reply(failed, REDIRECTED): redirects are not followed
    401, 403                              → FatalApiError: no further request can succeed
    407                                   → FatalApiError(PROXY_REFUSED): the proxy wants credentials
    429                                   → RetryableError(retry_after, surely not saved)
    5xx                                   → RetryableError (the request may have been saved)

A failed Reply to a search means "outcome unknown", never "not found": only a well-formed
matchingCustomers list says who exists. `AnswerWatch` counts answers that did not come from the API (not
the envelope, or no answer at all); a handful in a row and the client refuses further requests with
`ApiUnavailableError`, so a login page or a dead URL stops the run instead of failing every row.

Response bodies may carry customer PII: messages keep the API's error code and message only.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import time
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from importer.config import Credentials
from importer.error_codes import ErrorCode
from importer.errors import ApiUnavailableError, ConfigError, FatalApiError, RetryableError
from importer.send.network import Proxy, explain_failure
from importer.status import StopCode

#: Answers larger than this are refused unread: the envelope is a few hundred bytes.
MAX_RESPONSE_BYTES = 1 << 20
log = logging.getLogger("mk_import.client")


class Reply(NamedTuple):
    """A definitive answer about one request (a NamedTuple: see pool.Outcome)."""

    ok: bool
    customer_uuid: str | None = None
    customer_id: str | None = None
    error_code: str | None = None
    message: str = ""
    warnings: tuple[str, ...] = ()
    #: HTTP 404: the API knows no customer by the customerUuid sent (deleted or merged since)
    unknown_customer: bool = False
    #: a search's answer: (customerUuid, customerKey) of every customer it matched
    matches: tuple[tuple[str, str], ...] = ()
    #: the answer was the API's JSON envelope (False: a login page, a proxy, a redirect)
    from_api: bool = True


#: What a request expects in a 2xx envelope: the POST a customerUuid, the search matchingCustomers.
SAVE, SEARCH = "customerUuid", "matchingCustomers"


def encode_body(body: dict[str, Any]) -> str:
    """The one JSON text of a body: what is POSTed, written to --payloads and hashed for the state.

    Compact, UTF-8, keys in insertion order. orjson rather than json: a nightly run encodes every
    customer of the file to compare it with the state, and orjson does that several times faster.
    """
    return orjson.dumps(body).decode("utf-8")


def _is_loopback(host: str) -> bool:
    """The parsed address, not the text: `127.attacker.example` is a name anywhere DNS points it."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str, *, insecure_http: bool) -> str:
    """The base URL without a trailing slash; plain http only for loopback unless allowed.

    A URL that carries a user or password is refused without being echoed: it is a secret on the
    command line, and aiohttp would send it besides the Authorization header.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket, say
        parts = urlsplit("")
    if "@" in parts.netloc or "@" in url.partition("://")[2].partition("/")[0]:
        raise ConfigError("--api-url: the URL carries a user name or password (not repeated here); give the "
                          "bare URL and the credentials in MK_USERNAME and MK_PASSWORD or --credentials-file")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok \
            or parts.query or parts.fragment:
        raise ConfigError(f"--api-url {url!r}: expected https://host[:port]")
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not insecure_http:
        raise ConfigError(f"--api-url {url!r}: plain http would send credentials in clear text; use https "
                          "(or --insecure-http)")
    return url.rstrip("/")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _first(items: Any, kind: str) -> tuple[str | None, str]:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        item = items[0]
        code = item.get(f"{kind}Code")
        text = item.get(f"{kind}Message") or item.get(f"{kind}Title") or ""
        return (str(code) if code is not None else None), str(text)
    return None, ""


def _warnings(envelope: Mapping[str, Any]) -> tuple[str, ...]:
    found = envelope.get("warnings")
    if not isinstance(found, list):
        return ()
    return tuple(f"{w.get('warningCode')} {w.get('warningTitle') or w.get('warningMessage') or ''}".strip()
                 for w in found if isinstance(w, dict))


def _matches(found: Any) -> tuple[tuple[str, str], ...] | None:
    """The (uuid, customerKey) pairs of a search result; None when it is not a list of customers."""
    if not isinstance(found, list) or not all(isinstance(c, dict) for c in found):
        return None
    return tuple((str(c["uuid"]), str(c.get("customerKey") or "")) for c in found if c.get("uuid"))


def classify(status: int, content_type: str, body: bytes, headers: Mapping[str, str],
             expect: str = SAVE) -> Reply:
    """What an answer means for the request: a Reply, or RetryableError / FatalApiError raised.

    `expect` names the result a 2xx envelope must carry: SAVE (customerUuid) or SEARCH (matchingCustomers).
    """
    envelope: dict[str, Any] | None = None
    if "json" in content_type.lower():
        try:
            parsed = orjson.loads(body)
            envelope = parsed if isinstance(parsed, dict) else None
        except orjson.JSONDecodeError:  # also what invalid UTF-8 raises
            envelope = None
    code, text = _first(envelope.get("errors"), "error") if envelope else (None, "")
    if status in (401, 403):
        raise FatalApiError(f"the API refused the credentials or the department (HTTP {status}"
                            f"{', ' + code if code else ''}{': ' + text if text else ''})",
                            code=code or ErrorCode.CREDENTIALS_REFUSED)
    if status == 407:  # a plain-http request through a proxy; over https the tunnel's 407 is an exception
        raise FatalApiError("the proxy asked for credentials (HTTP 407): put them in the proxy URL or in "
                            "MK_PROXY_USERNAME and MK_PROXY_PASSWORD", code=ErrorCode.PROXY_REFUSED,
                            stop_code=StopCode.PROXY_REFUSED)
    if status == 429:
        raise RetryableError("rate limited (HTTP 429)", retry_after=retry_after_seconds(headers.get("Retry-After")),
                             maybe_saved=False, throttled=True, from_api=True)
    if status >= 500:
        raise RetryableError(f"server error (HTTP {status}{', ' + code if code else ''})",
                             retry_after=retry_after_seconds(headers.get("Retry-After")), from_api=envelope is not None)
    if 300 <= status < 400:
        return Reply(False, error_code=ErrorCode.REDIRECTED, from_api=False,
                     message=f"HTTP {status} redirected to {headers.get('Location', '?')}; redirects are not followed")
    if envelope is None:
        kind = content_type.split(";")[0].strip() or "no content type"
        return Reply(False, error_code=ErrorCode.NOT_JSON, from_api=False,
                     message=f"HTTP {status} answer is not the API's JSON envelope ({kind}): a login page or a proxy?")
    warnings = _warnings(envelope)
    if 200 <= status < 300 and not code:
        if expect == SEARCH:
            matches = _matches(envelope.get(SEARCH))
            if matches is not None:
                return Reply(True, matches=matches, warnings=warnings)
        else:
            uuid = envelope.get(SAVE)
            if isinstance(uuid, str) and uuid:
                customer_id = envelope.get("customerId")
                return Reply(True, customer_uuid=uuid,
                             customer_id=str(customer_id) if customer_id is not None else None, warnings=warnings)
    if code:
        return Reply(False, error_code=code, message=text or f"HTTP {status}", warnings=warnings,
                     unknown_customer=status == 404)
    if status >= 300:
        return Reply(False, error_code=ErrorCode.API_REFUSED, message=text or f"HTTP {status} without an error code",
                     warnings=warnings, unknown_customer=status == 404)
    return Reply(False, error_code=ErrorCode.NO_RESULT, message=f"HTTP {status} answer without {expect}",
                 warnings=warnings)


class AnswerWatch:
    """Counts answers in a row that did not come from the API, and says when to give up on it.

    A login page, a captive portal or a wrong --api-url answers every request the same way, and so does a
    host that refuses connections: sending the rest of a 100,000-row file there only fails every row. A
    handful in a row, with no answer from the API in this run, is enough to know; once the API has answered,
    a longer streak is needed (an outage mid-run that retries may outlast).
    """

    #: non-API answers in a row that stop the run while the API has not answered once
    BEFORE_ANY = 5
    #: the same, once the API has answered in this run
    AFTER_SOME = 50

    def __init__(self) -> None:
        self.streak = 0
        self.api_answered = False
        #: what answered last, in words, for the stop message
        self.last = ""
        self.code = StopCode.NOT_THE_API

    def from_api(self) -> None:
        self.streak = 0
        self.api_answered = True

    def not_from_api(self, what: str, code: StopCode) -> None:
        self.streak += 1
        self.last, self.code = what, code

    @property
    def given_up(self) -> bool:
        return self.streak >= (self.AFTER_SOME if self.api_answered else self.BEFORE_ANY)

    def error(self) -> ApiUnavailableError:
        if self.code in (StopCode.TLS_FAILED, StopCode.PROXY_REFUSED):
            if not self.api_answered:  # never got through: the setting is wrong, not the API away
                code = ErrorCode.TLS_FAILED if self.code == StopCode.TLS_FAILED else ErrorCode.PROXY_REFUSED
                return ApiUnavailableError(f"{self.last} ({self.streak} requests in a row)", code=code,
                                           stop_code=self.code)
            self.code = StopCode.API_UNAVAILABLE  # it worked in this run: a passing fault, a rerun resumes
        if self.code == StopCode.API_UNAVAILABLE:
            reason = f"the API is unavailable: {self.streak} requests in a row got no answer (last: {self.last})"
            return ApiUnavailableError(reason, code=ErrorCode.API_UNAVAILABLE, stop_code=self.code)
        reason = (f"the API URL does not answer as the API: {self.streak} answers in a row were not the API's "
                  f"(last: {self.last}); check --api-url and any proxy or login page in front of the API")
        return ApiUnavailableError(reason, code=ErrorCode.NOT_THE_API, stop_code=self.code)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes | None:
    """The whole body, however many pieces it arrives in; None past MAX_RESPONSE_BYTES."""
    length = response.content_length
    if length is not None:
        # The parser stops at the length the answer announced: read at once, without a chunk loop's awaits.
        return None if length > MAX_RESPONSE_BYTES else await response.read()
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class ApiClient:
    """The Customer API of one department, over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, department: str,
                 credentials: Credentials, proxy: Proxy | None = None) -> None:
        self._session = session
        self._proxy = proxy
        self._proxy_url = None if proxy is None else proxy.url
        self._proxy_auth = None if proxy is None else proxy.auth()
        self._customers = f"{base_url}/customer/v2/department/{quote(department, safe='')}/customer"
        self._headers = {"Authorization": credentials.authorization(), "Accept": "application/json"}
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        self.watch = AnswerWatch()
        #: an HTTP answer came back: the address, the certificate and any proxy work
        self._reached = False
        self._first_contact = asyncio.Lock()
        #: the refusal that stops the run (401, 407, a certificate): every later request is refused unsent
        self._refusal: FatalApiError | None = None

    @staticmethod
    def timeouts(connect: float, read: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)

    async def _call(self, method: str, url: str, expect: str, data: bytes | None = None,
                    params: Mapping[str, str] | None = None) -> Reply:
        if not self._reached:
            # One request at a time until one is answered: an untrusted certificate, a proxy that refuses or a
            # dead address then meets one connection, not every request of the pool at once.
            async with self._first_contact:
                if not self._reached:
                    return await self._exchange(method, url, expect, data, params)
        return await self._exchange(method, url, expect, data, params)

    async def _exchange(self, method: str, url: str, expect: str, data: bytes | None,
                        params: Mapping[str, str] | None) -> Reply:
        """One request and what its answer (or its failure) means."""
        if self._refusal is not None:
            raise FatalApiError(str(self._refusal), code=self._refusal.code, stop_code=self._refusal.stop_code,
                                before_sending=True)
        if self.watch.given_up:
            error = self.watch.error()
            error.before_sending = True  # nothing of this request reached anyone
            raise error
        headers = self._headers if data is None else self._post_headers
        started = time.monotonic()
        try:
            async with self._session.request(method, url, data=data, params=params, headers=headers,
                                             allow_redirects=False, proxy=self._proxy_url,
                                             proxy_auth=self._proxy_auth) as response:
                self._reached = True
                body = await _read_bounded(response)
                if log.isEnabledFor(logging.DEBUG):
                    # Method, path and status only: headers carry the credentials, bodies customer data.
                    log.debug("%s %s -> %d in %.0f ms", method, urlsplit(url).path, response.status,
                              (time.monotonic() - started) * 1000)
                status, headers_in = response.status, response.headers
                content_type = headers_in.get("Content-Type", "") if body is not None else ""
        except (aiohttp.ClientSSLError, aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError) as exc:
            # Nothing reached the API: a certificate, a handshake or the proxy stood in the way.
            failure = explain_failure(exc, self._proxy)
            assert failure is not None
            if failure.at_once:
                self._refusal = FatalApiError(failure.message, code=failure.error_code, stop_code=failure.stop_code)
                raise self._refusal from None
            self.watch.not_from_api(failure.message, failure.stop_code)
            raise RetryableError(failure.message, maybe_saved=False) from None
        except aiohttp.ClientConnectorError as exc:
            self.watch.not_from_api(f"cannot connect ({exc.__class__.__name__})", StopCode.API_UNAVAILABLE)
            raise RetryableError(f"cannot connect ({exc.__class__.__name__})", maybe_saved=False) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.watch.not_from_api(f"no answer ({exc.__class__.__name__})", StopCode.API_UNAVAILABLE)
            raise RetryableError(f"no answer ({exc.__class__.__name__})") from None
        try:
            reply = classify(status, content_type, body or b"", headers_in, expect)
        except RetryableError as exc:
            if exc.from_api:
                self.watch.from_api()
            else:
                self.watch.not_from_api(f"HTTP {status} without the API's envelope", StopCode.API_UNAVAILABLE)
            raise
        except FatalApiError as exc:
            if exc.stop_code != StopCode.PROXY_REFUSED:  # a 407 is the proxy's answer, not the API's
                self.watch.from_api()
            self._refusal = exc
            raise
        if reply.from_api:
            self.watch.from_api()
        else:
            self.watch.not_from_api(reply.message, StopCode.NOT_THE_API)
        return reply

    async def create_or_update(self, body: str) -> Reply:
        """POST one create-or-update body (already encoded); see `classify` for what may happen."""
        return await self._call("POST", self._customers, SAVE, data=body.encode("utf-8"))

    async def find_by_key(self, customer_key: str) -> Reply:
        """Search the department's customers by customer key. An ok Reply's `matches` are the customers whose
        key is exactly this one; a failed Reply means the search said nothing (outcome unknown)."""
        reply = await self._call(
            "GET", f"{self._customers}/listMinimal", SEARCH,
            params={"searchTerm": customer_key, "fieldsToBeSearched": "customerKey", "maxResults": "100"})
        if not reply.ok:
            return reply
        return reply._replace(matches=tuple(m for m in reply.matches if m[1] == customer_key))
