"""One feed document served over HTTP becomes tagged rows in PostgreSQL through the real broker.

The poller runs as the real command (a subprocess), the classifier with the
real model and the sink as in-process services, each on topics, groups and a
database of this test's own.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from classify.command import load_locator, load_tagger
from classify.command import run as run_classifier
from classify.config import ClassifierSettings
from store.command import run as run_sink
from store.config import SinkSettings
from tests.support.paths import ROOT
from wirewatch.lag import measure_lag

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Test wire</title><language>es</language>
<item>
  <title>Policía frustra un secuestro tras un intercambio de disparos en Guayaquil</title>
  <link>/noticias/secuestro-frustrado?utm_source=rss&amp;utm_medium=feed</link>
  <guid isPermaLink="false">e2e-0001</guid>
  <pubDate>Wed, 28 Aug 2024 14:05:00 +0000</pubDate>
  <description>&lt;p&gt;GUAYAQUIL, 28 ago.- La Policía frustró el secuestro de un comerciante después de
  un intercambio de disparos con los captores, que intentaban subirlo a una camioneta. Uno de los
  sospechosos murió en el enfrentamiento y dos fueron detenidos; la víctima salió ilesa.&lt;/p&gt;
  &lt;p&gt;Las bandas de la ciudad también se dedican a la extorsión de comerciantes.&lt;/p&gt;</description>
</item>
<item>
  <title>Las exportaciones de banano crecen un 12 %</title>
  <link>/noticias/banano</link>
  <guid isPermaLink="false">e2e-0002</guid>
  <pubDate>Tue, 27 Aug 2024 09:00:00 +0000</pubDate>
  <description>Las exportaciones de banano sumaron 1.850 millones de dólares, un 12 % más.</description>
</item>
</channel></rss>
"""


@pytest.fixture
def feed_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "wire.xml").write_text(FEED, encoding="utf-8")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_feed_to_database_row(
    kafka_settings, new_topic, new_group, database_url, migrated_engine, feed_server, tmp_path, monkeypatch
) -> None:
    raw, tagged, dlq = new_topic("test.raw"), new_topic("test.tagged"), new_topic("test.dlq", 1)
    classify_group, store_group = new_group("classify"), new_group("store")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        f"feeds:\n  - name: test-wire\n    url: {feed_server}/wire.xml\n    language: es\n    country: EC\n"
    )
    env = {
        **os.environ,
        "WIREWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "WIREWATCH_POLL_TOPIC": raw,
        "WIREWATCH_STATE_DIR": str(tmp_path / "state"),
        "WIREWATCH_ALLOW_PRIVATE_ADDRESSES": "true",  # the feed is served on 127.0.0.1
    }
    poll = subprocess.run(
        [sys.executable, "-m", "commands.cli", "poll", "--once", "--feeds", str(feeds)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert poll.returncode == 0, poll.stderr

    stop = threading.Event()
    common = {"kafka": {"bootstrap": kafka_settings.bootstrap}, "dead_letter_topic": dlq}
    classifier = ClassifierSettings(
        **common, classify_input_topic=raw, classify_output_topic=tagged, classify_group=classify_group
    )
    monkeypatch.setenv("WIREWATCH_DATABASE_URL", database_url)
    sink = SinkSettings(**common, store_topic=tagged, store_group=store_group)
    # Loaded before any service starts, as each stage's own process would have it: loading is CPU
    # bound for seconds, and on a busy 2-core machine it starved the sink's Kafka client while the
    # sink joined its group (it was dropped from the group and consumed nothing).
    model, locator = load_tagger(classifier), load_locator()
    threads = [
        threading.Thread(
            target=run_classifier,
            args=(classifier, stop),
            kwargs={"tagger": model, "locator": locator},
            daemon=True,
        ),
        threading.Thread(target=run_sink, args=(sink, stop), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with migrated_engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM classifications")).scalar_one() >= 2:
                    break
            assert all(t.is_alive() for t in threads), "a service died"
            time.sleep(0.5)
        else:
            # Say where they stopped: a group with lag on its topic never consumed it.
            lag = measure_lag(kafka_settings, {classify_group: [raw], store_group: [tagged]})
            pytest.fail(f"the articles never reached PostgreSQL; consumer lag:\n{lag.format_table()}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    with migrated_engine.connect() as conn:
        article = (
            conn.execute(text("SELECT * FROM articles WHERE url LIKE '%secuestro-frustrado%'"))
            .mappings()
            .one()
        )
        labels = (
            conn.execute(
                text("SELECT category FROM events WHERE article_id = :a ORDER BY category"),
                {"a": article["article_id"]},
            )
            .scalars()
            .all()
        )
        other = conn.execute(
            text(
                "SELECT count(*) FROM events e JOIN articles a USING (article_id) WHERE a.url LIKE '%banano%'"
            )
        ).scalar_one()
        incident = conn.execute(
            text(
                "SELECT i.founder_article_id, i.categories, i.article_count FROM incident_reports r "
                "JOIN incidents i USING (incident_id) WHERE r.article_id = :a"
            ),
            {"a": article["article_id"]},
        ).one()
        outbox = conn.execute(
            text(
                "SELECT category, change, incident_id, incident FROM event_outbox "
                "WHERE article_id = :a ORDER BY id"
            ),
            {"a": article["article_id"]},
        ).all()
        incident_id = conn.execute(
            text("SELECT incident_id FROM incident_reports WHERE article_id = :a"),
            {"a": article["article_id"]},
        ).scalar_one()
    assert article["feed"] == "test-wire"
    assert (
        article["url"] == f"{feed_server}/noticias/secuestro-frustrado"
    )  # relative link resolved, tracking gone
    assert article["language"] == "es"
    assert article["title"].startswith("Policía frustra un secuestro")
    assert "<p>" not in article["text"] and "intercambio de disparos" in article["text"]
    assert article["published_at"].isoformat() == "2024-08-28T14:05:00+00:00"
    assert labels == ["kidnapping", "shootout"]
    # the event's location, read by the classifier with the feed's declared country as a hint
    assert (article["country"], article["admin1_code"], article["place"]) == ("EC", "EC-G", "Guayaquil")
    assert article["geo_precision"] == "city" and "Guayaquil" in article["geo_evidence"]
    assert other == 0
    assert tuple(incident) == (article["article_id"], ["kidnapping", "shootout"], 1)  # it opened one
    assert [tuple(r) for r in outbox] == [  # and the outbox says so, in the same transaction
        ("kidnapping", "added", incident_id, "opened"),
        ("shootout", "added", incident_id, "opened"),
    ]
    report = measure_lag(kafka_settings, {classify_group: [raw], store_group: [tagged]})
    assert report.total == 0
