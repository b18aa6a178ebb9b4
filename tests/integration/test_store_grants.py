"""``wirewatch migrate`` re-applies the service roles' grants on every run (and creates roles when it may).

Migration 0002 granted the sink's tables only if ``wirewatch_sink`` existed at that moment; a role
created later (a Kubernetes database provisioned after the first migrate) got "permission denied".
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from store.database import make_engine
from store.migrate import ServiceRole, apply_role_grants, upgrade
from store.repository import save_batch
from tests.support.factories import tagged

pytestmark = pytest.mark.integration

SINK_ROLE = "wirewatch_sink"


def test_a_role_without_grants_gets_them_on_the_next_migrate(database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from commands.cli import main

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": SINK_ROLE}).first():
                pytest.skip(f"role {SINK_ROLE} does not exist: deploy/local/postgres.sh creates it")
        upgrade(engine)
        # As if the role had appeared after the schema was migrated: no privileges on this database.
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"REVOKE ALL ON articles, classifications, events, event_outbox FROM {SINK_ROLE}"
            )
            conn.exec_driver_sql(
                f"REVOKE ALL ON SEQUENCE classifications_id_seq, event_outbox_id_seq FROM {SINK_ROLE}"
            )
        sink = create_engine(engine.url.set(username=SINK_ROLE, password=SINK_ROLE))
        try:
            with pytest.raises(ProgrammingError, match="permission denied"), Session(sink) as s, s.begin():
                save_batch(s, [tagged()])
            monkeypatch.setenv("WIREWATCH_DATABASE_URL", database_url)
            assert main(["migrate"]) == 0  # the schema is at head already: only the grants step acts
            with Session(sink) as s, s.begin():
                save_batch(s, [tagged()])
            with sink.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM articles")).scalar_one() == 1
                assert conn.execute(text("SELECT count(*) FROM event_outbox")).scalar_one() >= 1
                with pytest.raises(ProgrammingError, match=r"permission denied|must be owner"):
                    conn.execute(text("DELETE FROM alembic_version"))
            with sink.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("UPDATE event_outbox SET score = 0"))  # the outbox is append-only
        finally:
            sink.dispose()
    finally:
        engine.dispose()


def test_a_missing_role_is_created_when_allowed_and_reported_otherwise(migrated_engine) -> None:  # type: ignore[no-untyped-def]
    name = f"wirewatch_t_{uuid.uuid4().hex[:10]}"
    with migrated_engine.connect() as conn:
        may_create = conn.execute(
            text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        ).scalar_one()
    try:
        with migrated_engine.begin() as conn:
            missing = apply_role_grants(conn, [ServiceRole(name, writes=False, password="pw'; --")])
        if not may_create:
            assert missing == [name]
            return
        assert missing == []
        reader = create_engine(migrated_engine.url.set(username=name, password="pw'; --"))
        try:
            with reader.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM articles")).scalar_one() == 0
        finally:
            reader.dispose()
    finally:
        with migrated_engine.begin() as conn:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": name}).first():
                conn.exec_driver_sql(f"DROP OWNED BY {name}")
                conn.exec_driver_sql(f"DROP ROLE {name}")
