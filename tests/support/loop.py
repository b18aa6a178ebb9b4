"""Stand-ins for the batch loop's collaborators in unit tests: a consumer, dead letters, a clock.

``FakeConsumer`` serves records from a list and honours ``seek``; ``FakeDeadLetters``
keeps what was published; ``SimulatedTime`` is a stop event whose ``wait`` advances a
fake clock instead of sleeping.
"""

from __future__ import annotations

from collections import namedtuple

from kafka.structs import TopicPartition

from wirewatch.kafka import Failure

Rec = namedtuple("Rec", "topic partition offset key value")


class FakeConsumer:
    """Serves records from a list, honours seek(), records commits.

    Partitions in ``stuck`` serve nothing, as a client whose fetch state broke would; a seek
    unsticks them unless ``seek_unsticks`` is off.
    """

    def __init__(self, records: list[Rec]) -> None:
        self.records = records
        self.positions = {TopicPartition(r.topic, r.partition): 0 for r in records}
        self.commits: list[dict] = []
        self.stuck: set[TopicPartition] = set()
        self.seek_unsticks = True
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.closed = False

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        out: dict = {}
        for tp, pos in self.positions.items():
            if tp in self.stuck:
                continue
            recs = [r for r in self.records if (r.topic, r.partition) == tuple(tp) and r.offset >= pos]
            recs = recs[:max_records]
            if recs:
                out[tp] = recs
                self.positions[tp] = recs[-1].offset + 1
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset
        self.seeks.append((tp, offset))
        if self.seek_unsticks:
            self.stuck.discard(tp)

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self.positions[tp]

    def end_offsets(self, partitions: list, timeout_ms: int | None = None) -> dict:
        return {
            tp: 1 + max((r.offset for r in self.records if (r.topic, r.partition) == tuple(tp)), default=-1)
            for tp in partitions
        }

    def assignment(self) -> set:
        return set(self.positions)

    def commit(self, offsets: dict) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def close(self) -> None:
        self.closed = True


class FakeDeadLetters:
    def __init__(self) -> None:
        self.published: list[Failure] = []

    def publish(self, failures: list[Failure]) -> None:
        self.published.extend(failures)


def records(n: int) -> list[Rec]:
    return [Rec("t", 0, i, b"k%d" % i, b"v%d" % i) for i in range(n)]


class SimulatedTime:
    """A stop event whose wait() advances a fake clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def is_set(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False
