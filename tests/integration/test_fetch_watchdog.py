"""A real consumer whose partition stops fetching is noticed and healed (real broker).

The client states are induced the way kafka-python 3.0 reaches them on its own: a position
left awaiting leader-epoch validation that is never retried (dpkp/kafka-python#3106), and a
partition that a seek cannot make fetchable again (paused behind the loop's back). Each test
first checks that the stall is real — records wait and none arrive — then that the loop heals
it without losing or repeating a record.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from tests.support.kafka import produce_raw, run_until
from tests.support.loop import FakeDeadLetters
from wirewatch.fetch_watchdog import FetchWatchdog
from wirewatch.kafka import BatchLoop, ensure_topics, make_consumer
from wirewatch.settings import KafkaSettings

pytestmark = pytest.mark.integration


class Harness:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.topic = f"test.watchdog.{uuid.uuid4().hex[:10]}"
        self.group = f"test-watchdog-{uuid.uuid4().hex[:8]}"
        self.tp = TopicPartition(self.topic, 0)
        self.handled: list[int] = []
        self.consumers: list[KafkaConsumer] = []
        ensure_topics(kafka, [self.topic], partitions=1)

    def new_consumer(self) -> KafkaConsumer:
        consumer = make_consumer(self.kafka, self.group, self.topic)
        self.consumers.append(consumer)
        return consumer

    def loop(self, renew: bool) -> BatchLoop:
        def handler(batch):  # type: ignore[no-untyped-def]
            self.handled.extend(r.offset for r in batch)
            return []

        return BatchLoop(
            self.new_consumer(),
            handler,
            FakeDeadLetters(),  # type: ignore[arg-type]
            poll_timeout_ms=200,
            watchdog=FetchWatchdog(check_every=2.0),
            renew_consumer=self.new_consumer if renew else None,
        )

    def produce(self, first: int, n: int) -> None:
        produce_raw(self.kafka, self.topic, [(f"k{i}", b"v%d" % i) for i in range(first, first + n)])

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()


def drive_for(loop: BatchLoop, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        loop.run_once()


@pytest.fixture
def harness(kafka_settings: KafkaSettings):  # type: ignore[no-untyped-def]
    h = Harness(kafka_settings)
    yield h
    h.close()


def test_a_position_stuck_awaiting_validation_is_reseeked(harness: Harness) -> None:
    loop = harness.loop(renew=False)
    harness.produce(0, 5)
    run_until(loop, lambda: len(harness.handled) == 5)
    state = harness.consumers[0]._subscription.assignment[harness.tp]
    # The client's own transitions: validation requested, then a failed attempt whose retry never comes.
    assert state.request_position_validation()
    state.validation_failed(time.monotonic() + 3600)
    harness.produce(5, 5)
    drive_for(loop, 1.0)
    assert harness.handled == list(range(5)), "the induced stall did not stall the client"
    run_until(loop, lambda: len(harness.handled) == 10, timeout=30)
    assert harness.handled == list(range(10))
    assert len(harness.consumers) == 1


def test_a_partition_a_seek_cannot_heal_gets_a_new_consumer(harness: Harness) -> None:
    loop = harness.loop(renew=True)
    harness.produce(0, 5)
    run_until(loop, lambda: len(harness.handled) == 5)
    harness.consumers[0].pause(harness.tp)  # unfetchable, and a seek does not resume it
    harness.produce(5, 5)
    drive_for(loop, 1.0)
    assert harness.handled == list(range(5)), "the induced stall did not stall the client"
    run_until(loop, lambda: len(harness.handled) == 10, timeout=60)
    assert harness.handled == list(range(10))  # resumed from the committed offset: none lost, none repeated
    assert len(harness.consumers) == 2
