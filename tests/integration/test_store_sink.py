"""The sink loop on the real broker and database: exactly-once rows, poison to the DLQ."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from store.repository import count_rows
from store.sink import TaggedArticleWriter
from store.tables import articles
from tests.support.factories import seen, tagged
from tests.support.kafka import produce_raw, read_all, run_until
from wirewatch.contract import decode_dead_letter, encode
from wirewatch.kafka import BatchLoop, DeadLetterPublisher, make_consumer, make_producer

pytestmark = pytest.mark.integration


def _loop(kafka, topic, group, dlq, engine) -> BatchLoop:
    consumer = make_consumer(kafka, group, topic, max_poll_records=50)
    producer = make_producer(kafka)
    return BatchLoop(
        consumer, TaggedArticleWriter(engine), DeadLetterPublisher(producer, "store", dlq), max_records=50
    )


def test_redelivery_and_poison(kafka_settings, new_topic, new_group, migrated_engine: Engine) -> None:
    topic, dlq = new_topic("test.tagged"), new_topic("test.dlq", partitions=1)
    good = [tagged(seen(f"a{i}")) for i in range(20)]
    nul = tagged(seen("nul", text="bad \x00 byte"))
    messages: list[tuple[str | None, bytes | None]] = [(m.article_id, encode(m)) for m in good]
    messages += [(m.article_id, encode(m)) for m in good[:5]]  # re-delivered duplicates
    messages += [("junk", b"{not json"), ("wrong", json.dumps({"schema": "news.raw.v1"}).encode())]
    messages += [("nul", encode(nul))]
    produce_raw(kafka_settings, topic, messages)

    loop = _loop(kafka_settings, topic, new_group("store"), dlq, migrated_engine)
    try:
        run_until(loop, lambda: loop.processed >= len(messages))
    finally:
        loop.close()

    with Session(migrated_engine) as s:
        assert count_rows(s)["articles"] == 20
        assert count_rows(s)["events"] == 40
        assert s.execute(select(articles.c.article_id).where(articles.c.article_id == "nul")).first() is None
    letters = [decode_dead_letter(r.value) for r in read_all(kafka_settings, dlq, expected=3)]
    assert sorted(letter.reason for letter in letters) == ["constraint", "invalid_json", "schema"]
    assert {letter.key for letter in letters} == {"junk", "wrong", "nul"}
    assert all(letter.source_topic == topic and letter.stage == "store" for letter in letters)
    junk = next(letter for letter in letters if letter.key == "junk")
    assert junk.original_value() == b"{not json"
