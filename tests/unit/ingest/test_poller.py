"""The poll cycle with a scripted transport and a fake publisher: exactly-what-is-new, outages, schedule."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ingest.command import poll_once
from ingest.config import PollerSettings
from ingest.feeds import FeedDeclaration
from ingest.fetch import Fetcher
from ingest.health import FeedHealth
from ingest.poller import CycleReport, Poller, PublishGaveUpError
from ingest.state import PollerState
from wirewatch.contract import ArticleSeen
from wirewatch.errors import RetriableError
from wirewatch.metrics import ServiceMetrics


class FakePublisher:
    """Records what it publishes; fails the next ``fail`` calls with RetriableError."""

    def __init__(self, fail: int = 0) -> None:
        self.published: list[ArticleSeen] = []
        self.fail = fail
        self.calls = 0

    def publish(self, articles: Sequence[ArticleSeen]) -> None:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise RetriableError("broker down")
        self.published.extend(articles)

    def close(self) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def rss(*items: tuple[str, str, str | None]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>https://site.example/{slug}</link><description>{d}</description>"
        + "</item>"
        for slug, t, d in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


class Site:
    """A scripted publisher web site: path -> (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: dict[str, int] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] = self.hits.get(path, 0) + 1
        status, headers, body = self.routes.get(path, (404, {}, b"not found"))
        etag = headers.get("ETag")
        if etag and request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers=headers)
        return httpx.Response(status, headers=headers, content=body)


def make_poller(
    tmp_path: Path,
    site: Site,
    publisher: FakePublisher,
    feeds: list[FeedDeclaration],
    clock: Clock,
    give_up_after: float | None = None,
    **config: object,
) -> Poller:
    defaults = {"poll_interval": 600.0, "poll_jitter": 0.0, "poll_forget_after": 0}
    settings = PollerSettings(**{**defaults, **config})  # type: ignore[arg-type]
    fetcher = Fetcher(settings, transport=httpx.MockTransport(site.handler))
    return Poller(
        feeds,
        PollerState(tmp_path),
        publisher,
        fetcher,
        settings=settings,
        health=FeedHealth(ServiceMetrics("poll")),
        give_up_after=give_up_after,
        clock=clock,
        rng=random.Random(1),
    )


def cycle(poller: Poller, only_due: bool = False) -> CycleReport:
    return asyncio.run(poller.run_once(only_due=only_due))


FEED = FeedDeclaration(name="site", url="https://site.example/rss", language="en")


