"""Kafka plumbing: client factories, producing with acknowledgement, and the batch loop.

The loop is the one place that decides when an offset is committed:

    poll a batch -> handler(batch) -> dead-letter the poison records -> commit

* The handler returns the records it could never process (as :class:`Failure`);
  everything else in the batch must be durably done (produced and acknowledged,
  or written in a committed transaction) when it returns.
* A retriable error from the handler (a :class:`~wirewatch.errors.WirewatchError` whose
  ``retriable`` is true: every :class:`~wirewatch.errors.RetriableError`) commits nothing:
  the consumer seeks back to the batch's first offsets and re-reads it after a
  backoff, so the batch is held, never dropped.
* Any other exception is a bug and propagates: the process dies, and because
  nothing was committed the batch is redelivered after restart. Idempotent
  writes downstream make the redelivery harmless.
* Between batches a :class:`~wirewatch.fetch_watchdog.FetchWatchdog`, when given, looks for
  assigned partitions the client stopped fetching although records wait, and the loop
  re-seeks them, or renews the consumer when a re-seek did not help.
* ``BatchLoop.last_progress`` is the last time the loop either committed a batch
  or found nothing to do; a loop that retries forever, or hangs inside the
  handler, stops moving it (the service's liveness check reads it).

Clients connect lazily: nothing here runs at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

from wirewatch import topics
from wirewatch.contract import DeadLetter, encode
from wirewatch.errors import PoisonMessageError, RetriableError, WirewatchError
from wirewatch.fetch_watchdog import FetchWatchdog
from wirewatch.group_consumer import GroupConsumer
from wirewatch.logging import record_ref
from wirewatch.retry import Backoff
from wirewatch.settings import KafkaSettings

log = logging.getLogger(__name__)


def make_producer(kafka: KafkaSettings, **overrides: Any) -> RenewingProducer:
    """An idempotent producer that waits for all in-sync replicas (acks=all), renewed after a
    failed delivery (:class:`RenewingProducer`)."""
    config: dict[str, Any] = {
        **kafka.client_config(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 10,
        "max_block_ms": 10_000,
        "request_timeout_ms": 15_000,
        "delivery_timeout_ms": 30_000,
    }
    config.update(overrides)
    return RenewingProducer(lambda: KafkaProducer(**config))


class RenewingProducer:
    """A ``KafkaProducer`` that :func:`produce_all` replaces after a failed delivery.

    When the broker is away longer than ``delivery_timeout_ms``, kafka-python 3.0's idempotent
    producer can keep a batch that never completes: every later ``flush`` then times out ("Timeout
    waiting for future") although the broker is back (the broker-restart fault test saw the poller
    retry for minutes). The Java client bumps the producer epoch there; here the producer is
    dropped and the next send makes a fresh one (a new producer id). Callers re-send the whole set,
    which idempotent consumers downstream make harmless. Not thread-safe, like its users' loops.
    """

    def __init__(self, factory: Callable[[], KafkaProducer]) -> None:
        self._factory = factory
        self._producer: KafkaProducer | None = factory()  # at start, a broker that is down raises here
        self.renewals = 0

    @property
    def current(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._factory()
        return self._producer

    def send(self, topic: str, **kwargs: Any) -> Any:
        return self.current.send(topic, **kwargs)

    def flush(self, timeout: float | None = None) -> None:
        self.current.flush(timeout=timeout)

    def renew(self) -> None:
        """Drop the producer without waiting for what it holds; the next send makes a new one."""
        old, self._producer = self._producer, None
        if old is not None:
            self.renewals += 1
            log.warning("dropping the Kafka producer after a failed delivery; the next send makes a new one")
            _discard(old)

    def close(self, timeout: float | None = None) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            old.close(timeout=timeout)


def _discard(producer: KafkaProducer) -> None:
    try:
        producer.close(timeout=0)
    except KafkaError:
        # close() flushes first and raises while a batch is stuck, before it stops its sender
        # thread: stop that directly, so a long outage does not leak a thread per renewal.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()


def make_consumer(
    kafka: KafkaSettings,
    group_id: str,
    *topic_names: str,
    listener: ConsumerRebalanceListener | None = None,
    **overrides: Any,
) -> GroupConsumer:
    """A group consumer that never commits by itself: the batch loop commits.

    ``listener`` hears about every rebalance of the subscription (readiness uses it).
    """
    config: dict[str, Any] = {
        **kafka.client_config(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
    }
    config.update(overrides)
    consumer = GroupConsumer(**config)
    if topic_names:
        await_partition_metadata(consumer, topic_names)
        consumer.subscribe(list(topic_names), listener=listener)
    return consumer


METADATA_WAIT_SECONDS = 30.0
"""How long a new consumer waits for its topics' partitions to be known before it joins."""


