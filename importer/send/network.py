"""How requests reach the API: the proxy (NO_PROXY honoured), the TLS trust, and failures in words that say what to fix.

The proxy is chosen once per run, for the API's URL, the way curl and pip choose it: `https_proxy` /
`HTTPS_PROXY` for an https URL (`http_proxy` / `HTTP_PROXY` for http, `all_proxy` / `ALL_PROXY` for
either), the lower-case name first; none when `no_proxy` / `NO_PROXY` covers the host (`*`, a name and
its subdomains, `.suffix`, an address or a network such as 10.0.0.0/8, optionally `:port`). A dealers
file's `proxy` replaces the variables for its dealer; NO_PROXY still applies to it. aiohttp is not left
to read the environment itself (`trust_env`): it would also take credentials for the API's host from
~/.netrc, beside the Authorization header mk-import sends.

A proxy's user and password are split from its URL at once and kept as secrets: what is shown of a
proxy (summary.json, messages) is its scheme, host and port only.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp

from importer.config import Credentials
from importer.error_codes import ErrorCode
from importer.errors import ConfigError
from importer.status import StopCode


@dataclass(frozen=True)
class Proxy:
    """The forwarding proxy every request goes through; its credentials kept apart from its URL."""

    #: scheme://host:port, without user or password: safe to show
    url: str
    #: where it was set, for messages: HTTPS_PROXY, the dealers file...
    source: str
    credentials: Credentials | None = field(default=None, repr=False)

    def auth(self) -> aiohttp.BasicAuth | None:
        if self.credentials is None:
            return None
        return aiohttp.BasicAuth(self.credentials.username, self.credentials.password)


def _variable(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(value, the variable's name): the lower-case spelling first, as curl and Python read them."""
    for spelling in (name, name.upper()):
        value = environ.get(spelling, "").strip()
        if value:
            return value, spelling
    return None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY's list covers host:port."""
    host = host.lower().strip("[]").rstrip(".")
    address = _ip(host)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        try:  # an address or a network: 127.0.0.1, ::1, 10.0.0.0/8, [fd00::]/8
            network = ipaddress.ip_network(entry.replace("[", "").replace("]", ""), strict=False)
        except ValueError:
            network = None
        if network is not None:
            if address is not None and address in network:
                return True
            continue
        name, sep, entry_port = entry.rpartition(":")
        if sep and entry_port.isdigit():
            if int(entry_port) != port:
                continue
            entry = name.strip("[]")
            if _ip(entry) is not None:
                if entry == host:
                    return True
                continue
        entry = entry.lstrip("*").lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def parse_proxy(text: str, source: str, credentials: Credentials | None = None) -> Proxy:
    """A proxy URL (or host:port, taken as http:// as curl and pip take it); refused in words that never repeat
    it, since it may carry a password. Credentials in the URL win over `credentials`."""
    text = text.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        raise ConfigError(f"{source}: not a proxy URL such as http://proxy.example:3128 (not repeated here: it "
                          "may hold a password)")
    if parts.scheme != "http":
        raise ConfigError(f"{source}: a {parts.scheme}:// proxy is not supported; give the proxy's http:// URL "
                          "(the connection to the API through it is TLS all the same)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{source}: a proxy URL is scheme://host:port, without a path")
    if parts.username is not None:
        credentials = Credentials(unquote(parts.username), unquote(parts.password or ""))
    shown_host = f"[{host}]" if ":" in host else host
    return Proxy(f"http://{shown_host}:{port or 80}", source, credentials)


