"""Regressions for bugs the fault and hostile-input tests found (see tests/faults/).

* ``WIREWATCH_TAGGER=keywords`` was accepted by the settings but ignored: the
  classifier always loaded the model.
* A gigantic feed entry became an ArticleSeen larger than Kafka's 1 MiB message
  limit: the poller retried it forever and published nothing else.
* The dead letter of a poison message near 1 MiB (base64 is 4/3 larger) could
  never be produced: the stage held the batch and retried it forever.
"""

from __future__ import annotations

from datetime import UTC, datetime

from classify.command import load_tagger
from classify.config import ClassifierSettings
from classify.worker import TaggingHandler, tag_input
from ingest.feeds import FeedDeclaration
from ingest.normalize import normalize_entry
from ingest.parse import RawEntry
from tests.support.factories import seen
from tests.support.producer import RecordingProducer
from tests.support.taggers import FakeTagger
from wirewatch.contract import DeadLetter, decode_seen, decode_tagged, encode
from wirewatch.errors import PoisonMessageError

KAFKA_MAX_MESSAGE = 1024 * 1024
NOW = datetime(2024, 8, 28, 14, 0, tzinfo=UTC)


def test_keyword_tagger_switch_is_honoured() -> None:
    tagger = load_tagger(ClassifierSettings(tagger="keywords"))
    assert tagger.model_name == "keyword-baseline"
    result = tagger.predict([tag_input(seen("a", title="Gunmen kidnapped a trader", text="No more."))])
    assert list(result[0].labels) == ["kidnapping"]


def test_a_gigantic_entry_still_fits_in_one_kafka_message() -> None:
    huge = "\U0001d535" * 3_000_000  # 4 bytes per character in UTF-8: the worst case
    entry = RawEntry(
        guid="g1", link="https://example.com/a", title=huge, summary_html=huge, content_html=huge
    )
    article = normalize_entry(
        entry, FeedDeclaration("f", "https://example.com/feed"), "https://example.com/", "en", NOW
    )
    data = encode(article)
    assert len(data) < KAFKA_MAX_MESSAGE
    assert decode_seen(data).text.startswith("\U0001d535" * 1000)


def _everywhere_tagger() -> FakeTagger:
    # Evidence is "the sentence": a text without sentence breaks makes it the whole text.
    return FakeTagger({"kidnapping": 1.0, "shootout": 1.0, "extortion": 1.0}, evidence=True, model_name="m")


def test_tagged_message_of_the_largest_article_fits_in_one_kafka_message() -> None:
    huge = "\U0001d535" * 3_000_000
    entry = RawEntry(
        guid="g1", link="https://example.com/a", title=huge, summary_html=huge, content_html=huge
    )
    article = normalize_entry(
        entry, FeedDeclaration("f", "https://example.com/feed"), "https://example.com/", "en", NOW
    )

    class Record:
        topic, partition, offset, key, value = "raw", 0, 0, b"k", encode(article)

    producer = RecordingProducer()
    failures = TaggingHandler(_everywhere_tagger(), producer, "tagged")([Record()])  # type: ignore[arg-type, list-item]
    assert failures == []
    assert len(producer.sent[0]) < KAFKA_MAX_MESSAGE
    assert len(decode_tagged(producer.sent[0]).evidence["kidnapping"]) <= 1000


def test_dead_letter_of_a_near_limit_poison_message_fits_in_one_kafka_message() -> None:
    value = b"\xff" * (KAFKA_MAX_MESSAGE - 100)
    letter = DeadLetter.for_record(
        stage="classify",
        topic="raw",
        partition=0,
        offset=7,
        key=b"k" * 100_000,
        value=value,
        error=PoisonMessageError("invalid_json", "not UTF-8"),
    )
    assert len(encode(letter)) < KAFKA_MAX_MESSAGE
    assert value.startswith(letter.original_value())
    assert "cut to" in letter.detail and letter.reason == "invalid_json"
    small = DeadLetter.for_record(
        stage="classify",
        topic="raw",
        partition=0,
        offset=8,
        key=None,
        value=b"{oops",
        error=PoisonMessageError("invalid_json", "x"),
    )
    assert small.original_value() == b"{oops" and small.detail == "x"
