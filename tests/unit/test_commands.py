"""Command-line edges that need no services: a broker that is still starting."""

from __future__ import annotations

import argparse
import threading
from types import SimpleNamespace

import pytest
from kafka.errors import CoordinatorNotAvailableError, TopicAuthorizationFailedError

from commands import cli, demo, lag
from wirewatch.errors import EX_TEMPFAIL


def _alive_worker() -> threading.Thread:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    worker.stop = stop  # type: ignore[attr-defined]
    return worker


def test_demo_waits_out_a_coordinator_that_is_not_ready_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.time, "sleep", lambda _s: None)
    caught_up = SimpleNamespace(total=0, partitions=[SimpleNamespace(committed=3, end=3)])
    answers: list[object] = [CoordinatorNotAvailableError("fresh broker")] * 2 + [caught_up] * 2
    calls = []

    def measure() -> object:
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    worker = _alive_worker()
    try:
        assert demo._wait_for_zero_lag(measure, timeout=30.0, workers=[worker])
    finally:
        worker.stop.set()  # type: ignore[attr-defined]
    assert len(calls) == 4


def test_demo_does_not_hide_a_permanent_kafka_error() -> None:
    def measure() -> object:
        raise TopicAuthorizationFailedError("not allowed")

    worker = _alive_worker()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            demo._wait_for_zero_lag(measure, timeout=30.0, workers=[worker])
    finally:
        worker.stop.set()  # type: ignore[attr-defined]


def test_lag_command_says_try_again_while_the_broker_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import wirewatch.lag

    def not_ready(*_args: object, **_kwargs: object) -> None:
        raise CoordinatorNotAvailableError("fresh broker")

    monkeypatch.setattr(wirewatch.lag, "measure_lag", not_ready)
    args = argparse.Namespace(json=False, max_lag=None, max_age=None)
    assert lag.run(args) == EX_TEMPFAIL
    assert "not ready" in capsys.readouterr().err


def test_lag_measures_the_configured_groups(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """Issue 11, item 16: a renamed group must be measured, not the default names."""
    import wirewatch.lag

    monkeypatch.setenv("WIREWATCH_CLASSIFY_GROUP", "blue-classify")
    monkeypatch.setenv("WIREWATCH_STORE_GROUP", "blue-store")
    monkeypatch.setenv("WIREWATCH_STORE_TOPIC", "blue.tagged")
    asked: list[object] = []

    def measure(kafka, groups=None):  # type: ignore[no-untyped-def]
        asked.append(groups)
        return wirewatch.lag.LagReport([])

    monkeypatch.setattr(wirewatch.lag, "measure_lag", measure)
    assert cli.main(["lag", "--json"]) == 0
    assert asked == [{"blue-classify": ["news.raw.v1"], "blue-store": ["blue.tagged"]}]
    capsys.readouterr()


def test_configured_groups_follow_the_settings_objects_the_demo_runs_with() -> None:
    from classify.config import ClassifierSettings
    from store.config import SinkSettings

    groups = lag.configured_groups(
        ClassifierSettings(classify_group="g1", classify_input_topic="raw"),
        SinkSettings(store_group="g1", store_topic="tagged"),
    )
    assert groups == {"g1": ["raw", "tagged"]}
