"""Settings of the feed poller (``WIREWATCH_*`` environment variables).

Built once in :func:`ingest.command.run_poll` and passed down whole: the
:class:`~ingest.fetch.Fetcher` reads the ``fetch_*`` fields, ``user_agent`` and
``allow_private_addresses``, the :class:`~ingest.poller.Poller` the ``poll_*``
ones; no other module restates a field or its default. Nothing reads the
environment at import time. Every field maps to ``WIREWATCH_<FIELD NAME>``,
e.g. ``fetch_concurrency`` -> ``WIREWATCH_FETCH_CONCURRENCY``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from wirewatch import topics
from wirewatch.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_USER_AGENT = "wirewatch/0.1 (news feed poller; +https://github.com/wirewatch/wirewatch)"


class PollerSettings(ServiceSettings):
    feeds: str = "feeds.yaml"
    """The feeds file (YAML or OPML); relative: tried in the working directory, then the repo root."""
    state_dir: str = ".state"
    """Where the poller keeps what it has published (``poller.sqlite3``) and per-feed HTTP state."""
    poll_topic: str = topics.RAW
    """Topic the articles go to (tests use their own)."""

    poll_interval: float = Field(default=900.0, gt=0)
    """Seconds between two polls of a feed that declares no ``interval``."""
    poll_jitter: float = Field(default=0.1, ge=0, lt=1)
    """Each next poll is scheduled at interval * uniform(1 - jitter, 1 + jitter), so feeds spread out."""
    poll_backoff_cap: float = Field(default=6 * 3600.0, gt=0)
    """Longest wait between two attempts at a failing feed (exponential backoff from its interval)."""
    poll_silent_after: float = Field(default=2 * 86400.0, gt=0)
    """A feed that answers but has had nothing new for this long is reported as silent."""
    poll_forget_after: float = Field(default=90 * 86400.0, ge=0)
    """Seconds after which an article no feed lists any more is dropped from the seen state (0: never).
    Bounds the state file; an entry that reappears later is published again as new."""
    poll_forget_every: float = Field(default=3600.0, ge=0)
    """Seconds between two sweeps of the seen state for ``poll_forget_after``."""
    publish_give_up_after: float = Field(default=300.0, gt=0)
    """With ``--once``: how long to retry an unreachable Kafka before exiting 75 (nothing is marked seen)."""

    fetch_concurrency: int = Field(default=32, ge=1, le=1024)
    """Requests in flight at once, all hosts together."""
    fetch_per_host: int = Field(default=2, ge=1, le=64)
    """Requests in flight at once to one host (politeness)."""
    fetch_connect_timeout: float = Field(default=10.0, gt=0)
    fetch_read_timeout: float = Field(default=20.0, gt=0)
    """Longest silence between two bytes of a response."""
    fetch_total_timeout: float = Field(default=60.0, gt=0)
    """Deadline of a whole fetch, redirects and body included: stops servers that drip bytes slowly."""
    fetch_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Largest feed body accepted, after decompression."""
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str = DEFAULT_USER_AGENT
    """Sent with every request (feeds and article pages); the only default of it."""
    allow_private_addresses: bool = False
    """Allow feeds, redirects and article pages on loopback/private/link-local addresses. Off by
    default: names are resolved once, every answer must be public and the connection goes to the
    checked address (NAT64, 6to4, Teredo and IPv4-mapped forms included), so a publisher cannot point
    the poller at internal services or 169.254.169.254. Set it to true to poll feeds served on this
    machine or a private network (the demo and the local tests do)."""

    full_text_timeout: float = Field(default=20.0, gt=0)
    """Deadline for fetching one article page when a feed has ``full_text: true``."""

    def feeds_path(self) -> Path:
        path = Path(self.feeds)
        if path.is_absolute() or path.exists():
            return path
        fallback = REPO_ROOT / path
        return fallback if fallback.exists() else path
