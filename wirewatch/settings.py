"""Settings shared by every service, read from ``WIREWATCH_*`` environment variables.

One frozen settings object per service is built in ``main()`` and passed down;
nothing here is read at import time. Each stage subclasses
:class:`ServiceSettings` with its own fields. Secrets are ``SecretStr`` and may
also come from files in ``WIREWATCH_SECRETS_DIR`` (one file per field name, the
Docker/Kubernetes secrets convention), so they never need to sit in the
environment or in logs.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.dataclasses import dataclass
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from wirewatch import topics
from wirewatch.errors import ConfigError

ENV_PREFIX = "WIREWATCH_"


@dataclass(frozen=True)
class KafkaSettings:
    """Connection and topic-creation settings handed to every kafka-python client.

    Defined once: a service reads them as ``settings.kafka`` from ``WIREWATCH_KAFKA_*``
    (``WIREWATCH_KAFKA_BOOTSTRAP`` -> ``bootstrap``), and each client names itself with
    :meth:`for_client`.
    """

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "wirewatch"
    topic_partitions: int = Field(default=3, ge=1)
    """Partitions of the topics wirewatch creates."""
    topic_replication_factor: int = Field(default=-1, ge=-1, le=32767)
    """Replicas of the topics wirewatch creates; -1: the broker's ``default.replication.factor``."""
    create_topics: bool = True
    """False when topics are managed outside wirewatch (Strimzi ``KafkaTopic``): never create any."""

    @field_validator("topic_replication_factor")
    @classmethod
    def _replicas(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be -1 (the broker default) or at least 1")
        return value

    def for_client(self, client_id: str) -> KafkaSettings:
        """The same settings for a client that names itself ``client_id`` (broker logs, quotas)."""
        return dataclasses.replace(self, client_id=client_id)

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


@dataclass(frozen=True)
class ConsumerSettings:
    """What a consumer service reads from Kafka: its group, its input topic and its batching.

    Each consumer stage builds one from its own ``WIREWATCH_<STAGE>_*`` variables
    (``consumer`` on its settings) and hands it whole to
    :func:`wirewatch.service.run_consumer_service`.
    """

    group: str
    topic: str
    batch_size: int = Field(ge=1)
    poll_timeout_ms: int = Field(ge=10)


class ServiceSettings(BaseSettings):
    """What every wirewatch service reads: Kafka (``WIREWATCH_KAFKA_*``), logging, metrics."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="ignore",
        # WIREWATCH_KAFKA_SECURITY_PROTOCOL -> kafka.security_protocol: split once, after the
        # model's name, so field names keep their underscores. Secrets files follow the same rule.
        env_nested_delimiter="_",
        env_nested_max_split=1,
        secrets_nested_delimiter="_",
    )

    kafka: KafkaSettings = KafkaSettings()
    dead_letter_topic: str = topics.DEAD_LETTER

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Port of the /metrics, /healthz and /readyz endpoint; 0 turns it off."""
    lag_report_seconds: float = Field(default=15.0, gt=0)
    """How often a consumer service refreshes its kafka_consumergroup_lag series."""
    stall_after_seconds: float = Field(default=600.0, ge=0)
    """/healthz fails when a consumer loop made no progress this long while its group has lag (0: off)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Secrets files named like the variables, nested ones included (wirewatch_kafka_sasl_password).
        secrets = NestedSecretsSettingsSource(file_secret_settings)  # type: ignore[arg-type]
        return init_settings, env_settings, dotenv_settings, secrets


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings object, turning validation errors into a ConfigError naming the variable."""
    secrets_dir = os.environ.get(f"{ENV_PREFIX}SECRETS_DIR")
    try:
        if secrets_dir:
            return cls(_secrets_dir=secrets_dir, **overrides)  # type: ignore[call-arg]
        return cls(**overrides)
    except ValidationError as exc:
        problems = [f"{_variable(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a validation error's location (``("kafka", "bootstrap")``)."""
    return ENV_PREFIX + "_".join(str(part) for part in loc if isinstance(part, str)).upper()
