"""Per-feed health: the Prometheus series and the log lines an operator watches.

Owns the poller's own metrics, registered on the service's
:class:`~wirewatch.metrics.ServiceMetrics` registry (passed in: this module
never makes a registry of its own, so what it records is what ``/metrics``
serves), and the "feed went silent" signal. It only observes: it never
changes a feed's schedule or state. The poller records through its methods
and never reaches into the registry itself.

Series (all labelled ``feed`` unless said otherwise):

* ``wirewatch_feed_fetches_total{feed,outcome}`` — ``ok``, ``not_modified`` or
  the error kind (``http_404``, ``deadline``, ``too_large``, ``not_a_feed``,
  ``hostile``, ``malformed``, ``gone``, ``rate_limited``...).
* ``wirewatch_feed_articles_total{feed,kind}`` — ``new``, ``updated``,
  ``duplicate`` (dropped inside one document).
* ``wirewatch_feed_consecutive_failures``, ``wirewatch_feed_last_success_timestamp_seconds``,
  ``wirewatch_feed_up`` (last attempt succeeded), ``wirewatch_feed_gone``,
  ``wirewatch_feed_silent`` (answers, but nothing new for ``poll_silent_after``).
* ``wirewatch_fetch_seconds`` (histogram, no feed label) and
  ``wirewatch_poll_cycle_seconds``.
* The service-wide series of :class:`~wirewatch.metrics.ServiceMetrics`:
  ``records_out`` (articles published) and ``batch_retries`` (publish retries).
"""

from __future__ import annotations

import logging
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from ingest.state import FeedState
from wirewatch.metrics import LATENCY_BUCKETS, ServiceMetrics

log = logging.getLogger(__name__)


class FeedHealth:
    """Records fetch outcomes; reports silence once when it starts and once when it ends."""

    def __init__(self, metrics: ServiceMetrics, silent_after: float = 2 * 86400.0) -> None:
        self.metrics = metrics
        self.silent_after = silent_after
        self._silent: set[str] = set()
        r = self.metrics.registry
        self.fetches = Counter(
            "wirewatch_feed_fetches_total", "Feed fetches by outcome", ["feed", "outcome"], registry=r
        )
        self.articles = Counter(
            "wirewatch_feed_articles_total", "Articles per feed by kind", ["feed", "kind"], registry=r
        )
        self.failures = Gauge(
            "wirewatch_feed_consecutive_failures", "Failed polls in a row", ["feed"], registry=r
        )
        self.last_success = Gauge(
            "wirewatch_feed_last_success_timestamp_seconds", "Last successful poll", ["feed"], registry=r
        )
        self.up = Gauge(
            "wirewatch_feed_up", "1 when the last poll of the feed succeeded", ["feed"], registry=r
        )
        self.gone = Gauge("wirewatch_feed_gone", "1 when the feed answered 410 Gone", ["feed"], registry=r)
        self.silent = Gauge(
            "wirewatch_feed_silent",
            "1 when the feed answers but has had nothing new for long",
            ["feed"],
            registry=r,
        )
        self.fetch_seconds = Histogram(
            "wirewatch_fetch_seconds", "Time to fetch one feed", buckets=LATENCY_BUCKETS, registry=r
        )
        self.cycle_seconds = Histogram(
            "wirewatch_poll_cycle_seconds",
            "Time of one poll cycle",
            buckets=(*LATENCY_BUCKETS, 120, 300, 600),
            registry=r,
        )

    def succeeded(self, state: FeedState, outcome: str, now: datetime) -> None:
        self.fetches.labels(state.name, outcome).inc()
        self.failures.labels(state.name).set(0)
        self.up.labels(state.name).set(1)
        self.gone.labels(state.name).set(0)
        self.last_success.labels(state.name).set(now.timestamp())
        self._check_silence(state, now)

    def failed(
        self,
        state: FeedState,
        kind: str,
        detail: str,
        retry_in: float | None,
        *,
        needs_a_person: bool = False,
    ) -> None:
        """A failed poll; ``needs_a_person`` (not retriable: 404, 403, not a feed) logs an error at once."""
        self.fetches.labels(state.name, kind).inc()
        self.failures.labels(state.name).set(state.consecutive_failures)
        self.up.labels(state.name).set(0)
        self.gone.labels(state.name).set(1 if state.gone else 0)
        when = f", next try in {retry_in:.0f}s" if retry_in is not None else ""
        alarming = state.gone or needs_a_person or state.consecutive_failures >= 5
        level = logging.ERROR if alarming else logging.WARNING
        log.log(
            level,
            "feed %s failed (%s, %d in a row%s): %s",
            state.name,
            kind,
            state.consecutive_failures,
            when,
            detail,
        )

    def published(self, n: int) -> None:
        """``n`` articles acknowledged by the publisher."""
        if n:
            self.metrics.records_out.labels(self.metrics.service).inc(n)

    def publish_retried(self) -> None:
        self.metrics.batch_retries.labels(self.metrics.service).inc()

    def counted(self, feed: str, kind: str, n: int) -> None:
        if n:
            self.articles.labels(feed, kind).inc(n)

    def _check_silence(self, state: FeedState, now: datetime) -> None:
        quiet_for = (now - state.last_new_at).total_seconds() if state.last_new_at else 0.0
        if quiet_for > self.silent_after:
            self.silent.labels(state.name).set(1)
            if state.name not in self._silent:
                self._silent.add(state.name)
                log.warning("feed %s went silent: nothing new for %.1f hours", state.name, quiet_for / 3600)
        else:
            self.silent.labels(state.name).set(0)
            if state.name in self._silent:
                self._silent.discard(state.name)
                log.info("feed %s has new entries again", state.name)
