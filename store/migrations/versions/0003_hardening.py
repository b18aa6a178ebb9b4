"""Event outbox: changes of ``events`` that readers poll by id; NOTIFY becomes a hint.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

PostgreSQL has no privilege for ``NOTIFY``: any role that can connect, the
read-only ``wirewatch_reader`` included, can send ``NOTIFY wirewatch_events``
with any payload, so a notification can never be trusted as a fact. The facts
move to ``event_outbox``, which only the sink may write (``wirewatch_reader``
may only read it), with one row per added, updated or removed event and an id
that grows in commit order (the sink takes an EXCLUSIVE lock on the table for
the end of its transaction). ``NOTIFY wirewatch_events`` remains as a wake-up
hint sent once per outbox insert; its payload is ``{"outbox_id": N}``, the
highest id written, and nothing a reader should act on except by reading the
outbox. The per-row trigger on ``events`` (article, category and score in the
payload, and nothing for removals) is dropped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
SINK_ROLE = "wirewatch_sink"
READER_ROLE = "wirewatch_reader"


def _if_role(role: str, statements: str) -> str:
    return f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                {statements}
            END IF;
        END $$
    """


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False, comment="Grows in commit order"),
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False, comment="added, updated or removed"),
        sa.Column("score", sa.Float(), nullable=True, comment="Current score; null when removed"),
        sa.Column(
            "article_revision",
            sa.Integer(),
            nullable=False,
            comment="Revision whose classification made the change",
        ),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("change IN ('added', 'updated', 'removed')", name="ck_event_outbox_change"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
        comment="Changes of events in commit order; readers poll by id, only the sink writes",
    )
    op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
    op.execute("DROP FUNCTION IF EXISTS wirewatch_notify_event()")
    op.execute(
        """
        CREATE FUNCTION wirewatch_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('wirewatch_events',
                json_build_object('outbox_id', (SELECT max(id) FROM inserted))::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox "
        "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION wirewatch_notify_outbox()"
    )
    # The sink inserts; DELETE lets it take the EXCLUSIVE lock that keeps ids in commit order
    # (LOCK TABLE needs UPDATE, DELETE or TRUNCATE for that mode) and prune old rows.
    op.execute(
        _if_role(
            SINK_ROLE,
            f"GRANT SELECT, INSERT, DELETE ON event_outbox TO {SINK_ROLE};"
            f"GRANT USAGE, SELECT ON SEQUENCE event_outbox_id_seq TO {SINK_ROLE};",
        )
    )
    op.execute(_if_role(READER_ROLE, f"GRANT SELECT ON event_outbox TO {READER_ROLE};"))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS event_outbox_notify ON event_outbox")
    op.execute("DROP FUNCTION IF EXISTS wirewatch_notify_outbox()")
    op.drop_table("event_outbox")
    op.execute(
        """
        CREATE FUNCTION wirewatch_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('wirewatch_events', json_build_object(
                'article_id', NEW.article_id, 'category', NEW.category, 'score', NEW.score)::text);
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER events_notify AFTER INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION wirewatch_notify_event()"
    )
