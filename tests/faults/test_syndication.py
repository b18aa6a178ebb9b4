"""Syndicated copies through the running pipeline: one story, three feeds, three summaries, one article.

Three feeds carry the same story (same link, their own GUID and their own
summary) and are polled every second, at least 20 times each. Before the
fix the content hash was compared across feeds, so every poll published a new
revision (re-classified, re-notified). Asserted: one article row, revision 1,
one classification, and exactly one message for it on the raw topic; the
corpus beside it is stored exactly once.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.faults.feedserver import Document, FeedServer
from tests.support.kafka import read_all

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

POLLS = 20
WIRES = ("wire-a", "wire-b", "wire-c")


def syndicated(server: FeedServer) -> list[tuple[str, str]]:
    feeds = []
    for n, name in enumerate(WIRES):
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>' + name + "</title>"
            f"<link>{server.base}/</link><language>en</language><item><title>Bus drivers extorted in Lima"
            f"</title><link>{server.base}/s/story</link><guid isPermaLink='false'>{name}-0001</guid>"
            f"<description>Prosecutors charged four men with extortion of bus drivers in Lima. "
            f"(as {name} tells it, version {n})</description></item></channel></rss>"
        )
        feeds.append((name, server.add_document(f"/synd/{name}.xml", Document(doc.encode()))))
    return feeds


def test_a_story_in_three_feeds_is_one_article_with_one_revision(pipeline, kafka_settings) -> None:  # type: ignore[no-untyped-def]
    pipe = pipeline(2, entries=10, feeds=1, stream_seconds=2, extra_feeds=syndicated)
    pipe.faults.plan(f"one story in {len(WIRES)} feeds with different summaries, each polled {POLLS} times")
    pipe.start()
    story = f"{pipe.server.base}/s/story"
    pipe.wait_drained(expected=10 + 1)
    for _ in range(240):
        if min(pipe.server.requests[f"/synd/{name}.xml"] for name in WIRES) >= POLLS:
            break
        pipe.sleep(0.5)
    polls = {name: pipe.server.requests[f"/synd/{name}.xml"] for name in WIRES}
    assert min(polls.values()) >= POLLS, polls
    pipe.wait_drained(expected=10 + 1)

    pipe.assert_exactly_once(allow_extra=frozenset({story}))
    pipe.assert_no_crashes()
    with pipe.engine.connect() as conn:
        query = text("SELECT article_id, revision FROM articles WHERE url = :u")
        rows = conn.execute(query, {"u": story}).all()
        assert len(rows) == 1 and rows[0].revision == 1, rows
        classified = conn.execute(
            text("SELECT count(*) FROM classifications WHERE article_id = :a"), {"a": rows[0].article_id}
        ).scalar_one()
    assert classified == 1
    raw = read_all(kafka_settings, pipe.names.raw, 10 + 1, timeout=10)
    assert sum(1 for r in raw if r.key == rows[0].article_id.encode()) == 1
