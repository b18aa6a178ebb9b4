"""Kafka helpers for integration tests: produce raw bytes, read a topic to the end, drive a loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from wirewatch.kafka import BatchLoop, make_producer
from wirewatch.settings import KafkaSettings


def produce_raw(kafka: KafkaSettings, topic: str, messages: list[tuple[str | None, bytes | None]]) -> None:
    producer = make_producer(kafka)
    try:
        for key, value in messages:
            producer.send(topic, key=key.encode() if key else None, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def read_all(kafka: KafkaSettings, topic: str, expected: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``expected`` records arrived (or the timeout)."""
    consumer = KafkaConsumer(
        topic, **kafka.client_config(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=500).values():
                records.extend(recs)
        # one more short poll so a test notices records beyond what it expected
        for recs in consumer.poll(timeout_ms=300).values():
            records.extend(recs)
    finally:
        consumer.close()
    return records


def run_until(loop: BatchLoop, done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Drive ``loop`` until ``done()`` holds; fails the test on timeout."""
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"loop did not finish within {timeout}s (processed {loop.processed})")
        loop.run_once(stop)
