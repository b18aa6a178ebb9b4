"""HTTP for feeds: polite, bounded, conditional fetching with httpx (async).

Owns how a feed document is downloaded: the global and per-host concurrency
caps, conditional GET (``If-None-Match`` / ``If-Modified-Since``), redirects
(followed by hand, so every hop is checked and permanent ones are reported
back for the poller to remember; the caller's own headers — credentials,
cookies — are sent to the feed's origin only, never to another origin a
redirect leads to), decompression (one ``Content-Encoding`` of gzip or
deflate, inflated here with a bounded output so a bomb stops at the size
limit; stacked or unknown encodings are refused; gzip bytes served *without*
the header are inflated too), timeouts (connect, read gap, and a total
deadline that stops a server dripping one byte at a time), the size limit
(on the bytes received and on the decompressed bytes), and the User-Agent. It
must not parse documents, schedule polls or keep state: the caller passes
validators in and stores what comes back.

Addresses: unless ``allow_private_addresses`` (``WIREWATCH_ALLOW_PRIVATE_ADDRESSES``,
default false), every connection goes through :mod:`ingest.guard`: names are
resolved once, every answer must be public, and the socket connects to a
checked address. IP-literal hosts are checked before each hop is requested.
URLs in error messages are redacted (:mod:`ingest.redaction`).

Errors are mapped at this boundary, by exception type and status code, onto
:class:`FetchError` and its subclasses (the hierarchy is drawn in :mod:`ingest.errors`).
``retriable`` is set at each raise site: true when backing off and trying again can
help (timeouts, 5xx, connection errors), false when only a person can (404, 403,
oversized, not HTTP); the poller's backoff reads it.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from ingest.config import PollerSettings
from ingest.errors import IngestError
from ingest.guard import AddressRefusedError, ResolutionError, Resolver, check_literal, guarded_transport
from ingest.redaction import redact_text, redact_url

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}
ACCEPT_ENCODING = "gzip, deflate"
"""Only what :class:`_BoundedDecoder` inflates with a bounded output (httpx would add br/zstd)."""
_CHUNK = 64 * 1024
MAX_RETRY_AFTER = 86400.0


class FetchError(IngestError):
    """A fetch that produced no document; ``status`` is the HTTP status when there was one."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        retriable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, kind=kind, retriable=retriable, retry_after=retry_after)
        self.status = status


class FeedGoneError(FetchError):
    """HTTP 410: the publisher says the feed will never come back."""


class RateLimitedError(FetchError):
    """HTTP 429 (or 503 with Retry-After): the publisher asked us to slow down."""


class BlockedAddressError(FetchError):
    """The URL (or a redirect hop) points at a private address and those are not allowed."""


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
    """Fetches feed URLs under the caps of ``settings`` (its ``fetch_*`` fields, ``user_agent`` and
    ``allow_private_addresses``). One per poller; close with :meth:`aclose`.

    ``transport`` is the test seam (``httpx.MockTransport``; with one, only IP-literal hosts are
    checked), ``resolver`` the DNS seam of the address guard; the client is built lazily on first
    use, never at construction time.
    """

    def __init__(
        self,
        settings: PollerSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._resolver = resolver
        self._client: httpx.AsyncClient | None = None
        self._global: asyncio.Semaphore | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            c = self.settings
            limits = httpx.Limits(
                max_connections=c.fetch_concurrency, max_keepalive_connections=c.fetch_concurrency
            )
            transport = self._transport
            if transport is None and not c.allow_private_addresses:
                transport = guarded_transport(limits, self._resolver)
            self._client = httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                timeout=httpx.Timeout(
                    connect=c.fetch_connect_timeout,
                    read=c.fetch_read_timeout,
                    write=c.fetch_read_timeout,
                    pool=c.fetch_total_timeout,
                ),
                limits=limits,
                headers={"User-Agent": c.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
                # a proxy would resolve names itself, out of the guard's reach
                trust_env=c.allow_private_addresses,
            )
            self._global = asyncio.Semaphore(c.fetch_concurrency)
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
        """GET ``url`` (conditionally when validators are given); raises :class:`FetchError`.

        ``headers`` (a feed's credentials, cookies...) go to ``url``'s origin only: a redirect hop
        to another origin is requested without them.
        """
        client = self._ensure_client()
        assert self._global is not None
        host = (urlsplit(url).hostname or "").lower()
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.fetch_per_host))
        validators = {}
        if etag:
            validators["If-None-Match"] = etag
        if last_modified:
            validators["If-Modified-Since"] = last_modified
        deadline = total_timeout or self.settings.fetch_total_timeout
        shown = redact_url(url)
        async with per_host, self._global:
            started = time.monotonic()
            try:
                async with asyncio.timeout(deadline):
                    result = await self._follow(
                        client,
                        url,
                        dict(headers or {}),
                        validators,
                        max_bytes or self.settings.fetch_max_bytes,
                    )
            except TimeoutError as exc:
                raise FetchError(
                    "deadline", f"no complete response within {deadline:.0f}s", retriable=True
                ) from exc
            except AddressRefusedError as exc:
                raise BlockedAddressError("blocked_address", str(exc), retriable=False) from exc
            except ResolutionError as exc:
                raise FetchError("dns", str(exc), retriable=True) from exc
            except httpx.TimeoutException as exc:
                kind = "connect_timeout" if isinstance(exc, httpx.ConnectTimeout) else "read_timeout"
                raise FetchError(kind, f"{type(exc).__name__} for {shown}", retriable=True) from exc
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise FetchError("bad_url", f"{type(exc).__name__} for {shown}", retriable=False) from exc
            except (httpx.DecodingError, zlib.error) as exc:
                raise FetchError("decoding", f"bad Content-Encoding data: {exc}", retriable=True) from exc
            except httpx.TransportError as exc:
                raise FetchError(
                    "connect", f"{type(exc).__name__} for {shown}: {redact_text(str(exc))}", retriable=True
                ) from exc
            return _with_elapsed(result, time.monotonic() - started)

    async def _follow(
        self,
        client: httpx.AsyncClient,
        url: str,
        own_headers: dict[str, str],
        validators: dict[str, str],
        max_bytes: int,
    ) -> FetchResult:
        permanent_url: str | None = None
        all_permanent = True
        current = url
        for _hop in range(self.settings.fetch_max_redirects + 1):
            if not self.settings.allow_private_addresses:
                check_literal(urlsplit(current).hostname or "")
            headers = {**own_headers, **validators} if same_origin(url, current) else dict(validators)
            async with client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status in _REDIRECTS and "location" in response.headers:
                    target = urljoin(current, response.headers["location"].strip())
                    if urlsplit(target).scheme not in {"http", "https"}:
                        raise FetchError(
                            "bad_redirect",
                            f"{redact_url(current)} redirects to {redact_url(target)}",
                            retriable=False,
                        )
                    all_permanent = all_permanent and status in _PERMANENT
                    if all_permanent:
                        permanent_url = target
                    log.debug("%s redirects (%d) to %s", redact_url(current), status, redact_url(target))
                    current = target
                    continue
                _raise_for_status(response)
                if status == 304:
                    return FetchResult(url=current, status=304, permanent_url=permanent_url)
                body = await read_limited(response, max_bytes)
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
            "too_many_redirects",
            f"more than {self.settings.fetch_max_redirects} from {redact_url(url)}",
            retriable=False,
        )


