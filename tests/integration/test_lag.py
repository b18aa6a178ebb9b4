"""Consumer lag on the real broker: N unconsumed -> lag N and a time lag; caught up -> 0."""

from __future__ import annotations

import time

import pytest

from store.sink import TaggedArticleWriter
from tests.support.factories import seen, tagged
from tests.support.kafka import produce_raw, run_until
from wirewatch.contract import encode
from wirewatch.kafka import BatchLoop, DeadLetterPublisher, make_consumer, make_producer
from wirewatch.lag import measure_lag

pytestmark = pytest.mark.integration


def test_lag_counts_unconsumed_messages_then_drops_to_zero(
    kafka_settings, new_topic, new_group, migrated_engine
) -> None:
    topic, dlq, group = new_topic("test.tagged"), new_topic("test.dlq", 1), new_group("store")
    n = 17
    produce_raw(kafka_settings, topic, [(f"a{i}", encode(tagged(seen(f"a{i}")))) for i in range(n)])
    time.sleep(1.1)  # so the oldest unconsumed message has a measurable age

    before = measure_lag(kafka_settings, {group: [topic]})
    assert before.total == n
    assert {p.partition for p in before.partitions} == {0, 1, 2}
    assert all(p.committed is None for p in before.partitions)
    assert before.max_time_lag() >= 1.0

    consumer = make_consumer(kafka_settings, group, topic)
    loop = BatchLoop(
        consumer,
        TaggedArticleWriter(migrated_engine),
        DeadLetterPublisher(make_producer(kafka_settings), "store", dlq),
    )
    try:
        run_until(loop, lambda: loop.processed >= n)
    finally:
        loop.close()

    after = measure_lag(kafka_settings, {group: [topic]})
    assert after.total == 0
    assert after.max_time_lag() == 0.0
    assert sum(p.committed or 0 for p in after.partitions) == n
    assert after.to_json()["groups"] == {group: 0}


def test_lag_command_exit_status_for_probes(kafka_settings, new_topic, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from commands.cli import main

    monkeypatch.setenv("WIREWATCH_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    assert main(["lag", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"partitions", "groups", "total_lag", "max_time_lag_seconds"} <= set(payload)


def test_lag_command_measures_the_configured_store_group(  # type: ignore[no-untyped-def]
    kafka_settings, new_topic, new_group, monkeypatch, capsys
) -> None:
    """Issue 11, item 16: with WIREWATCH_STORE_GROUP renamed, `wirewatch lag` measures that group."""
    import json

    from commands.cli import main

    topic, group = new_topic("test.tagged"), new_group("renamed-store")
    produce_raw(kafka_settings, topic, [(f"a{i}", encode(tagged(seen(f"a{i}")))) for i in range(5)])
    monkeypatch.setenv("WIREWATCH_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    monkeypatch.setenv("WIREWATCH_STORE_GROUP", group)
    monkeypatch.setenv("WIREWATCH_STORE_TOPIC", topic)
    assert main(["lag", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["groups"][group] == 5
    assert {p["topic"] for p in payload["partitions"] if p["group"] == group} == {topic}


@pytest.mark.parametrize("poll_ms", [200, 5], ids=["poll-200ms", "poll-5ms-lost-join"])
def test_assignment_readiness_on_the_real_broker(kafka_settings, new_topic, new_group, poll_ms) -> None:  # type: ignore[no-untyped-def]
    """Issue 11, item 15: ready once the group assigned partitions (an idle member too), not after a timer.

    5 ms polls end before any join completes, so every join finishes unobserved: plain
    kafka-python 3.0 then leaves the leader rebalancing, silent and never rejoining
    (stuck in 6 of 6 tries), and the second member is never assigned; GroupConsumer
    (wirewatch/group_consumer.py) repairs it.
    """
    from wirewatch.service import AssignmentTracker

    topic, group = new_topic("test.assigned", partitions=1), new_group("assigned")
    first, second = AssignmentTracker(), AssignmentTracker()
    consumers = [make_consumer(kafka_settings, group, topic, listener=first)]
    try:
        assert not first.ready()
        deadline = time.monotonic() + 60
        while not first.ready() and time.monotonic() < deadline:
            consumers[0].poll(timeout_ms=poll_ms)
        assert first.ready() and {tp.partition for tp in first.partitions} == {0}
        consumers.append(make_consumer(kafka_settings, group, topic, listener=second))
        while not (first.ready() and second.ready()) and time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(timeout_ms=poll_ms)
        assert first.ready() and second.ready()
        assert len(first.partitions) + len(second.partitions) == 1  # one of them is an idle member
    finally:
        for consumer in consumers:
            consumer.close()
