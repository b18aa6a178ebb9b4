"""`wirewatch migrate` waits for a database that is still starting (compose, Kubernetes)."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy.exc import OperationalError

from store.database import make_engine
from store.migrate import wait_for_database
from wirewatch.retry import Backoff


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on exit: connections are refused


def test_wait_gives_up_with_the_connection_error_when_time_is_up() -> None:
    engine = make_engine(f"postgresql+psycopg://u:p@127.0.0.1:{_closed_port()}/db")
    try:
        with pytest.raises(OperationalError):
            wait_for_database(engine, seconds=0.0, backoff=Backoff(base=0.01, cap=0.01, jitter=False))
    finally:
        engine.dispose()


def test_wait_retries_until_the_database_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(f"postgresql+psycopg://u:p@127.0.0.1:{_closed_port()}/db")
    attempts: list[int] = []
    real_connect = engine.connect

    class _Answering:
        def __enter__(self) -> _Answering:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def execute(self, *args: object) -> None:
            return None

    def connect() -> object:
        attempts.append(1)
        if len(attempts) < 3:
            return real_connect()  # refused: the server is still starting
        return _Answering()

    monkeypatch.setattr(engine, "connect", connect)
    monkeypatch.setattr("store.migrate.time.sleep", lambda _s: None)
    try:
        wait_for_database(engine, seconds=60.0, backoff=Backoff(base=0.01, cap=0.01, jitter=False))
    finally:
        engine.dispose()
    assert len(attempts) == 3
