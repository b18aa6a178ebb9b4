"""The classifier service's batch handler: ``news.raw.v1`` -> tags -> ``news.tagged.v1``.

The model is loaded once, outside this module, and passed in as an
:class:`ArticleTagger`. A batch is decoded (undecodable records become
poison), tagged in one model call, produced, and only returned once the broker
acknowledged every tagged record — the batch loop then commits the offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from wirewatch.contract import ArticleSeen, ArticleTagged, decode_seen, encode, utcnow
from wirewatch.errors import PoisonMessageError
from wirewatch.kafka import Failure, produce_all

log = logging.getLogger(__name__)

MAX_EVIDENCE_CHARS = 1_000
"""Evidence is one sentence; a text without sentence breaks must not make the tagged message
(article + evidence per label) too large for Kafka."""


@dataclass(frozen=True)
class TagResult:
    labels: list[str]
    scores: dict[str, float]
    evidence: dict[str, str] = field(default_factory=dict)
    language_supported: bool = True
    embedding: list[float] | None = None


class ArticleTagger(Protocol):
    """What the worker needs from a model: names for lineage and a batch prediction."""

    model_name: str
    model_version: str

    def tag(self, articles: Sequence[ArticleSeen]) -> list[TagResult]: ...


class TaggingHandler:
    """Batch handler: decode -> tag -> produce and wait for acks -> report poison."""

    def __init__(
        self,
        tagger: ArticleTagger,
        producer: KafkaProducer,
        output_topic: str,
        on_inference: Callable[[int, float], None] | None = None,
    ) -> None:
        self._tagger = tagger
        self._producer = producer
        self._topic = output_topic
        self._on_inference = on_inference or (lambda size, seconds: None)

    def __call__(self, batch: list[ConsumerRecord]) -> list[Failure]:
        failures: list[Failure] = []
        articles: list[ArticleSeen] = []
        for rec in batch:
            try:
                articles.append(decode_seen(rec.value))
            except PoisonMessageError as exc:
                failures.append(Failure(rec, exc))
        if articles:
            started = time.perf_counter()
            results = self._tagger.tag(articles)
            self._on_inference(len(articles), time.perf_counter() - started)
            tagged = tagged_messages(self._tagger, articles, results, utcnow())
            produce_all(self._producer, self._topic, [(t.article_id, encode(t)) for t in tagged])
            for t in tagged:
                if t.labels:
                    log.debug("article_id=%s tagged %s", t.article_id, ",".join(t.labels))
        return failures


def tagged_messages(
    tagger: ArticleTagger, articles: Sequence[ArticleSeen], results: Sequence[TagResult], now: datetime
) -> list[ArticleTagged]:
    """The ``news.tagged.v1`` facts for tagged articles (the service and ``reclassify`` share it)."""
    return [
        ArticleTagged(
            article=article,
            labels=result.labels,
            scores=result.scores,
            evidence={label: s[:MAX_EVIDENCE_CHARS] for label, s in result.evidence.items()},
            model_name=tagger.model_name,
            model_version=tagger.model_version,
            classified_at=now,
            language_supported=result.language_supported,
            embedding=result.embedding,
        )
        for article, result in zip(articles, results, strict=True)
    ]
