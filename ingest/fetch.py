"""HTTP for feeds: polite, bounded, conditional fetching with httpx (async).

Owns how a feed document is downloaded: the global and per-host concurrency
caps, conditional GET (``If-None-Match`` / ``If-Modified-Since``), redirects
(followed by hand, so every hop is checked and permanent ones are reported
back for the poller to remember), decompression (``Content-Encoding`` gzip /
deflate via httpx, plus gzip bytes served *without* the header), timeouts
(connect, read gap, and a total deadline that stops a server dripping one byte
at a time), the size limit (enforced while streaming, on decompressed bytes),
and the User-Agent. It must not parse documents, schedule polls or keep state:
the caller passes validators in and stores what comes back.

Errors are mapped at this boundary, by exception type and status code, onto
:class:`FetchError` and its subclasses::

    FetchError (kind=..., retriable=..., retry_after=...)
    ├── FeedGoneError        410 Gone: stop polling until the declaration changes
    ├── RateLimitedError     429, or 503 with Retry-After: wait at least retry_after
    └── BlockedAddressError  private/loopback target while allow_private_addresses is off

``retriable`` tells the poller whether backing off and trying again can help
(timeouts, 5xx, connection errors) or whether only a human can (404, 403,
oversized, not HTTP).
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import socket
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from wirewatch.errors import WirewatchError

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
MAX_RETRY_AFTER = 86400.0


class FetchError(WirewatchError):
    """A fetch that produced no document. ``kind`` is a short tag used in logs and metrics."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        retriable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retriable = retriable
        self.status = status
        self.retry_after = retry_after


class FeedGoneError(FetchError):
    """HTTP 410: the publisher says the feed will never come back."""


class RateLimitedError(FetchError):
    """HTTP 429 (or 503 with Retry-After): the publisher asked us to slow down."""


class BlockedAddressError(FetchError):
    """The URL (or a redirect hop) points at a private address and those are not allowed."""


@dataclass(frozen=True)
class FetchConfig:
    concurrency: int = 32
    per_host: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "wirewatch"
    allow_private_addresses: bool = True


