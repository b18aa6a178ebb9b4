"""Settings shared by every service, read from ``WIREWATCH_*`` environment variables.

One frozen settings object per service is built in ``main()`` and passed down;
nothing here is read at import time. Each stage subclasses
:class:`ServiceSettings` with its own fields. Secrets are ``SecretStr`` and may
also come from files in ``WIREWATCH_SECRETS_DIR`` (one file per field name, the
Docker/Kubernetes secrets convention), so they never need to sit in the
environment or in logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wirewatch.errors import ConfigError

ENV_PREFIX = "WIREWATCH_"


@dataclass(frozen=True)
class KafkaSettings:
    """Connection settings handed to every kafka-python client."""

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "wirewatch"
    topic_replication_factor: int = -1
    """Replicas of the topics wirewatch creates; -1: the broker's ``default.replication.factor``."""
    create_topics: bool = True
    """False when topics are managed outside wirewatch (Strimzi ``KafkaTopic``): never create any."""

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments common to KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap.split(",") if s.strip()],
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
            # kafka-python backs off reconnects up to 30 s; after a broker restart that left every
            # stage idle for ~20 s. Two seconds caps the wait at a handful of cheap connect attempts.
            "reconnect_backoff_max_ms": 2_000,
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        ssl_files = {
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        config.update({name: path for name, path in ssl_files.items() if path})
        return config


class ServiceSettings(BaseSettings):
    """What every wirewatch service reads: Kafka, logging, metrics."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_topic_replication_factor: int = Field(default=-1, ge=-1, le=32767)
    """Replicas of topics wirewatch creates; -1 (default): the broker's default.replication.factor."""
    kafka_create_topics: bool = True
    """Create missing topics at start; false when an operator manages them (Strimzi KafkaTopic)."""
    dead_letter_topic: str = "news.dlq.v1"

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Port of the /metrics, /healthz and /readyz endpoint; 0 turns it off."""
    lag_report_seconds: float = Field(default=15.0, gt=0)
    """How often a consumer service refreshes its kafka_consumergroup_lag series."""
    stall_after_seconds: float = Field(default=600.0, ge=0)
    """/healthz fails when a consumer loop made no progress this long while its group has lag (0: off)."""

    @field_validator("kafka_topic_replication_factor")
    @classmethod
    def _replicas(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be -1 (the broker default) or at least 1")
        return value

    def kafka(self, client_id: str = "wirewatch") -> KafkaSettings:
        return KafkaSettings(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            client_id=client_id,
            topic_replication_factor=self.kafka_topic_replication_factor,
            create_topics=self.kafka_create_topics,
        )


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings object, turning validation errors into a ConfigError naming the variable."""
    secrets_dir = os.environ.get(f"{ENV_PREFIX}SECRETS_DIR")
    try:
        if secrets_dir:
            return cls(_secrets_dir=secrets_dir, **overrides)  # type: ignore[call-arg]
        return cls(**overrides)
    except ValidationError as exc:
        problems = [f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
