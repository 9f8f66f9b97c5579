"""The client's answer table, through aioresponses: every kind of answer and how it is classified."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from importer.config import Credentials
from importer.errors import ApiUnavailableError, ConfigError, FatalApiError, RetryableError
from importer.send.client import (
    MAX_RESPONSE_BYTES,
    AnswerWatch,
    ApiClient,
    Reply,
    check_api_url,
    classify,
    retry_after_seconds,
)
from importer.status import StopCode

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
    ({"status": 422, "payload": {"errors": []}},
     Reply(False, error_code="API_REFUSED", message="HTTP 422 without an error code")),
    ({"status": 200, "payload": {"errors": []}},
     Reply(False, error_code="NO_RESULT", message="HTTP 200 answer without customerUuid")),
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
        assert (reply.error_code, reply.from_api) == ("REDIRECTED", False)
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
        reply = await ApiClient(session, URL, "d-1", Credentials("u", "p")).find_by_key("K1")
    assert reply.ok
    assert reply.matches == (("a", "K1"),)


SEARCH = f"{POST}/listMinimal?fieldsToBeSearched=customerKey&maxResults=100&searchTerm=K1"


@pytest.mark.parametrize(("answer", "code"), [
    ({"status": 400, "payload": REFUSED}, "400004"),
    ({"status": 404, "payload": {"errors": [{"errorCode": "404001", "errorMessage": "no such path"}]}}, "404001"),
    ({"status": 404, "payload": {"errors": []}}, "API_REFUSED"),
    ({"status": 200, "payload": {"errors": []}}, "NO_RESULT"),
    ({"status": 200, "payload": {"errors": [], "matchingCustomers": "none"}}, "NO_RESULT"),
    ({"status": 302, "headers": {"Location": "https://sso.example.test/login"}}, "REDIRECTED"),
    ({"status": 200, "body": "<html>login</html>", "content_type": "text/html"}, "NOT_JSON"),
    ({"status": 200, "body": "[]", "content_type": "application/json"}, "NOT_JSON"),
])
async def test_a_search_answer_that_is_not_a_result_is_never_not_found(aiomock, answer, code):
    aiomock.get(SEARCH, **answer)
    async with aiohttp.ClientSession() as session:
        reply = await ApiClient(session, URL, "d-1", Credentials("u", "p")).find_by_key("K1")
    assert not reply.ok
    assert reply.error_code == code
    assert reply.matches == ()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_search_is_fatal_like_a_refused_save(aiomock, status):
    aiomock.get(SEARCH, status=status, payload={"errors": []})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FatalApiError) as caught:
            await ApiClient(session, URL, "d-1", Credentials("u", "p")).find_by_key("K1")
    assert caught.value.code == "CREDENTIALS_REFUSED"


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


async def _serve(handler, path: str = "/customer/v2/department/d-1/customer") -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_an_answer_written_in_pieces_is_read_whole():
    # A real loopback server writing the envelope in two chunks 50 ms apart (chunked encoding), as a proxy
    # that flushes early does: the save must not be taken for a non-JSON answer.
    async def in_pieces(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        text = json.dumps(OK).encode()
        await response.write(text[:20])
        await asyncio.sleep(0.05)
        await response.write(text[20:])
        await response.write_eof()
        return response

    runner, url = await _serve(in_pieces)
    try:
        async with aiohttp.ClientSession() as session:
            client = ApiClient(session, url, "d-1", Credentials("u", "p"))
            replies = [await client.create_or_update("{}") for _ in range(5)]
    finally:
        await runner.cleanup()
    assert all(reply.ok and reply.customer_uuid == "u-1" for reply in replies)


async def test_an_answer_of_a_known_length_is_read_whole_and_one_announced_too_large_is_not_read():
    async def sized(request: web.Request) -> web.Response:
        if request.headers.get("X-Size") == "huge":
            return web.Response(body=b"{" + b" " * MAX_RESPONSE_BYTES + b"}", content_type="application/json")
        return web.json_response(OK)

    runner, url = await _serve(sized)
    try:
        async with aiohttp.ClientSession() as session:
            client = ApiClient(session, url, "d-1", Credentials("u", "p"))
            ok = await client.create_or_update("{}")
            client._post_headers = {**client._post_headers, "X-Size": "huge"}
            huge = await client.create_or_update("{}")
    finally:
        await runner.cleanup()
    assert ok.ok
    assert ok.customer_uuid == "u-1"
    assert not huge.ok
    assert huge.error_code == "NOT_JSON"  # refused unread: not taken for the API's envelope


async def test_login_pages_make_the_client_give_up_before_sending_more():
    seen = []

    async def login(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.Response(text="<html><form>Sign in</form></html>", content_type="text/html")

    runner, url = await _serve(login)
    try:
        async with aiohttp.ClientSession() as session:
            client = ApiClient(session, url, "d-1", Credentials("u", "p"))
            replies = [await client.create_or_update("{}") for _ in range(AnswerWatch.BEFORE_ANY)]
            with pytest.raises(ApiUnavailableError) as caught:
                await client.create_or_update("{}")
    finally:
        await runner.cleanup()
    assert [r.error_code for r in replies] == ["NOT_JSON"] * AnswerWatch.BEFORE_ANY
    assert len(seen) == AnswerWatch.BEFORE_ANY  # the refused request never left
    assert caught.value.stop_code == StopCode.NOT_THE_API
    assert "text/html" in str(caught.value)


def test_one_answer_from_the_api_resets_the_count_and_raises_the_bar():
    watch = AnswerWatch()
    for _ in range(AnswerWatch.BEFORE_ANY - 1):
        watch.not_from_api("HTTP 200 text/html", StopCode.NOT_THE_API)
    watch.from_api()
    for _ in range(AnswerWatch.BEFORE_ANY):
        watch.not_from_api("cannot connect", StopCode.API_UNAVAILABLE)
    assert not watch.given_up  # the API answered in this run: an outage needs a longer streak
    for _ in range(AnswerWatch.AFTER_SOME - AnswerWatch.BEFORE_ANY):
        watch.not_from_api("cannot connect", StopCode.API_UNAVAILABLE)
    assert watch.given_up
    assert watch.error().stop_code == StopCode.API_UNAVAILABLE
