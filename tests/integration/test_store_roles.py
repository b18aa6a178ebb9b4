"""The downstream read-only role can read every documented table and view and write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from store.repository import save_batch
from tests.support.factories import tagged

pytestmark = pytest.mark.integration


def test_reader_role_selects_and_cannot_write(migrated_engine) -> None:  # type: ignore[no-untyped-def]
    with Session(migrated_engine) as s, s.begin():
        save_batch(s, [tagged()])
    url = migrated_engine.url.set(username="wirewatch_reader", password="wirewatch_reader")
    reader = create_engine(url)
    try:
        with reader.connect() as conn:
            for relation in (
                "articles",
                "events",
                "classifications",
                "current_events",
                "event_outbox",
                "incidents",
                "incident_reports",
                "incident_categories",
            ):
                assert conn.execute(text(f"SELECT count(*) FROM {relation}")).scalar_one() >= 1
        for statement in (
            "DELETE FROM events",
            "UPDATE articles SET title = 'x'",
            "INSERT INTO events (article_id, category, score, model_name, model_version, article_revision, "
            "classified_at) VALUES ('a1', 'x', 1, 'm', '1', 1, now())",
            "DELETE FROM incidents",
            "UPDATE incident_reports SET incident_id = 'forged'",
            "UPDATE event_outbox SET incident_id = 'forged', incident = 'opened'",
        ):
            with reader.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(statement))
    finally:
        reader.dispose()
