"""The classifier service's batch handler: ``news.raw.v1`` -> tags -> ``news.tagged.v1``.

The model is loaded once, outside this module, and passed in as a
:class:`~classify.labels.TaggerProtocol`. A batch is decoded (undecodable records
become poison), turned into the tagger's inputs (:func:`tag_input`), tagged in one
model call, and the ``news.tagged.v1`` messages are built from the tagger's
:class:`~classify.labels.Prediction` (:func:`tagged_messages`), produced, and only
returned once the broker acknowledged every tagged record — the batch loop then
commits the offsets.

When the model call raises for a batch, the batch is tagged again one article
at a time, so one article the tagger cannot handle is dead-lettered
(``tagger_error``) instead of crash-looping the worker on redelivery. If every
article of a batch of two or more fails on its own, the fault is the tagger's,
not the articles': the first error propagates (a bug: the process dies and the
uncommitted batch is redelivered after restart).

The event's location is optional on the tagged message: an article the locator raises on is
tagged and produced without one (logged as a warning), never dead-lettered nor crash-looped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from kafka.consumer.fetcher import ConsumerRecord

from classify.labels import Prediction, TaggerProtocol, TagInput
from wirewatch.contract import ArticleSeen, ArticleTagged, EventLocation, decode_seen, encode, utcnow
from wirewatch.errors import PoisonMessageError, RetriableError
from wirewatch.kafka import Failure, RenewingProducer, produce_all
from wirewatch.logging import record_ref

log = logging.getLogger(__name__)

MAX_EVIDENCE_CHARS = 1_000
"""Evidence is one sentence; a text without sentence breaks must not make the tagged message
(article + evidence per label) too large for Kafka."""


Locator = Callable[[ArticleSeen], EventLocation]
"""Where an article's event happened (``classify.geo.locator.ArticleLocator``)."""


class TaggingHandler:
    """Batch handler: decode -> tag -> produce and wait for acks -> report poison."""

    def __init__(
        self,
        tagger: TaggerProtocol,
        producer: RenewingProducer,
        output_topic: str,
        on_inference: Callable[[int, float], None] | None = None,
        locator: Locator | None = None,
    ) -> None:
        self._tagger = tagger
        self._locator = locator
        self._producer = producer
        self._topic = output_topic
        self._on_inference = on_inference or (lambda size, seconds: None)

    def __call__(self, batch: list[ConsumerRecord]) -> list[Failure]:
        failures: list[Failure] = []
        decoded: list[tuple[ConsumerRecord, ArticleSeen]] = []
        for rec in batch:
            try:
                decoded.append((rec, decode_seen(rec.value)))
            except PoisonMessageError as exc:
                failures.append(Failure(rec, exc))
        if decoded:
            articles, results, rejected = self._tag(decoded)
            failures.extend(rejected)
            locations = [self._locate(article) for article in articles]
            tagged = tagged_messages(self._tagger, articles, results, utcnow(), locations)
            if tagged:
                produce_all(self._producer, self._topic, [(t.article_id, encode(t)) for t in tagged])
            for t in tagged:
                if t.labels:
                    log.debug("article_id=%s tagged %s", t.article_id, ",".join(t.labels))
        return failures

    def _tag(
        self, decoded: Sequence[tuple[ConsumerRecord, ArticleSeen]]
    ) -> tuple[list[ArticleSeen], list[Prediction], list[Failure]]:
        """Tag the batch in one call; if that raises, one article at a time (see the module doc)."""
        articles = [article for _, article in decoded]
        try:
            return articles, self._timed_tag(articles), []
        except (MemoryError, RetriableError):
            raise
        except Exception as exc:
            if len(decoded) == 1:
                return [], [], [self._rejected(*decoded[0], exc)]
            log.warning("tagging a batch of %d failed (%r); tagging one article at a time", len(decoded), exc)
        kept: list[ArticleSeen] = []
        results: list[Prediction] = []
        rejected: list[Failure] = []
        first_error: Exception | None = None
        for rec, article in decoded:
            try:
                (result,) = self._timed_tag([article])
            except (MemoryError, RetriableError):
                raise
            except Exception as exc:
                first_error = first_error or exc
                rejected.append(self._rejected(rec, article, exc))
                continue
            kept.append(article)
            results.append(result)
        if not kept and first_error is not None:
            raise first_error  # every article failed alone: the tagger is broken, not the input
        return kept, results, rejected

    def _locate(self, article: ArticleSeen) -> EventLocation | None:
        if self._locator is None:
            return None
        try:
            return self._locator(article)
        except (MemoryError, RetriableError):
            raise
        except Exception:
            log.warning(
                "locator failed on article_id=%s; tagged without a location",
                article.article_id,
                exc_info=True,
            )
            return None

    def _timed_tag(self, articles: list[ArticleSeen]) -> list[Prediction]:
        started = time.perf_counter()
        results = self._tagger.predict([tag_input(a) for a in articles])
        self._on_inference(len(articles), time.perf_counter() - started)
        return results

    @staticmethod
    def _rejected(rec: ConsumerRecord, article: ArticleSeen, exc: Exception) -> Failure:
        log.warning(
            "tagger failed on %s article_id=%s: %r",
            record_ref(rec.topic, rec.partition, rec.offset),
            article.article_id,
            exc,
        )
        return Failure(rec, PoisonMessageError("tagger_error", f"{type(exc).__name__}: {exc}"[:2000]))


def tag_input(article: ArticleSeen) -> TagInput:
    """What the tagger reads of an article: title, text (the summary when there is no text), language."""
    return TagInput(
        id=article.article_id,
        title=article.title,
        text=article.text or article.summary,
        lang=article.language,
    )


def tagged_messages(
    tagger: TaggerProtocol,
    articles: Sequence[ArticleSeen],
    predictions: Sequence[Prediction],
    now: datetime,
    locations: Sequence[EventLocation | None] | None = None,
) -> list[ArticleTagged]:
    """The ``news.tagged.v1`` facts for tagged articles (the service and ``reclassify`` share it)."""
    places = locations if locations is not None else [None] * len(articles)
    return [
        ArticleTagged(
            article=article,
            labels=list(p.labels),
            scores=dict(p.scores),
            evidence={label: s[:MAX_EVIDENCE_CHARS] for label, s in p.evidence.items()},
            model_name=tagger.model_name,
            model_version=tagger.model_version,
            classified_at=now,
            language_supported=p.language_supported,
            embedding=list(p.embedding) if p.embedding is not None else None,
            location=location,
        )
        for article, p, location in zip(articles, predictions, places, strict=True)
    ]
