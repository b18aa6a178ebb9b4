"""A stand-in for ``KafkaProducer`` in unit tests of handlers: records what was sent, acks at once."""

from __future__ import annotations

from typing import Any


class _Acked:
    def get(self, timeout: float | None = None) -> None:
        return None


class RecordingProducer:
    """Keeps every value sent (in order) in ``sent``; every send is acknowledged immediately."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, topic: str, key: Any = None, value: bytes = b"", headers: Any = None) -> _Acked:
        self.sent.append(value)
        return _Acked()

    def flush(self, timeout: float | None = None) -> None: ...
