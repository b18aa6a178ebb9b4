"""Issue 13: one ingest error base whose ``retriable`` the schedule reads, one writer that decides
what is new (full text included), one settings object with one User-Agent default, and metrics
recorded on the service's registry."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest import fulltext
from ingest.config import DEFAULT_USER_AGENT, PollerSettings
from ingest.errors import IngestError
from ingest.feeds import FeedDeclaration
from ingest.fetch import FeedGoneError, Fetcher, FetchError, RateLimitedError
from ingest.parse import HostileDocumentError, MalformedFeedError, NotAFeedError, ParseError
from ingest.poller import PublishGaveUpError
from wirewatch.errors import RetriableError

from .test_poller import FEED, Clock, FakePublisher, Site, cycle, make_poller, rss


def test_fetch_and_parse_errors_share_one_base_with_the_fields_the_poller_reads() -> None:
    errors: list[IngestError] = [
        FetchError("http_404", "HTTP 404", retriable=False, status=404),
        RateLimitedError("rate_limited", "HTTP 429", retriable=True, status=429, retry_after=60.0),
        FeedGoneError("gone", "HTTP 410", retriable=False, status=410),
        MalformedFeedError("truncated"),
        HostileDocumentError("entity bomb"),
        NotAFeedError("an HTML page", []),
    ]
    assert all(isinstance(e, IngestError) for e in errors)
    assert [(e.kind, e.retriable, e.retry_after) for e in errors] == [
        ("http_404", False, None),
        ("rate_limited", True, 60.0),
        ("gone", False, None),
        ("malformed", True, None),
        ("hostile", False, None),
        ("not_a_feed", False, None),
    ]
    assert issubclass(ParseError, IngestError) and errors[3].detail == "truncated"
    assert issubclass(PublishGaveUpError, RetriableError)  # it said retriable = True without being one


def test_what_only_a_person_can_fix_waits_the_whole_cap_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/boom"] = (500, {}, b"")
    site.routes["/broken"] = (200, {"Content-Type": "application/feed+json"}, b'{"items": [')  # cut short
    site.routes["/html"] = (200, {"Content-Type": "text/html"}, b"<html><head></head><body>hi</body></html>")
    names = ("boom", "broken", "html", "missing")
    feeds = [FeedDeclaration(name=n, url=f"https://site.example/{n}") for n in names]
    poller = make_poller(tmp_path, site, pub, feeds, clock, poll_backoff_cap=7200.0)
    with caplog.at_level(logging.WARNING, logger="ingest.health"):
        report = cycle(poller)
    outcomes = {n: o.outcome for n, o in report.outcomes.items()}
    assert outcomes == {
        "boom": "http_500",
        "broken": "malformed",
        "html": "not_a_feed",
        "missing": "http_404",
    }
    due = {n: poller.state.feed(n, f"https://site.example/{n}").next_due_at for n in names}
    poller.state.close()
    retry_in = {n: (when - clock.now) if when else None for n, when in due.items()}
    assert retry_in == {
        "boom": timedelta(seconds=600),  # retriable: exponential from the interval
        "broken": timedelta(seconds=600),
        "html": timedelta(seconds=7200),  # not retriable: the cap at once
        "missing": timedelta(seconds=7200),
    }
    errors = {r.getMessage().split()[1] for r in caplog.records if r.levelno == logging.ERROR}
    assert errors == {"html", "missing"}  # a person must act: an error on the first failure


class CountingExtractor:
    calls = 0

    @classmethod
    def extract(cls, html: str, url: str | None = None) -> str:
        cls.calls += 1
        return f"Page text of {url}."


def test_full_text_is_fetched_once_for_a_story_two_feeds_list_in_one_cycle(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(fulltext, "_extractor", lambda: CountingExtractor)
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/one"] = (200, {}, rss(("a", "Alpha", "lead from one")))
    site.routes["/two"] = (200, {}, rss(("a", "Alpha", "lead from two")))
    site.routes["/a"] = (200, {"Content-Type": "text/html"}, b"<p>The page.</p>")
    feeds = [
        FeedDeclaration(name=n, url=f"https://site.example/{n}", language="en", full_text=True)
        for n in ("one", "two")
    ]
    poller = make_poller(tmp_path, site, pub, feeds, clock)

    async def slow_page(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/a":  # slower than the other feed: both feeds see the story unpublished
            await asyncio.sleep(0.2)
        return site.handler(request)

    poller.fetcher = Fetcher(poller.settings, transport=httpx.MockTransport(slow_page))
    report = cycle(poller)
    poller.state.close()
    assert [a.text for a in pub.published] == ["Page text of https://site.example/a."]
    assert site.hits["/a"] == 1  # the writer decided once; the copy in the other feed is not new
    assert sorted((o.new, o.unchanged) for o in report.outcomes.values()) == [(0, 1), (1, 0)]


def test_published_articles_and_retries_are_counted_on_the_service_registry(tmp_path: Path) -> None:
    site, clock = Site(), Clock()
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    poller = make_poller(tmp_path, site, FakePublisher(fail=1), [FEED], clock)
    poller._backoff.base = poller._backoff.cap = 0.01
    cycle(poller)
    poller.state.close()
    registry = poller.health.metrics.registry
    assert registry.get_sample_value("wirewatch_records_out_total", {"service": "poll"}) == 2
    assert registry.get_sample_value("wirewatch_batch_retries_total", {"service": "poll"}) == 1
    assert registry.get_sample_value("wirewatch_feed_fetches_total", {"feed": "site", "outcome": "ok"}) == 1


def test_the_fetcher_sends_the_one_user_agent_default() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["user-agent"])
        return httpx.Response(200, content=b"<rss/>")

    async def go() -> None:
        fetcher = Fetcher(PollerSettings(), transport=httpx.MockTransport(handler))
        try:
            await fetcher.fetch("https://feeds.example/rss")
        finally:
            await fetcher.aclose()

    asyncio.run(go())
    assert seen == [DEFAULT_USER_AGENT]
