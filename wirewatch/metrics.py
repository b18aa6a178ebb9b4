"""Prometheus metrics and the /healthz, /readyz endpoints every service serves.

Each service builds one :class:`ServiceMetrics` (its own registry, so tests and
several services in one process never collide) and, when a port is configured,
serves it with :func:`serve`. Readiness is a list of named checks the service
registers (broker reachable, database reachable, partitions assigned);
liveness (``/healthz``) is another list, for what only a restart can fix (a
consumer loop that has made no progress for too long while messages wait).
Both answer 200 when every check passes and 503 naming the failing checks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool]
LivenessCheck = Callable[[], bool]

DEAD_LETTER_REASONS = (
    "empty",
    "invalid_json",
    "schema",
    "constraint",
    "limit",
    "field_too_long",
    "tagger_error",
)
"""Every ``PoisonMessageError`` reason raised in the code base, the SQLSTATE-mapped ones of
``store.database.POISON_SQLSTATE_CLASSES`` included (a unit test keeps the list whole).

Their ``wirewatch_records_failed_total`` series are exported at zero from start-up by the services
that dead-letter, so the first dead letter is an *increase* the alert sees; a series that first
appears at 1 reads as no increase to ``increase()``.
"""
DEAD_LETTERING_SERVICES = frozenset({"classify", "store"})

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FRESHNESS_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


class ServiceMetrics:
    """The series common to all stages; stages add their own on ``registry``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.records_in = Counter(
            "wirewatch_records_in_total", "Records consumed", ["service"], registry=self.registry
        )
        self.records_out = Counter(
            "wirewatch_records_out_total", "Records produced or stored", ["service"], registry=self.registry
        )
        self.records_failed = Counter(
            "wirewatch_records_failed_total",
            "Records dead-lettered, by reason",
            ["service", "reason"],
            registry=self.registry,
        )
        if service in DEAD_LETTERING_SERVICES:
            for reason in DEAD_LETTER_REASONS:
                self.records_failed.labels(service, reason)  # at zero until the first dead letter
        self.batch_retries = Counter(
            "wirewatch_batch_retries_total",
            "Batches held back by a retriable error",
            ["service"],
            registry=self.registry,
        )
        self.fetch_stalls = Counter(
            "wirewatch_fetch_stalls_total",
            "Partitions found not fetching while records waited, by remedy (reseek, renew)",
            ["service", "remedy"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "wirewatch_batch_size",
            "Records per processed batch",
            ["service"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "wirewatch_batch_seconds",
            "Time to process one batch",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "kafka_consumergroup_lag",
            "Messages behind the end of the partition, per consumer group",
            ["consumergroup", "topic", "partition"],
            registry=self.registry,
        )
        self.up = Gauge("wirewatch_up", "1 while the service loop runs", ["service"], registry=self.registry)
        self.progress_age = Gauge(
            "wirewatch_progress_age_seconds",
            "Seconds since the consumer loop last committed a batch or found nothing to do",
            ["service"],
            registry=self.registry,
        )
        self._checks: dict[str, ReadinessCheck] = {}
        self._liveness: dict[str, LivenessCheck] = {}

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def add_liveness_check(self, name: str, check: LivenessCheck) -> None:
        self._liveness[name] = check

    def readiness(self) -> dict[str, bool]:
        return _run_checks(self._checks, "readiness")

    def liveness(self) -> dict[str, bool]:
        return _run_checks(self._liveness, "liveness")


def _run_checks(checks: dict[str, Callable[[], bool]], kind: str) -> dict[str, bool]:
    results = {}
    for name, check in checks.items():
        try:
            results[name] = bool(check())
        except Exception:  # a probe answers, it never crashes the server
            log.debug("%s check %s raised", kind, name, exc_info=True)
            results[name] = False
    return results


def serve(metrics: ServiceMetrics, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz on a daemon thread; returns the server (call shutdown())."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                checks = metrics.liveness()
                alive = all(checks.values())
                body = json.dumps({"status": "ok" if alive else "stalled", "checks": checks}).encode()
                self._send(200 if alive else 503, body, "application/json")
            elif path == "/readyz":
                checks = metrics.readiness()
                ready = all(checks.values())
                body = json.dumps({"ready": ready, "checks": checks}).encode()
                self._send(200 if ready else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, name=f"{metrics.service}-http", daemon=True)
    thread.start()
    log.info("serving /metrics /healthz /readyz on %s:%d", host, server.server_address[1])
    return server
