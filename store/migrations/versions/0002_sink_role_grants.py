"""Grants for the sink's own role: write its three tables, nothing else.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

The role ``wirewatch_sink`` (LOGIN, created by the deploy scripts, owning
nothing) may read and write ``articles``, ``classifications`` and ``events``
and use the ``classifications`` id sequence. It may not create, alter, drop or
truncate anything, and never touches ``alembic_version``: migrations run as
the owner. Skipped when the role does not exist (a deployment that runs the
sink as the owner).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SINK_ROLE = "wirewatch_sink"
TABLES = ("articles", "classifications", "events")


def _if_role(statements: str) -> str:
    return f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SINK_ROLE}') THEN
                {statements}
            END IF;
        END $$
    """


def upgrade() -> None:
    tables = ", ".join(TABLES)
    op.execute(
        _if_role(
            f"EXECUTE format('GRANT USAGE ON SCHEMA %I TO {SINK_ROLE}', current_schema());"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {SINK_ROLE};"
            f"GRANT USAGE, SELECT ON SEQUENCE classifications_id_seq TO {SINK_ROLE};"
        )
    )


def downgrade() -> None:
    tables = ", ".join(TABLES)
    op.execute(
        _if_role(
            f"REVOKE ALL ON {tables} FROM {SINK_ROLE};"
            f"REVOKE ALL ON SEQUENCE classifications_id_seq FROM {SINK_ROLE};"
        )
    )
