"""Hostile input through the real pipeline: bombs, gigantic fields, broken encodings, injection-like text.

One run serves a small good corpus plus hostile feeds, and a near-1 MiB poison
message is produced straight onto the raw topic. Outcomes asserted: refused
documents store nothing and are reported, text is stored verbatim (SQL-like)
or as text (markup is never kept as markup), control characters are gone,
gigantic fields are cut to the documented limits, nothing crashes, the good
corpus is stored exactly once. Feeds on private/loopback addresses are never
even requested when ``WIREWATCH_ALLOW_PRIVATE_ADDRESSES=false``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from ingest.normalize import MAX_SUMMARY_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS
from tests.faults.feedserver import Document, FeedServer
from tests.faults.services import ROOT, base_env
from tests.support.kafka import produce_raw, read_all
from wirewatch.contract import decode_dead_letter

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

SQL_TITLE = "Robert'); DROP TABLE articles;--"
SQL_TEXT = "1' OR '1'='1; DELETE FROM events; -- \"quoted\" $$ dollar $$ \\x00 E'\\\\'"
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title><link>http://127.0.0.1/xxe/1</link>
</item></channel></rss>"""
BOMB = b"""<?xml version="1.0"?><!DOCTYPE z [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><rss version="2.0"><channel><title>&c;</title><item><title>&c;</title>
<link>http://127.0.0.1/bomb/1</link></item></channel></rss>"""


def _rss(base: str, items: list[tuple[str, str, str]], extra: str = "") -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{base}{path}</link><guid isPermaLink='false'>{path}</guid>"
        f"<description>{d}</description>{extra}</item>"
        for path, t, d in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>hostile</title><link>{base}/</link><language>en</language>{body}</channel></rss>"
    ).encode()


def hostile_feeds(server: FeedServer) -> list[tuple[str, str]]:
    b = server.base
    sql = SQL_TEXT.replace("&", "&amp;").replace("<", "&lt;")
    items = [
        ("/h/sql", SQL_TITLE, sql),
        (
            "/h/script",
            "&lt;script&gt;alert(1)&lt;/script&gt; Breaking",
            "&lt;p&gt;Hi &lt;script&gt;alert('x')&lt;/script&gt;there&lt;/p&gt;",
        ),
        ("/h/literal", "Use &amp;lt;script&amp;gt; tags", "About &amp;lt;b&amp;gt; tags"),
        ("/h/ctrl", "Bell\x07 and\x01 escape\x1b[31m red", "Tab\x0b vertical\x0c form\x7f del"),
    ]
    text_doc = _rss(b, items)
    utf8_doc = _rss(b, [(p.replace("/h/", "/u/"), t, d) for p, t, d in items]).replace(
        b"Bell", b"B\xff\xfe\xc3ll"
    )
    giant = "word " * 700_000  # 3.5 MB in one description
    long_article = "Gunmen kidnapped a trader in Cali. " + "The story goes on and on " * 20_000
    big_doc = _rss(b, [("/h/giant", "T" * 50_000, giant)])
    long_doc = _rss(b, [("/h/long", "A very long article", "short summary")]).replace(
        b"</description>", f"</description><content:encoded>{long_article}</content:encoded>".encode()
    )
    docs = {"text": text_doc, "utf8": utf8_doc, "giant": big_doc, "long": long_doc, "bomb": BOMB, "xxe": XXE}
    return [(f"hostile-{n}", server.add_document(f"/hostile/{n}.xml", Document(d))) for n, d in docs.items()]


HOSTILE_URLS = (
    "/h/sql",
    "/h/script",
    "/h/literal",
    "/h/ctrl",
    "/u/sql",
    "/u/script",
    "/u/literal",
    "/u/ctrl",
    "/h/giant",
    "/h/long",
)


