"""Liveness from progress and readiness from the group protocol (issue 11, item 15), on a fake clock.

Before: /healthz answered 200 while the loop retried one batch forever, and the
"assigned" readiness check turned true 30 s after start whether or not the
consumer had ever joined its group.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from kafka.structs import TopicPartition

from tests.support.loop import FakeConsumer, FakeDeadLetters, SimulatedTime, records
from wirewatch.errors import RetriableError
from wirewatch.kafka import BatchLoop
from wirewatch.metrics import ServiceMetrics, serve
from wirewatch.service import AssignmentTracker, ProgressCheck

STALL_AFTER = 600.0


def _loop(consumer: FakeConsumer, handler, clock: SimulatedTime) -> BatchLoop:  # type: ignore[no-untyped-def]
    return BatchLoop(consumer, handler, FakeDeadLetters(), clock=lambda: clock.now)  # type: ignore[arg-type]


def test_a_loop_retrying_one_batch_for_too_long_is_unhealthy_then_recovers() -> None:
    clock, database_up = SimulatedTime(), [False]

    def handler(batch):  # type: ignore[no-untyped-def]
        if not database_up[0]:
            raise RetriableError("database unavailable")
        return []

    loop = _loop(FakeConsumer(records(4)), handler, clock)
    alive = ProgressCheck(lambda: loop.last_progress, lambda: 4, STALL_AFTER, clock=lambda: clock.now)
    verdicts = []
    while clock.now < 2 * STALL_AFTER:
        assert loop.run_once(clock) == 0  # type: ignore[arg-type]
        verdicts.append((clock.now, alive()))
    assert all(ok for at, ok in verdicts if at < STALL_AFTER)
    assert not any(ok for at, ok in verdicts if at >= STALL_AFTER)
    database_up[0] = True
    assert loop.run_once(clock) == 4  # type: ignore[arg-type]
    assert alive()


def test_an_idle_loop_stays_healthy_however_long_nothing_arrives() -> None:
    clock = SimulatedTime()
    loop = _loop(FakeConsumer([]), lambda b: [], clock)
    alive = ProgressCheck(lambda: loop.last_progress, lambda: 7, STALL_AFTER, clock=lambda: clock.now)
    for _ in range(100):
        clock.now += 60
        loop.run_once(clock)  # type: ignore[arg-type]
        assert alive()


def test_no_lag_or_unknown_lag_or_the_check_turned_off_is_healthy() -> None:
    now = [10_000.0]
    for lag, stall_after, expected in (
        (0, STALL_AFTER, True),
        (None, STALL_AFTER, True),
        (3, 0, True),
        (3, STALL_AFTER, False),
    ):
        check = ProgressCheck(lambda: 0.0, lambda lag=lag: lag, stall_after, clock=lambda: now[0])  # type: ignore[misc]
        assert check() is expected, (lag, stall_after)


def _get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_answers_503_naming_the_failing_liveness_check() -> None:
    metrics = ServiceMetrics("test")
    stalled = [False]
    metrics.add_liveness_check("progress", lambda: not stalled[0])
    server = serve(metrics, 0, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
        assert _get(url) == (200, {"status": "ok", "checks": {"progress": True}})
        stalled[0] = True
        assert _get(url) == (503, {"status": "stalled", "checks": {"progress": False}})
    finally:
        server.shutdown()
        server.server_close()


def test_assignment_readiness_follows_the_group_protocol_not_the_clock() -> None:
    tracker = AssignmentTracker()
    assert not tracker.ready()  # never joined: not ready, however long ago the process started
    tracker.on_partitions_assigned(set())  # an idle member of a group with more members than partitions
    assert tracker.ready()
    tracker.on_partitions_revoked(set())  # a rebalance began
    assert not tracker.ready()
    tracker.on_partitions_assigned({TopicPartition("t", 0)})
    assert tracker.ready() and tracker.partitions == {TopicPartition("t", 0)}
    tracker.on_partitions_lost({TopicPartition("t", 0)})  # evicted (session expired)
    assert not tracker.ready()
