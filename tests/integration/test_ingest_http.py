"""The poller against a real local HTTP server that misbehaves in every way the web does.

Each route ends in its documented behaviour (see ``ingest/fetch.py`` and
``ingest/parse.py``); nothing is published twice; the poller keeps running.
Most tests publish to a fake; the ``integration``-marked ones go to the real
Kafka on 127.0.0.1:9092, each on its own topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.command import poll_once
from ingest.config import PollerSettings
from ingest.feeds import FeedDeclaration
from ingest.fetch import Fetcher
from ingest.health import FeedHealth
from ingest.poller import CycleReport, Poller
from ingest.publisher import KafkaPublisher
from ingest.state import PollerState
from tests.support.kafka import read_all
from wirewatch.contract import ArticleSeen, decode_seen
from wirewatch.metrics import ServiceMetrics
from wirewatch.settings import KafkaSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"


def rss(*slugs: str, title: str = "Story") -> bytes:
    items = "".join(
        f"<item><title>{title} {s}</title><link>http://site.test/{s}</link><guid>{s}</guid>"
        f"<pubDate>Mon, 09 Sep 2024 10:00:00 GMT</pubDate><description>Text of {s}.</description></item>"
        for s in slugs
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    )


Route = Callable[[BaseHTTPRequestHandler], None]


class ScriptedServer:
    """ThreadingHTTPServer on 127.0.0.1, random port; ``routes[path](handler)`` writes the response."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path)
                if route is None:
                    send(self, 404, b"not found")
                else:
                    # the poller may hang up on purpose (deadline, size limit)
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def feed(self, name: str, path: str | None = None) -> FeedDeclaration:
        return FeedDeclaration(name=name, url=f"{self.base}{path or '/' + name}", language="en")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    for key, value in headers.items():
        h.send_header(key.replace("_", "-"), value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def conditional(body: bytes, etag: str = '"v1"') -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == etag:
            send(h, 304, ETag=etag)
        else:
            send(
                h,
                200,
                body,
                ETag=etag,
                Content_Type="application/rss+xml",
                Last_Modified="Mon, 09 Sep 2024 10:00:00 GMT",
            )

    return route


def slow(seconds: float, body: bytes) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        send(h, 200, body)

    return route


def drip(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "100000")
    h.end_headers()
    for _ in range(200):
        h.wfile.write(b" ")
        h.wfile.flush()
        time.sleep(0.1)


def unbounded(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Connection", "close")  # no Content-Length: the body ends when the server closes
    h.end_headers()
    chunk = b"<!-- padding -->" * 4096
    for _ in range(200):
        h.wfile.write(chunk)
    h.close_connection = True


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[ArticleSeen] = []

    def publish(self, articles: Sequence[ArticleSeen]) -> None:
        self.published.extend(articles)

    def close(self) -> None: ...


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def make_poller(tmp_path: Path, feeds: list[FeedDeclaration], publisher: object, **config: object) -> Poller:
    settings = PollerSettings(
        **{
            "user_agent": "wirewatch-test",
            "fetch_connect_timeout": 2,
            "fetch_read_timeout": 1.0,
            "fetch_total_timeout": 2.0,
            "fetch_max_bytes": 256 * 1024,
            "allow_private_addresses": True,  # the scripted server is on 127.0.0.1
            "poll_interval": 0.3,
            "poll_jitter": 0.0,
            "poll_backoff_cap": 0.6,
            "poll_forget_after": 0,
            **config,
        }  # type: ignore[arg-type]
    )
    return Poller(
        feeds,
        PollerState(tmp_path / "state"),
        publisher,  # type: ignore[arg-type]
        Fetcher(settings),
        settings=settings,
        health=FeedHealth(ServiceMetrics("poll")),
        rng=random.Random(3),
    )


def once(poller: Poller) -> CycleReport:
    async def cycle() -> CycleReport:
        try:
            return await poller.run_once()
        finally:
            await poller.close()

    return asyncio.run(cycle())


EXPECTED = {
    "ok": "ok",
    "moved301": "ok",
    "moved308": "ok",
    "missing": "http_404",
    "gone": "gone",
    "ratelimited": "rate_limited",
    "error": "http_500",
    "timeout": "read_timeout",
    "drip": "deadline",
    "oversized": "too_large",
    "oversized_declared": "too_large",
    "html": "not_a_feed",
    "gzip_no_header": "ok",
    "invalid": "malformed",
    "bomb": "hostile",
}


def script_everything(server: ScriptedServer) -> None:
    r = server.routes
    r["/ok"] = conditional(rss("ok-1", "ok-2"))
    r["/moved301"] = lambda h: send(h, 301, Location="/new301")
    r["/new301"] = conditional(rss("m301-1"))
    r["/moved308"] = lambda h: send(h, 308, Location=f"{server.base}/new308")
    r["/new308"] = conditional(rss("m308-1"))
    r["/missing"] = lambda h: send(h, 404, b"no such feed")
    r["/gone"] = lambda h: send(h, 410, b"gone for good")
    r["/ratelimited"] = lambda h: send(h, 429, b"slow down", Retry_After="3600")
    r["/error"] = lambda h: send(h, 500, b"oops")
    r["/timeout"] = slow(3.0, rss("late"))
    r["/drip"] = drip
    r["/oversized"] = unbounded
    r["/oversized_declared"] = lambda h: send(h, 200, b"x" * (300 * 1024))
    r["/html"] = lambda h: send(
        h, 200, (FIXTURES / "html_page.html").read_bytes(), Content_Type="text/html; charset=utf-8"
    )
    r["/gzip_no_header"] = lambda h: send(h, 200, gzip.compress(rss("gz-1", "gz-2", "gz-3")))
    r["/invalid"] = lambda h: send(h, 200, bytes(random.Random(7).randrange(256) for _ in range(4096)))
    r["/bomb"] = lambda h: send(h, 200, (FIXTURES / "entity_bomb.xml").read_bytes())


def test_every_misbehaviour_ends_in_its_documented_outcome(server: ScriptedServer, tmp_path: Path) -> None:
    script_everything(server)
    publisher = RecordingPublisher()
    poller = make_poller(tmp_path, [server.feed(name) for name in EXPECTED], publisher)
    started = time.monotonic()
    report = once(poller)
    assert time.monotonic() - started < 10
    assert {name: o.outcome for name, o in report.outcomes.items()} == EXPECTED
    assert (
        "http://127.0.0.1" in report.outcomes["html"].detail
        and "/rss/all.xml" in report.outcomes["html"].detail
    )
    titles = sorted(a.title for a in publisher.published)
    assert titles == sorted(
        ["Story ok-1", "Story ok-2", "Story m301-1", "Story m308-1", "Story gz-1", "Story gz-2", "Story gz-3"]
    )
    state = poller.state
    assert state.feed("moved301", f"{server.base}/moved301").url == f"{server.base}/new301"
    assert state.feed("moved308", f"{server.base}/moved308").url == f"{server.base}/new308"
    assert state.feed("gone", f"{server.base}/gone").gone
    ratelimited = state.feed("ratelimited", f"{server.base}/ratelimited")
    assert ratelimited.next_due_at is not None and ratelimited.last_error and "429" in ratelimited.last_error

    # a second cycle: 304 for the good feeds, permanent redirects not followed again, nothing re-published
    report = once(poller)
    assert len(publisher.published) == 7
    assert report.outcomes["ok"].outcome == "not_modified"
    assert report.outcomes["gone"].outcome == "gone" and server.hits["/gone"] == 1
    assert server.hits["/moved301"] == 1 and server.hits["/new301"] == 2
    poller.state.close()


def test_poller_keeps_running_through_broken_feeds(server: ScriptedServer, tmp_path: Path) -> None:
    script_everything(server)
    publisher = RecordingPublisher()
    poller = make_poller(tmp_path, [server.feed(name) for name in EXPECTED], publisher)
    stop = threading.Event()
    errors: list[BaseException] = []

    async def forever() -> None:
        try:
            await poller.run_forever(stop.is_set)
        finally:
            await poller.close()

    def run() -> None:
        try:
            asyncio.run(forever())
        except BaseException as exc:  # the test asserts there is none
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(2.0)
    server.routes["/ok"] = conditional(rss("ok-1", "ok-2", "ok-3"), etag='"v2"')  # a new entry appears
    deadline = time.monotonic() + 8
    while not any(a.title == "Story ok-3" for a in publisher.published) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert thread.is_alive() and not errors
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and not errors
    ids = [a.article_id for a in publisher.published]
    assert len(ids) == len(set(ids)) == 8
    assert server.hits["/error"] >= 2 and server.hits["/gone"] == 1
    poller.state.close()


@pytest.mark.integration
def test_publishes_to_real_kafka_once(
    server: ScriptedServer, tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    topic = f"test.raw.{uuid.uuid4().hex[:8]}"
    server.routes["/wire"] = conditional(rss("k-1", "k-2", "k-3"))
    server.routes["/broken"] = lambda h: send(h, 500)
    settings = PollerSettings(
        state_dir=str(tmp_path / "state"),
        kafka={"bootstrap": kafka_settings.bootstrap},
        poll_topic=topic,
        allow_private_addresses=True,
    )
    feeds = [server.feed("wire"), server.feed("broken")]
    first = poll_once(settings, feeds=feeds)
    assert first is not None and first.published == 3
    assert first.outcomes["broken"].outcome == "http_500"
    server.routes["/wire"] = conditional(rss("k-1", "k-2", "k-3", "k-4"), etag='"v2"')
    second = poll_once(settings, feeds=feeds)
    assert second is not None and second.published == 1
    records = read_all(kafka_settings, topic, expected=4)
    assert len(records) == 4
    messages = [decode_seen(r.value) for r in records]
    assert sorted(m.title for m in messages) == ["Story k-1", "Story k-2", "Story k-3", "Story k-4"]
    assert all(r.key.decode() == m.article_id for r, m in zip(records, messages, strict=True))


@pytest.mark.integration
def test_kafka_unreachable_then_back(
    server: ScriptedServer, tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    topic = f"test.raw.{uuid.uuid4().hex[:8]}"
    server.routes["/wire"] = conditional(rss("d-1", "d-2"))
    settings = PollerSettings(
        state_dir=str(tmp_path / "state"),
        poll_topic=topic,
        publish_give_up_after=1.0,
        allow_private_addresses=True,
    )
    dead = KafkaPublisher(
        KafkaSettings(bootstrap="127.0.0.1:1"), topic, max_block_ms=500, bootstrap_timeout_ms=500
    )
    assert poll_once(settings, feeds=[server.feed("wire")], publisher=dead) is None  # gave up, nothing marked
    live = KafkaPublisher(kafka_settings, topic)
    report = poll_once(settings, feeds=[server.feed("wire")], publisher=live)
    assert report is not None and report.published == 2
    assert len(read_all(kafka_settings, topic, expected=2)) == 2


@pytest.mark.integration
def test_publisher_readiness_follows_the_broker(kafka_settings: KafkaSettings) -> None:
    from wirewatch.errors import RetriableError

    topic = f"test.raw.{uuid.uuid4().hex[:8]}"
    dead = KafkaPublisher(KafkaSettings(bootstrap="127.0.0.1:1"), topic)
    assert not dead.ready()  # nothing published yet, but no broker answers
    with pytest.raises(RetriableError):
        dead.publish([])
    assert dead.last_error is not None and "127.0.0.1:1" in dead.last_error
    live = KafkaPublisher(kafka_settings, topic)
    try:
        assert live.ready()
        live.publish([])
        assert live.last_error is None and live.ready()
    finally:
        live.close()


def test_sigterm_during_a_poll_cycle_stops_the_poller_at_once(server: ScriptedServer, tmp_path: Path) -> None:
    """A publisher that never answers must not hold SIGTERM until the fetch deadline (issue 11)."""
    release = threading.Event()
    server.routes["/hang"] = lambda h: release.wait(120)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - name: hang\n    url: {server.base}/hang\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")},
        "WIREWATCH_STATE_DIR": str(tmp_path / "state"),
        "WIREWATCH_ALLOW_PRIVATE_ADDRESSES": "true",
        "WIREWATCH_FETCH_READ_TIMEOUT": "100",
        "WIREWATCH_FETCH_TOTAL_TIMEOUT": "100",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "poll", "--dry-run", "--feeds", str(feeds)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while server.hits.get("/hang", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.hits.get("/hang", 0) == 1, "the poller never fetched the feed"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=50)  # the fetch itself would only give up after 100 s
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output[-2000:]
    assert "fetches in flight cancelled" in output
