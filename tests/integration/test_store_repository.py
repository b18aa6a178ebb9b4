"""The repository against a real PostgreSQL: idempotence, updates, lineage, the schema contract."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from store.repository import count_rows, save_batch
from store.tables import articles, classifications, events
from tests.support.factories import T0, seen, tagged

pytestmark = pytest.mark.integration


def _save(engine: Engine, *batch) -> None:
    with Session(engine) as session, session.begin():
        save_batch(session, list(batch))


def test_redelivered_message_creates_no_second_row(migrated_engine: Engine) -> None:
    msg = tagged()
    _save(migrated_engine, msg)
    _save(migrated_engine, msg)
    _save(migrated_engine, msg, msg)
    with Session(migrated_engine) as s:
        assert count_rows(s) == {"articles": 1, "classifications": 1, "events": 2}


def test_update_replaces_article_and_events_and_keeps_history(migrated_engine: Engine) -> None:
    first = tagged(seen("a1", revision=1), labels=("kidnapping", "shootout"))
    second = tagged(
        seen("a1", revision=2, text="Edited body", first_seen_at=T0 + timedelta(hours=3)),
        labels=("kidnapping",),
    )
    _save(migrated_engine, first)
    _save(migrated_engine, second)
    with Session(migrated_engine) as s:
        row = s.execute(select(articles).where(articles.c.article_id == "a1")).one()
        assert row.revision == 2
        assert row.text == "Edited body"
        assert row.first_seen_at == first.article.first_seen_at  # never moves
        assert [r.category for r in s.execute(select(events.c.category))] == ["kidnapping"]
        assert s.execute(
            select(classifications.c.article_revision).order_by("article_revision")
        ).scalars().all() == [1, 2]


def test_stale_message_after_newer_one_changes_nothing(migrated_engine: Engine) -> None:
    old = tagged(seen("a1", revision=1), labels=("extortion",))
    new = tagged(seen("a1", revision=2), labels=("shootout",))
    _save(migrated_engine, new)
    _save(migrated_engine, old)  # re-delivered late
    with Session(migrated_engine) as s:
        assert s.execute(select(articles.c.revision)).scalar_one() == 2
        assert s.execute(select(events.c.category)).scalars().all() == ["shootout"]


def test_reclassification_by_new_model_adds_lineage(migrated_engine: Engine) -> None:
    article = seen("a1")
    _save(migrated_engine, tagged(article, labels=("kidnapping",), model_version="1"))
    later = tagged(
        article,
        labels=("kidnapping", "shootout"),
        model_version="2",
        classified_at=article.fetched_at + timedelta(days=1),
    )
    _save(migrated_engine, later)
    with Session(migrated_engine) as s:
        versions = (
            s.execute(select(classifications.c.model_version).order_by("model_version")).scalars().all()
        )
        assert versions == ["1", "2"]
        current = s.execute(select(events.c.category, events.c.model_version).order_by("category")).all()
        assert current == [("kidnapping", "2"), ("shootout", "2")]


def test_current_events_view_joins_article(migrated_engine: Engine) -> None:
    _save(migrated_engine, tagged(seen("a1"), labels=("kidnapping",)))
    with migrated_engine.connect() as conn:
        rows = conn.execute(text("SELECT article_id, category, feed, title FROM current_events")).all()
    assert rows == [("a1", "kidnapping", "efe-americas", "Title a1")]


def test_new_event_is_notified(migrated_engine: Engine) -> None:
    """The notification is a hint naming an outbox id; the event is read from the outbox."""
    import json

    import psycopg

    url = migrated_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN wirewatch_events")
        _save(migrated_engine, tagged(seen("a9"), labels=("extortion",)))
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert notes
    hint = json.loads(notes[0].payload)
    assert set(hint) == {"outbox_id"}
    with migrated_engine.connect() as conn:
        row = conn.execute(
            text("SELECT article_id, category, change FROM event_outbox WHERE id <= :id ORDER BY id DESC"),
            {"id": hint["outbox_id"]},
        ).first()
    assert tuple(row) == ("a9", "extortion", "added")  # type: ignore[arg-type]


def test_models_and_migrations_agree(migrated_engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from store.tables import metadata

    with migrated_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
