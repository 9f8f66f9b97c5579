"""The proxy chosen for the API's URL as curl and pip choose it, the TLS trust, and what failures mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer.config import Credentials
from importer.errors import ConfigError, FatalApiError
from importer.send.client import AnswerWatch, classify
from importer.send.network import bypassed, choose_proxy, parse_proxy, ssl_context, tls_for
from importer.status import ExitCode, RunResult, StopCode, exit_code_for

API = "https://api.mykaarma.com"


@pytest.mark.parametrize(("no_proxy", "host", "port", "expected"), [
    ("*", "api.mykaarma.com", 443, True),
    ("mykaarma.com", "api.mykaarma.com", 443, True),
    (".mykaarma.com", "api.mykaarma.com", 443, True),
    ("*.mykaarma.com", "api.mykaarma.com", 443, True),
    ("api.mykaarma.com", "api.mykaarma.com", 443, True),
    ("kaarma.com", "api.mykaarma.com", 443, False),  # a suffix of the name, not a domain of it
    ("example.com, internal", "api.mykaarma.com", 443, False),
    ("127.0.0.1", "127.0.0.1", 8443, True),
    ("127.0.0.0/8", "127.0.0.1", 8443, True),
    ("10.0.0.0/8", "127.0.0.1", 8443, False),
    ("::1", "[::1]", 443, True),
    ("localhost:8443", "localhost", 8443, True),
    ("localhost:9999", "localhost", 8443, False),
    ("127.0.0.1:8443", "127.0.0.1", 8443, True),
    ("", "api.mykaarma.com", 443, False),
])
def test_no_proxy_entries_as_curl_reads_them(no_proxy: str, host: str, port: int, expected: bool):
    assert bypassed(host, port, no_proxy) is expected


def test_the_proxy_for_the_url_scheme_lower_case_first_and_no_proxy_honoured():
    environ = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128", "HTTP_PROXY": "http://plain:80"}
    chosen = choose_proxy(API, environ=environ)
    assert chosen is not None
    assert (chosen.url, chosen.source) == ("http://lower:3128", "https_proxy")
    plain = choose_proxy("http://127.0.0.1:8080", environ=environ)
    assert plain is not None
    assert plain.url == "http://plain:80"
    assert choose_proxy(API, environ={"ALL_PROXY": "proxy:8080"}).url == "http://proxy:8080"  # type: ignore[union-attr]
    assert choose_proxy(API, environ={**environ, "NO_PROXY": "mykaarma.com"}) is None
    assert choose_proxy(API, environ={}) is None
    # The dealers file's proxy replaces the environment's; NO_PROXY still applies to it.
    assert choose_proxy(API, "http://dealer:3128", environ).url == "http://dealer:3128"  # type: ignore[union-attr]
    assert choose_proxy(API, "http://dealer:3128", {"no_proxy": "*"}) is None


def test_proxy_credentials_are_split_from_the_url_and_never_shown():
    proxy = parse_proxy("http://egress%40corp:p%3Ass@proxy.corp:3128", "HTTPS_PROXY")
    assert proxy.url == "http://proxy.corp:3128"
    assert proxy.credentials == Credentials("egress@corp", "p:ss")
    assert "p:ss" not in repr(proxy)
    given = Credentials("from-env", "env-pass")
    assert parse_proxy("http://proxy.corp:3128", "x", given).credentials == given
    assert parse_proxy("http://a:b@proxy.corp:3128", "x", given).credentials == Credentials("a", "b")


@pytest.mark.parametrize("text", ["socks5://user:hunter22@proxy:1080", "http://user:hunter22@proxy:99999",
                                  "http://user:hunter22@/", "http://user:hunter22@proxy:3128/path"])
def test_a_proxy_url_that_cannot_be_used_is_refused_without_being_repeated(text: str):
    with pytest.raises(ConfigError) as caught:
        parse_proxy(text, "HTTPS_PROXY")
    assert "hunter22" not in str(caught.value)
    assert str(caught.value).startswith("HTTPS_PROXY: ")


def test_ca_bundles_are_checked_before_anything_is_sent(tmp_path: Path, make_tls):
    tls = make_tls()
    assert ssl_context(tls.ca_file, {}).verify_mode.name == "CERT_REQUIRED"
    assert ssl_context(None, {"SSL_CERT_FILE": str(tls.ca_file)}).check_hostname
    with pytest.raises(ConfigError, match=r"--ca-bundle .*missing\.pem: cannot read the CA bundle"):
        ssl_context(tmp_path / "missing.pem", {})
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"SSL_CERT_FILE .*notes\.txt: not a PEM file of CA certificates"):
        ssl_context(None, {"SSL_CERT_FILE": str(not_pem)})


def test_tls_is_set_up_for_a_run_whose_connections_speak_it_and_a_bundle_given_is_checked_anyway(tmp_path: Path):
    assert tls_for(["http://127.0.0.1:8080"], None, {}) is None  # the sandbox, an API on this machine
    assert tls_for([], None, {}) is None  # the embedded sandbox
    assert tls_for([API], None, {}) is not None
    assert tls_for(["http://127.0.0.1:8080", "https://proxy.corp.example:3129"], None, {}) is not None
    with pytest.raises(ConfigError, match=r"--ca-bundle .*missing\.pem: cannot read the CA bundle"):
        tls_for(["http://127.0.0.1:8080"], tmp_path / "missing.pem", {})
    # The machine's SSL_CERT_FILE is checked by a run that uses it only.
    assert tls_for(["http://127.0.0.1:8080"], None, {"SSL_CERT_FILE": str(tmp_path / "missing.pem")}) is None
    with pytest.raises(ConfigError, match=r"SSL_CERT_FILE .*missing\.pem"):
        tls_for([API], None, {"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


def test_a_407_answer_stops_the_run_as_proxy_refused():
    with pytest.raises(FatalApiError) as caught:
        classify(407, "text/html", b"<html>auth</html>", {"Proxy-Authenticate": "Basic"})
    assert caught.value.stop_code == StopCode.PROXY_REFUSED
    assert "HTTP 407" in str(caught.value)


@pytest.mark.parametrize("stop", [StopCode.TLS_FAILED, StopCode.PROXY_REFUSED, StopCode.CREDENTIALS_REFUSED])
def test_what_a_rerun_cannot_mend_exits_4(stop: StopCode):
    assert exit_code_for(RunResult({}, sent=True, stop=stop)) == ExitCode.REFUSED


def test_handshake_and_proxy_failures_stop_as_such_only_before_the_api_has_answered():
    watch = AnswerWatch()
    for _ in range(AnswerWatch.BEFORE_ANY):
        watch.not_from_api("cannot connect to the proxy http://p:3128: Connection refused", StopCode.PROXY_REFUSED)
    assert watch.given_up
    error = watch.error()
    assert (error.stop_code, error.code) == (StopCode.PROXY_REFUSED, "PROXY_REFUSED")
    assert str(error).startswith("cannot connect to the proxy http://p:3128")
    later = AnswerWatch()
    later.from_api()  # it worked in this run: a proxy failing now is a passing outage, and a rerun resumes
    for _ in range(AnswerWatch.AFTER_SOME):
        later.not_from_api("TLS: the handshake with h:443 failed (EOF)", StopCode.TLS_FAILED)
    assert later.error().stop_code == StopCode.API_UNAVAILABLE
