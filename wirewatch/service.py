"""Process lifecycle shared by the long-running services: signals, metrics server, loop wiring.

SIGTERM and SIGINT set a stop event; the batch loop checks it between batches,
so the batch in hand is finished and committed before the process exits.

Health of a consumer service:

* ready (``/readyz``): the broker answered lately, the stage's own checks pass
  (the sink's database), and the consumer is a member of its group with a
  completed assignment (:class:`AssignmentTracker`; an idle member with no
  partitions counts, one that is between rebalances or never joined does not);
* alive (``/healthz``): :class:`ProgressCheck`: the loop committed a batch or
  found nothing to do within ``WIREWATCH_STALL_AFTER_SECONDS``, or the group's
  lag is zero. A loop retrying one batch forever, or hung inside the handler,
  fails it, so the orchestrator restarts the process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import TopicPartition

from wirewatch.fetch_watchdog import FetchWatchdog
from wirewatch.kafka import LoopObserver
from wirewatch.lag import measure_lag
from wirewatch.metrics import ServiceMetrics
from wirewatch.settings import ConsumerSettings, KafkaSettings, ServiceSettings

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

    def fetch_stalled(self, remedy: str, partitions: int) -> None:
        self._m.fetch_stalls.labels(self._m.service, remedy).inc(partitions)


class AssignmentTracker(ConsumerRebalanceListener):
    """Readiness from the group protocol itself: true between an assignment and the next revocation.

    kafka-python calls ``on_partitions_revoked`` before every rejoin (and
    ``on_partitions_lost`` when the member was evicted) and
    ``on_partitions_assigned`` when a join completed, with an empty set for
    an idle member of a group that has more members than partitions.
    """

    def __init__(self) -> None:
        self._member = False
        self.partitions: frozenset[TopicPartition] = frozenset()

    def on_partitions_revoked(self, _revoked: object) -> None:
        self._member = False

    def on_partitions_lost(self, _lost: object) -> None:
        self._member = False

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.partitions = frozenset(assigned)
        self._member = True
        log.info(
            "assigned %s",
            ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(self.partitions)) or "nothing",
        )

    def ready(self) -> bool:
        return self._member


class ProgressCheck:
    """Liveness: false once the loop made no progress for ``stall_after`` seconds while lag > 0.

    ``last_progress`` is the loop's :attr:`~wirewatch.kafka.BatchLoop.last_progress`;
    ``lag`` the group's last measured lag (``None`` when unknown: a broker that
    does not answer is not a reason to restart, it is what readiness reports).
    ``stall_after <= 0`` turns the check off.
    """

    def __init__(
        self,
        last_progress: Callable[[], float],
        lag: Callable[[], int | None],
        stall_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._last_progress, self._lag, self._stall_after, self._clock = (
            last_progress,
            lag,
            stall_after,
            clock,
        )

    def age(self) -> float:
        return max(0.0, self._clock() - self._last_progress())

    def __call__(self) -> bool:
        if self._stall_after <= 0 or self.age() < self._stall_after:
            return True
        lag = self._lag()
        if lag is None or lag == 0:
            return True
        log.error("no progress for %.0fs while the group is %d messages behind: unhealthy", self.age(), lag)
        return False


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
        interval: float = 15.0,
    ) -> None:
        self._kafka, self._group, self._topic = kafka, group, topic
        self._metrics, self._interval = metrics, interval
        self._closed = threading.Event()
        self.last_ok: float | None = None
        self.last_lag: int | None = None
        self._thread = threading.Thread(target=self._run, name=f"{metrics.service}-lag", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                report = measure_lag(self._kafka, {self._group: [self._topic]})
                for p in report.partitions:
                    self._metrics.consumer_lag.labels(p.group, p.topic, str(p.partition)).set(p.lag)
                self.last_lag = report.total
                self.last_ok = time.monotonic()
            except Exception:  # lag is informative; a failed measurement must not stop the service
                log.debug("lag measurement failed", exc_info=True)
            if self._closed.wait(self._interval):
                return

    def close(self) -> None:
        """Stop measuring (the service loop ended, by a signal or by ``--idle-exit``)."""
        self._closed.set()
        self._thread.join(timeout=5)

    def broker_reachable(self) -> bool:
        """Readiness: the broker answered within the last three measurement intervals."""
        return self.last_ok is not None and time.monotonic() - self.last_ok < 3 * self._interval + 10

    def current_lag(self) -> int | None:
        """The group's total lag if measured within the last three intervals, else ``None``."""
        return self.last_lag if self.broker_reachable() else None


def run_consumer_service(
    service: str,
    settings: ServiceSettings,
    consumer: ConsumerSettings,
    handler: Callable[[list], list],  # type: ignore[type-arg]
    stop: threading.Event,
    *,
    metrics: ServiceMetrics,
    idle_exit: float | None = None,
    readiness: dict[str, Callable[[], bool]] | None = None,
    producer: Any = None,
) -> int:
    """The consume -> handle -> commit service both consumer stages run, with metrics and health.

    Owns the consumer (``consumer``: group, topic, batching; Kafka from
    ``settings.kafka``, as client ``wirewatch-<service>``), the lag reporter, the
    /metrics server and the orderly shutdown; the stage brings its handler. Dead
    letters go through ``producer`` when the stage shares its own (the caller
    then closes it), else through one made and closed here.
    """
    from wirewatch.kafka import BatchLoop, DeadLetterPublisher, make_consumer, make_producer
    from wirewatch.metrics import serve

    kafka = settings.kafka.for_client(f"wirewatch-{service}")
    group, topic = consumer.group, consumer.topic
    tracker = AssignmentTracker()

    def new_consumer() -> KafkaConsumer:
        return make_consumer(kafka, group, topic, listener=tracker, max_poll_records=consumer.batch_size)

    kafka_consumer = new_consumer()
    own_producer = producer is None
    producer = make_producer(kafka) if own_producer else producer
    lag = LagReporter(kafka, group, topic, metrics, settings.lag_report_seconds)
    loop = BatchLoop(
        kafka_consumer,
        handler,
        DeadLetterPublisher(producer, stage=service, topic=settings.dead_letter_topic),
        max_records=consumer.batch_size,
        poll_timeout_ms=consumer.poll_timeout_ms,
        observer=MetricsObserver(metrics),
        watchdog=FetchWatchdog(),
        renew_consumer=new_consumer,
    )
    metrics.add_readiness_check("kafka", lag.broker_reachable)
    for name, check in (readiness or {}).items():
        metrics.add_readiness_check(name, check)
    metrics.add_readiness_check("assigned", tracker.ready)
    progress = ProgressCheck(lambda: loop.last_progress, lag.current_lag, settings.stall_after_seconds)
    metrics.add_liveness_check("progress", progress)
    metrics.progress_age.labels(service).set_function(progress.age)
    server = serve(metrics, settings.metrics_port) if settings.metrics_port else None
    metrics.up.labels(service).set(1)
    log.info("%s consuming %s as %s", service, topic, group)
    try:
        loop.run(stop, idle_exit_after=idle_exit)
    finally:
        metrics.up.labels(service).set(0)
        lag.close()
        loop.close()
        if own_producer:
            producer.close(timeout=10)
        if server:
            server.shutdown()
            server.server_close()
    log.info("%s stopped after %d records", service, loop.processed)
    return 0
