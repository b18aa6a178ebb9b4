"""``wirewatch store`` (the sink service) and ``wirewatch migrate``."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Sequence

from prometheus_client import Histogram
from pydantic import SecretStr
from sqlalchemy import text

from store.config import MigrateSettings, SinkSettings
from store.database import make_engine
from store.migrate import ServiceRole, apply_role_grants, upgrade, wait_for_database
from store.sink import TaggedArticleWriter
from wirewatch.contract import ArticleTagged, utcnow
from wirewatch.kafka import ensure_topics
from wirewatch.logging import setup_logging
from wirewatch.metrics import FRESHNESS_BUCKETS, ServiceMetrics
from wirewatch.service import add_idle_exit_argument, run_consumer_service, stop_on_signals
from wirewatch.settings import load_settings

log = logging.getLogger(__name__)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    add_idle_exit_argument(parser)


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", default="head", help="target revision (default: head)")


def run_migrate(args: argparse.Namespace) -> int:
    """Wait for the database, upgrade the schema, then (at head) create/grant the service roles."""
    settings = load_settings(MigrateSettings)
    setup_logging(settings.log_level, settings.log_format)
    # No statement limit: a migration may rebuild an index on a large table.
    engine = make_engine(settings.database_url.get_secret_value(), statement_timeout=None)
    try:
        wait_for_database(engine, settings.migrate_wait_seconds)
        upgrade(engine, args.revision)
        log.info("database schema at %s", args.revision)
        if args.revision == "head":
            roles = [
                ServiceRole(settings.sink_db_role, writes=True, password=_secret(settings.sink_db_password)),
                ServiceRole(
                    settings.reader_db_role, writes=False, password=_secret(settings.reader_db_password)
                ),
            ]
            with engine.begin() as connection:
                apply_role_grants(connection, roles)
    finally:
        engine.dispose()
    return 0


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def run_store(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    settings = load_settings(SinkSettings)
    setup_logging(settings.log_level, settings.log_format)
    return run(settings, stop or stop_on_signals(), idle_exit=args.idle_exit)


def run(settings: SinkSettings, stop: threading.Event, idle_exit: float | None = None) -> int:
    """The sink service: until ``stop`` is set (or ``idle_exit`` seconds pass without messages).

    Every stage's service has this shape, ``run(settings, stop)``; ``run_store`` is the
    command line's adapter (settings from the environment, stop on SIGTERM).
    """
    engine = make_engine(
        settings.database_url.get_secret_value(), statement_timeout=settings.database_statement_timeout
    )
    kafka = settings.kafka.for_client("wirewatch-store")
    ensure_topics(kafka, [settings.store_topic, settings.dead_letter_topic])
    metrics = ServiceMetrics("store")
    if not settings.link_incidents:
        log.warning("incident linking is off (WIREWATCH_LINK_INCIDENTS=false): events are stored unlinked")
    try:
        return run_consumer_service(
            "store",
            settings,
            settings.consumer,
            TaggedArticleWriter(
                engine, on_stored=freshness_observer(metrics), link_incidents=settings.link_incidents
            ),
            stop,
            metrics=metrics,
            idle_exit=idle_exit,
            readiness={"database": lambda: _database_answers(engine)},
        )
    finally:
        engine.dispose()


def freshness_observer(metrics: ServiceMetrics) -> Callable[[Sequence[ArticleTagged]], None]:
    """Observe, per stored article, the time since publication and since first sight."""
    freshness = Histogram(
        "wirewatch_freshness_seconds",
        "Time from an article's publication / first sight to its row in PostgreSQL",
        ["since"],
        buckets=FRESHNESS_BUCKETS,
        registry=metrics.registry,
    )

    def observe(stored: Sequence[ArticleTagged]) -> None:
        now = utcnow()
        for msg in stored:
            freshness.labels("first_seen").observe((now - msg.article.first_seen_at).total_seconds())
            if msg.article.published_at is not None and not msg.article.published_at_inferred:
                freshness.labels("published").observe(
                    max(0.0, (now - msg.article.published_at).total_seconds())
                )

    return observe


def _database_answers(engine: object) -> bool:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text("SELECT 1"))
    return True