def same_origin(first: str, second: str) -> bool:
    """Whether a request to ``second`` may carry the headers meant for ``first``.

    Same host and port, and the same scheme — or an upgrade from http to https on the default
    ports (as ``requests`` allows); anything else is another origin.
    """
    a, b = urlsplit(first), urlsplit(second)
    host_a, host_b = (a.hostname or "").lower().rstrip("."), (b.hostname or "").lower().rstrip(".")
    if host_a != host_b:
        return False
    port_a = a.port or _DEFAULT_PORTS.get(a.scheme.lower())
    port_b = b.port or _DEFAULT_PORTS.get(b.scheme.lower())
    if a.scheme.lower() == b.scheme.lower():
        return port_a == port_b
    return (a.scheme.lower(), b.scheme.lower(), port_a, port_b) == ("http", "https", 80, 443)


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300 or status == 304:
        return
    reason = f"HTTP {status} from {redact_url(str(response.url))}"
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


async def read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, decoded, never more than ``max_bytes`` received nor ``max_bytes`` after inflating.

    Reads the raw bytes and inflates them here with a bounded output per step (httpx's own decoder
    inflates a whole chunk at once, which a nested gzip bomb turns into hundreds of MiB before any
    size check); more than one ``Content-Encoding`` is refused.
    """
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} > limit {max_bytes}", retriable=False)
    decoder = _BoundedDecoder(response.headers.get_list("content-encoding", split_commas=True), max_bytes)
    if response.is_stream_consumed:  # built from bytes (a test's MockTransport): httpx decoded it
        if len(response.content) > max_bytes:
            raise FetchError("too_large", f"body exceeds the {max_bytes}-byte limit", retriable=False)
        return response.content
    received = 0
    async for chunk in response.aiter_raw(_CHUNK):
        received += len(chunk)
        if received > max_bytes:
            raise FetchError("too_large", f"body exceeds the {max_bytes}-byte limit", retriable=False)
        decoder.feed(chunk)
    return decoder.finish()


class _BoundedDecoder:
    """Inflates one gzip/deflate layer (or none) into at most ``max_bytes``; refuses the rest."""

    def __init__(self, encodings: list[str], max_bytes: int) -> None:
        codings = [e.strip().lower() for e in encodings if e.strip() and e.strip().lower() != "identity"]
        if len(codings) > 1:
            raise FetchError(
                "decoding", f"stacked Content-Encoding {', '.join(codings)} refused", retriable=False
            )
        coding = codings[0] if codings else None
        if coding not in {None, "gzip", "x-gzip", "deflate"}:
            raise FetchError("decoding", f"unsupported Content-Encoding {coding}", retriable=False)
        self._coding = coding
        self._max = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self._inflater: zlib._Decompress | None = None
        if coding in {"gzip", "x-gzip"}:
            self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._coding is None:
            self._add(chunk)
            return
        if self._inflater is None:  # deflate: zlib-wrapped as the RFC says, or raw as servers do
            wrapped = len(chunk) >= 2 and (chunk[0] * 256 + chunk[1]) % 31 == 0 and chunk[0] & 0x0F == 8
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        data = chunk
        while data and not self._inflater.eof:
            out = self._inflater.decompress(data, self._max - self._size + 1)
            self._add(out)
            data = self._inflater.unconsumed_tail

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max:
            raise FetchError("too_large", f"body inflates beyond the {self._max}-byte limit", retriable=False)
        self._parts.append(data)

    def finish(self) -> bytes:
        if self._inflater is not None and not self._inflater.eof:
            self._add(self._inflater.flush())
        return b"".join(self._parts)


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
