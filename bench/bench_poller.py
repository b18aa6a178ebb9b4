"""How fast does the poller get through 1,000 feeds, and at what memory, next to a naive loop?

A local server (40 loopback addresses, 127.0.0.2-41, so the per-host cap
behaves as with real publishers) serves N distinct RSS feeds of 20 items each
and adds 50 ms before every response. Then, each in its own child process so
peak RSS is its own:

* **naive**: ``for url in urls: feedparser.parse(httpx.get(url).content)``;
* **wirewatch**: one ``Poller.run_once()`` with the default caps (32 in flight,
  2 per host), full parse + normalise + state, publishing to a null publisher.

Prints feeds/s, wall time, entries and peak RSS for both. Run:
``.venv/bin/python bench/bench_poller.py [--feeds 1000] [--latency-ms 50]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOSTS = [f"127.0.0.{i}" for i in range(2, 42)]


def feed_body(n: int) -> bytes:
    items = "".join(
        f"<item><title>Feed {n} story {i}: officials report progress on the bridge works</title>"
        f"<link>https://outlet{n}.example/news/{i}?utm_source=rss</link><guid>o{n}-{i}</guid>"
        f"<pubDate>Mon, 09 Sep 2024 {i % 24:02d}:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Paragraph one of story {i} in feed {n}, with enough words to look like "
        f"a wire lead.&lt;/p&gt;&lt;p&gt;A second paragraph follows.&lt;/p&gt;</description></item>"
        for i in range(20)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Outlet {n}</title>'
        f"<link>https://outlet{n}.example/</link><language>en</language>{items}</channel></rss>"
    ).encode()


def start_servers(n_feeds: int, latency: float) -> list[ThreadingHTTPServer]:
    bodies = {f"/feed/{n}.xml": feed_body(n) for n in range(n_feeds)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            time.sleep(latency)
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    servers = []
    for host in HOSTS:
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


def urls_for(servers: Sequence[ThreadingHTTPServer], n_feeds: int) -> list[str]:
    out = []
    for n in range(n_feeds):
        host, port = servers[n % len(servers)].server_address[:2]
        out.append(f"http://{host!s}:{port}/feed/{n}.xml")
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_naive(urls: list[str], results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import feedparser
    import httpx

    baseline = peak_rss_mb()
    started = time.perf_counter()
    entries = 0
    for url in urls:
        response = httpx.get(url, timeout=30)
        entries += len(feedparser.parse(response.content).entries)
    seconds = time.perf_counter() - started
    results.put(("naive (httpx.get + feedparser, sequential)", seconds, entries, baseline, peak_rss_mb()))


def run_poller(urls: list[str], results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import asyncio
    import logging

    from ingest.config import PollerSettings
    from ingest.feeds import FeedDeclaration
    from ingest.fetch import Fetcher
    from ingest.health import FeedHealth
    from ingest.poller import Poller
    from ingest.state import PollerState
    from wirewatch.metrics import ServiceMetrics

    logging.basicConfig(level=logging.WARNING)
    published = 0

    class NullPublisher:
        def publish(self, articles: Sequence[object]) -> None:
            nonlocal published
            published += len(articles)

        def close(self) -> None: ...

    feeds = [FeedDeclaration(name=f"feed-{n}", url=url) for n, url in enumerate(urls)]
    settings = PollerSettings(allow_private_addresses=True)  # the bench serves its feeds on 127.0.0.1
    with tempfile.TemporaryDirectory() as state_dir:
        poller = Poller(
            feeds,
            PollerState(Path(state_dir)),
            NullPublisher(),
            Fetcher(settings),
            settings=settings,
            health=FeedHealth(ServiceMetrics("poll")),
        )
        baseline = peak_rss_mb()

        async def cycle() -> None:
            try:
                await poller.run_once()
            finally:
                await poller.close()

        started = time.perf_counter()
        asyncio.run(cycle())
        seconds = time.perf_counter() - started
        poller.state.close()
    results.put(("wirewatch poller (32 in flight, 2 per host)", seconds, published, baseline, peak_rss_mb()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    servers = start_servers(args.feeds, args.latency_ms / 1000)
    urls = urls_for(servers, args.feeds)
    print(
        f"{args.feeds} feeds x 20 items on {len(servers)} loopback hosts, "
        f"+{args.latency_ms:.0f} ms a response"
    )
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for target in (run_poller, run_naive):
        results: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        child = ctx.Process(target=target, args=(urls, results))
        child.start()
        rows.append(results.get())
        child.join()
    print(f"{'':45} {'feeds/s':>8} {'wall s':>7} {'entries':>8} {'RSS MB start':>13} {'peak':>6}")
    for name, seconds, entries, baseline, peak in rows:
        print(
            f"{name:45} {args.feeds / seconds:8.1f} {seconds:7.1f} {entries:8d} {baseline:13.0f} {peak:6.0f}"
        )
    for server in servers:
        server.shutdown()


if __name__ == "__main__":
    main()
