"""``kill -9`` of the stage that links incidents (the sink) mid-stream changes nothing.

A stream of tagged articles from a few hundred incidents (:func:`tests.support.incidents.
synthetic_stream`, some messages sent twice) is produced in three parts to a topic that a real
``wirewatch store`` process consumes in batches. Before the second and the third part the test
takes a SHARE lock on ``incidents``: the sink's next batch transaction writes its articles, events
and ``incident_reports`` rows and then waits on that lock in the middle of writing its incidents.
The test checks that it waits there (holding those writes), kills it with SIGKILL, releases the
lock and restarts it. The same messages are then written once more, uninterrupted and in topic
order, through ``save_batch`` into a second database. Incident ids are derived from each incident's
first report, so the two databases must hold the same links, the same incident rows and, per
article, the same events, one classification and one outbox row per event change: nothing lost,
nothing twice, no incident split or merged.

Not timing-sensitive: each kill lands at the same point of a linking transaction by construction
(the lock), whatever the machine's speed; the test waits for states, never for a clock.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from store.database import make_engine
from store.migrate import upgrade
from store.repository import save_batch
from tests.faults.services import Supervisor, base_env, wait_for
from tests.faults.verify import incident_problems
from tests.support.database import drop_database
from tests.support.incidents import synthetic_stream
from tests.support.kafka import produce_raw
from wirewatch.contract import ArticleTagged, encode
from wirewatch.lag import measure_lag

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

ARTICLES = 600
BATCH = 50
KILLS = 2


@pytest.fixture
def reference_engine(admin_engine: Engine, database_url: str) -> Iterator[Engine]:
    """A second fresh, migrated database on the same server (the uninterrupted run)."""
    name = f"wirewatch_test_{uuid.uuid4().hex[:12]}"
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(database_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        drop_database(admin_engine, name)


def stream(seed: int) -> list[ArticleTagged]:
    """The messages in the order they are produced: every tenth one is sent twice (redelivery)."""
    messages, _incidents = synthetic_stream(ARTICLES, seed=seed)
    rng = random.Random(f"{seed}-redeliver")
    out: list[ArticleTagged] = []
    for msg in messages:
        out.append(msg)
        if rng.random() < 0.1:
            out.append(msg)
    return out


def snapshot(engine: Engine) -> dict[str, Any]:
    """What a reader sees, without what depends on batch boundaries and commit times."""
    with engine.connect() as conn:
        q = conn.execute
        return {
            "articles": Counter(r[0] for r in q(text("SELECT article_id FROM articles"))),
            "events": Counter(tuple(r) for r in q(text("SELECT article_id, category FROM events"))),
            "classifications": Counter(r[0] for r in q(text("SELECT article_id FROM classifications"))),
            "outbox": Counter(
                tuple(r) for r in q(text("SELECT article_id, category, change FROM event_outbox"))
            ),
            "links": dict(q(text("SELECT article_id, incident_id FROM incident_reports")).all()),
            "incidents": {
                r["incident_id"]: {k: v for k, v in r.items() if k != "updated_at"}
                for r in q(text("SELECT * FROM incidents")).mappings()
            },
            "problems": incident_problems(conn),
        }


def partition(links: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for article_id, incident in links.items():
        groups.setdefault(incident, set()).add(article_id)
    return {frozenset(g) for g in groups.values()}


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM articles")).scalar_one())


def waiting_writer(engine: Engine) -> set[str]:
    """The tables the backend that waits for a relation lock has written in its transaction."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.relation::regclass::text FROM pg_locks l WHERE l.granted "
                "AND l.mode = 'RowExclusiveLock' AND l.locktype = 'relation' AND l.pid IN ("
                "  SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "  AND wait_event_type = 'Lock' AND wait_event = 'relation')"
            )
        ).all()
    return {r[0] for r in rows}


def test_kill_9_of_the_linking_sink_changes_no_incident(  # type: ignore[no-untyped-def]
    seed: int,
    kafka_settings,
    new_topic,
    new_group,
    database_url: str,
    migrated_engine: Engine,
    reference_engine: Engine,
    tmp_path,
) -> None:
    messages = stream(seed)
    rng = random.Random(f"{seed}-kill-linker")
    cuts = sorted(rng.sample(range(len(messages) // 5, len(messages) * 4 // 5), KILLS))
    parts = [messages[a:b] for a, b in zip([0, *cuts], [*cuts, len(messages)], strict=True)]
    topic, group, dlq = new_topic("fault.tagged"), new_group("fault-store"), new_topic("fault.dlq", 1)
    env = {
        **base_env(),
        "WIREWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "WIREWATCH_DATABASE_URL": database_url,
        "WIREWATCH_STORE_TOPIC": topic,
        "WIREWATCH_STORE_GROUP": group,
        "WIREWATCH_STORE_BATCH_SIZE": str(BATCH),
        "WIREWATCH_DEAD_LETTER_TOPIC": dlq,
        "WIREWATCH_LAG_REPORT_SECONDS": "5",
    }
    supervisor = Supervisor(tmp_path)
    sink = supervisor.add("store-1", "store", env)
    sent: set[str] = set()
    try:
        for number, part in enumerate(parts):
            if number:  # the sink stored everything so far: block its next batch mid-linking
                with migrated_engine.connect() as blocker:
                    blocker.execute(text("LOCK TABLE incidents IN SHARE MODE"))
                    produce_raw(kafka_settings, topic, [(m.article_id, encode(m)) for m in part])
                    wait_for(
                        lambda: "incident_reports" in waiting_writer(migrated_engine),
                        120,
                        what="the sink to wait on incidents after writing its links",
                    )
                    sink.kill9()
                    blocker.rollback()
                sink.start()
            else:
                produce_raw(kafka_settings, topic, [(m.article_id, encode(m)) for m in part])
            sent |= {m.article_id for m in part}

            def caught_up(expected: int = len(sent)) -> bool:
                supervisor.supervise()
                return (
                    stored(migrated_engine) == expected
                    and measure_lag(kafka_settings, {group: [topic]}).total == 0
                )

            wait_for(caught_up, 180, interval=0.5, what=f"the sink to store {len(sent)} articles")
        assert sink.terminate() == 0
    finally:
        supervisor.stop_all()
    assert sink.incarnations == KILLS + 1 and not supervisor.crashes, supervisor.tails()
    for start in range(0, len(messages), BATCH):  # the same messages, uninterrupted
        with Session(reference_engine) as session, session.begin():
            save_batch(session, messages[start : start + BATCH])

    killed, reference = snapshot(migrated_engine), snapshot(reference_engine)
    assert killed["problems"] == [] and reference["problems"] == []
    assert set(killed["articles"]) == {m.article_id for m in messages}
    for table in ("articles", "classifications"):
        assert max(killed[table].values()) == 1, f"{table}: a row twice"
    assert max(killed["outbox"].values()) == 1, "an event change announced twice"
    assert partition(killed["links"]) == partition(reference["links"])
    assert killed["links"] == reference["links"]  # ids are derived from each incident's first report
    assert killed["incidents"] == reference["incidents"]
    for table in ("articles", "events", "classifications", "outbox"):
        assert killed[table] == reference[table], table
