"""The event outbox (issue 11, item 13): the facts readers poll, which only the sink may write.

PostgreSQL has no privilege for NOTIFY, so any role (the read-only one too) can
send a forged ``NOTIFY wirewatch_events``. Notifications are therefore only a
hint carrying an outbox id; the changes themselves, removals included, are rows
in ``event_outbox`` that readers can select and cannot write.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from store.repository import save_batch
from store.tables import event_outbox
from tests.support.factories import seen, tagged

pytestmark = pytest.mark.integration


def _save(engine: Engine, *batch) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session, session.begin():
        save_batch(session, list(batch))


def _outbox(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                event_outbox.c.id,
                event_outbox.c.article_id,
                event_outbox.c.category,
                event_outbox.c.change,
                event_outbox.c.score,
                event_outbox.c.article_revision,
            ).order_by(event_outbox.c.id)
        )
        return [tuple(r) for r in rows]


def test_additions_updates_and_removals_reach_the_outbox_once(migrated_engine: Engine) -> None:
    first = tagged(seen("a1"), labels=("kidnapping", "shootout"))
    _save(migrated_engine, first)
    _save(migrated_engine, first)  # re-delivery: no change, no row
    edited = tagged(seen("a1", revision=2, text="Edited."), labels=("kidnapping",))
    _save(migrated_engine, edited)
    rows = _outbox(migrated_engine)
    assert [r[1:] for r in rows] == [
        ("a1", "kidnapping", "added", 0.9, 1),
        ("a1", "shootout", "added", 0.9, 1),
        ("a1", "kidnapping", "updated", 0.9, 2),
        ("a1", "shootout", "removed", None, 2),
    ]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    # The same tags re-scored identically by a later classification change nothing a reader sees.
    again = tagged(
        edited.article, labels=("kidnapping",), classified_at=edited.classified_at + timedelta(hours=1)
    )
    _save(migrated_engine, again)
    assert len(_outbox(migrated_engine)) == 4


def test_reader_role_reads_the_outbox_and_cannot_write_or_lock_it(migrated_engine: Engine) -> None:
    _save(migrated_engine, tagged())
    reader = create_engine(migrated_engine.url.set(username="wirewatch_reader", password="wirewatch_reader"))
    try:
        with reader.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM event_outbox")).scalar_one() == 2
        for statement in (
            "INSERT INTO event_outbox (article_id, category, change, score, article_revision, model_name, "
            "model_version) VALUES ('a1', 'kidnapping', 'added', 1, 9, 'forged', '1')",
            "UPDATE event_outbox SET score = 0",
            "DELETE FROM event_outbox",
            "LOCK TABLE event_outbox IN EXCLUSIVE MODE",  # would stall the sink
            "SELECT nextval('event_outbox_id_seq')",  # would burn ids
        ):
            with reader.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(statement))
    finally:
        reader.dispose()


def test_notify_is_a_hint_that_carries_only_the_outbox_id(migrated_engine: Engine) -> None:
    url = migrated_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN wirewatch_events")
        _save(migrated_engine, tagged(seen("a1"), labels=("kidnapping", "shootout")))
        _save(migrated_engine, tagged(seen("a1", revision=2), labels=()))  # removals notify too
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=10, stop_after=2)]
    ids = [r[0] for r in _outbox(migrated_engine)]
    assert payloads == [{"outbox_id": ids[1]}, {"outbox_id": ids[3]}]


def test_outbox_ids_follow_commit_order_between_concurrent_sinks(migrated_engine: Engine) -> None:
    early = Session(migrated_engine)
    early.begin()
    save_batch(early, [tagged(seen("early"))])  # holds the outbox lock until it commits
    done = threading.Event()

    def later() -> None:
        _save(migrated_engine, tagged(seen("later")))
        done.set()

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    try:
        with migrated_engine.connect() as conn:
            waiting = text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'event_outbox' AND NOT l.granted"
            )
            deadline = time.monotonic() + 30
            while conn.execute(waiting).scalar_one() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
                conn.rollback()
            assert not done.is_set()  # the later sink waits for the lock, it has not drawn ids yet
        early.commit()
    finally:
        early.close()
        thread.join(timeout=30)
    rows = _outbox(migrated_engine)
    assert [r[1] for r in rows] == ["early", "early", "later", "later"]
