"""Location through the classifier's worker, and the feed's country hint through the poller's path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from classify.geo.locator import ArticleLocator
from classify.worker import TaggingHandler
from ingest.feeds import FeedDeclaration, FeedsFileError, parse_feeds_yaml, parse_opml
from ingest.normalize import normalize_entry
from ingest.parse import RawEntry
from tests.support.factories import seen
from tests.support.producer import RecordingProducer
from tests.support.taggers import FakeTagger
from wirewatch.contract import decode_tagged, encode

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def locator() -> ArticleLocator:
    from classify.backbone import model_cache_root

    return ArticleLocator(model_cache_root())


def _through_worker(locator: ArticleLocator, **fields: Any) -> Any:
    class Record:
        topic, partition, offset, key, value = "raw", 0, 0, b"k", encode(seen("geo-w", **fields))

    producer = RecordingProducer()
    assert (
        TaggingHandler(FakeTagger({"kidnapping": 0.0}, model_name="m"), producer, "tagged", locator=locator)(
            [Record()]
        )
        == []
    )  # type: ignore[arg-type, list-item]
    return decode_tagged(producer.sent[0]).location


def test_worker_puts_the_location_on_the_tagged_message(locator: ArticleLocator) -> None:
    loc = _through_worker(
        locator,
        title="Rescatan a comerciante",
        text="La policía rescató a un comerciante en Quevedo, Los Ríos.",
    )
    assert loc is not None
    assert (loc.country, loc.admin1.code, loc.place, loc.precision) == ("EC", "EC-R", "Quevedo", "city")


def test_worker_uses_the_feed_country_hint(locator: ArticleLocator) -> None:
    text = "Un comerciante fue secuestrado en Santa Cruz el lunes por la noche."
    assert _through_worker(locator, title="", text=text).country == "BO"  # the largest Santa Cruz
    assert _through_worker(locator, title="", text=text, country_hint="AR").country == "AR"
    assert _through_worker(locator, title="", text=text, country_hint="US").country == "US"


def test_worker_without_locator_leaves_location_absent() -> None:
    class Record:
        topic, partition, offset, key, value = "raw", 0, 0, b"k", encode(seen("geo-n"))

    producer = RecordingProducer()
    TaggingHandler(FakeTagger({"kidnapping": 0.0}, model_name="m"), producer, "tagged")([Record()])  # type: ignore[arg-type, list-item]
    assert decode_tagged(producer.sent[0]).location is None


def test_feed_country_is_parsed_validated_and_copied_to_articles() -> None:
    feeds = parse_feeds_yaml("feeds:\n  - {name: a, url: 'https://a.example/rss', country: ec}\n")
    assert feeds[0].country == "EC"
    with pytest.raises(FeedsFileError, match="country"):
        parse_feeds_yaml("feeds:\n  - {name: a, url: 'https://a.example/rss', country: Ecuador}\n")
    opml = b'<opml><body><outline title="x" xmlUrl="https://x.example/rss" country="MX"/></body></opml>'
    assert parse_opml(opml)[0].country == "MX"
    entry = RawEntry(guid="g", link="https://a.example/n/1", title="t", summary_html="s", content_html="c")
    article = normalize_entry(
        entry, FeedDeclaration("a", "https://a.example/rss", country="EC"), "https://a.example/", "es", NOW
    )
    assert article.country_hint == "EC"
    plain = normalize_entry(
        entry, FeedDeclaration("a", "https://a.example/rss"), "https://a.example/", "es", NOW
    )
    assert plain.country_hint is None


def test_tag_location_object_has_the_spec_keys(locator: ArticleLocator) -> None:
    row = {
        "id": "x",
        "title": "Secuestro en Quevedo",
        "text": "Ocurrió en Quevedo, Los Ríos.",
        "country": "EC",
    }
    plain = locator.locate_fields(row)
    assert set(plain) == {"country", "admin1", "place", "lat", "lon", "precision"}
    assert plain["admin1"] == {"name": "Los Ríos", "code": "EC-R"}
    assert locator.locate_fields(row, evidence=True)["evidence"]
