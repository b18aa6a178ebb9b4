"""The Kafka broker, then PostgreSQL, stopped and restarted mid-stream: the stages ride it out.

These stop the SHARED local services (``deploy/local/kafka.sh`` /
``postgres.sh``) that every other integration test uses, so each restarts its
service in a ``finally`` and waits until it answers again before the test
ends. Outcome asserted: every corpus entry stored exactly once, and no stage
exited by itself (they back off and retry, they do not crash).
"""

from __future__ import annotations

import logging
import random
import subprocess
import time

import pytest
from sqlalchemy import Engine

from tests.faults.services import ROOT

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

log = logging.getLogger(__name__)


def service_script(script: str, action: str, timeout: float = 180.0) -> float:
    """Run ``deploy/local/<script> <action>``; returns how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", f"deploy/local/{script}", action], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{script} {action} failed:\n{done.stdout}\n{done.stderr}"
    return time.monotonic() - started


def _outage(pipeline, seed: int, script: str, what: str):  # type: ignore[no-untyped-def]
    pipe = pipeline(seed)
    rng = random.Random(f"{seed}-{script}")
    at = round(rng.uniform(2.0, pipe.corpus.stream_seconds * 0.6), 2)
    down = round(rng.uniform(3.0, 8.0), 2)
    pipe.faults.plan(f"{what} stopped at t={at}s for {down}s (+ start-up time)")
    pipe.start()
    pipe.sleep_until(at)
    try:
        pipe.faults.note(pipe.server.elapsed, f"{script} stop")
        took = service_script(script, "stop")
        pipe.faults.note(pipe.server.elapsed, f"{what} down (stop took {took:.1f}s)")
        pipe.sleep(down)
    finally:
        pipe.faults.note(pipe.server.elapsed, f"{script} start")
        took = service_script(script, "start")
        pipe.faults.note(pipe.server.elapsed, f"{what} answering again (start took {took:.1f}s)")
    pipe.wait_drained(timeout=180)
    pipe.assert_exactly_once()
    pipe.assert_no_crashes()
    pipe.assert_no_secrets_logged()
    return pipe


def test_kafka_broker_restart_mid_stream(pipeline, seed: int) -> None:
    _outage(pipeline, seed, "kafka.sh", "Kafka broker")


def test_postgres_restart_mid_stream(pipeline, seed: int, admin_engine: Engine) -> None:
    try:
        pipe = _outage(pipeline, seed, "postgres.sh", "PostgreSQL")
        # The outage hit the sink mid-stream: it held batches (uncommitted) and retried them.
        assert "held, retrying" in pipe.supervisor["store-1"].output()
    finally:
        # The session's admin engine holds connections the restart killed; later fixtures need fresh ones.
        admin_engine.dispose()
