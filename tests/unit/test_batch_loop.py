"""The consume -> process -> commit loop, with an in-memory consumer (pure logic)."""

from __future__ import annotations

import pytest
from kafka.structs import TopicPartition

from tests.support.loop import FakeConsumer, FakeDeadLetters, Rec, records
from wirewatch.errors import ConfigError, PoisonMessageError, RetriableError, WirewatchError
from wirewatch.kafka import BatchLoop, Failure, LoopObserver
from wirewatch.retry import Backoff


def test_commits_after_handler_with_next_offsets() -> None:
    consumer, dead = FakeConsumer(records(5)), FakeDeadLetters()
    seen: list[int] = []
    loop = BatchLoop(consumer, lambda b: seen.extend(r.offset for r in b) or [], dead, max_records=10)  # type: ignore[arg-type, func-returns-value]
    assert loop.run_once() == 5
    assert seen == [0, 1, 2, 3, 4]
    assert consumer.commits == [{TopicPartition("t", 0): 5}]


def test_retriable_error_rewinds_and_commits_nothing_then_succeeds() -> None:
    consumer, dead = FakeConsumer(records(3)), FakeDeadLetters()
    calls: list[list[int]] = []

    def handler(batch):  # type: ignore[no-untyped-def]
        calls.append([r.offset for r in batch])
        if len(calls) < 3:
            raise RetriableError("database down")
        return []

    from wirewatch.retry import Backoff

    loop = BatchLoop(consumer, handler, dead, backoff=Backoff(base=0.001, cap=0.001))  # type: ignore[arg-type]
    assert loop.run_once() == 0
    assert loop.run_once() == 0
    assert consumer.commits == []
    assert loop.run_once() == 3
    assert calls == [[0, 1, 2]] * 3  # the same batch, held, never dropped
    assert consumer.commits == [{TopicPartition("t", 0): 3}]


def test_the_retriable_flag_decides_whether_a_batch_is_held() -> None:
    """Issue 13, item 3: the loop reads ``WirewatchError.retriable`` instead of a class check."""

    class FlaggedRetriable(WirewatchError):
        retriable = True

    consumer, dead = FakeConsumer(records(2)), FakeDeadLetters()
    errors: list[Exception] = [FlaggedRetriable("outage")]

    def handler(batch):  # type: ignore[no-untyped-def]
        if errors:
            raise errors.pop(0)
        return []

    loop = BatchLoop(consumer, handler, dead, backoff=Backoff(base=0.001, cap=0.001))  # type: ignore[arg-type]
    assert loop.run_once() == 0  # held, not raised
    assert consumer.commits == []
    assert loop.run_once() == 2
    assert consumer.commits == [{TopicPartition("t", 0): 2}]


@pytest.mark.parametrize("error", [ConfigError("bad"), PoisonMessageError("schema", "raised, not returned")])
def test_a_wirewatch_error_that_is_not_retriable_propagates(error: WirewatchError) -> None:
    consumer = FakeConsumer(records(1))

    def handler(batch):  # type: ignore[no-untyped-def]
        raise error

    loop = BatchLoop(consumer, handler, FakeDeadLetters())  # type: ignore[arg-type]
    with pytest.raises(type(error)):
        loop.run_once()
    assert consumer.commits == []


class FlakyConsumer(FakeConsumer):
    """poll() raises the given errors first, then serves records (a broker restart seen by the client)."""

    def __init__(self, records: list[Rec], errors: list[Exception]) -> None:
        super().__init__(records)
        self.errors = errors

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        if self.errors:
            raise self.errors.pop(0)
        return super().poll(timeout_ms, max_records)


def test_retriable_poll_error_waits_and_polls_again() -> None:
    from kafka.errors import KafkaConnectionError

    consumer = FlakyConsumer(records(2), [KafkaConnectionError("111 ECONNREFUSED")] * 2)
    retries: list[Exception] = []

    class Observer(LoopObserver):
        def batch_retry(self, error: Exception) -> None:
            retries.append(error)

    loop = BatchLoop(consumer, lambda b: [], FakeDeadLetters(), observer=Observer())  # type: ignore[arg-type]
    loop._poll_backoff = Backoff(base=0.001, cap=0.001)
    assert loop.run_once() == 0
    assert loop.run_once() == 0
    assert loop.run_once() == 2
    assert len(retries) == 2
    assert consumer.commits == [{TopicPartition("t", 0): 2}]


def test_non_retriable_poll_error_is_raised() -> None:
    from kafka.errors import TopicAuthorizationFailedError

    consumer = FlakyConsumer(records(1), [TopicAuthorizationFailedError("not allowed")])
    loop = BatchLoop(consumer, lambda b: [], FakeDeadLetters())  # type: ignore[arg-type]
    with pytest.raises(TopicAuthorizationFailedError):
        loop.run_once()


def test_poison_goes_to_dead_letters_and_the_rest_is_committed() -> None:
    consumer, dead = FakeConsumer(records(4)), FakeDeadLetters()

    def handler(batch):  # type: ignore[no-untyped-def]
        return [Failure(r, PoisonMessageError("schema", "bad")) for r in batch if r.offset == 2]

    loop = BatchLoop(consumer, handler, dead)  # type: ignore[arg-type]
    loop.run_once()
    assert [f.record.offset for f in dead.published] == [2]
    assert consumer.commits == [{TopicPartition("t", 0): 4}]


def test_dead_letter_outage_holds_the_batch() -> None:
    consumer = FakeConsumer(records(2))

    class DownDeadLetters(FakeDeadLetters):
        def publish(self, failures):  # type: ignore[no-untyped-def]
            raise RetriableError("broker down")

    from wirewatch.retry import Backoff

    loop = BatchLoop(
        consumer,
        lambda b: [Failure(b[0], PoisonMessageError("schema", "x"))],  # type: ignore[arg-type]
        DownDeadLetters(),  # type: ignore[arg-type]
        backoff=Backoff(base=0.001, cap=0.001),
    )
    loop.run_once()
    assert consumer.commits == []
    assert consumer.positions[TopicPartition("t", 0)] == 0
