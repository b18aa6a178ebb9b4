"""Fixtures shared by the whole suite.

Integration tests talk to the real Kafka broker and PostgreSQL server that
``make up`` starts (``make test`` starts them first). Every test gets its own
topics, consumer group and database, so tests never see each other's data.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text

from tests.support.database import drop_database
from tests.support.paths import SHARED
from wirewatch.settings import KafkaSettings

DATABASE_URL = os.environ.get(
    "WIREWATCH_DATABASE_URL", "postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:5432/wirewatch"
)
KAFKA_BOOTSTRAP = os.environ.get("WIREWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Property tests check behaviour, not speed: on a busy two-core machine one example can take longer
# than Hypothesis's default 200 ms deadline without anything being wrong (speed lives in bench/).
settings.register_profile("wirewatch", deadline=None)
settings.load_profile("wirewatch")


def _reachable(hostport: str) -> bool:
    host, _, port = hostport.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def _require(hostport: str, what: str) -> None:
    """Skip an integration test, saying why, when its service is down; in CI (``CI`` set, as
    ``.ci/run`` does) fail instead, since ``make test`` starts the services first."""
    if _reachable(hostport):
        return
    message = f"{what} is not answering on {hostport}: run `make up` (make test does it for you)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    _require(KAFKA_BOOTSTRAP, "Kafka")
    return KafkaSettings(bootstrap=KAFKA_BOOTSTRAP, client_id="wirewatch-tests")


@pytest.fixture
def new_topic(kafka_settings: KafkaSettings) -> Callable[..., str]:
    """Factory: a fresh topic (created, 3 partitions by default) whose name no other test uses."""
    from wirewatch.kafka import ensure_topics

    def make(prefix: str = "test", partitions: int = 3) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        ensure_topics(kafka_settings, [name], partitions=partitions)
        return name

    return make


@pytest.fixture
def new_group() -> Callable[[str], str]:
    return lambda prefix="test": f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def admin_engine() -> Iterator[Engine]:
    host = DATABASE_URL.split("@", 1)[1].split("/", 1)[0]
    _require(host, "PostgreSQL")
    engine = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(admin_engine: Engine) -> Iterator[str]:
    """A brand-new empty database for this test; dropped afterwards."""
    name = f"wirewatch_test_{uuid.uuid4().hex[:12]}"
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    drop_database(admin_engine, name)


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database migrated to head."""
    from store.database import make_engine
    from store.migrate import upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
