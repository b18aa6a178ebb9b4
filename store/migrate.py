"""Bring a database schema up to date with Alembic (``wirewatch migrate``), then the roles' grants.

Grants are a re-runnable step after the upgrade, not only a migration: a migration runs once, so a
service role created after it (a Kubernetes database provisioned later, a role an operator adds)
would never get its privileges. :func:`apply_role_grants` grants every known role that exists what
it needs (``GRANT`` is idempotent) and, when given a password and allowed to, creates a missing one.
It never revokes and never touches roles it does not know.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from wirewatch.retry import Backoff

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def wait_for_database(engine: Engine, seconds: float, backoff: Backoff | None = None) -> None:
    """Return once the database accepts a connection; retry for ``seconds`` (a server still starting).

    Compose and Kubernetes start ``migrate`` beside a database that may still be initialising;
    only connection errors are retried, and the last one is raised when the time is up.
    """
    backoff = backoff or Backoff(base=0.5, cap=5.0)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            delay = backoff.next_delay()
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database not ready (%s); retrying in %.1f s", type(exc.orig).__name__, delay)
            time.sleep(delay)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (idempotent)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


SINK_TABLES = ("articles", "classifications", "events", "event_outbox", "incidents", "incident_reports")
"""What the sink writes (migrations 0002, 0003 and 0005 grant the same); a table it writes later goes here."""
SINK_SEQUENCES = ("classifications_id_seq", "event_outbox_id_seq")
SINK_APPEND_ONLY = frozenset({"event_outbox"})
"""Tables the sink inserts into but never updates: SELECT, INSERT and DELETE only (DELETE lets it take
the EXCLUSIVE lock that keeps the outbox's ids in commit order, see migration 0003)."""


@dataclass(frozen=True)
class ServiceRole:
    """A database role a service logs in as: ``writes`` the sink's tables, or reads every table and view."""

    name: str
    writes: bool
    password: str | None = field(default=None, repr=False)
    """Create the role (LOGIN) with this password when it is missing; ``None``: never create it."""


def apply_role_grants(connection: Connection, roles: Sequence[ServiceRole]) -> list[str]:
    """Create (when allowed) and grant ``roles`` on the current schema; return the names left missing.

    The caller owns the transaction. Runs as the schema owner after :func:`upgrade` to head.
    """
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    may_create = bool(
        connection.execute(
            text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        ).scalar()
    )
    missing = []
    for role in roles:
        found = text("SELECT 1 FROM pg_roles WHERE rolname = :r")
        exists = connection.execute(found, {"r": role.name}).first() is not None
        if not exists and role.password is not None and may_create:
            # format() quotes the name and the password server-side; the statement is never logged.
            create = connection.execute(
                text("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :r, :p)"),
                {"r": role.name, "p": role.password},
            ).scalar_one()
            connection.exec_driver_sql(create)
            log.info("created database role %s", role.name)
            exists = True
        if not exists:
            why = (
                "the migrating role may not create roles (needs CREATEROLE)"
                if role.password is not None
                else "no password configured to create it"
            )
            log.warning(
                "database role %s does not exist (%s): its grants are skipped; "
                "create it and run `wirewatch migrate` again",
                role.name,
                why,
            )
            missing.append(role.name)
            continue
        _grant(connection, role, schema)
    return missing


def _grant(connection: Connection, role: ServiceRole, schema: str) -> None:
    quote = connection.dialect.identifier_preparer.quote
    who, where = quote(role.name), quote(schema)
    statements = [f"GRANT USAGE ON SCHEMA {where} TO {who}"]
    if role.writes:
        tables = ", ".join(f"{where}.{quote(t)}" for t in SINK_TABLES if t not in SINK_APPEND_ONLY)
        append_only = ", ".join(f"{where}.{quote(t)}" for t in SINK_TABLES if t in SINK_APPEND_ONLY)
        sequences = ", ".join(f"{where}.{quote(s)}" for s in SINK_SEQUENCES)
        statements += [
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {who}",
            f"GRANT SELECT, INSERT, DELETE ON {append_only} TO {who}",
            f"GRANT USAGE, SELECT ON SEQUENCE {sequences} TO {who}",
        ]
    else:
        statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {where} TO {who}")
    for statement in statements:
        connection.exec_driver_sql(statement)
    # CONNECT needs the database's owner (PUBLIC usually has it anyway): try, never fail on it.
    database = quote(connection.execute(text("SELECT current_database()")).scalar_one())
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(f"GRANT CONNECT ON DATABASE {database} TO {who}")
    except DBAPIError as exc:
        log.warning("could not grant CONNECT on %s to %s: %s", database, role.name, exc.orig)
    log.info("granted %s its privileges on schema %s", role.name, schema)
