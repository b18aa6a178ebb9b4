"""The one error base of ``ingest``: why a poll of one feed produced no articles.

Everything a feed can do wrong ends in an :class:`IngestError`, raised by
:mod:`ingest.fetch` (HTTP) or :mod:`ingest.parse` (the document); the poller
reads its fields and nothing else (no ``getattr`` guessing)::

    WirewatchError
    └── IngestError (kind, detail, retriable, retry_after)
        ├── FetchError           ingest.fetch: status, and the HTTP kinds (http_404, deadline, ...)
        │   ├── FeedGoneError        410 Gone: stop polling until the declaration changes
        │   ├── RateLimitedError     429, or 503 with Retry-After
        │   └── BlockedAddressError  a private target while allow_private_addresses is off
        └── ParseError           ingest.parse: the bytes are no usable feed
            ├── MalformedFeedError   truncated or broken beyond recovery (retriable)
            ├── HostileDocumentError entity bombs, external entities
            └── NotAFeedError        an HTML page where a feed was expected

``retriable`` is the poller's backoff decision: true (timeouts, 5xx, DNS,
a truncated document) backs off exponentially from the feed's interval, since
trying again can help; false (404, 403, oversized, hostile, not a feed) goes
to the backoff cap at once and is logged as an error, since only a person
(the publisher, or whoever declared the feed) can fix it. ``retry_after`` is
a floor the publisher asked for. An exception that is not an ``IngestError``
is a bug confined to its feed (``internal_error``, retried like a transient
failure).
"""

from __future__ import annotations

from wirewatch.errors import WirewatchError


class IngestError(WirewatchError):
    """A poll of one feed that produced no usable document; ``kind`` tags it in logs and metrics."""

    kind = "ingest_error"
    retriable = False

    def __init__(
        self,
        detail: str,
        *,
        kind: str | None = None,
        retriable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        if kind is not None:
            self.kind = kind
        if retriable is not None:
            self.retriable = retriable
        super().__init__(f"{self.kind}: {detail}")
        self.detail = detail
        self.retry_after = retry_after
        """Seconds the publisher asked us to wait at least (Retry-After), or None."""
