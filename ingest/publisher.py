"""The poller's two :class:`~ingest.poller.Publisher` implementations: Kafka, and JSON lines.

:class:`KafkaPublisher` is the only place ``ingest`` produces to Kafka: an
idempotent producer (acks=all) keyed by ``article_id``, connected lazily on
first use so a broker that is down at start-up is a retriable publish failure,
not a crash. :class:`JsonLinesPublisher` is ``--dry-run``. Neither decides what
to publish: the poller's publishing side hands them the articles.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from kafka.errors import KafkaError

from ingest.probe import require_reachable
from wirewatch.contract import ArticleSeen, encode
from wirewatch.errors import RetriableError
from wirewatch.kafka import ensure_topics, make_producer, produce_all
from wirewatch.settings import KafkaSettings

log = logging.getLogger(__name__)


class JsonLinesPublisher:
    """``--dry-run``: one contract JSON object per line on a text stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def publish(self, articles: Sequence[ArticleSeen]) -> None:
        for article in articles:
            self._stream.write(encode(article).decode("utf-8") + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class KafkaPublisher:
    """The real :class:`~ingest.poller.Publisher`: idempotent producer, acks=all, keyed by article_id.

    Connects on first use (creating the topic if needed), so a broker that is
    down at start-up is a retriable publish failure, not a crash.
    """

    def __init__(
        self, kafka: KafkaSettings, topic: str, partitions: int = 3, **producer_overrides: Any
    ) -> None:
        self._kafka = kafka
        self.topic = topic
        self._partitions = partitions
        self._overrides = producer_overrides
        self._producer: Any = None
        self.last_error: str | None = None
        """Why the latest publish failed; None once one succeeds (readiness)."""

    def publish(self, articles: Sequence[ArticleSeen]) -> None:
        try:
            self._publish(articles)
        except Exception as exc:
            self.last_error = repr(exc)
            raise
        self.last_error = None

    def ready(self) -> bool:
        """Readiness: the latest publish went through and a broker accepts connections now."""
        if self.last_error is not None:
            return False
        try:
            require_reachable(self._kafka, timeout=1.0)
        except RetriableError:
            return False
        return True

    def _publish(self, articles: Sequence[ArticleSeen]) -> None:
        if self._producer is None:
            require_reachable(self._kafka)
            try:
                producer = make_producer(self._kafka, **self._overrides)
                try:
                    ensure_topics(self._kafka, [self.topic], self._partitions)
                except BaseException:
                    producer.close(timeout=1)
                    raise
                self._producer = producer
            except KafkaError as exc:
                raise RetriableError(f"Kafka at {self._kafka.bootstrap} unavailable: {exc!r}") from exc
        produce_all(
            self._producer,
            self.topic,
            [(a.article_id, encode(a)) for a in articles],
            headers=[[("revision", str(a.revision).encode())] for a in articles],
        )
        log.debug("published %d articles to %s", len(articles), self.topic)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
