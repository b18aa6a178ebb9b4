"""The fetcher against httpx.MockTransport: validators, redirects, limits, errors mapped by kind."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from ingest.fetch import (
    BlockedAddressError,
    FeedGoneError,
    FetchConfig,
    Fetcher,
    FetchError,
    FetchResult,
    RateLimitedError,
    gunzip_if_needed,
    parse_retry_after,
)

Handler = Callable[[httpx.Request], httpx.Response]


def fetch(handler: Handler, url: str = "https://feeds.example/rss", **kw: object) -> FetchResult:
    config = FetchConfig(**{"user_agent": "wirewatch-test", **kw})  # type: ignore[arg-type]

    async def go() -> FetchResult:
        fetcher = Fetcher(config, transport=httpx.MockTransport(handler))
        try:
            return await fetcher.fetch(url, etag='"v1"', last_modified="Mon, 02 Sep 2024 10:00:00 GMT")
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def test_conditional_get_and_user_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(304)

    result = fetch(handler)
    assert result.not_modified and result.body == b""
    assert seen[0].headers["if-none-match"] == '"v1"'
    assert seen[0].headers["if-modified-since"] == "Mon, 02 Sep 2024 10:00:00 GMT"
    assert seen[0].headers["user-agent"] == "wirewatch-test"


def test_permanent_redirects_are_reported_temporary_ones_are_not() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/rss":
            return httpx.Response(301, headers={"Location": "/moved"})
        if path == "/moved":
            return httpx.Response(308, headers={"Location": "https://other.example/final"})
        if path == "/temp":
            return httpx.Response(302, headers={"Location": "/rss"})
        return httpx.Response(200, content=b"<rss/>", headers={"ETag": '"v2"'})

    result = fetch(handler)
    assert (
        result.url == "https://other.example/final" and result.permanent_url == "https://other.example/final"
    )
    assert result.etag == '"v2"'
    via_temp = fetch(handler, url="https://feeds.example/temp")
    assert via_temp.permanent_url is None and via_temp.url == "https://other.example/final"


def test_redirect_loop_is_an_error() -> None:
    with pytest.raises(FetchError, match="too_many_redirects"):
        fetch(lambda r: httpx.Response(302, headers={"Location": "/again"}))


@pytest.mark.parametrize(
    ("status", "headers", "error", "kind", "retriable", "retry_after"),
    [
        (404, {}, FetchError, "http_404", False, None),
        (410, {}, FeedGoneError, "gone", False, None),
        (429, {"Retry-After": "120"}, RateLimitedError, "rate_limited", True, 120.0),
        (503, {"Retry-After": "30"}, RateLimitedError, "rate_limited", True, 30.0),
        (500, {}, FetchError, "http_500", True, None),
        (403, {}, FetchError, "http_403", False, None),
    ],
)
def test_statuses_map_to_errors(
    status: int,
    headers: dict[str, str],
    error: type[FetchError],
    kind: str,
    retriable: bool,
    retry_after: float | None,
) -> None:
    with pytest.raises(error) as caught:
        fetch(lambda r: httpx.Response(status, headers=headers))
    assert caught.value.kind == kind and caught.value.retriable is retriable
    assert caught.value.retry_after == retry_after


def test_size_limit_by_header_and_while_streaming() -> None:
    with pytest.raises(FetchError, match="too_large"):
        fetch(lambda r: httpx.Response(200, content=b"x" * 5000), max_bytes=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 600

    def chunked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())  # no Content-Length

    with pytest.raises(FetchError, match="too_large"):
        fetch(chunked, max_bytes=1024)


def test_gzip_with_and_without_content_encoding() -> None:
    doc = b"<rss version='2.0'><channel/></rss>"
    with_header = fetch(
        lambda r: httpx.Response(200, content=gzip.compress(doc), headers={"Content-Encoding": "gzip"})
    )
    without = fetch(lambda r: httpx.Response(200, content=gzip.compress(doc)))
    assert with_header.body == doc and without.body == doc


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    with pytest.raises(FetchError, match="too_large"):
        gunzip_if_needed(bomb, 1_000_000)
    assert gunzip_if_needed(b"\x1f\x8bnot really gzip", 100) == b"\x1f\x8bnot really gzip"


def test_transport_errors_are_retriable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(FetchError) as caught:
        fetch(refuse)
    assert caught.value.kind == "connect" and caught.value.retriable


def test_private_addresses_refused_when_not_allowed() -> None:
    with pytest.raises(BlockedAddressError):
        fetch(lambda r: httpx.Response(200), url="http://127.0.0.1/rss", allow_private_addresses=False)
    with pytest.raises(BlockedAddressError):
        fetch(
            lambda r: httpx.Response(301, headers={"Location": "http://10.0.0.1/x"}),
            url="http://93.184.216.34/rss",
            allow_private_addresses=False,
        )
    allowed = fetch(
        lambda r: httpx.Response(200, content=b"ok"), url="http://127.0.0.1/rss", allow_private_addresses=True
    )
    assert allowed.body == b"ok"


def test_retry_after_forms() -> None:
    now = datetime(2024, 9, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("90", now) == 90.0
    assert parse_retry_after("Sun, 01 Sep 2024 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("Sun, 01 Sep 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("9999999", now) == 86400.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None
