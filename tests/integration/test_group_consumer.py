"""kafka-python's lost-join race on the real broker, and GroupConsumer's repair of it."""

from __future__ import annotations

import time

import pytest

from wirewatch.kafka import make_consumer
from wirewatch.service import AssignmentTracker

pytestmark = pytest.mark.integration


def test_members_polling_with_tiny_timeouts_still_share_the_group(
    kafka_settings, new_topic, new_group
) -> None:  # type: ignore[no-untyped-def]
    """5 ms polls end before any join completes, so every join finishes unobserved.

    Plain kafka-python 3.0 leaves the leader REBALANCING with heartbeats off and
    never rejoins (measured: stuck in 6 of 6 tries); the second member then waits
    forever for its assignment.
    """
    topic, group = new_topic("test.lostjoin", partitions=2), new_group("lostjoin")
    trackers = [AssignmentTracker(), AssignmentTracker()]
    consumers = [make_consumer(kafka_settings, group, topic, listener=trackers[0])]
    try:
        deadline = time.monotonic() + 60
        while not trackers[0].ready() and time.monotonic() < deadline:
            consumers[0].poll(timeout_ms=5)
        assert trackers[0].ready(), "the first member never completed its own join"
        consumers.append(make_consumer(kafka_settings, group, topic, listener=trackers[1]))
        while not all(t.ready() for t in trackers) and time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(timeout_ms=5)
        assert [t.ready() for t in trackers] == [True, True]
        assert sorted(tp.partition for t in trackers for tp in t.partitions) == [0, 1]
        assert all(len(t.partitions) == 1 for t in trackers)
    finally:
        for consumer in consumers:
            consumer.close()
