"""A loopback HTTP server that plays publishers: corpus feeds growing over time, plus fixed documents.

Owns the serving side of the fault tests:

* ``/feeds/<name>.xml`` — a :class:`~tests.faults.corpus.CorpusFeed` listing the
  entries released so far (optionally only a rolling window), with an ETag so
  the poller's conditional GET gets ``304`` while nothing changed;
* any path registered with :meth:`FeedServer.add_document` — fixed bytes with
  a status and headers (broken and hostile feeds);
* ``/hang/...`` — accepts the request and never answers (timeout faults).

It counts requests per path so tests can prove a blocked URL was never fetched,
and keeps the headers of each request to a fixed document (credentials must
not follow a redirect to another origin).
Only ever binds 127.0.0.1. The stream clock starts at :meth:`start_stream`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.faults.corpus import Corpus, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    body: bytes
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class FeedServer:
    """Serves ``corpus`` (and extra documents) on ``http://127.0.0.1:<port>``. Close with :meth:`close`."""

    def __init__(self, corpus: Corpus | None = None, window: float | None = None) -> None:
        self.corpus = corpus
        self.window = window
        self.requests: Counter[str] = Counter()
        self.headers: dict[str, list[dict[str, str]]] = {}
        """Request headers (lower-case names) per fixed-document path, in arrival order."""
        self._documents: dict[str, Document] = {}
        self._rendered: dict[tuple[str, int, int], bytes] = {}
        self._started: float | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="feed-server", daemon=True)
        self._thread.start()

    # ---- control ----------------------------------------------------------------------------------

    def start_stream(self) -> None:
        self._started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return -1.0 if self._started is None else time.monotonic() - self._started

    def stream_done(self) -> bool:
        return self.corpus is not None and self.elapsed > self.corpus.stream_seconds

    def add_document(self, path: str, document: Document) -> str:
        self._documents[path] = document
        return self.base + path

    def url(self, feed_name: str) -> str:
        return f"{self.base}/feeds/{feed_name}.xml"

    def close(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---- serving ----------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.requests[path] += 1
        if path.startswith("/hang/"):
            self._stopping.wait(120)
            return
        if path in self._documents:
            with self._lock:
                self.headers.setdefault(path, []).append({k.lower(): v for k, v in request.headers.items()})
            doc = self._documents[path]
            self._send(request, doc.status, doc.body, doc.content_type, doc.headers)
            return
        if path.startswith("/feeds/") and path.endswith(".xml") and self.corpus is not None:
            name = path[len("/feeds/") : -len(".xml")]
            try:
                feed = self.corpus.feed(name)
            except StopIteration:
                self._send(request, 404, b"no such feed", "text/plain")
                return
            entries = feed.released(max(self.elapsed, -1.0), self.window) if self._started else ()
            first = entries[0].index if entries else -1
            etag = f'"{name}-{first}-{len(entries)}"'
            if request.headers.get("If-None-Match") == etag:
                self._send(request, 304, b"", None, (("ETag", etag),))
                return
            key = (name, first, len(entries))
            body = self._rendered.get(key)
            if body is None:
                body = render(feed, entries, self.base, self.corpus.epoch)
                self._rendered = {k: v for k, v in self._rendered.items() if k[0] != name}
                self._rendered[key] = body
            ctype = "application/atom+xml" if feed.format == "atom" else "application/rss+xml"
            self._send(request, 200, body, f"{ctype}; charset=utf-8", (("ETag", etag),))
            return
        self._send(request, 404, b"not found", "text/plain")

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        try:
            request.send_response(status)
            if content_type:
                request.send_header("Content-Type", content_type)
            for name, value in headers:
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            if body and status != 304:
                request.wfile.write(body)
        except OSError:
            log.debug("client went away while %s was served", request.path)
