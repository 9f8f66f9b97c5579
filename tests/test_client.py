"""The client's answer table, through aioresponses: every kind of answer and how it is classified."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web

from importer.client import ApiClient, Credentials, Reply, check_api_url, classify, retry_after_seconds
from importer.errors import ConfigError, FatalApiError, RetryableError

URL = "https://api.example.test"
POST = f"{URL}/customer/v2/department/d-1/customer"
OK = {"errors": [], "warnings": [{"warningCode": "10015", "warningTitle": "INCORRECT_PHONE_FORMAT"}],
      "customerUuid": "u-1", "customerId": "77"}
REFUSED = {"errors": [{"errorCode": "400004", "errorTitle": "MISSING_NAME", "errorMessage": "needs a name"}],
           "warnings": []}


async def post(mocked, **answer) -> Reply:
    mocked.post(POST, **answer)
    async with aiohttp.ClientSession() as session:
        return await ApiClient(session, URL, "d-1", Credentials("u", "p")).create_or_update('{"customer":{}}')


@pytest.mark.parametrize(("answer", "expected"), [
    ({"status": 200, "payload": OK},
     Reply(True, "u-1", "77", warnings=("10015 INCORRECT_PHONE_FORMAT",))),
    ({"status": 200, "payload": REFUSED}, Reply(False, error_code="400004", message="needs a name")),
    ({"status": 400, "payload": REFUSED}, Reply(False, error_code="400004", message="needs a name")),
    ({"status": 404, "payload": {"errors": [{"errorCode": "404001", "errorMessage": "no customer"}]}},
     Reply(False, error_code="404001", message="no customer", unknown_customer=True)),
    ({"status": 409, "body": "conflict", "content_type": "text/plain"}, None),
    ({"status": 422, "payload": {"errors": []}}, Reply(False, error_code="HTTP_422", message="HTTP 422")),
    ({"status": 200, "body": "<html>login</html>", "content_type": "text/html"}, None),
    ({"status": 302, "headers": {"Location": "https://sso.example.test/login"}}, None),
])
async def test_answers_that_settle_a_request(aiomock, answer, expected):
    reply = await post(aiomock, **answer)
    if expected is not None:
        assert reply == expected
    else:
        assert not reply.ok
    if answer["status"] == 302:
        assert "redirected to https://sso.example.test/login" in reply.message
    if answer.get("content_type") == "text/html":
        assert reply.error_code == "NOT_JSON"
        assert "text/html" in reply.message


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refusals_are_fatal(aiomock, status):
    with pytest.raises(FatalApiError) as caught:
        await post(aiomock, status=status, payload={"errors": [{"errorCode": "100003", "errorTitle": "WRONG"}]})
    assert caught.value.code == "100003"


async def test_429_is_retryable_not_saved_with_retry_after(aiomock):
    with pytest.raises(RetryableError) as caught:
        await post(aiomock, status=429, headers={"Retry-After": "7"}, payload={"errors": []})
    assert caught.value.throttled
    assert not caught.value.maybe_saved
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retryable_and_maybe_saved(aiomock, status):
    with pytest.raises(RetryableError) as caught:
        await post(aiomock, status=status, body="oops")
    assert caught.value.maybe_saved
    assert not caught.value.throttled


@pytest.mark.parametrize(("exception", "maybe_saved"), [
    (aiohttp.ServerDisconnectedError(), True),
    (TimeoutError(), True),
    (aiohttp.ClientOSError(104, "reset"), True),
    (aiohttp.ClientConnectorError(None, OSError(111, "refused")), False),  # type: ignore[arg-type]
])
async def test_transport_failures_are_retryable(aiomock, exception, maybe_saved):
    with pytest.raises(RetryableError) as caught:
        await post(aiomock, exception=exception)
    assert caught.value.maybe_saved is maybe_saved


async def test_oversized_answer_is_refused_unread():
    # A real loopback server: aioresponses' stub stream cannot be read in bounded pieces.
    async def huge(request: web.Request) -> web.Response:
        return web.json_response({**OK, "pad": "x" * (2 << 20)})

    app = web.Application()
    app.router.add_post("/customer/v2/department/d-1/customer", huge)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            client = ApiClient(session, f"http://{host}:{port}", "d-1", Credentials("u", "p"))
            reply = await client.create_or_update("{}")
    finally:
        await runner.cleanup()
    assert not reply.ok
    assert reply.error_code == "NOT_JSON"


async def test_request_carries_basic_auth_and_the_exact_body(aiomock):
    aiomock.post(POST, status=200, payload=OK)
    async with aiohttp.ClientSession() as session:
        await ApiClient(session, URL, "d-1", Credentials("user", "pa:ss")).create_or_update('{"a":1}')
    (call,) = next(iter(aiomock.requests.values()))
    assert call.kwargs["headers"]["Authorization"] == "Basic dXNlcjpwYTpzcw=="
    assert call.kwargs["data"] == b'{"a":1}'
    assert call.kwargs["allow_redirects"] is False


async def test_find_by_key_keeps_exact_key_matches(aiomock):
    found = {"errors": [],
             "matchingCustomers": [{"uuid": "a", "customerKey": "K1"}, {"uuid": "b", "customerKey": "K10"}]}
    aiomock.get(f"{POST}/listMinimal?fieldsToBeSearched=customerKey&maxResults=100&searchTerm=K1", payload=found)
    async with aiohttp.ClientSession() as session:
        uuids = await ApiClient(session, URL, "d-1", Credentials("u", "p")).find_by_key("K1")
    assert uuids == ["a"]


def test_classify_table_without_http():
    assert classify(200, "application/json", json.dumps(OK).encode(), {}).ok
    with pytest.raises(RetryableError):
        classify(503, "", b"", {})


def test_retry_after_as_seconds_or_http_date():
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("Fri, 27 Nov 2026 22:00:10 GMT", now=1795816800.0) == 10
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(("url", "insecure", "ok"), [
    ("https://api.mykaarma.com", False, True), ("http://127.0.0.1:8080/", False, True),
    ("http://localhost:1", False, True), ("http://api.example.test", False, False),
    ("http://api.example.test", True, True), ("ftp://x", True, False),
])
def test_plain_http_only_for_loopback(url, insecure, ok):
    if ok:
        assert not check_api_url(url, insecure_http=insecure).endswith("/")
    else:
        with pytest.raises(ConfigError):
            check_api_url(url, insecure_http=insecure)


def test_credentials_repr_hides_the_password():
    assert "hunter2" not in repr(Credentials("u", "hunter2"))