def test_hostile_feeds_and_an_oversized_poison_message(pipeline, kafka_settings) -> None:
    pipe = pipeline(1, entries=40, feeds=2, stream_seconds=3, extra_feeds=hostile_feeds)
    pipe.faults.plan("hostile feeds beside a 40-entry corpus; a 1000000-byte poison message on the raw topic")
    pipe.start()
    produce_raw(kafka_settings, pipe.names.raw, [("oversized", b"\xfe" * 1_000_000)])
    pipe.wait_drained(expected=40 + len(HOSTILE_URLS))

    base = pipe.server.base
    pipe.assert_exactly_once(allow_extra=frozenset(base + p for p in HOSTILE_URLS))
    pipe.assert_no_crashes()
    pipe.assert_no_secrets_logged()
    with pipe.engine.connect() as conn:
        rows = {
            r.url[len(base) :]: r
            for r in conn.execute(text("SELECT url, title, summary, text FROM articles"))
            if r.url.startswith(base + "/h/") or r.url.startswith(base + "/u/")
        }
        long_events = (
            conn.execute(
                text("SELECT category FROM events JOIN articles USING (article_id) WHERE url = :u"),
                {"u": base + "/h/long"},
            )
            .scalars()
            .all()
        )
    assert set(rows) == set(HOSTILE_URLS)
    assert (rows["/h/sql"].title, rows["/h/sql"].text) == (SQL_TITLE, SQL_TEXT)  # verbatim, never executed
    for key in ("/h/script", "/u/script"):
        for field in ("title", "summary", "text"):
            assert "<script" not in (getattr(rows[key], field) or "").lower(), (key, field)
    assert rows["/h/literal"].title == "Use <script> tags"  # text that shows markup stays text
    for key, row in rows.items():
        for field in ("title", "summary", "text"):
            assert not CONTROL.search(getattr(row, field)), (key, field)
    assert "ll and escape" in rows["/u/ctrl"].title  # invalid UTF-8 decoded, not fatal
    assert len(rows["/h/giant"].title) == MAX_TITLE_CHARS
    assert len(rows["/h/giant"].text) == MAX_SUMMARY_CHARS and rows["/h/giant"].text.startswith("word word")
    assert len(rows["/h/long"].text) == MAX_TEXT_CHARS
    assert long_events == ["kidnapping"]

    poll_log = pipe.supervisor["poll-1"].output()
    for name in ("hostile-bomb", "hostile-xxe"):
        assert re.search(rf"feed {name} failed \(hostile", poll_log), f"{name} was not refused as hostile"
    letters = [decode_dead_letter(r.value) for r in read_all(kafka_settings, pipe.names.dlq, 1)]
    assert [(x.key, x.reason, x.stage) for x in letters] == [("oversized", "invalid_json", "classify")]
    assert "cut to" in letters[0].detail and set(letters[0].original_value()) == {0xFE}


PRIVATE_TARGETS = (
    "http://127.0.0.1:{port}/feed.xml",
    "http://localhost:{port}/feed.xml",
    "http://[::1]:{port}/feed.xml",
    "http://0.0.0.0:{port}/feed.xml",
    "http://10.1.2.3/feed.xml",
    "http://192.168.0.10/feed.xml",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433:{port}/feed.xml",
)


def test_private_and_loopback_feed_urls_are_refused_when_configured(
    new_topic, kafka_settings, tmp_path
) -> None:
    server = FeedServer()
    try:
        server.add_document("/feed.xml", Document(_rss(server.base, [("/ok", "A story", "Body")])))
        topic = new_topic("fault.private", 1)
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(
            "feeds:\n"
            + "".join(
                f"  - name: private-{i}\n    url: '{url.format(port=server.port)}'\n"
                for i, url in enumerate(PRIVATE_TARGETS)
            )
        )
        env = {
            **base_env(),
            "WIREWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
            "WIREWATCH_POLL_TOPIC": topic,
            "WIREWATCH_STATE_DIR": str(tmp_path / "state"),
            "WIREWATCH_FETCH_CONNECT_TIMEOUT": "2",
        }

        def poll(allow: str, *extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "commands.cli", "poll", "--once", "--feeds", str(feeds), *extra],
                cwd=ROOT,
                env={**env, "WIREWATCH_ALLOW_PRIVATE_ADDRESSES": allow},
                capture_output=True,
                text=True,
                timeout=120,
            )

        refused = poll("false")
        assert refused.returncode == 0, refused.stderr
        assert sum(server.requests.values()) == 0, f"a blocked URL was requested: {server.requests}"
        for i in range(len(PRIVATE_TARGETS)):
            assert re.search(rf"feed private-{i} failed \(blocked_address", refused.stderr), (
                i,
                refused.stderr[-3000:],
            )
        assert read_all(kafka_settings, topic, 0, timeout=3) == []

        allowed = poll("true", "--dry-run")  # control: the same loopback feed is fine when allowed
        assert allowed.returncode == 0, allowed.stderr
        assert any(json.loads(line)["title"] == "A story" for line in allowed.stdout.splitlines())
        assert server.requests["/feed.xml"] >= 1
    finally:
        server.close()


def test_real_model_tags_an_extremely_long_article_without_running_out_of_memory(
    model_artifact, tmp_path
) -> None:
    article = "Gunmen kidnapped a trader in Cali after a shootout with police. " * 40_000  # ~2.6 MB
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "long", "title": "Long", "text": article}) + "\n", encoding="utf-8")
    # The peak of this process only (wait4), not RUSAGE_CHILDREN's maximum over every child the
    # test session ran: an earlier stage that built the model cache peaks far higher.
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "tag", "--input", str(source)],
            cwd=ROOT,
            env={**base_env(), "WIREWATCH_CLASSIFY_THREADS": "2"},
            stdout=stdout,
            stderr=stderr,
        )
    deadline = time.monotonic() + 600
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("wirewatch tag ran over 600 s")
        time.sleep(0.2)
    assert proc.returncode == 0, err.read_text()[-3000:]
    line = json.loads(out.read_text().strip().splitlines()[-1])
    assert line["id"] == "long" and set(line["scores"]) >= {"kidnapping", "shootout", "extortion"}
    peak_kib = usage.ru_maxrss
    assert peak_kib < 4 * 1024 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"
