"""Process lifecycle shared by the long-running services: signals, metrics server, loop wiring.

SIGTERM and SIGINT set a stop event; the batch loop checks it between batches,
so the batch in hand is finished and committed before the process exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from kafka import KafkaConsumer

from wirewatch.kafka import LoopObserver
from wirewatch.lag import measure_lag
from wirewatch.metrics import ServiceMetrics
from wirewatch.settings import KafkaSettings, ServiceSettings

log = logging.getLogger(__name__)


def add_idle_exit_argument(parser: argparse.ArgumentParser) -> None:
    """``--idle-exit SECONDS``, shared by the consumer services (demos and tests stop them by it)."""
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit after this many seconds without messages (default: run until SIGTERM)",
    )


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM/SIGINT (only installable from the main thread)."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, finishing the batch in hand", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
    return stop


class MetricsObserver(LoopObserver):
    """Feeds the batch loop's outcomes into a service's Prometheus series."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._m = metrics

    def batch_done(self, size: int, failed: int, seconds: float) -> None:
        s = self._m.service
        self._m.records_in.labels(s).inc(size)
        self._m.records_out.labels(s).inc(size - failed)
        self._m.batch_size.labels(s).observe(size)
        self._m.batch_seconds.labels(s).observe(seconds)

    def batch_retry(self, error: Exception) -> None:
        self._m.batch_retries.labels(self._m.service).inc()

    def record_failed(self, reason: str) -> None:
        self._m.records_failed.labels(self._m.service, reason).inc()


def assigned_check(consumer: KafkaConsumer, grace_seconds: float = 30.0) -> Callable[[], bool]:
    """Readiness: the consumer has partitions (after a start-up grace, an idle group member is fine)."""
    started = time.monotonic()

    def check() -> bool:
        return bool(consumer.assignment()) or time.monotonic() - started > grace_seconds

    return check


class LagReporter:
    """Refreshes ``kafka_consumergroup_lag`` for one group every ``interval`` seconds on its own thread.

    It uses its own admin client (KafkaConsumer is not thread-safe), so a
    successful measurement doubles as the service's "broker reachable" signal.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        group: str,
        topic: str,
        metrics: ServiceMetrics,
        stop: threading.Event,
        interval: float = 15.0,
    ) -> None:
        self._kafka, self._group, self._topic = kafka, group, topic
        self._metrics, self._stop, self._interval = metrics, stop, interval
        self.last_ok: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"{metrics.service}-lag", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                for p in measure_lag(self._kafka, {self._group: [self._topic]}).partitions:
                    self._metrics.consumer_lag.labels(p.group, p.topic, str(p.partition)).set(p.lag)
                self.last_ok = time.monotonic()
            except Exception:  # lag is informative; a failed measurement must not stop the service
                log.debug("lag measurement failed", exc_info=True)
            if self._stop.wait(self._interval):
                return

    def broker_reachable(self) -> bool:
        """Readiness: the broker answered within the last three measurement intervals."""
        return self.last_ok is not None and time.monotonic() - self.last_ok < 3 * self._interval + 10


def run_consumer_service(
    *,
    service: str,
    settings: ServiceSettings,
    kafka: KafkaSettings,
    group: str,
    topic: str,
    metrics: ServiceMetrics,
    handler: Callable[[list], list],  # type: ignore[type-arg]
    batch_size: int,
    poll_timeout_ms: int,
    stop: threading.Event,
    idle_exit: float | None = None,
    readiness: dict[str, Callable[[], bool]] | None = None,
    producer: Any = None,
) -> int:
    """The consume -> handle -> commit service both consumer stages run, with metrics and health.

    Owns the consumer, the lag reporter, the /metrics server and the orderly
    shutdown; the stage brings its handler. Dead letters go through ``producer``
    when the stage shares its own (the caller then closes it), else through one
    made and closed here.
    """
    from wirewatch.kafka import BatchLoop, DeadLetterPublisher, make_consumer, make_producer
    from wirewatch.metrics import serve

    consumer = make_consumer(kafka, group, topic, max_poll_records=batch_size)
    own_producer = producer is None
    producer = make_producer(kafka) if own_producer else producer
    lag = LagReporter(kafka, group, topic, metrics, stop, settings.lag_report_seconds)
    metrics.add_readiness_check("kafka", lag.broker_reachable)
    for name, check in (readiness or {}).items():
        metrics.add_readiness_check(name, check)
    metrics.add_readiness_check("assigned", assigned_check(consumer))
    server = serve(metrics, settings.metrics_port) if settings.metrics_port else None
    loop = BatchLoop(
        consumer,
        handler,
        DeadLetterPublisher(producer, stage=service, topic=settings.dead_letter_topic),
        max_records=batch_size,
        poll_timeout_ms=poll_timeout_ms,
        observer=MetricsObserver(metrics),
    )
    metrics.up.labels(service).set(1)
    log.info("%s consuming %s as %s", service, topic, group)
    try:
        loop.run(stop, idle_exit_after=idle_exit)
    finally:
        metrics.up.labels(service).set(0)
        loop.close()
        if own_producer:
            producer.close(timeout=10)
        if server:
            server.shutdown()
            server.server_close()
    log.info("%s stopped after %d records", service, loop.processed)
    return 0
