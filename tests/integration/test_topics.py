"""Topic creation on the real broker (issue 11, item 1), and consumers joining a new topic.

Every stage calls ``ensure_topics`` at start; it used to ask for one replica,
so on a multi-broker cluster the first pod created unreplicated topics.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import InvalidReplicationFactorError

from wirewatch.kafka import await_partition_metadata, ensure_topics, make_admin, make_consumer
from wirewatch.settings import KafkaSettings

pytestmark = pytest.mark.integration


def _name(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex[:10]}"


def _broker_default_replicas(admin: KafkaAdminClient) -> int:
    broker = str(admin.describe_cluster()["brokers"][0]["broker_id"])
    resource = ConfigResource(ConfigResourceType.BROKER, broker, {"default.replication.factor": None})
    found = admin.describe_configs([resource], config_filter="all")
    return int(found["broker"][broker]["default.replication.factor"]["value"])


def test_created_topics_use_the_broker_default_replication_factor(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[dict] = []
    create = KafkaAdminClient.create_topics

    def spy(self, new_topics, *args, **kwargs):  # type: ignore[no-untyped-def]
        requests.append(new_topics)
        return create(self, new_topics, *args, **kwargs)

    monkeypatch.setattr(KafkaAdminClient, "create_topics", spy)
    name = _name("replicas")
    assert ensure_topics(kafka_settings, [name], partitions=2) == []
    assert requests == [{name: {"num_partitions": 2, "replication_factor": -1}}]

    admin = make_admin(kafka_settings)
    try:
        (topic,) = admin.describe_topics([name])
        assert len(topic["partitions"]) == 2
        default = _broker_default_replicas(admin)
        assert all(len(p["replica_nodes"]) == default for p in topic["partitions"])
    finally:
        admin.close()


def test_the_replication_factor_setting_reaches_the_broker(kafka_settings: KafkaSettings) -> None:
    # The local broker is a single node: asking for 2 replicas must be refused by the broker itself,
    # which shows the setting is what ensure_topics asks for.
    two = dataclasses.replace(kafka_settings, topic_replication_factor=2)
    with pytest.raises(InvalidReplicationFactorError):
        ensure_topics(two, [_name("two-replicas")], partitions=1)


def test_with_creation_off_nothing_is_created(kafka_settings: KafkaSettings) -> None:
    managed = dataclasses.replace(kafka_settings, create_topics=False)
    name = _name("managed")
    assert ensure_topics(managed, [name]) == [name]
    admin = make_admin(kafka_settings)
    try:
        assert name not in admin.list_topics()
    finally:
        admin.close()
    ensure_topics(kafka_settings, [name], partitions=1)  # exists now: nothing missing, nothing created
    assert ensure_topics(managed, [name]) == []


class _Assignments(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.seen: list[set[int]] = []

    def on_partitions_revoked(self, _revoked: object) -> None:
        pass

    def on_partitions_assigned(self, assigned) -> None:  # type: ignore[no-untyped-def]
        self.seen.append({tp.partition for tp in assigned})


def test_a_consumer_of_a_new_topic_is_assigned_its_partitions_on_first_join(
    kafka_settings: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: a consumer joined before it knew a just-created topic's partitions, was assigned
    # nothing, and depended on a later metadata update to rejoin; kafka-python can lose that update
    # (the end-to-end test's services then sat idle on a busy machine). The first assignment must
    # be the whole topic.
    name = _name("join")
    ensure_topics(kafka_settings, [name], partitions=3)
    listener = _Assignments()
    with caplog.at_level("WARNING", logger="kafka.coordinator.assignors"):
        consumer = make_consumer(kafka_settings, f"test-join-{uuid.uuid4().hex[:8]}", name, listener=listener)
        try:
            deadline = time.monotonic() + 60
            while not listener.seen and time.monotonic() < deadline:
                consumer.poll(timeout_ms=500)
        finally:
            consumer.close()
    assert listener.seen, "the consumer never joined its group"
    assert listener.seen[0] == {0, 1, 2}
    assert "No partition metadata" not in caplog.text


def test_waiting_for_a_topic_that_does_not_exist_gives_up(kafka_settings: KafkaSettings) -> None:
    consumer = make_consumer(kafka_settings, f"test-wait-{uuid.uuid4().hex[:8]}")
    try:
        started = time.monotonic()
        assert await_partition_metadata(consumer, [_name("absent")], timeout=1.0) is False
        assert time.monotonic() - started < 30
    finally:
        consumer.close()
