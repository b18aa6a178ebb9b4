"""``wirewatch poll [--once] [--dry-run] [--feeds FILE]``: wiring the poller to the real world.

Builds the settings, the feeds list, the state, the fetcher and the publisher
(Kafka, or JSON lines on stdout with ``--dry-run``), then runs one cycle
(:func:`poll_once`) or the service until SIGTERM (:func:`run`). Same shape as
the other stages: ``run_poll(args)`` is the command-line adapter, ``run(settings,
stop)`` the service. This is the only module of ``ingest`` that prints; it
connects to nothing itself (Kafka is :mod:`ingest.publisher`'s, lazily).

Exit codes: 0 when the poller ran (broken feeds are reported, not fatal);
75 (EX_TEMPFAIL) when ``--once`` gave up on an unreachable Kafka (nothing was
marked seen, so the next run publishes it); 78 for configuration errors
(raised as ConfigError, mapped by the dispatcher).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ingest.config import PollerSettings
from ingest.feeds import FeedDeclaration, load_feeds
from ingest.fetch import Fetcher
from ingest.health import FeedHealth
from ingest.poller import CycleReport, Poller, Publisher, PublishGaveUpError
from ingest.publisher import JsonLinesPublisher, KafkaPublisher
from ingest.redaction import install_log_redaction
from ingest.state import PollerState
from wirewatch.errors import EX_TEMPFAIL
from wirewatch.logging import setup_logging
from wirewatch.metrics import ServiceMetrics, serve
from wirewatch.service import stop_on_signals
from wirewatch.settings import load_settings

log = logging.getLogger(__name__)


def add_poll_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="poll every feed once, then exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print one JSON article per line on stdout instead of producing to Kafka; state is not changed",
    )
    parser.add_argument(
        "--feeds", metavar="FILE", default=None, help="feeds file, YAML or OPML (default $WIREWATCH_FEEDS)"
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", default=None, help="default $WIREWATCH_STATE_DIR (.state)"
    )
    parser.add_argument("--topic", default=None, help="topic to produce to (default $WIREWATCH_POLL_TOPIC)")


def run_poll(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    overrides = {
        key: value
        for key, value in (("feeds", args.feeds), ("state_dir", args.state_dir), ("poll_topic", args.topic))
        if value is not None
    }
    settings = load_settings(PollerSettings, **overrides)
    setup_logging(settings.log_level, settings.log_format)
    install_log_redaction()  # feed URLs may carry credentials: no log line shows them
    if args.once:
        report = poll_once(settings, dry_run=args.dry_run)
        return 0 if report is not None else EX_TEMPFAIL
    return run(settings, stop or stop_on_signals(), dry_run=args.dry_run)


def poll_once(
    settings: PollerSettings,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    publisher: Publisher | None = None,
    feeds: Sequence[FeedDeclaration] | None = None,
) -> CycleReport | None:
    """Every feed once (the ``--once`` path). None when Kafka stayed unreachable."""
    metrics = ServiceMetrics("poll")  # not served: --once reports through its log lines
    poller = build_poller(
        settings, dry_run=dry_run, out=out, publisher=publisher, feeds=feeds, metrics=metrics, once=True
    )
    try:
        report = asyncio.run(_once(poller))
    except PublishGaveUpError as exc:
        log.error("giving up: %s", exc)
        return None
    finally:
        _close(poller)
    _summarise(report, dry_run)
    return report


def run(
    settings: PollerSettings,
    stop: threading.Event,
    *,
    dry_run: bool = False,
    publisher: Publisher | None = None,
) -> int:
    """The poller service: cycle after cycle until ``stop`` is set, with metrics and health."""
    metrics = ServiceMetrics("poll")
    poller = build_poller(settings, dry_run=dry_run, publisher=publisher, metrics=metrics)
    if isinstance(poller.publisher, KafkaPublisher):
        metrics.add_readiness_check("kafka", poller.publisher.ready)
    server = serve(metrics, settings.metrics_port) if settings.metrics_port else None
    metrics.up.labels("poll").set(1)
    log.info("polling %d feeds (state in %s)", len(poller.feeds), settings.state_dir)
    try:
        asyncio.run(_forever(poller, stop))
    except PublishGaveUpError as exc:  # only when stopping while Kafka is down
        log.warning("stopped with unpublished articles (they will be fetched again): %s", exc)
    finally:
        metrics.up.labels("poll").set(0)
        _close(poller)
        if server:
            server.shutdown()
    return 0


def build_poller(
    settings: PollerSettings,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    publisher: Publisher | None = None,
    feeds: Sequence[FeedDeclaration] | None = None,
    metrics: ServiceMetrics,
    once: bool = False,
) -> Poller:
    feeds = list(feeds) if feeds is not None else load_feeds(settings.feeds_path())
    state = PollerState(Path(settings.state_dir), read_only=dry_run)
    if publisher is None:
        publisher = (
            JsonLinesPublisher(out or sys.stdout)
            if dry_run
            else KafkaPublisher(
                settings.kafka.for_client("wirewatch-poll"),
                settings.poll_topic,
                settings.kafka.topic_partitions,
            )
        )
    health = FeedHealth(metrics, silent_after=settings.poll_silent_after)
    give_up_after = settings.publish_give_up_after if once else None
    return Poller(
        feeds,
        state,
        publisher,
        Fetcher(settings),
        settings=settings,
        health=health,
        give_up_after=give_up_after,
    )


async def _once(poller: Poller) -> CycleReport:
    try:
        return await poller.run_once()
    finally:
        await poller.close()


async def _forever(poller: Poller, stop: threading.Event) -> None:
    try:
        await poller.run_forever(stop.is_set)
    finally:
        await poller.close()


def _close(poller: Poller) -> None:
    poller.publisher.close()
    poller.state.close()


def _summarise(report: CycleReport, dry_run: bool) -> None:
    outcomes = report.outcomes.values()
    ok = sum(1 for o in outcomes if o.outcome == "ok")
    unchanged = sum(1 for o in outcomes if o.outcome == "not_modified")
    log.info(
        "polled %d feeds in %.1fs: %d ok, %d not modified, %d failed; %s %d articles",
        len(report.outcomes),
        report.seconds,
        ok,
        unchanged,
        len(report.failed),
        "would publish" if dry_run else "published",
        report.published,
    )
    for o in report.failed:
        log.warning("feed %s: %s", o.feed, o.detail or o.outcome)