@dataclass(frozen=True)
class FetchResult:
    """A response worth handing to the parser (or a 304)."""

    url: str
    """Where the document finally came from (after redirects)."""
    status: int
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None
    """Set when the requested URL redirected permanently (301/308 all the way): poll this next time."""
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """Fetches feed URLs under the configured caps. One per poller; close with :meth:`aclose`.

    ``transport`` is the test seam (``httpx.MockTransport``); the client is built
    lazily on first use, never at construction time.
    """

    def __init__(self, config: FetchConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._global: asyncio.Semaphore | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            c = self.config
            self._client = httpx.AsyncClient(
                transport=self._transport,
                follow_redirects=False,
                timeout=httpx.Timeout(
                    connect=c.connect_timeout, read=c.read_timeout, write=c.read_timeout, pool=c.total_timeout
                ),
                limits=httpx.Limits(max_connections=c.concurrency, max_keepalive_connections=c.concurrency),
                headers={"User-Agent": c.user_agent, "Accept": ACCEPT},
            )
            self._global = asyncio.Semaphore(c.concurrency)
            self._hosts = {}  # semaphores belong to one event loop, like the client
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        max_bytes: int | None = None,
        total_timeout: float | None = None,
    ) -> FetchResult:
        """GET ``url`` (conditionally when validators are given); raises :class:`FetchError`."""
        client = self._ensure_client()
        assert self._global is not None
        host = (urlsplit(url).hostname or "").lower()
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.config.per_host))
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        deadline = total_timeout or self.config.total_timeout
        async with per_host, self._global:
            started = time.monotonic()
            try:
                async with asyncio.timeout(deadline):
                    result = await self._follow(
                        client, url, request_headers, max_bytes or self.config.max_bytes
                    )
            except TimeoutError as exc:
                raise FetchError(
                    "deadline", f"no complete response within {deadline:.0f}s", retriable=True
                ) from exc
            except httpx.TimeoutException as exc:
                kind = "connect_timeout" if isinstance(exc, httpx.ConnectTimeout) else "read_timeout"
                raise FetchError(kind, f"{type(exc).__name__} for {url}", retriable=True) from exc
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise FetchError("bad_url", f"{exc}", retriable=False) from exc
            except httpx.DecodingError as exc:
                raise FetchError("decoding", f"bad Content-Encoding data: {exc}", retriable=True) from exc
            except httpx.TransportError as exc:
                raise FetchError("connect", f"{type(exc).__name__}: {exc}", retriable=True) from exc
            return _with_elapsed(result, time.monotonic() - started)

    async def _follow(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
    ) -> FetchResult:
        permanent_url: str | None = None
        all_permanent = True
        current = url
        for _hop in range(self.config.max_redirects + 1):
            await self._check_address(current)
            async with client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status in _REDIRECTS and "location" in response.headers:
                    target = urljoin(current, response.headers["location"].strip())
                    if urlsplit(target).scheme not in {"http", "https"}:
                        raise FetchError("bad_redirect", f"{current} redirects to {target}", retriable=False)
                    all_permanent = all_permanent and status in _PERMANENT
                    if all_permanent:
                        permanent_url = target
                    log.debug("%s redirects (%d) to %s", current, status, target)
                    current = target
                    continue
                _raise_for_status(response)
                if status == 304:
                    return FetchResult(url=current, status=304, permanent_url=permanent_url)
                body = await _read_limited(response, max_bytes)
                return FetchResult(
                    url=current,
                    status=status,
                    body=gunzip_if_needed(body, max_bytes),
                    content_type=response.headers.get("content-type"),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    permanent_url=permanent_url,
                )
        raise FetchError(
            "too_many_redirects", f"more than {self.config.max_redirects} from {url}", retriable=False
        )

    async def _check_address(self, url: str) -> None:
        if self.config.allow_private_addresses:
            return
        host = urlsplit(url).hostname or ""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise FetchError("dns", f"cannot resolve {host}: {exc}", retriable=True) from exc
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for address in addresses:
            if not address.is_global:
                raise BlockedAddressError(
                    "blocked_address",
                    f"{host} resolves to {address}, a non-public address "
                    "(set WIREWATCH_ALLOW_PRIVATE_ADDRESSES=true to allow)",
                    retriable=False,
                )


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300 or status == 304:
        return
    reason = f"HTTP {status} from {response.url}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 410:
        raise FeedGoneError("gone", reason, retriable=False, status=status)
    if status == 429 or (status == 503 and retry_after is not None):
        raise RateLimitedError("rate_limited", reason, retriable=True, status=status, retry_after=retry_after)
    if status >= 500:
        raise FetchError(f"http_{status}", reason, retriable=True, status=status, retry_after=retry_after)
    if status in _REDIRECTS:
        raise FetchError(
            "bad_redirect", f"{reason} without a Location header", retriable=False, status=status
        )
    raise FetchError(f"http_{status}", reason, retriable=status in {408, 425}, status=status)


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} > limit {max_bytes}", retriable=False)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise FetchError("too_large", f"body exceeds the {max_bytes}-byte limit", retriable=False)
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip_if_needed(body: bytes, max_bytes: int) -> bytes:
    """Decompress gzip bytes served without ``Content-Encoding`` (common misconfiguration).

    Bounded by ``max_bytes`` of output, so a gzip bomb stops at the limit.
    Bytes that merely start like gzip but are not are returned unchanged.
    """
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        return body
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise FetchError(
            "too_large", f"gzip body inflates beyond the {max_bytes}-byte limit", retriable=False
        )
    return out


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or HTTP-date), clamped to [0, 1 day]; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, min(delta, MAX_RETRY_AFTER))


def _with_elapsed(result: FetchResult, elapsed: float) -> FetchResult:
    return FetchResult(**{**result.__dict__, "elapsed": elapsed})