def test_new_then_unchanged_then_edited(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    poller = make_poller(tmp_path, site, pub, [FEED], clock)
    report = cycle(poller)
    assert report.outcomes["site"].new == 2 and len(pub.published) == 2
    first_seen = {a.article_id: a.first_seen_at for a in pub.published}

    clock.now += timedelta(hours=1)
    assert cycle(poller).published == 0 and len(pub.published) == 2

    site.routes["/rss"] = (200, {}, rss(("a", "Alpha (updated)", "one, corrected"), ("b", "Beta", "two")))
    clock.now += timedelta(hours=1)
    report = cycle(poller)
    assert report.outcomes["site"].updated == 1 and report.outcomes["site"].new == 0
    update = pub.published[-1]
    assert update.revision == 2 and update.title == "Alpha (updated)"
    assert update.first_seen_at == first_seen[update.article_id]
    assert update.published_at == first_seen[update.article_id] and update.published_at_inferred
    poller.state.close()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one")))
    poller = make_poller(tmp_path, site, pub, [FEED], clock)
    cycle(poller)
    poller.state.close()
    again = make_poller(tmp_path, site, pub, [FEED], clock)
    assert cycle(again).published == 0 and len(pub.published) == 1
    again.state.close()


def test_kafka_outage_is_waited_out_without_loss_or_duplicates(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(fail=2), Clock()
    site.routes["/rss"] = (200, {"ETag": '"v1"'}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    poller = make_poller(tmp_path, site, pub, [FEED], clock)
    poller._backoff.base = 0.01
    report = cycle(poller)
    assert pub.calls == 3 and len(pub.published) == 2 and report.published == 2
    assert cycle(poller).outcomes["site"].outcome == "not_modified" and len(pub.published) == 2
    poller.state.close()


def test_giving_up_marks_nothing_seen_and_keeps_validators(tmp_path: Path) -> None:
    site, clock = Site(), Clock()
    site.routes["/rss"] = (200, {"ETag": '"v1"'}, rss(("a", "Alpha", "one")))
    down = FakePublisher(fail=1000)
    poller = make_poller(tmp_path, site, down, [FEED], clock, give_up_after=0.05)
    poller._backoff.base = 0.01
    with pytest.raises(PublishGaveUpError):
        cycle(poller)
    assert poller.state.seen([]) == {} and poller.state.count_seen() == 0
    assert poller.state.feed("site", FEED.url).etag is None
    poller.state.close()
    up = FakePublisher()
    again = make_poller(tmp_path, site, up, [FEED], clock)
    assert cycle(again).published == 1 and len(up.published) == 1
    again.state.close()


def test_article_in_two_feeds_is_published_once(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/one"] = (200, {}, rss(("shared", "Shared story", "x")))
    site.routes["/two"] = (200, {}, rss(("shared", "Shared story", "x"), ("own", "Own story", "y")))
    feeds = [
        FeedDeclaration(name="one", url="https://site.example/one"),
        FeedDeclaration(name="two", url="https://site.example/two"),
    ]
    poller = make_poller(tmp_path, site, pub, feeds, clock)
    cycle(poller)
    assert sorted(a.title for a in pub.published) == ["Own story", "Shared story"]
    poller.state.close()


def test_broken_feeds_are_counted_and_the_rest_published(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/good"] = (200, {}, rss(("a", "Alpha", "one")))
    site.routes["/html"] = (200, {"Content-Type": "text/html"}, b"<html><head></head><body>hi</body></html>")
    site.routes["/boom"] = (500, {}, b"")
    feeds = [
        FeedDeclaration(name=n, url=f"https://site.example/{n}") for n in ("good", "html", "boom", "missing")
    ]
    poller = make_poller(tmp_path, site, pub, feeds, clock)
    report = cycle(poller)
    outcomes = {name: o.outcome for name, o in report.outcomes.items()}
    assert outcomes == {"good": "ok", "html": "not_a_feed", "boom": "http_500", "missing": "http_404"}
    assert len(pub.published) == 1
    health = poller.health
    assert health.fetches.labels("boom", "http_500")._value.get() == 1
    assert health.failures.labels("missing")._value.get() == 1
    assert health.up.labels("good")._value.get() == 1
    poller.state.close()


def test_schedule_backoff_retry_after_and_gone(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/ok"] = (200, {}, rss(("a", "Alpha", "one")))
    site.routes["/slow-down"] = (429, {"Retry-After": "7200"}, b"")
    site.routes["/gone"] = (410, {}, b"")
    site.routes["/flaky"] = (503, {}, b"")
    names = ("ok", "slow-down", "gone", "flaky")
    feeds = [FeedDeclaration(name=n, url=f"https://site.example/{n}") for n in names]
    poller = make_poller(tmp_path, site, pub, feeds, clock)
    cycle(poller)
    state = {n: poller.state.feed(n, f"https://site.example/{n}") for n in names}
    assert state["ok"].next_due_at == clock.now + timedelta(seconds=600)
    assert state["slow-down"].next_due_at == clock.now + timedelta(seconds=7200)
    assert state["flaky"].next_due_at == clock.now + timedelta(seconds=600)
    assert state["gone"].gone

    clock.now += timedelta(seconds=601)
    report = cycle(poller, only_due=True)
    assert set(report.outcomes) == {"ok", "flaky", "gone"} and report.outcomes["gone"].outcome == "gone"
    assert site.hits["/gone"] == 1 and site.hits["/slow-down"] == 1
    flaky = poller.state.feed("flaky", "https://site.example/flaky")
    assert flaky.consecutive_failures == 2 and flaky.next_due_at == clock.now + timedelta(seconds=1200)
    poller.state.close()


def test_dry_run_prints_json_lines_and_leaves_state_alone(tmp_path: Path) -> None:
    site = Site()
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    settings = PollerSettings(state_dir=str(tmp_path / "state"))
    out = io.StringIO()
    original = Fetcher.__init__

    def patched(self: Fetcher, config: PollerSettings, transport: object = None) -> None:
        original(self, config, transport=httpx.MockTransport(site.handler))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Fetcher, "__init__", patched)
        report = poll_once(settings, dry_run=True, out=out, feeds=[FEED])
    assert report is not None and report.published == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["title"] for line in lines] == ["Alpha", "Beta"]
    for line in lines:
        assert {"article_id", "feed", "url", "title", "language", "published_at"} <= set(line)
        assert line["feed"] == "site" and line["language"] == "en"
    assert not (tmp_path / "state").exists()


def test_a_feed_that_goes_silent_is_flagged_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one")))
    poller = make_poller(tmp_path, site, pub, [FEED], clock)
    poller.health.silent_after = 3600
    cycle(poller)
    clock.now += timedelta(hours=2)
    cycle(poller)
    assert poller.health.silent.labels("site")._value.get() == 1
    assert "feed site went silent" in caplog.text
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    clock.now += timedelta(hours=1)
    cycle(poller)
    clock.now += timedelta(minutes=1)
    cycle(poller)
    assert poller.health.silent.labels("site")._value.get() == 0
    poller.state.close()


def test_cli_arguments() -> None:
    import argparse

    from ingest.command import add_poll_arguments

    parser = argparse.ArgumentParser()
    add_poll_arguments(parser)
    args = parser.parse_args(["--once", "--dry-run", "--feeds", "x.yaml"])
    assert (args.once, args.dry_run, args.feeds, args.state_dir, args.topic) == (
        True,
        True,
        "x.yaml",
        None,
        None,
    )


def test_listed_entries_are_never_forgotten_and_unlisted_ones_are(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    poller = make_poller(
        tmp_path, site, pub, [FEED], clock, poll_forget_after=60 * 86400.0, poll_forget_every=0.0
    )
    cycle(poller)
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one")))  # b drops out of the feed
    for _ in range(6):  # 150 days of polls every 25 days: a stays listed throughout
        clock.now += timedelta(days=25)
        assert cycle(poller).published == 0
        poller._forget_unlisted()
    assert [a.title for a in pub.published] == ["Alpha", "Beta"]  # nothing published twice
    known = poller.state.seen(a.article_id for a in pub.published)
    assert [r.forgotten for r in known.values()] == [False, True]  # b is only a tombstone now
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two")))
    clock.now += timedelta(days=1)
    assert cycle(poller).published == 0  # b comes back unchanged: its tombstone knows it
    site.routes["/rss"] = (200, {}, rss(("a", "Alpha", "one"), ("b", "Beta", "two, edited")))
    clock.now += timedelta(days=1)
    assert cycle(poller).published == 1
    assert (pub.published[-1].title, pub.published[-1].revision) == ("Beta", 2)
    poller.state.close()
