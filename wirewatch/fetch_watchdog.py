"""Noticing assigned partitions that stopped fetching while records wait for them.

Owns: deciding, from the consumer's own positions and the partitions' end offsets, that a
partition is stuck, and which remedy is due. Must not: seek, close or commit anything (the
batch loop applies the remedy: it owns the consumer).

Why it exists: kafka-python 3.0 can leave an assigned partition unfetchable while ``poll()``
keeps returning nothing (a position awaiting leader-epoch validation, dpkp/kafka-python#3106;
state kept across a rebalance, #3131 — both fixed upstream, and the fault suite on a busy
2-core CI machine still saw a classifier stop after its first 33 records with 588 waiting and
nothing logged). Whatever the client's next such bug is, the symptom is the same and cheap to
see: a partition whose end offset is past our position, with the position unmoved for a whole
check interval. The first remedy is to seek the partition to its own position, which resets
the client's fetch state for it and neither skips nor repeats a record; if the same partition
is still stuck at the next check, the consumer is renewed (closed, and a new one joins the group
and resumes from the committed offsets, which equal the positions because the loop commits
every batch before it polls again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from kafka.errors import KafkaError
from kafka.structs import TopicPartition

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 15.0
"""How often positions are compared with end offsets: one ListOffsets request per check."""

OFFSETS_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Stall:
    """Partitions behind their end with no progress for a whole check, and the remedy due."""

    partitions: tuple[TopicPartition, ...]
    positions: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]
    remedy: Literal["reseek", "renew"]

    def describe(self) -> str:
        return ", ".join(
            f"{tp.topic}[{tp.partition}] at {self.positions[tp]} of {self.ends[tp]}" for tp in self.partitions
        )


class FetchWatchdog:
    """Call :meth:`saw` with every polled batch and :meth:`check` between batches.

    A partition is stuck when two checks at least ``check_every`` seconds apart both find its
    end offset past its position, the position unchanged, and no record at all was polled in
    between. Only a wholly idle interval counts: while other partitions deliver, a partition can
    wait its turn behind their buffered records for a while (a slow handler draining a backlog),
    and treating that as a stall would re-seek and renew a healthy consumer.
    """

    def __init__(self, check_every: float = CHECK_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._every = check_every
        self._clock = clock
        self._last_check = clock()
        self._suspects: dict[TopicPartition, int] = {}
        self._polled_any = False
        self._reseeked: set[TopicPartition] = set()

    def saw(self, partitions: Iterable[TopicPartition]) -> None:
        """Records of these partitions were polled: the consumer is fetching."""
        for tp in partitions:
            self._polled_any = True
            self._reseeked.discard(tp)

    def forget(self) -> None:
        """Start over (after the consumer was renewed)."""
        self._suspects.clear()
        self._polled_any = False
        self._reseeked.clear()
        self._last_check = self._clock()

    def check(self, consumer: Any) -> Stall | None:
        """A :class:`Stall` when a partition is stuck, else None (also while it is not time yet)."""
        now = self._clock()
        if now - self._last_check < self._every:
            return None
        self._last_check = now
        polled_any, self._polled_any = self._polled_any, False
        assigned = sorted(consumer.assignment())
        if polled_any or not assigned:
            self._suspects.clear()
            return None
        try:
            ends = consumer.end_offsets(assigned, timeout_ms=OFFSETS_TIMEOUT_MS)
            positions = {tp: consumer.position(tp, timeout_ms=OFFSETS_TIMEOUT_MS) for tp in assigned}
        except KafkaError as exc:  # broker away or a rebalance under way: nothing to judge by
            log.debug("fetch check skipped: %r", exc)
            return None
        behind = {
            tp: pos for tp, pos in positions.items() if pos is not None and tp in ends and ends[tp] > pos
        }
        stuck = tuple(tp for tp, pos in behind.items() if self._suspects.get(tp) == pos)
        self._suspects = {tp: pos for tp, pos in behind.items() if tp not in stuck}
        if not stuck:
            return None
        remedy: Literal["reseek", "renew"] = "renew" if self._reseeked & set(stuck) else "reseek"
        self._reseeked.update(stuck)
        return Stall(stuck, {tp: behind[tp] for tp in stuck}, {tp: ends[tp] for tp in stuck}, remedy)
