"""`wirewatch migrate` brings a database at any earlier revision (or empty) to head, and stays idempotent."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.database import make_engine
from store.migrate import alembic_config, current_revision, upgrade
from store.tables import metadata

pytestmark = pytest.mark.integration


def _revisions() -> list[str | None]:
    engine = make_engine("postgresql+psycopg://u:p@127.0.0.1/none")
    script = ScriptDirectory.from_config(alembic_config(engine))
    engine.dispose()
    ordered = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    return [None, *ordered]  # None: an empty database


@pytest.mark.parametrize("start", _revisions())
def test_upgrade_from_every_revision_reaches_head(database_url: str, start: str | None) -> None:
    engine = make_engine(database_url)
    try:
        if start is not None:
            upgrade(engine, start)
            assert current_revision(engine) == start
        upgrade(engine)
        upgrade(engine)  # running it again changes nothing
        heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
        assert [current_revision(engine)] == heads
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_migrate_command_upgrades_the_configured_database(database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from commands.cli import main

    monkeypatch.setenv("WIREWATCH_DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    engine = make_engine(database_url)
    try:
        heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
        assert [current_revision(engine)] == heads
    finally:
        engine.dispose()
