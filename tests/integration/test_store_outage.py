"""A database outage mid-stream pauses the sink; after it, every message is stored exactly once."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session

from store.database import make_engine
from store.repository import count_rows
from store.sink import TaggedArticleWriter
from tests.support.factories import seen, tagged
from tests.support.kafka import produce_raw
from tests.support.proxy import TcpProxy
from wirewatch.contract import encode
from wirewatch.kafka import BatchLoop, DeadLetterPublisher, make_consumer, make_producer
from wirewatch.retry import Backoff

pytestmark = pytest.mark.integration


def test_database_outage_holds_batches_and_loses_nothing(
    kafka_settings, new_topic, new_group, database_url, migrated_engine
) -> None:
    topic, dlq = new_topic("test.tagged"), new_topic("test.dlq", 1)
    n = 300
    produce_raw(kafka_settings, topic, [(f"a{i}", encode(tagged(seen(f"a{i}")))) for i in range(n)])

    port = migrated_engine.url.port or 5432
    proxy = TcpProxy(port)
    proxied = make_engine(migrated_engine.url.set(port=proxy.port).render_as_string(hide_password=False))
    store = TaggedArticleWriter(proxied)

    def writer(batch):  # type: ignore[no-untyped-def]
        time.sleep(0.1)  # pace the stream so the outage lands mid-stream, not after it
        return store(batch)

    retries: list[Exception] = []

    class Observer:
        def batch_done(self, *a: object) -> None: ...
        def batch_retry(self, error: Exception) -> None:
            retries.append(error)

        def record_failed(self, reason: str) -> None: ...

    consumer = make_consumer(kafka_settings, new_group("store"), topic, max_poll_records=20)
    dead = DeadLetterPublisher(make_producer(kafka_settings), "store", dlq)
    loop = BatchLoop(
        consumer,
        writer,
        dead,
        max_records=20,
        backoff=Backoff(base=0.2, cap=1.0),
        observer=Observer(),  # type: ignore[arg-type]
    )
    stop = threading.Event()
    worker = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while loop.processed < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loop.processed < n
        proxy.cut()  # the database "goes down" mid-stream
        time.sleep(3)
        processed_during_outage = loop.processed
        time.sleep(1)
        assert loop.processed == processed_during_outage, (
            "nothing may be committed while the database is down"
        )
        proxy.restore()
        deadline = time.monotonic() + 90
        while loop.processed < n and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)
        loop.close()
        proxy.close()
        proxied.dispose()

    assert retries, "the outage should have been seen as retriable errors"
    assert loop.processed == n
    with Session(migrated_engine) as s:
        assert count_rows(s) == {"articles": n, "classifications": n, "events": 2 * n}
