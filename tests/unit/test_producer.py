"""The renewing producer: a failed delivery replaces the KafkaProducer instead of reusing it.

kafka-python 3.0 can keep an idempotent producer's batch incomplete forever after the broker was
away longer than the delivery timeout; every later flush then times out. These tests drive that
state with a stand-in producer (the broker-restart fault test drives it with the real broker).
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from wirewatch.errors import RetriableError
from wirewatch.kafka import RenewingProducer, produce_all


class _Acked:
    def get(self, timeout: float | None = None) -> None:
        return None


class _Sender:
    def __init__(self) -> None:
        self.force_closed = False

    def force_close(self) -> None:
        self.force_closed = True


class StuckableProducer:
    """Acknowledges sends, unless ``stuck``: then every flush times out, and close too (it flushes)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.sent: list[bytes] = []
        self.closed_with: list[float | None] = []
        self._sender = _Sender()

    def send(self, topic: str, key: Any = None, value: bytes = b"", headers: Any = None) -> _Acked:
        self.sent.append(value)
        return _Acked()

    def flush(self, timeout: float | None = None) -> None:
        if self.stuck:
            raise KafkaTimeoutError("Timeout waiting for future")

    def close(self, timeout: float | None = None) -> None:
        self.closed_with.append(timeout)
        self.flush(timeout)


def _factory(*producers: StuckableProducer):  # type: ignore[no-untyped-def]
    made = iter(producers)
    return lambda: next(made)


def test_a_stuck_producer_is_replaced_and_the_retry_goes_through_a_new_one() -> None:
    stuck, fresh = StuckableProducer(stuck=True), StuckableProducer()
    producer = RenewingProducer(_factory(stuck, fresh))  # type: ignore[arg-type]
    with pytest.raises(RetriableError, match="Timeout waiting for future"):
        produce_all(producer, "t", [("k", b"one")], timeout=0.1)
    assert producer.renewals == 1
    assert stuck.closed_with == [0]  # dropped without waiting for what it holds
    assert stuck._sender.force_closed  # its close raised, so its sender thread was stopped directly
    produce_all(producer, "t", [("k", b"one")], timeout=0.1)
    assert fresh.sent == [b"one"] and producer.renewals == 1


def test_a_healthy_producer_is_kept() -> None:
    only = StuckableProducer()
    producer = RenewingProducer(_factory(only))  # type: ignore[arg-type]
    for value in (b"a", b"b"):
        produce_all(producer, "t", [(None, value)], timeout=0.1)
    assert only.sent == [b"a", b"b"] and producer.renewals == 0
    producer.close(timeout=1)
    assert only.closed_with == [1]


def test_a_broker_still_down_at_renewal_is_a_retriable_failure_too() -> None:
    def factory() -> StuckableProducer:
        calls.append(1)
        if len(calls) > 1:
            raise KafkaTimeoutError("Unable to bootstrap")
        return StuckableProducer(stuck=True)

    calls: list[int] = []
    producer = RenewingProducer(factory)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(RetriableError):
            produce_all(producer, "t", [("k", b"x")], timeout=0.1)
    assert len(calls) == 2