def await_partition_metadata(
    consumer: KafkaConsumer, topic_names: Iterable[str], timeout: float = METADATA_WAIT_SECONDS
) -> bool:
    """Wait until the consumer's metadata lists a partition for every topic; False on timeout.

    A consumer that joins its group before it knows the topic's partitions (a topic created a
    moment ago, as every stage does at first start) is assigned nothing and relies on a later
    metadata update to rejoin. kafka-python can lose that update while the join is in flight
    (the KAFKA-3949 race), leaving the consumer assigned nothing for as long as it lives: the
    end-to-end test saw exactly that under load. Knowing the partitions first makes the first
    assignment the right one. A topic that still does not exist (creation off, an operator yet
    to create it) is logged and joined anyway: the rejoin path is then the only one left.
    """
    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(topic_names))
    while True:
        pending = [t for t in pending if not consumer.partitions_for_topic(t)]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            log.warning("no partitions known yet for %s; joining the group anyway", ", ".join(pending))
            return False
        time.sleep(0.2)


def make_admin(kafka: KafkaSettings, **overrides: Any) -> KafkaAdminClient:
    return KafkaAdminClient(**{**kafka.client_config(), "request_timeout_ms": 15_000, **overrides})


def ensure_topics(
    kafka: KafkaSettings, names: Iterable[str] = topics.ALL_TOPICS, partitions: int | None = None
) -> list[str]:
    """Create the topics that do not exist yet (idempotent); returns the names still missing.

    Partitions: ``partitions`` if given, else ``kafka.topic_partitions``.

    Replicas: ``kafka.topic_replication_factor``, by default -1, which lets the
    broker apply its ``default.replication.factor`` (KIP-464, brokers >= 2.4):
    a hard-coded 1 left every topic unreplicated on a multi-broker cluster,
    where ``acks=all`` then protects nothing. With ``kafka.create_topics``
    off (topics managed by an operator, e.g. Strimzi ``KafkaTopic``) nothing is
    created: missing topics are logged and returned, and the clients wait for them.
    """
    wanted = list(dict.fromkeys(names))
    admin = make_admin(kafka)
    try:
        existing = set(admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        if not kafka.create_topics:
            log.warning(
                "topics %s do not exist and topic creation is off (WIREWATCH_KAFKA_CREATE_TOPICS=false); "
                "waiting for whoever manages them",
                ", ".join(missing),
            )
            return missing
        partitions = kafka.topic_partitions if partitions is None else partitions
        spec = {"num_partitions": partitions, "replication_factor": kafka.topic_replication_factor}
        try:
            admin.create_topics({n: dict(spec) for n in missing})
            log.info(
                "created topics %s with %d partitions, replication factor %s",
                ", ".join(missing),
                partitions,
                "broker default" if kafka.topic_replication_factor == -1 else kafka.topic_replication_factor,
            )
        except TopicAlreadyExistsError:
            pass  # another process won the race; the topics are there either way
        return []
    finally:
        admin.close()


def produce_all(
    producer: RenewingProducer | KafkaProducer,
    topic: str,
    messages: Sequence[tuple[str | None, bytes]],
    timeout: float = 30.0,
    headers: Sequence[list[tuple[str, bytes]] | None] | None = None,
) -> None:
    """Send keyed messages and return only once the broker acknowledged every one.

    Raises :class:`RetriableError` if any send fails or times out, after renewing a
    :class:`RenewingProducer`; the caller then retries the whole set (the idempotent
    producer and idempotent consumers downstream make a re-send harmless).
    """
    futures = []
    try:
        for i, (key, value) in enumerate(messages):
            hdrs = headers[i] if headers is not None else None
            futures.append(
                producer.send(
                    topic,
                    key=key.encode("utf-8") if key is not None else None,
                    value=value,
                    headers=hdrs or None,
                )
            )
        producer.flush(timeout=timeout)
        for future in futures:
            future.get(timeout=timeout)
    except KafkaError as exc:
        if isinstance(producer, RenewingProducer):
            producer.renew()
        raise RetriableError(f"producing to {topic} failed: {exc!r}") from exc


@dataclass(frozen=True)
class Failure:
    """A record the handler can never process, and why."""

    record: ConsumerRecord
    error: PoisonMessageError


BatchHandler = Callable[[list[ConsumerRecord]], list[Failure]]


class DeadLetterPublisher:
    """Writes poison records to ``news.dlq.v1`` with their origin and the reason."""

    def __init__(
        self, producer: RenewingProducer | KafkaProducer, stage: str, topic: str = topics.DEAD_LETTER
    ) -> None:
        self._producer = producer
        self._stage = stage
        self._topic = topic

    def publish(self, failures: Sequence[Failure]) -> None:
        if not failures:
            return
        messages = []
        headers = []
        for failure in failures:
            rec = failure.record
            letter = DeadLetter.for_record(
                stage=self._stage,
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                key=rec.key,
                value=rec.value,
                error=failure.error,
            )
            log.warning(
                "dead-lettering %s key=%s: %s",
                record_ref(rec.topic, rec.partition, rec.offset),
                letter.key,
                failure.error,
            )
            messages.append((letter.key, encode(letter)))
            headers.append([("reason", failure.error.reason.encode()), ("stage", self._stage.encode())])
        produce_all(self._producer, self._topic, messages, headers=headers)


class LoopObserver:
    """Hooks the loop calls so metrics stay out of the plumbing (no-ops by default)."""

    def batch_done(self, size: int, failed: int, seconds: float) -> None: ...

    def batch_retry(self, error: Exception) -> None: ...

    def record_failed(self, reason: str) -> None: ...

    def fetch_stalled(self, remedy: str, partitions: int) -> None: ...


class BatchLoop:
    """consume -> process -> dead-letter -> commit, until ``stop`` is set.

    Never calls the handler after :meth:`close`. ``stop`` is checked between
    batches, so a SIGTERM finishes the batch in hand and commits it.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        handler: BatchHandler,
        dead_letters: DeadLetterPublisher,
        *,
        max_records: int = 64,
        poll_timeout_ms: int = 500,
        backoff: Backoff | None = None,
        observer: LoopObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        watchdog: FetchWatchdog | None = None,
        renew_consumer: Callable[[], KafkaConsumer] | None = None,
    ) -> None:
        self._consumer = consumer
        self._watchdog = watchdog
        self._renew_consumer = renew_consumer
        self._handler = handler
        self._dead_letters = dead_letters
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._backoff = backoff or Backoff(base=0.5, cap=15.0)
        self._poll_backoff = Backoff(base=0.2, cap=5.0)
        self._observer = observer or LoopObserver()
        self._clock = clock
        self.processed = 0
        self.last_activity = clock()
        self.last_progress = clock()
        """Last time a batch was committed or a poll found nothing to do (see the module doc)."""

    def run(self, stop: threading.Event, idle_exit_after: float | None = None) -> None:
        """Process batches until ``stop`` is set (or, if given, after that many idle seconds)."""
        while not stop.is_set():
            handled = self.run_once(stop)
            if handled:
                self.last_activity = self._clock()
            elif idle_exit_after is not None and self._clock() - self.last_activity > idle_exit_after:
                return

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Poll and process one batch; returns how many records it handled (0 when idle or retrying)."""
        self._check_fetching()
        try:
            polled = self._consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=self._max_records)
        except KafkaError as exc:
            # kafka-python usually retries broker outages inside poll(), but some paths (a metadata
            # refresh while the group coordinator is unknown) raise a retriable error instead.
            # Nothing was fetched, so waiting and polling again loses nothing.
            if not exc.retriable:
                raise
            delay = self._poll_backoff.next_delay()
            log.warning("poll failed, retrying in %.1fs: %r", delay, exc)
            self._observer.batch_retry(exc)
            (stop or threading.Event()).wait(delay)
            return 0
        self._poll_backoff.reset()
        batch = [rec for recs in polled.values() for rec in recs]
        if self._watchdog is not None:
            self._watchdog.saw(polled)
        if not batch:
            self.last_progress = self._clock()  # caught up on what this member owns: nothing is stuck
            return 0
        started = time.monotonic()
        try:
            failures = self._handler(batch)
            self._dead_letters.publish(failures)
            for failure in failures:
                self._observer.record_failed(failure.error.reason)
        except WirewatchError as exc:
            if not exc.retriable:  # the error's own flag decides, as kafka-python's do for poll()
                raise
            delay = self._backoff.next_delay()
            log.warning("batch of %d held, retrying in %.1fs: %s", len(batch), delay, exc)
            self._observer.batch_retry(exc)
            self._rewind(batch)
            (stop or threading.Event()).wait(delay)
            return 0
        self._backoff.reset()
        self._commit(batch)
        self.last_progress = self._clock()
        self.processed += len(batch)
        self._observer.batch_done(len(batch), len(failures), time.monotonic() - started)
        return len(batch)

    def _check_fetching(self) -> None:
        """Apply the watchdog's remedy to partitions that stopped fetching (see wirewatch.fetch_watchdog)."""
        watchdog = self._watchdog
        if watchdog is None:
            return
        stall = watchdog.check(self._consumer)
        if stall is None:
            return
        factory = self._renew_consumer if stall.remedy == "renew" else None
        self._observer.fetch_stalled("reseek" if factory is None else "renew", len(stall.partitions))
        if factory is None:
            log.warning("no records polled for %s although records wait; re-seeking them", stall.describe())
            for tp in stall.partitions:
                self._consumer.seek(tp, stall.positions[tp])
            return
        log.warning("still no records polled for %s after a re-seek; renewing the consumer", stall.describe())
        try:
            self._consumer.close()
        except KafkaError as exc:
            log.warning("closing the stalled consumer failed: %r", exc)
        self._consumer = factory()
        watchdog.forget()

    def _rewind(self, batch: list[ConsumerRecord]) -> None:
        """Seek every partition of the batch back to its first record, so it is read again."""
        first: dict[TopicPartition, int] = {}
        for rec in batch:
            tp = TopicPartition(rec.topic, rec.partition)
            first[tp] = min(first.get(tp, rec.offset), rec.offset)
        assigned = self._consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)

    def _commit(self, batch: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for rec in batch:
            tp = TopicPartition(rec.topic, rec.partition)
            nxt = rec.offset + 1
            if tp not in offsets or offsets[tp].offset < nxt:
                offsets[tp] = OffsetAndMetadata(nxt, "", -1)
        try:
            self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced while we worked: the new owner re-reads the batch,
            # and idempotent writes downstream make that harmless.
            log.warning("commit after rebalance failed, batch will be redelivered: %s", exc)
        except KafkaError as exc:
            log.warning("offset commit failed, batch may be redelivered: %r", exc)

    def close(self) -> None:
        self._consumer.close()
