"""The sink as a service: metrics endpoint and health, SIGTERM mid-stream loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from store.command import run as run_sink
from store.config import SinkSettings
from store.repository import count_rows
from tests.support.factories import seen, tagged
from tests.support.kafka import produce_raw
from tests.support.paths import ROOT
from wirewatch.contract import encode

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(kafka_settings, database_url: str, topic: str, group: str, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "WIREWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "WIREWATCH_DATABASE_URL": database_url,
        "WIREWATCH_STORE_TOPIC": topic,
        "WIREWATCH_STORE_GROUP": group,
        **extra,
    }


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_endpoint_shows_lag_freshness_and_health(
    kafka_settings, new_topic, new_group, database_url, migrated_engine, monkeypatch
) -> None:
    topic, group, port = new_topic("test.tagged"), new_group("store"), _free_port()
    n = 25
    produce_raw(kafka_settings, topic, [(f"a{i}", encode(tagged(seen(f"a{i}")))) for i in range(n)])
    for key, value in _env(
        kafka_settings,
        database_url,
        topic,
        group,
        WIREWATCH_METRICS_PORT=str(port),
        WIREWATCH_LAG_REPORT_SECONDS="0.5",
    ).items():
        monkeypatch.setenv(key, value)
    stop = threading.Event()
    service = threading.Thread(target=run_sink, args=(SinkSettings(), stop), daemon=True)
    service.start()
    try:
        deadline = time.monotonic() + 60
        families: dict[str, list] = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            status, body = _get(f"http://127.0.0.1:{port}/metrics")
            if status != 200:
                continue
            families = {f.name: f.samples for f in text_string_to_metric_families(body)}
            stored = sum(
                s.value for s in families.get("wirewatch_records_out", []) if s.name.endswith("_total")
            )
            lag = [s for s in families.get("kafka_consumergroup_lag", []) if s.labels.get("topic") == topic]
            if stored >= n and lag and sum(s.value for s in lag) == 0:
                break
        else:
            pytest.fail(f"metrics never showed {n} stored records with zero lag: {sorted(families)}")
        freshness = [s for s in families["wirewatch_freshness_seconds"] if s.name.endswith("_count")]
        assert {s.labels["since"]: s.value for s in freshness}["first_seen"] == n
        assert {s.labels["group"] if "group" in s.labels else s.labels["consumergroup"] for s in lag} == {
            group
        }
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, body
    finally:
        stop.set()
        service.join(timeout=30)
    assert not service.is_alive()


def test_a_sink_that_cannot_store_anything_turns_unhealthy(  # type: ignore[no-untyped-def]
    kafka_settings, new_topic, new_group, monkeypatch
) -> None:
    """Issue 11, item 15: a loop retrying forever with messages waiting fails /healthz (and /readyz)."""
    topic, group, port = new_topic("test.tagged"), new_group("store"), _free_port()
    produce_raw(kafka_settings, topic, [(f"a{i}", encode(tagged(seen(f"a{i}")))) for i in range(3)])
    nowhere = f"postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:{_free_port()}/wirewatch"
    for key, value in _env(
        kafka_settings,
        nowhere,
        topic,
        group,
        WIREWATCH_METRICS_PORT=str(port),
        WIREWATCH_LAG_REPORT_SECONDS="0.5",
        WIREWATCH_STALL_AFTER_SECONDS="2",
    ).items():
        monkeypatch.setenv(key, value)
    stop = threading.Event()
    service = threading.Thread(target=run_sink, args=(SinkSettings(), stop), daemon=True)
    service.start()
    try:
        deadline = time.monotonic() + 60
        status, body = 0, ""
        while time.monotonic() < deadline and status != 503:
            time.sleep(0.5)
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                continue  # the server is not up yet
        assert status == 503 and '"progress": false' in body, body
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and '"database": false' in body, body
    finally:
        stop.set()
        service.join(timeout=60)
    assert not service.is_alive()


def test_sigterm_mid_stream_finishes_the_batch_and_loses_nothing(
    kafka_settings, new_topic, new_group, database_url, migrated_engine
) -> None:
    topic, group = new_topic("test.tagged"), new_group("store")
    n = 2000
    produce_raw(kafka_settings, topic, [(f"a{i}", encode(tagged(seen(f"a{i}")))) for i in range(n)])
    env = {**os.environ, **_env(kafka_settings, database_url, topic, group, WIREWATCH_STORE_BATCH_SIZE="50")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "store"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(migrated_engine) as s:
                if count_rows(s)["articles"] > 0:
                    break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        assert time.monotonic() - started < 20
        assert "SIGTERM" in output
    finally:
        if proc.poll() is None:
            proc.kill()

    # A second run picks up exactly where the committed offsets say.
    stop = threading.Event()
    settings_env = _env(kafka_settings, database_url, topic, group)
    old = {k: os.environ.get(k) for k in settings_env}
    os.environ.update(settings_env)
    try:
        before = set(threading.enumerate())
        run_sink(SinkSettings(), stop, idle_exit=3.0)
        # An idle exit leaves no thread behind (the lag reporter used to outlive the service).
        assert not [t.name for t in set(threading.enumerate()) - before if t.name == "store-lag"]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with Session(migrated_engine) as s:
        assert count_rows(s) == {"articles": n, "classifications": n, "events": 2 * n}
