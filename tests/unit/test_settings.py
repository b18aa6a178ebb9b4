"""Settings: defaults match the local services, errors name the variable, secrets stay secret."""

from __future__ import annotations

import pytest

from store.config import SinkSettings
from wirewatch.errors import ConfigError
from wirewatch.settings import ServiceSettings, load_settings


def test_defaults_match_local_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WIREWATCH_KAFKA_BOOTSTRAP", "WIREWATCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(SinkSettings)
    assert settings.kafka.client_config()["bootstrap_servers"] == ["127.0.0.1:9092"]
    assert settings.database_url.get_secret_value().endswith("@127.0.0.1:5432/wirewatch")


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREWATCH_METRICS_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="WIREWATCH_METRICS_PORT"):
        load_settings(ServiceSettings)


def test_tls_and_sasl_settings_reach_the_client_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREWATCH_KAFKA_BOOTSTRAP", "k1:9093,k2:9093")
    monkeypatch.setenv("WIREWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("WIREWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("WIREWATCH_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("WIREWATCH_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("WIREWATCH_KAFKA_SSL_CAFILE", "/etc/ca.pem")
    settings = load_settings(ServiceSettings)
    config = settings.kafka.client_config()
    assert config["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("svc", "s3cret")
    assert config["ssl_cafile"] == "/etc/ca.pem"
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(settings.kafka)


def test_secrets_can_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "wirewatch_database_url").write_text("postgresql+psycopg://u:p@db:5432/x")
    monkeypatch.delenv("WIREWATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("WIREWATCH_SECRETS_DIR", str(tmp_path))
    settings = load_settings(SinkSettings)
    assert settings.database_url.get_secret_value() == "postgresql+psycopg://u:p@db:5432/x"
    assert "u:p@" not in repr(settings)


def test_topic_replication_factor_and_creation_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_settings(ServiceSettings).kafka
    assert (defaults.topic_replication_factor, defaults.create_topics) == (-1, True)
    monkeypatch.setenv("WIREWATCH_KAFKA_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("WIREWATCH_KAFKA_CREATE_TOPICS", "false")
    kafka = load_settings(ServiceSettings).kafka
    assert (kafka.topic_replication_factor, kafka.create_topics) == (3, False)
    monkeypatch.setenv("WIREWATCH_KAFKA_TOPIC_REPLICATION_FACTOR", "0")
    with pytest.raises(ConfigError, match="WIREWATCH_KAFKA_TOPIC_REPLICATION_FACTOR"):
        load_settings(ServiceSettings)


def test_kafka_settings_are_one_nested_model_read_from_the_same_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, item 1: the Kafka fields are defined once (``KafkaSettings``), not copied by hand."""
    assert not [name for name in ServiceSettings.model_fields if name.startswith("kafka_")]
    (tmp_path / "wirewatch_kafka_sasl_password").write_text("from-a-file")
    monkeypatch.setenv("WIREWATCH_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("WIREWATCH_KAFKA_TOPIC_PARTITIONS", "6")
    monkeypatch.setenv("WIREWATCH_KAFKA_SASL_MECHANISM", "PLAIN")
    settings = load_settings(SinkSettings)
    assert settings.kafka.topic_partitions == 6
    assert settings.kafka.client_config()["sasl_plain_password"] == "from-a-file"
    named = settings.kafka.for_client("wirewatch-store")
    assert (named.client_id, named.topic_partitions) == ("wirewatch-store", 6)
    monkeypatch.setenv("WIREWATCH_KAFKA_TOPIC_PARTITIONS", "0")
    with pytest.raises(ConfigError, match="WIREWATCH_KAFKA_TOPIC_PARTITIONS"):
        load_settings(SinkSettings)


def test_consumer_settings_come_from_each_stage_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from classify.config import ClassifierSettings
    from wirewatch import topics

    monkeypatch.setenv("WIREWATCH_STORE_BATCH_SIZE", "7")
    store = load_settings(SinkSettings).consumer
    classify = load_settings(ClassifierSettings).consumer
    assert (store.group, store.topic, store.batch_size) == (topics.STORE_GROUP, topics.TAGGED, 7)
    assert (classify.group, classify.topic) == (topics.CLASSIFY_GROUP, topics.RAW)