def choose_proxy(api_url: str, explicit: str | None = None, environ: Mapping[str, str] | None = None,
                 credentials: Credentials | None = None) -> Proxy | None:
    """The proxy for requests to `api_url`: `explicit` (the dealers file's), else the environment's; None when
    there is none or NO_PROXY covers the API's host."""
    environ = os.environ if environ is None else environ
    parts = urlsplit(api_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    no_proxy = _variable(environ, "no_proxy")
    if no_proxy is not None and bypassed(parts.hostname or "", port, no_proxy[0]):
        return None
    if explicit:
        return parse_proxy(explicit, "the dealers file's proxy", credentials)
    found = _variable(environ, f"{parts.scheme}_proxy") or _variable(environ, "all_proxy")
    if found is None:
        return None
    return parse_proxy(found[0], found[1], credentials)


def ssl_context(ca_bundle: Path | None, environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """Verification always on, the host name checked: the system's authorities, plus those of `ca_bundle`
    and of SSL_CERT_FILE. Both files are loaded here so that a missing or unreadable one is refused with its
    name (OpenSSL alone would skip a missing SSL_CERT_FILE, and every request would then fail)."""
    environ = os.environ if environ is None else environ
    context = ssl.create_default_context()
    named = [(str(ca_bundle), "--ca-bundle")] if ca_bundle is not None else []
    if environ.get("SSL_CERT_FILE"):
        named.append((environ["SSL_CERT_FILE"], "SSL_CERT_FILE"))
    for path, source in named:
        try:
            context.load_verify_locations(cafile=path)
        except ssl.SSLError:  # an OSError too: first
            raise ConfigError(f"{source} {path}: not a PEM file of CA certificates") from None
        except OSError as exc:
            raise ConfigError(f"{source} {path}: cannot read the CA bundle ({exc.strerror or exc})") from None
    return context


def tls_for(urls: Iterable[str], ca_bundle: Path | None, environ: Mapping[str, str] | None = None
            ) -> ssl.SSLContext | None:
    """ssl_context for a run that connects to `urls` (the API's, the proxy's), None where none of them speaks
    TLS (the embedded sandbox, an API on this machine over http): loading the system's authorities takes
    tens of milliseconds. A --ca-bundle given is checked either way; SSL_CERT_FILE, the whole machine's
    setting, only by a run that uses it."""
    if any(url.startswith("https://") for url in urls) or ca_bundle is not None:
        return ssl_context(ca_bundle, environ)
    return None


@dataclass(frozen=True)
class Failure:
    """What a failed connection through TLS or a proxy means, and whether it settles the run at once."""

    message: str
    stop_code: StopCode
    error_code: ErrorCode
    #: certain on the first occurrence (a certificate, a 407); otherwise counted, as a passing fault may be
    at_once: bool


#: OpenSSL's X509_V_ERR codes, grouped by what to do about them.
_UNTRUSTED = {2, 18, 19, 20, 21, 24, 27, 28}
_EXPIRED, _NOT_YET_VALID, _REVOKED = 10, 9, 23
_NAME_MISMATCH = {62, 64}
_TRUST_HINT = ("give the certificate of the authority that signs it with --ca-bundle PATH (or SSL_CERT_FILE, or the "
               "dealers file's ca_bundle): a proxy that inspects TLS, or a private authority, signs with its own")


def _certificate(exc: aiohttp.ClientConnectorCertificateError, proxy: Proxy | None) -> str:
    error = exc.certificate_error
    code = getattr(error, "verify_code", None)
    said = str(getattr(error, "verify_message", "") or error).rstrip(".")
    where = f"{exc.host}:{exc.port}"
    if code in _UNTRUSTED:
        what, fix = f"its issuer is not an authority this machine trusts ({said})", _TRUST_HINT
        if proxy is not None:
            fix += f"; requests go through the proxy {proxy.url}, which may be the one re-signing"
    elif code in (_EXPIRED, _NOT_YET_VALID):
        what = "it has expired" if code == _EXPIRED else "it is not valid yet"
        what, fix = f"{what} ({said})", "the server's certificate must be renewed, or this machine's clock is wrong"
    elif code in _NAME_MISMATCH:
        what = f"it is not valid for the name {exc.host} ({said})"
        fix = "check that --api-url names the API's host, and that a proxy re-signing the traffic uses that name"
    elif code == _REVOKED:
        what, fix = f"it has been revoked ({said})", "the server's certificate must be replaced"
    else:
        what, fix = f"it could not be verified ({said})", _TRUST_HINT
    return f"TLS: the certificate of {where} was refused: {what}; {fix}. Verification is never turned off"


def explain_failure(exc: aiohttp.ClientError, proxy: Proxy | None) -> Failure | None:
    """A Failure for a certificate, TLS or proxy error; None for any other connection error."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Failure(_certificate(exc, proxy), StopCode.TLS_FAILED, ErrorCode.TLS_FAILED, at_once=True)
    if isinstance(exc, aiohttp.ClientSSLError):  # a handshake that failed, not a certificate
        reason = getattr(exc.os_error, "reason", None) or exc.os_error.__class__.__name__
        return Failure(f"TLS: the handshake with {exc.host}:{exc.port} failed ({reason}): check that --api-url is "
                       "an https server, and that any proxy lets TLS through", StopCode.TLS_FAILED,
                       ErrorCode.TLS_FAILED, at_once=False)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        shown = proxy.url if proxy else f"{exc.host}:{exc.port}"
        source = f" (set by {proxy.source})" if proxy else ""
        said = exc.os_error.strerror or exc.os_error.__class__.__name__
        return Failure(f"cannot connect to the proxy {shown}{source}: {said}; check the proxy's address and "
                       "that it is running", StopCode.PROXY_REFUSED, ErrorCode.PROXY_REFUSED, at_once=False)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        shown = proxy.url if proxy else "the proxy"
        if exc.status == 407:
            given = ("refused the user name and password given" if proxy and proxy.credentials
                     else "was given none")
            return Failure(f"the proxy {shown} asked for credentials (HTTP 407) and {given}: put them in the "
                           "proxy URL or in MK_PROXY_USERNAME and MK_PROXY_PASSWORD", StopCode.PROXY_REFUSED,
                           ErrorCode.PROXY_REFUSED, at_once=True)
        if exc.status < 500:
            return Failure(f"the proxy {shown} refused the tunnel to the API (HTTP {exc.status}): its rules must "
                           "allow the API's host and port", StopCode.PROXY_REFUSED, ErrorCode.PROXY_REFUSED,
                           at_once=True)
        return Failure(f"the proxy {shown} could not reach the API (HTTP {exc.status})", StopCode.API_UNAVAILABLE,
                       ErrorCode.API_UNAVAILABLE, at_once=False)
    return None
