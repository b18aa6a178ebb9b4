"""Is any Kafka bootstrap server accepting TCP connections? A raw probe, no Kafka protocol.

Cheaper than letting a producer time out its bootstrap, and it leaves no half-made
sockets behind; :class:`~ingest.publisher.KafkaPublisher` uses it before its first
connection and for readiness.
"""

from __future__ import annotations

import socket

from wirewatch.errors import RetriableError
from wirewatch.settings import KafkaSettings


def require_reachable(kafka: KafkaSettings, timeout: float = 3.0) -> None:
    """Fail fast (RetriableError) while no bootstrap server accepts a TCP connection.

    Cheaper than letting KafkaProducer time out its bootstrap, and it avoids the
    sockets a producer whose bootstrap failed leaves behind.
    """
    for server in kafka.client_config()["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
                return
        except (OSError, ValueError):
            continue
    raise RetriableError(f"no Kafka broker answers at {kafka.bootstrap}")
