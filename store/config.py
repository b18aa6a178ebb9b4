"""Settings of the sink service (``WIREWATCH_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from wirewatch import topics
from wirewatch.settings import ConsumerSettings, ServiceSettings

DEFAULT_DATABASE_URL = "postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:5432/wirewatch"


class SinkSettings(ServiceSettings):
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    """SQLAlchemy URL; a secret because it usually carries the password."""

    store_topic: str = topics.TAGGED
    store_group: str = topics.STORE_GROUP
    store_batch_size: int = Field(default=500, ge=1, le=10_000)
    store_poll_timeout_ms: int = Field(default=500, ge=10)
    database_statement_timeout: float = Field(default=60.0, ge=0)
    """Seconds one SQL statement of the sink may run (0: no limit); well under max.poll.interval."""
    link_incidents: bool = True
    """Link stored events into incidents inside the sink's transaction (``false``: store only)."""

    @property
    def consumer(self) -> ConsumerSettings:
        return ConsumerSettings(
            group=self.store_group,
            topic=self.store_topic,
            batch_size=self.store_batch_size,
            poll_timeout_ms=self.store_poll_timeout_ms,
        )


class MigrateSettings(SinkSettings):
    """``wirewatch migrate``: the owner's URL (``database_url``) plus the service roles to provision.

    A password here makes ``migrate`` create that role (LOGIN) when it is missing and the owner may
    (superuser or CREATEROLE); either way every existing role gets its grants on every run.
    """

    sink_db_role: str = "wirewatch_sink"
    sink_db_password: SecretStr | None = None
    reader_db_role: str = "wirewatch_reader"
    reader_db_password: SecretStr | None = None
    migrate_wait_seconds: float = Field(default=120.0, ge=0)
    """How long ``migrate`` waits for the database to accept connections (a server still starting)."""
