"""The fetch watchdog and the loop's remedies, with an in-memory consumer (pure logic).

The fault suite saw a kafka-python 3.0 consumer stop after its first batch with hundreds of
records waiting; these tests stand in for that client state with partitions that serve nothing.
"""

from __future__ import annotations

from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition

from tests.support.loop import FakeConsumer, FakeDeadLetters, Rec
from wirewatch.fetch_watchdog import FetchWatchdog
from wirewatch.kafka import BatchLoop, LoopObserver

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def two_partitions(n: int) -> list[Rec]:
    return [Rec("t", p, i, b"k", b"v") for p in (0, 1) for i in range(n)]


class Stalls(LoopObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def fetch_stalled(self, remedy: str, partitions: int) -> None:
        self.seen.append((remedy, partitions))


def loop_with(consumer: FakeConsumer, clock: Clock, **kwargs) -> tuple[BatchLoop, list[int], Stalls]:  # type: ignore[no-untyped-def]
    handled: list[int] = []
    stalls = Stalls()

    def handler(batch):  # type: ignore[no-untyped-def]
        handled.extend(r.partition for r in batch)
        return []

    loop = BatchLoop(
        consumer,  # type: ignore[arg-type]
        handler,
        FakeDeadLetters(),  # type: ignore[arg-type]
        max_records=100,
        watchdog=FetchWatchdog(check_every=10.0, clock=clock),
        observer=stalls,
        **kwargs,
    )
    return loop, handled, stalls


def run_for(loop: BatchLoop, clock: Clock, seconds: float, step: float = 1.0) -> None:
    end = clock.now + seconds
    while clock.now < end:
        loop.run_once()
        clock.now += step


def test_a_stuck_partition_is_reseeked_and_its_records_arrive() -> None:
    consumer, clock = FakeConsumer(two_partitions(5)), Clock()
    consumer.stuck = {P1}
    loop, handled, stalls = loop_with(consumer, clock)
    run_for(loop, clock, 9)
    assert handled == [0] * 5 and consumer.seeks == []  # not yet a whole interval
    run_for(loop, clock, 25)
    assert consumer.seeks == [(P1, 0)]  # its own position: nothing skipped, nothing repeated
    assert handled == [0] * 5 + [1] * 5
    assert stalls.seen == [("reseek", 1)]
    assert consumer.commits[-1] == {P1: 5}


def test_a_partition_still_stuck_after_the_reseek_gets_a_new_consumer() -> None:
    old, clock = FakeConsumer(two_partitions(3)), Clock()
    old.stuck, old.seek_unsticks = {P1}, False
    fresh = FakeConsumer(two_partitions(3))
    fresh.positions = {P0: 3, P1: 0}  # a new member resumes from the committed offsets
    loop, handled, stalls = loop_with(old, clock, renew_consumer=lambda: fresh)
    run_for(loop, clock, 65)
    assert old.closed
    assert [remedy for remedy, _ in stalls.seen] == ["reseek", "renew"]
    assert handled == [0] * 3 + [1] * 3
    assert fresh.commits == [{P1: 3}]


def test_without_a_consumer_factory_the_loop_keeps_reseeking() -> None:
    consumer, clock = FakeConsumer(two_partitions(2)), Clock()
    consumer.stuck, consumer.seek_unsticks = {P0}, False
    loop, _, stalls = loop_with(consumer, clock)
    run_for(loop, clock, 60)
    assert {remedy for remedy, _ in stalls.seen} == {"reseek"} and len(consumer.seeks) >= 2
    assert not consumer.closed


def test_caught_up_and_moving_partitions_are_left_alone() -> None:
    clock = Clock()
    caught_up = FakeConsumer(two_partitions(4))
    loop, handled, stalls = loop_with(caught_up, clock)
    run_for(loop, clock, 60)
    assert handled.count(0) == 4 and handled.count(1) == 4
    assert stalls.seen == [] and caught_up.seeks == []

    class Trickle(FakeConsumer):
        """One record per poll: always behind its end, never stuck."""

        def poll(self, timeout_ms: int, max_records: int) -> dict:
            return super().poll(timeout_ms, 1)

    moving = Trickle([Rec("t", 0, i, b"k", b"v") for i in range(200)])
    loop, handled, stalls = loop_with(moving, clock)
    run_for(loop, clock, 60, step=0.5)
    assert len(handled) == 120 and stalls.seen == []


def test_a_partition_waiting_behind_a_busy_one_is_not_a_stall() -> None:
    """While anything is polled, nothing is judged: a slow handler draining one partition's
    backlog can leave another waiting for a while, and renewing then would only disrupt."""

    class OneAtATime(FakeConsumer):
        def poll(self, timeout_ms: int, max_records: int) -> dict:
            return super().poll(timeout_ms, 1)

    consumer, clock = (
        OneAtATime([Rec("t", 0, i, b"k", b"v") for i in range(200)] + [Rec("t", 1, 0, b"k", b"v")]),
        Clock(),
    )
    consumer.stuck = {P1}
    loop, handled, stalls = loop_with(consumer, clock)
    run_for(loop, clock, 90, step=0.5)
    assert stalls.seen == [] and consumer.seeks == [] and 1 not in handled
    run_for(loop, clock, 50, step=0.5)  # P0 drained: now the wait is a stall, and it is healed
    assert stalls.seen == [("reseek", 1)] and handled.count(1) == 1


def test_a_failed_offsets_request_judges_nothing() -> None:
    class NoBroker(FakeConsumer):
        def end_offsets(self, partitions: list, timeout_ms: int | None = None) -> dict:
            raise KafkaTimeoutError("broker away")

    consumer, clock = NoBroker(two_partitions(2)), Clock()
    consumer.stuck = {P0, P1}
    watchdog = FetchWatchdog(check_every=10.0, clock=clock)
    for _ in range(5):
        clock.now += 11
        assert watchdog.check(consumer) is None
