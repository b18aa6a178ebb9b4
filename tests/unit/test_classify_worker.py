"""The classifier's handler isolates an article the tagger cannot handle (issue 11, item 17).

Before: an exception from the tagger for one article escaped the handler, the
process died, and the redelivered batch killed it again (a crash loop).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence

import pytest

from classify.labels import TagInput
from classify.worker import TaggingHandler
from tests.support.factories import seen
from tests.support.loop import FakeConsumer, FakeDeadLetters
from tests.support.producer import RecordingProducer
from tests.support.taggers import FakeTagger
from wirewatch.contract import ArticleSeen, EventLocation, decode_tagged, encode
from wirewatch.kafka import BatchLoop

Rec = namedtuple("Rec", "topic partition offset key value")


class PickyTagger(FakeTagger):
    """Raises for any call that includes an article whose title contains 'boom'."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__({"kidnapping": 0.1}, model_name="picky")
        self.broken = broken

    def check(self, items: Sequence[TagInput]) -> None:
        if self.broken:
            raise RuntimeError("model file vanished")
        if any("boom" in item.title for item in items):
            raise ValueError("tokenizer cannot handle this article")


def _records(*titles: str) -> list[Rec]:
    return [
        Rec("news.raw.v1", 0, i, f"a{i}".encode(), encode(seen(f"a{i}", title=title)))
        for i, title in enumerate(titles)
    ]


def test_one_bad_article_is_dead_lettered_and_the_rest_tagged() -> None:
    tagger, producer = PickyTagger(), RecordingProducer()
    failures = TaggingHandler(tagger, producer, "tagged")(_records("fine", "boom", "fine too"))  # type: ignore[arg-type]
    assert [(f.record.offset, f.error.reason) for f in failures] == [(1, "tagger_error")]
    assert "ValueError" in failures[0].error.detail
    assert [decode_tagged(v).article_id for v in producer.sent] == ["a0", "a2"]
    assert tagger.calls == [3, 1, 1, 1]


def test_the_worker_loop_moves_past_the_bad_article_instead_of_crash_looping() -> None:
    consumer, dead = FakeConsumer(_records("fine", "boom")), FakeDeadLetters()
    loop = BatchLoop(consumer, TaggingHandler(PickyTagger(), RecordingProducer(), "tagged"), dead)  # type: ignore[arg-type]
    assert loop.run_once() == 2
    assert [f.record.offset for f in dead.published] == [1]
    assert consumer.commits == [{next(iter(consumer.positions)): 2}]


def test_a_single_bad_article_is_dead_lettered() -> None:
    failures = TaggingHandler(PickyTagger(), RecordingProducer(), "tagged")(_records("boom"))  # type: ignore[arg-type]
    assert [f.error.reason for f in failures] == ["tagger_error"]


def test_a_broken_tagger_still_crashes_rather_than_dead_lettering_everything() -> None:
    producer = RecordingProducer()
    with pytest.raises(RuntimeError, match="vanished"):
        TaggingHandler(PickyTagger(broken=True), producer, "tagged")(_records("a", "b", "c"))  # type: ignore[arg-type]
    assert producer.sent == []


def test_an_article_the_locator_raises_on_is_tagged_without_a_location() -> None:
    """The location is optional: a locator bug on one article must lose neither its tags nor the
    batch (before the merge of issues 11 and 14 the exception escaped the handler: a crash loop)."""

    def locator(article: ArticleSeen) -> EventLocation:
        if "unplaceable" in article.title:
            raise ValueError("resolver cannot handle this article")
        return EventLocation(country="EC", precision="country")

    producer = RecordingProducer()
    handler = TaggingHandler(PickyTagger(), producer, "tagged", locator=locator)  # type: ignore[arg-type]
    failures = handler(_records("fine", "unplaceable", "fine too"))
    assert failures == []
    sent = [decode_tagged(v) for v in producer.sent]
    assert [t.article_id for t in sent] == ["a0", "a1", "a2"]
    assert [t.location.country if t.location else None for t in sent] == ["EC", None, "EC"]
