"""Consumer lag: how far each consumer group is behind, in messages and in time.

For every (group, topic, partition): the committed offset, the end offset,
``lag = end - committed`` (a group that never committed counts from the start
of the partition), and the time lag: the age of the oldest message the group
has not consumed yet (0 when it is caught up). Read-only: it never joins a
group, so measuring lag cannot cause a rebalance.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from kafka import KafkaConsumer
from kafka.admin import OffsetSpec
from kafka.structs import TopicPartition

from wirewatch import topics
from wirewatch.kafka import make_admin
from wirewatch.settings import KafkaSettings

DEFAULT_GROUPS: Mapping[str, Sequence[str]] = {
    topics.CLASSIFY_GROUP: (topics.RAW,),
    topics.STORE_GROUP: (topics.TAGGED,),
}


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    time_lag_seconds: float


@dataclass(frozen=True)
class LagReport:
    partitions: list[PartitionLag]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def by_group(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.group] = totals.get(p.group, 0) + p.lag
        return totals

    def max_time_lag(self) -> float:
        return max((p.time_lag_seconds for p in self.partitions), default=0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "partitions": [asdict(p) for p in self.partitions],
            "groups": self.by_group(),
            "total_lag": self.total,
            "max_time_lag_seconds": self.max_time_lag(),
        }

    def format_table(self) -> str:
        lines = [
            f"{'group':<22} {'topic':<18} {'part':>4} {'committed':>10} {'end':>8} {'lag':>7} {'age_s':>8}"
        ]
        for p in self.partitions:
            committed = "-" if p.committed is None else str(p.committed)
            lines.append(
                f"{p.group:<22} {p.topic:<18} {p.partition:>4} {committed:>10} {p.end:>8} {p.lag:>7} "
                f"{p.time_lag_seconds:>8.1f}"
            )
        for group, total in self.by_group().items():
            lines.append(f"total {group}: {total}")
        lines.append(f"total lag: {self.total}")
        return "\n".join(lines)


def measure_lag(kafka: KafkaSettings, groups: Mapping[str, Sequence[str]] = DEFAULT_GROUPS) -> LagReport:
    admin = make_admin(kafka)
    try:
        existing = set(admin.list_topics())
        wanted = {t for ts in groups.values() for t in ts if t in existing}
        partitions = _partitions(admin, wanted)
        ends = _offsets(admin, partitions, OffsetSpec.LATEST)
        starts = _offsets(admin, partitions, OffsetSpec.EARLIEST)
        committed = admin.list_group_offsets({g: None for g in groups}) if groups else {}
    finally:
        admin.close()
    rows = []
    pending: set[tuple[TopicPartition, int]] = set()
    for group, group_topics in groups.items():
        offsets = committed.get(group, {})
        for tp in sorted(p for p in partitions if p.topic in group_topics):
            meta = offsets.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else None
            position = done if done is not None else starts.get(tp, 0)
            lag = max(0, ends.get(tp, 0) - position)
            rows.append((group, tp, done, ends.get(tp, 0), lag, position))
            if lag:
                pending.add((tp, position))
    ages = _oldest_ages(kafka, pending)
    result = [
        PartitionLag(
            group=group,
            topic=tp.topic,
            partition=tp.partition,
            committed=done,
            end=end,
            lag=lag,
            time_lag_seconds=ages.get((tp, position), 0.0) if lag else 0.0,
        )
        for group, tp, done, end, lag, position in rows
    ]
    return LagReport(result)


def _partitions(admin: object, names: set[str]) -> list[TopicPartition]:
    if not names:
        return []
    described = admin.describe_topics(sorted(names))  # type: ignore[attr-defined]
    return [TopicPartition(t["name"], p["partition_index"]) for t in described for p in t["partitions"]]


def _offsets(admin: object, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    found = admin.list_partition_offsets({tp: spec for tp in partitions})  # type: ignore[attr-defined]
    return {tp: info.offset for tp, info in found.items()}


def _oldest_ages(
    kafka: KafkaSettings, positions: set[tuple[TopicPartition, int]]
) -> dict[tuple[TopicPartition, int], float]:
    """Age in seconds of the message at each (partition, offset), read with a group-less consumer."""
    if not positions:
        return {}
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False, group_id=None)
    ages: dict[tuple[TopicPartition, int], float] = {}
    try:
        for tp, offset in sorted(positions):
            consumer.assign([tp])
            consumer.seek(tp, offset)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and (tp, offset) not in ages:
                records = consumer.poll(timeout_ms=300, max_records=1).get(tp)
                if records:
                    ages[(tp, offset)] = max(0.0, time.time() - records[0].timestamp / 1000)
    finally:
        consumer.close()
    return ages
