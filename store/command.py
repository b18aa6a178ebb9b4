"""``wirewatch store`` (the sink service) and ``wirewatch migrate``."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Sequence

from prometheus_client import Histogram
from sqlalchemy import text

from store.config import SinkSettings
from store.database import make_engine
from store.migrate import upgrade
from store.sink import TaggedArticleWriter
from wirewatch.contract import ArticleTagged, utcnow
from wirewatch.kafka import BatchLoop, DeadLetterPublisher, ensure_topics, make_consumer, make_producer
from wirewatch.logging import setup_logging
from wirewatch.metrics import FRESHNESS_BUCKETS, ServiceMetrics, serve
from wirewatch.service import LagReporter, MetricsObserver, assigned_check, stop_on_signals
from wirewatch.settings import load_settings

log = logging.getLogger(__name__)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit after this many seconds without messages (default: run until SIGTERM)",
    )


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", default="head", help="target revision (default: head)")


def run_migrate(args: argparse.Namespace) -> int:
    settings = load_settings(SinkSettings)
    setup_logging(settings.log_level, settings.log_format)
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        upgrade(engine, args.revision)
    finally:
        engine.dispose()
    log.info("database schema at %s", args.revision)
    return 0


def run_store(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    settings = load_settings(SinkSettings)
    setup_logging(settings.log_level, settings.log_format)
    return run_sink(settings, stop or stop_on_signals(), idle_exit=args.idle_exit)


def run_sink(settings: SinkSettings, stop: threading.Event, idle_exit: float | None = None) -> int:
    """Run the sink until ``stop`` is set (or ``idle_exit`` seconds pass without messages)."""
    kafka = settings.kafka(client_id="wirewatch-store")
    engine = make_engine(settings.database_url.get_secret_value())
    ensure_topics(kafka, [settings.store_topic, settings.dead_letter_topic], settings.kafka_topic_partitions)
    metrics = ServiceMetrics("store")
    consumer = make_consumer(
        kafka, settings.store_group, settings.store_topic, max_poll_records=settings.store_batch_size
    )
    producer = make_producer(kafka)
    lag = LagReporter(
        kafka, settings.store_group, settings.store_topic, metrics, stop, settings.lag_report_seconds
    )
    metrics.add_readiness_check("kafka", lag.broker_reachable)
    metrics.add_readiness_check("database", lambda: _database_answers(engine))
    metrics.add_readiness_check("assigned", assigned_check(consumer))
    server = serve(metrics, settings.metrics_port) if settings.metrics_port else None
    loop = BatchLoop(
        consumer,
        TaggedArticleWriter(engine, on_stored=freshness_observer(metrics)),
        DeadLetterPublisher(producer, stage="store", topic=settings.dead_letter_topic),
        max_records=settings.store_batch_size,
        poll_timeout_ms=settings.store_poll_timeout_ms,
        observer=MetricsObserver(metrics),
    )
    metrics.up.labels("store").set(1)
    log.info("sink consuming %s as %s", settings.store_topic, settings.store_group)
    try:
        loop.run(stop, idle_exit_after=idle_exit)
    finally:
        metrics.up.labels("store").set(0)
        loop.close()
        producer.close(timeout=10)
        engine.dispose()
        if server:
            server.shutdown()
            server.server_close()
    log.info("sink stopped after %d records", loop.processed)
    return 0


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
