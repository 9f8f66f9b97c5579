"""One request to the Customer API: auth, POST, and the classification of every possible answer.

The classification (`classify`) is the single place that decides what an HTTP answer means:

    2xx with customerUuid                 → Reply(success), warnings kept
    2xx with errors and no customerUuid   → Reply(failed), the API's code and message
    2xx that is not the JSON envelope     → Reply(failed) (an HTML login page, say)
    3xx                                   → Reply(failed): redirects are not followed
    400, 404, 409, 422 and other 4xx      → Reply(failed), the API's code and message (404: unknown_customer)
    401, 403                              → FatalApiError: no further request can succeed
    429                                   → RetryableError(retry_after, surely not saved)
    5xx                                   → RetryableError (the request may have been saved)

Response bodies may carry customer PII: messages keep the API's error code and message only.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from importer.errors import ConfigError, FatalApiError, RetryableError

#: Answers larger than this are refused unread: the envelope is a few hundred bytes.
MAX_RESPONSE_BYTES = 1 << 20
log = logging.getLogger("mk_import.client")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A definitive answer about one request."""

    ok: bool
    customer_uuid: str | None = None
    customer_id: str | None = None
    error_code: str | None = None
    message: str = ""
    warnings: tuple[str, ...] = ()
    #: HTTP 404: the API knows no customer by the customerUuid sent (deleted or merged since)
    unknown_customer: bool = False


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


def classify(status: int, content_type: str, body: bytes, headers: Mapping[str, str]) -> Reply:
    """What an answer means for the request: a Reply, or RetryableError / FatalApiError raised."""
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
                            code=code or f"HTTP_{status}")
    if status == 429:
        raise RetryableError("rate limited (HTTP 429)", retry_after=retry_after_seconds(headers.get("Retry-After")),
                             maybe_saved=False, throttled=True)
    if status >= 500:
        raise RetryableError(f"server error (HTTP {status}{', ' + code if code else ''})",
                             retry_after=retry_after_seconds(headers.get("Retry-After")))
    if 300 <= status < 400:
        return Reply(False, error_code=f"HTTP_{status}",
                     message=f"redirected to {headers.get('Location', '?')}; redirects are not followed")
    if envelope is None:
        kind = content_type.split(";")[0].strip() or "no content type"
        return Reply(False, error_code=f"HTTP_{status}" if status >= 400 else "NOT_JSON",
                     message=f"HTTP {status} answer is not the API's JSON envelope ({kind}): a login page or a proxy?")
    uuid = envelope.get("customerUuid")
    if 200 <= status < 300 and isinstance(uuid, str) and uuid:
        customer_id = envelope.get("customerId")
        return Reply(True, customer_uuid=uuid, customer_id=str(customer_id) if customer_id is not None else None,
                     warnings=_warnings(envelope))
    return Reply(False, error_code=code or f"HTTP_{status}",
                 message=text or (f"HTTP {status}" if status >= 300 else "answer without customerUuid"),
                 warnings=_warnings(envelope), unknown_customer=status == 404)


class ApiClient:
    """The Customer API of one department, over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, department: str,
                 credentials: Credentials) -> None:
        self._session = session
        self._customers = f"{base_url}/customer/v2/department/{quote(department, safe='')}/customer"
        self._headers = {"Authorization": credentials.authorization(), "Accept": "application/json"}
        self._post_headers = {**self._headers, "Content-Type": "application/json"}

    @staticmethod
    def timeouts(connect: float, read: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)

    async def _call(self, method: str, url: str, data: bytes | None = None,
                    params: Mapping[str, str] | None = None) -> tuple[int, str, bytes, Mapping[str, str]]:
        headers = self._headers if data is None else self._post_headers
        started = time.monotonic()
        try:
            async with self._session.request(method, url, data=data, params=params, headers=headers,
                                             allow_redirects=False) as response:
                # read(n) hands back what has arrived so far: an answer in several packets needs several.
                body = b""
                while len(body) <= MAX_RESPONSE_BYTES and (
                        piece := await response.content.read(MAX_RESPONSE_BYTES + 1 - len(body))):
                    body += piece
                if log.isEnabledFor(logging.DEBUG):
                    # Method, path and status only: headers carry the credentials, bodies customer data.
                    log.debug("%s %s -> %d in %.0f ms", method, urlsplit(url).path, response.status,
                              (time.monotonic() - started) * 1000)
                if len(body) > MAX_RESPONSE_BYTES:
                    return response.status, "", b"", response.headers  # refused unread: not the envelope
                return response.status, response.headers.get("Content-Type", ""), body, response.headers
        except aiohttp.ClientConnectorError as exc:
            raise RetryableError(f"cannot connect ({exc.__class__.__name__})", maybe_saved=False) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RetryableError(f"no answer ({exc.__class__.__name__})") from None

    async def create_or_update(self, body: str) -> Reply:
        """POST one create-or-update body (already encoded); see `classify` for what may happen."""
        return classify(*await self._call("POST", self._customers, data=body.encode("utf-8")))

    async def find_by_key(self, customer_key: str) -> list[str]:
        """customerUuids of the department's customers whose customer key is exactly this one."""
        status, content_type, body, headers = await self._call(
            "GET", f"{self._customers}/listMinimal",
            params={"searchTerm": customer_key, "fieldsToBeSearched": "customerKey", "maxResults": "100"})
        if status in (401, 403) or status == 429 or status >= 500:
            classify(status, content_type, body, headers)  # raises
        try:
            found = orjson.loads(body).get("matchingCustomers") or []
        except (orjson.JSONDecodeError, AttributeError):
            raise RetryableError(f"customer search answered HTTP {status} without JSON") from None
        return [str(c["uuid"]) for c in found if isinstance(c, dict) and c.get("customerKey") == customer_key
                and c.get("uuid")]
