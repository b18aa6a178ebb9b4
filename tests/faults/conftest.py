"""Fixtures of the fault tests: seeds, and a factory of isolated pipelines on the real services.

Seeds come from ``WIREWATCH_FAULT_SEEDS`` (default ``1,2,3``: every fault test
runs once per seed); ``WIREWATCH_FAULT_SEED=N`` replays one seed. The corpus
size per test is ``WIREWATCH_FAULT_ENTRIES`` (default 600) streamed over
``WIREWATCH_FAULT_STREAM_SECONDS`` (default 12) — ``make soak`` raises both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.faults.corpus import build_corpus
from tests.faults.feedserver import FeedServer
from tests.faults.harness import FaultLog, Names, Pipeline
from wirewatch.settings import KafkaSettings

ARTIFACT = Path(__file__).resolve().parents[2] / "classify" / "artifact"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault-injection tests (real stages as subprocesses, real Kafka and PostgreSQL)"
    )


def fault_seeds() -> list[int]:
    one = os.environ.get("WIREWATCH_FAULT_SEED")
    if one:
        return [int(one)]
    return [int(s) for s in os.environ.get("WIREWATCH_FAULT_SEEDS", "1,2,3").split(",") if s.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        metafunc.parametrize("seed", fault_seeds(), ids=[f"seed{s}" for s in fault_seeds()])


def corpus_size() -> tuple[int, float]:
    return (
        int(os.environ.get("WIREWATCH_FAULT_ENTRIES", "600")),
        float(os.environ.get("WIREWATCH_FAULT_STREAM_SECONDS", "12")),
    )


def masked_password_url(url: str) -> str:
    """The same URL with the password's first character percent-encoded (``wirewatch`` ->
    ``%77irewatch``): it still logs in, and its text is unique enough to search the logs for."""
    scheme, rest = url.split("://", 1)
    credentials, host = rest.split("@", 1)
    user, password = credentials.split(":", 1)
    return f"{scheme}://{user}:%{ord(password[0]):02X}{password[1:]}@{host}"


@pytest.fixture
def model_artifact() -> Path:
    if not (ARTIFACT.is_dir() and any(ARTIFACT.iterdir())):
        pytest.skip("classify/artifact is not built: the real-model fault test needs it")
    return ARTIFACT


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest,
    kafka_settings: KafkaSettings,
    new_topic: Callable[..., str],
    new_group: Callable[[str], str],
    database_url: str,
    migrated_engine: Engine,
    tmp_path: Path,
) -> Iterator[Callable[..., Pipeline]]:
    """Factory: ``pipeline(seed, entries=..., stream_seconds=..., partitions=3, ...)`` -> a Pipeline
    with its own corpus, feed server, topics, groups, state dir and (migrated) database."""
    made: list[tuple[Pipeline, FeedServer]] = []

    def make(
        seed: int,
        *,
        partitions: int = 3,
        tagger: str = "keywords",
        window: float | None = None,
        extra_env: dict[str, str] | None = None,
        **corpus_options: Any,
    ) -> Pipeline:
        if made:
            raise RuntimeError("one pipeline per test (they share the database)")
        entries, stream = corpus_size()
        corpus_options.setdefault("entries", entries)
        corpus_options.setdefault("stream_seconds", stream)
        extra_feeds = corpus_options.pop("extra_feeds", ())
        corpus = build_corpus(seed, **corpus_options)
        server = FeedServer(corpus, window=window)
        names = Names(
            raw=new_topic("fault.raw", partitions),
            tagged=new_topic("fault.tagged", partitions),
            dlq=new_topic("fault.dlq", 1),
            classify_group=new_group("fault-classify"),
            store_group=new_group("fault-store"),
        )
        workdir = tmp_path / "pipeline"
        workdir.mkdir()
        pipe = Pipeline(
            kafka=kafka_settings,
            engine=migrated_engine,
            service_database_url=masked_password_url(database_url),
            corpus=corpus,
            server=server,
            names=names,
            workdir=workdir,
            faults=FaultLog(seed, request.node.name),
            tagger=tagger,
            extra_env=extra_env,
            extra_feeds=extra_feeds(server) if callable(extra_feeds) else extra_feeds,
        )
        made.append((pipe, server))
        return pipe

    yield make
    for pipe, server in made:
        pipe.close()
        server.close()
