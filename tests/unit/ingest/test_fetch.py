"""The fetcher against httpx.MockTransport: validators, redirects, limits, errors mapped by kind."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from ingest.config import PollerSettings
from ingest.fetch import (
    BlockedAddressError,
    FeedGoneError,
    Fetcher,
    FetchError,
    FetchResult,
    RateLimitedError,
    gunzip_if_needed,
    parse_retry_after,
    same_origin,
)

Handler = Callable[[httpx.Request], httpx.Response]


def fetch(handler: Handler, url: str = "https://feeds.example/rss", **kw: object) -> FetchResult:
    fields = {k if k == "allow_private_addresses" else f"fetch_{k}": v for k, v in kw.items()}
    config = PollerSettings(**{"user_agent": "wirewatch-test", **fields})  # type: ignore[arg-type]

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


# ---- hardening (issue 11) -----------------------------------------------------------------------


def _nested_gzip(inner_size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    inner = b"".join(packer.compress(zeros) for _ in range(inner_size >> 20)) + packer.flush()
    return gzip.compress(inner, 9)


def test_stacked_content_encodings_are_refused_before_inflating() -> None:
    body = _nested_gzip(64 << 20)  # a few kB that would be 64 MiB after two layers

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": "gzip, gzip", "Content-Type": "application/rss+xml"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as caught:
            fetch(handler, max_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.kind == "decoding" and "stacked" in caught.value.detail
    assert peak < 8 << 20


def test_one_gzip_layer_is_inflated_with_a_bounded_output() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), 9)  # 64 KiB that inflate to 64 MiB

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(bomb))

    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="too_large"):
            fetch(handler, max_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # httpx's decoder inflated a whole 64 KiB chunk at once: 64 MiB


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "identity", "GZIP"])
def test_single_encodings_still_decode(encoding: str) -> None:
    doc = b"<rss version='2.0'><channel><title>ok</title></channel></rss>"
    packed = {
        "gzip": gzip.compress(doc),
        "x-gzip": gzip.compress(doc),
        "deflate": zlib.compress(doc),
        "identity": doc,
        "GZIP": gzip.compress(doc),
    }[encoding]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": encoding}, stream=httpx.ByteStream(packed))

    assert fetch(handler).body == doc


def test_unknown_content_encoding_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "br"}, stream=httpx.ByteStream(b"\x0b\x01"))

    with pytest.raises(FetchError, match="unsupported Content-Encoding"):
        fetch(handler)


def test_feed_credentials_stay_on_the_feed_origin() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        hops = {
            "/rss": "https://feeds.example/moved",  # same origin: credentials go along
            "/moved": "https://cdn.elsewhere.example/rss",  # another origin: they do not
        }
        target = hops.get(request.url.path)
        if target and request.url.host == "feeds.example":
            return httpx.Response(302, headers={"Location": target})
        return httpx.Response(200, content=b"<rss/>")

    async def go() -> None:
        fetcher = Fetcher(PollerSettings(), transport=httpx.MockTransport(handler))
        try:
            await fetcher.fetch(
                "https://feeds.example/rss",
                etag='"v1"',
                headers={"Authorization": "Bearer canary-token", "Cookie": "session=canary"},
            )
        finally:
            await fetcher.aclose()

    asyncio.run(go())
    assert [str(r.url) for r in seen] == [
        "https://feeds.example/rss",
        "https://feeds.example/moved",
        "https://cdn.elsewhere.example/rss",
    ]
    assert [r.headers.get("authorization") for r in seen] == ["Bearer canary-token"] * 2 + [None]
    assert [r.headers.get("cookie") for r in seen] == ["session=canary"] * 2 + [None]


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://a.example/x", "https://a.example/y", True),
        ("http://a.example/x", "https://a.example/y", True),  # upgrade on default ports
        ("https://a.example/x", "http://a.example/y", False),  # downgrade
        ("https://a.example/x", "https://a.example:8443/y", False),
        ("https://a.example/x", "https://b.example/y", False),
        ("https://a.example/x", "https://sub.a.example/y", False),
    ],
)
def test_same_origin(first: str, second: str, same: bool) -> None:
    assert same_origin(first, second) is same


def test_urls_in_fetch_errors_are_redacted() -> None:
    url = "https://reader:pa55word-canary@feeds.example/rss?apikey=key-canary&section=world"
    with pytest.raises(FetchError) as caught:
        fetch(lambda r: httpx.Response(404), url=url)
    message = str(caught.value)
    assert "pa55word-canary" not in message and "key-canary" not in message
    assert "feeds.example/rss" in message and "section=world" in message
