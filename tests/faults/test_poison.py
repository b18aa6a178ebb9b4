"""Bursts of poison messages and broken feeds mixed into good traffic.

Poison on ``news.raw.v1`` (not JSON, not UTF-8, wrong schema, invalid fields,
tombstones) must reach the dead-letter topic from the classifier; poison on
``news.tagged.v1`` (not JSON, an id over the contract's limit, a NUL character
PostgreSQL cannot store) from the sink — each exactly once, with its stage,
source and reason, and the original bytes. Broken feeds (5xx, 404, garbage,
HTML, empty, an entity-expansion bomb, a server that never answers) yield
nothing. Every good corpus entry is stored exactly once all the same.
"""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime

import pytest

from tests.faults.feedserver import Document, FeedServer
from tests.support.factories import seen, tagged
from tests.support.kafka import produce_raw, read_all
from wirewatch.contract import decode_dead_letter, encode

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title>
<link>http://127.0.0.1/bomb/1</link></item></channel></rss>"""


def broken_feeds(server: FeedServer) -> list[tuple[str, str]]:
    docs = {
        "/broken/500.xml": Document(b"upstream exploded", 500, "text/plain"),
        "/broken/404.xml": Document(b"gone fishing", 404, "text/plain"),
        "/broken/garbage.xml": Document(bytes(random.Random(7).randrange(256) for _ in range(4000))),
        "/broken/html.xml": Document(b"<html><body><h1>Subscribe!</h1></body></html>", 200, "text/html"),
        "/broken/empty.xml": Document(b""),
        "/broken/bomb.xml": Document(BOMB),
    }
    feeds = [
        (f"broken-{path.rsplit('/', 1)[1][:-4]}", server.add_document(path, doc))
        for path, doc in docs.items()
    ]
    feeds.append(("broken-hang", f"{server.base}/hang/feed.xml"))
    return feeds


def raw_poison(burst: int) -> list[tuple[str | None, bytes | None, str]]:
    """(key, value, expected reason) for the classifier's input topic."""
    naive = seen(f"poison-{burst}-naive").model_dump(mode="json", by_alias=True)
    naive["first_seen_at"] = "2024-08-28T14:00:00"  # no time zone: the contract refuses it
    return [
        (f"poison-{burst}-notjson", b"this is { not json", "invalid_json"),
        (f"poison-{burst}-binary", b"\xff\xfe\x00\x81binary", "invalid_json"),
        (f"poison-{burst}-array", b"[1, 2, 3]", "schema"),
        (f"poison-{burst}-oldschema", b'{"schema": "news.raw.v0", "article_id": "x"}', "schema"),
        (
            f"poison-{burst}-emptyid",
            encode(seen("x")).replace(b'"article_id":"x"', b'"article_id":""'),
            "schema",
        ),
        (f"poison-{burst}-naive", json.dumps(naive).encode(), "schema"),
        (f"poison-{burst}-tombstone", None, "empty"),
    ]


def tagged_poison(burst: int) -> list[tuple[str | None, bytes | None, str]]:
    """(key, value, expected reason) for the sink's input topic."""
    nul = tagged(seen(f"poison-{burst}-nul", title="a NUL \x00 in the title"))
    long_id = encode(tagged(seen("y"))).replace(b'"article_id":"y"', b'"article_id":"' + b"z" * 300 + b'"')
    return [
        (f"poison-{burst}-tagged-notjson", b"<<garbage>>", "invalid_json"),
        (f"poison-{burst}-tagged-longid", long_id, "schema"),
        (f"poison-{burst}-nul", encode(nul), "constraint"),
    ]


def test_poison_bursts_and_broken_feeds_among_good_traffic(pipeline, seed: int, kafka_settings) -> None:
    pipe = pipeline(seed, extra_feeds=broken_feeds)
    rng = random.Random(f"{seed}-poison")
    moments = sorted(round(rng.uniform(1.0, pipe.corpus.stream_seconds), 2) for _ in range(3))
    pipe.faults.plan(f"poison bursts at {moments}; 7 broken feeds polled every second")
    pipe.start()

    expected: dict[str, tuple[str, str, bytes | None]] = {}
    for burst, moment in enumerate(moments):
        pipe.sleep_until(moment)
        raw, tag = raw_poison(burst), tagged_poison(burst)
        produce_raw(kafka_settings, pipe.names.raw, [(k, v) for k, v, _ in raw])
        produce_raw(kafka_settings, pipe.names.tagged, [(k, v) for k, v, _ in tag])
        expected.update({k: ("classify", reason, v) for k, v, reason in raw if k})
        expected.update({k: ("store", reason, v) for k, v, reason in tag if k})
        pipe.faults.note(
            pipe.server.elapsed, f"burst {burst}: {len(raw)} raw + {len(tag)} tagged poison messages"
        )
    pipe.wait_drained()

    pipe.assert_exactly_once()
    pipe.assert_no_crashes()
    pipe.assert_no_secrets_logged()
    letters = [decode_dead_letter(r.value) for r in read_all(kafka_settings, pipe.names.dlq, len(expected))]
    got = {letter.key: letter for letter in letters}
    assert len(letters) == len(expected), f"{len(letters)} dead letters for {len(expected)} poison messages"
    assert set(got) == set(expected)
    for key, (stage, reason, value) in expected.items():
        letter = got[key]
        assert (letter.stage, letter.reason) == (stage, reason), key
        assert letter.source_topic == (pipe.names.raw if stage == "classify" else pipe.names.tagged)
        assert letter.original_value() == (value or b""), key
        assert base64.b64decode(letter.value_b64) == (value or b"")
        assert letter.failed_at <= datetime.now(UTC)
    poll_log = pipe.supervisor["poll-1"].output()
    for name in ("broken-500", "broken-404", "broken-garbage", "broken-html", "broken-empty", "broken-bomb"):
        assert name in poll_log, f"the failure of {name} was not logged"
