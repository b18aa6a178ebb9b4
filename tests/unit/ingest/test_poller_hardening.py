"""Issue 11 on the poll cycle: GUID-owned ids, syndicated copies, tombstones, full text, secrets, stop."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest import fulltext
from ingest.config import PollerSettings
from ingest.feeds import FeedDeclaration
from ingest.fetch import Fetcher
from ingest.health import FeedHealth
from ingest.normalize import MAX_TEXT_CHARS, guid_id, normalize_feed
from ingest.parse import ParsedFeed, RawEntry
from ingest.poller import Poller
from ingest.state import PollerState
from wirewatch.metrics import ServiceMetrics

from .conftest import declaration
from .test_poller import FEED, Clock, FakePublisher, Site, cycle, make_poller


def rss_items(*items: tuple[str, str, str, str]) -> bytes:
    """(guid, link slug, title, description) items."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{g}</guid><title>{t}</title>"
        f"<link>https://site.example/{slug}</link><description>{d}</description></item>"
        for g, slug, t, d in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


KIDNAP = ("g-kidnap", "story", "Trader kidnapped in Cali", "Gunmen seized a trader.")
FOOTBALL = ("g-football", "story", "Cali wins the derby", "Football results.")


def test_an_item_prepended_with_the_same_link_does_not_take_over_the_article(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/rss"] = (200, {}, rss_items(KIDNAP))
    poller = make_poller(tmp_path, site, pub, [FEED], clock)
    cycle(poller)
    kidnap_id = pub.published[0].article_id
    site.routes["/rss"] = (200, {}, rss_items(FOOTBALL, KIDNAP))  # unrelated item, same link, first
    cycle(poller)
    site.routes["/rss"] = (200, {}, rss_items(FOOTBALL))  # and the original one drops out
    cycle(poller)
    poller.state.close()
    by_title = {a.title: a for a in pub.published}
    assert [(a.title, a.revision) for a in pub.published] == [
        ("Trader kidnapped in Cali", 1),
        ("Cali wins the derby", 1),
    ]
    assert by_title["Trader kidnapped in Cali"].article_id == kidnap_id  # never overwritten, never moved
    assert by_title["Cali wins the derby"].article_id == guid_id(FEED.name, "g-football")


def test_document_order_decides_only_for_items_never_seen() -> None:
    feed = declaration(url="https://site.example/rss")
    entries = [
        RawEntry(guid=g, link=f"https://site.example/{slug}", title=t, summary_html=d)
        for g, slug, t, d in (FOOTBALL, KIDNAP)
    ]
    parsed = ParsedFeed(format="rss20", entries=tuple(entries), base_url=feed.url)
    fresh = normalize_feed(parsed, feed, Clock()())
    assert [a.article_id == guid_id(feed.name, a.guid or "") for a in fresh.articles] == [False, True]
    url_id = fresh.articles[0].article_id
    owned = normalize_feed(parsed, feed, Clock()(), owners={url_id: "g-kidnap"})
    assert {a.guid: a.article_id for a in owned.articles} == {
        "g-kidnap": url_id,
        "g-football": guid_id(feed.name, "g-football"),
    }


def test_a_story_in_three_feeds_with_different_summaries_is_published_once(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    feeds = [
        FeedDeclaration(name=f"wire-{n}", url=f"https://site.example/{n}.xml", language="en")
        for n in ("a", "b", "c")
    ]
    for n in ("a", "b", "c"):
        site.routes[f"/{n}.xml"] = (
            200,
            {},
            rss_items((f"{n}-1", "shared-story", "Bus drivers extorted", f"Summary as wire {n} wrote it.")),
        )
    poller = make_poller(tmp_path, site, pub, feeds, clock)
    for _ in range(20):
        clock.now += timedelta(minutes=15)
        cycle(poller)
    assert [(a.title, a.revision) for a in pub.published] == [("Bus drivers extorted", 1)]
    owner = pub.published[0].feed
    # an edit in the owning feed is still a revision
    site.routes[f"/{owner.removeprefix('wire-')}.xml"] = (
        200,
        {},
        rss_items((f"{owner[-1]}-1", "shared-story", "Bus drivers extorted", "Updated: three arrested.")),
    )
    clock.now += timedelta(minutes=15)
    cycle(poller)
    poller.state.close()
    assert [(a.feed, a.revision) for a in pub.published] == [(owner, 1), (owner, 2)]


def test_an_edit_after_forgetting_continues_the_revision_count(tmp_path: Path) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    site.routes["/rss"] = (200, {}, rss_items(("g1", "a", "Alpha", "one")))
    poller = make_poller(
        tmp_path, site, pub, [FEED], clock, poll_forget_after=30 * 86400.0, poll_forget_every=0.0
    )
    cycle(poller)
    site.routes["/rss"] = (200, {}, rss_items(("g1", "a", "Alpha", "one, edited")))
    cycle(poller)
    site.routes["/rss"] = (200, {}, rss_items(("g2", "b", "Beta", "other")))  # a drops out...
    clock.now += timedelta(days=40)
    cycle(poller)
    poller._forget_unlisted()  # ... and is forgotten
    site.routes["/rss"] = (200, {}, rss_items(("g1", "a", "Alpha", "one, edited again")))
    clock.now += timedelta(days=1)
    cycle(poller)
    poller.state.close()
    alpha = [a.revision for a in pub.published if a.title == "Alpha"]
    assert alpha == [1, 2, 3]  # revision 1 again would be ignored by the sink (stored revision is 2)


def test_secrets_in_feed_urls_stay_out_of_last_error_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site, pub, clock = Site(), FakePublisher(), Clock()
    feed = FeedDeclaration(
        name="secret", url="https://reader:pa55-canary@site.example/gone.xml?apikey=key-canary&lang=en"
    )
    poller = make_poller(tmp_path, site, pub, [feed], clock)
    report = cycle(poller)
    state = poller.state.feed(feed.name, feed.url)
    poller.state.close()
    assert state.last_error is not None and "http_404" in state.last_error
    for text in (state.last_error, report.outcomes["secret"].detail, caplog.text):
        assert "pa55-canary" not in text and "key-canary" not in text, text
    assert "site.example/gone.xml" in state.last_error


class FakeExtractor:
    """trafilatura's ``extract``: the page's text as given."""

    @staticmethod
    def extract(html: str, url: str | None = None) -> str:
        return html


def test_full_text_is_capped_and_fetched_for_revisions(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(fulltext, "_extractor", lambda: FakeExtractor)
    site, pub, clock = Site(), FakePublisher(), Clock()
    feed = FeedDeclaration(name="site", url="https://site.example/rss", language="en", full_text=True)
    site.routes["/rss"] = (200, {}, rss_items(("g1", "a", "Alpha", "lead")))
    site.routes["/a"] = (200, {"Content-Type": "text/html"}, ("word " * 600_000).encode())  # 3 MB page
    poller = make_poller(tmp_path, site, pub, [feed], clock)
    cycle(poller)
    site.routes["/rss"] = (200, {}, rss_items(("g1", "a", "Alpha", "lead, edited")))
    site.routes["/a"] = (200, {"Content-Type": "text/html"}, b"The edited page.")
    clock.now += timedelta(minutes=15)
    cycle(poller)
    poller.state.close()
    first, edit = pub.published
    assert len(first.text) == MAX_TEXT_CHARS  # not 3 MB: the message must fit in Kafka
    assert (edit.revision, edit.text) == (2, "The edited page.")  # not the feed's lead


def test_stop_cancels_fetches_in_flight_and_skips_the_rest(tmp_path: Path) -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def hanging(request: httpx.Request) -> httpx.Response:
        started.append(request.url.path)
        await release.wait()  # never set: a publisher that never answers
        return httpx.Response(200)

    feeds = [FeedDeclaration(name=f"f{i}", url=f"https://slow.example/{i}.xml") for i in range(6)]
    stop = threading.Event()
    pub = FakePublisher()
    settings = PollerSettings(fetch_per_host=2, fetch_total_timeout=600, poll_jitter=0.0, poll_forget_after=0)
    poller = Poller(
        feeds,
        PollerState(tmp_path),
        pub,
        Fetcher(settings, transport=httpx.MockTransport(hanging)),
        settings=settings,
        health=FeedHealth(ServiceMetrics("poll")),
        clock=Clock(),
    )

    async def go() -> Any:
        cycle_task = asyncio.create_task(poller.run_once(stop=stop.is_set))
        while len(started) < 2:
            await asyncio.sleep(0.01)
        stop.set()
        return await asyncio.wait_for(cycle_task, timeout=60)  # the fetches themselves would take 600 s

    report = asyncio.run(go())
    assert len(started) == 2  # the feeds queued behind the per-host limit were never fetched
    assert {o.outcome for o in report.outcomes.values()} == {"stopped"}
    assert report.failed == [] and pub.published == []
    assert all(poller.state.feed(f.name, f.url).last_attempt_at is None for f in feeds)  # polled next time
    poller.state.close()


def test_full_text_with_the_real_extractor(tmp_path: Path) -> None:
    pytest.importorskip("trafilatura", reason="the full_text extra is not installed")
    fulltext._extractor.cache_clear()
    site, pub, clock = Site(), FakePublisher(), Clock()
    feed = FeedDeclaration(name="site", url="https://site.example/rss", language="en", full_text=True)
    site.routes["/rss"] = (200, {}, rss_items(("g1", "a", "Trader kidnapped", "Lead only.")))
    story = "Gunmen kidnapped a trader outside his shop in Cali on Monday, police said. " * 6
    page = (
        "<html><head><title>Trader kidnapped</title><script>var x = 1;</script></head><body>"
        "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>Trader kidnapped</h1><p>{story}</p><p>The family asked for help.</p></article>"
        "<footer>Copyright 2024 Site</footer></body></html>"
    )
    site.routes["/a"] = (200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())
    poller = make_poller(tmp_path, site, pub, [feed], clock)
    cycle(poller)
    poller.state.close()
    (article,) = pub.published
    assert "Gunmen kidnapped a trader" in article.text and "The family asked for help." in article.text
    assert "var x" not in article.text and "Copyright" not in article.text
    assert article.summary == "Lead only."  # the feed's own fields stay; the hash is the feed's


def test_credentials_do_not_follow_a_remembered_permanent_redirect(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "site.example":
            return httpx.Response(301, headers={"Location": "https://elsewhere.example/rss"})
        return httpx.Response(200, content=rss_items(("g1", "a", "Alpha", "one")))

    feed = FeedDeclaration(name="site", url="https://site.example/rss", headers={"Authorization": "Bearer t"})
    poller = make_poller(tmp_path, Site(), FakePublisher(), [feed], Clock())
    poller.fetcher = Fetcher(poller.settings, transport=httpx.MockTransport(handler))
    cycle(poller)
    cycle(poller)  # straight to the remembered URL, on another origin
    poller.state.close()
    assert [(r.url.host, r.headers.get("authorization")) for r in seen] == [
        ("site.example", "Bearer t"),
        ("elsewhere.example", None),
        ("elsewhere.example", None),
    ]
