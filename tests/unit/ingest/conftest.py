"""Helpers for the poller's unit tests: the fixture folder and a feed declaration factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.feeds import FeedDeclaration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"


@pytest.fixture
def fixture_bytes() -> object:
    return lambda name: (FIXTURES / name).read_bytes()


def declaration(
    name: str = "test-feed", url: str = "https://noticias.example.org/rss", **kw: object
) -> FeedDeclaration:
    return FeedDeclaration(name=name, url=url, **kw)  # type: ignore[arg-type]
