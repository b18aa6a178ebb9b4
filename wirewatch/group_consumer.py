"""A KafkaConsumer that cannot be left half-joined by kafka-python's lost-join race.

kafka-python 3.0 runs JoinGroup/SyncGroup as a background task and awaits it
only for the time left in the current ``poll()``. When the join outlasts the
poll (a busy machine, a short poll timeout) the task finishes unobserved: the
member keeps state REBALANCING with heartbeats off, and its assignment is never
applied. The next poll re-sends the join only while ``need_rejoin()`` holds;
but for the group leader that check is the metadata snapshot, which the
finished task itself made current. So ``need_rejoin()`` turns false, no join is
ever sent again, the broker evicts the silent member a session timeout later,
and a second member waits for a rebalance that never completes: a zombie
that only a restart cures. A fresh-clone test run met it as a readiness test whose
second member was never assigned.

:class:`GroupConsumer` checks after every poll: a member still REBALANCING
that no longer thinks it must rejoin asks for a rejoin. If its join had
finished, the next poll sends a new one (one extra rebalance); if the join is
still in flight (a leader's snapshot turns current before SyncGroup answers),
kafka-python awaits the same unfinished task, so asking costs nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer
from kafka.coordinator.base import MemberState

log = logging.getLogger(__name__)


class GroupConsumer(KafkaConsumer):  # type: ignore[misc]  # kafka-python ships no type hints
    """KafkaConsumer plus the lost-join repair described in the module docstring."""

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        records = super().poll(*args, **kwargs)
        self.repair_lost_join()
        return records

    def repair_lost_join(self) -> bool:
        """Request a rejoin when the member is rebalancing with none pending; True when it did.

        A consumer without a group never leaves UNJOINED, so it is never touched.
        """
        coordinator = self._coordinator
        if coordinator.state is MemberState.REBALANCING and not coordinator.need_rejoin():
            log.warning(
                "group %s: rebalancing with no rejoin pending (a join outlasted its poll); rejoining",
                coordinator.group_id,
            )
            coordinator.request_rejoin()
            return True
        return False
