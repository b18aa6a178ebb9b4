"""Initial schema: articles, classifications (lineage), events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column(
            "article_id",
            sa.Text(),
            nullable=False,
            comment="Stable id from the canonical URL, GUID or content hash",
        ),
        sa.Column(
            "revision", sa.Integer(), nullable=False, comment="Grows when the publisher edits the entry"
        ),
        sa.Column("feed", sa.Text(), nullable=False, comment="Name of the feed it came from"),
        sa.Column("source", sa.Text(), nullable=True, comment="Publisher host"),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False, comment="Plain text the classifier read"),
        sa.Column("language", sa.Text(), nullable=True, comment="ISO 639-1 code"),
        sa.Column(
            "published_at", TZ, nullable=True, comment="From the feed; first sight when the feed has none"
        ),
        sa.Column(
            "published_at_inferred",
            sa.Boolean(),
            nullable=False,
            comment="True when published_at is first sight",
        ),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.Column("first_seen_at", TZ, nullable=False, comment="When the poller first saw it; never changes"),
        sa.Column("last_seen_at", TZ, nullable=False, comment="Fetch time of the newest stored revision"),
        sa.Column(
            "classified_revision",
            sa.Integer(),
            nullable=True,
            comment="Revision the current events come from",
        ),
        sa.Column("classified_at", TZ, nullable=True, comment="When the current events were classified"),
        sa.Column("stored_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_articles")),
        comment="One row per article; the newest revision wins",
    )
    op.create_index("ix_articles_published_at", "articles", [sa.text("published_at DESC")])
    op.create_index("ix_articles_source_published_at", "articles", ["source", sa.text("published_at DESC")])
    op.create_index("ix_articles_feed_published_at", "articles", ["feed", sa.text("published_at DESC")])

    op.create_table(
        "classifications",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.Column("article_revision", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("scores", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("classified_at", TZ, nullable=False),
        sa.Column("stored_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.article_id"],
            name=op.f("fk_classifications_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifications")),
        sa.UniqueConstraint(
            "article_id",
            "article_revision",
            "model_name",
            "model_version",
            name=op.f("uq_classifications_article_id_article_revision_model_name_model_version"),
        ),
        comment="Every classification of every article revision (model lineage)",
    )

    op.create_table(
        "events",
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False, comment="kidnapping, shootout, extortion, ..."),
        sa.Column("score", sa.Float(), nullable=False, comment="Calibrated probability"),
        sa.Column("evidence", sa.Text(), nullable=True, comment="Sentence that best supports the tag"),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("article_revision", sa.Integer(), nullable=False),
        sa.Column("classified_at", TZ, nullable=False),
        sa.Column("stored_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.article_id"],
            name=op.f("fk_events_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "category", name=op.f("pk_events")),
        comment="Current violence tags: one row per (article, category)",
    )
    op.create_index("ix_events_category_classified_at", "events", ["category", sa.text("classified_at DESC")])

    op.execute(
        """
        CREATE VIEW current_events AS
        SELECT e.article_id, e.category, e.score, e.evidence, e.model_name, e.model_version,
               e.classified_at, a.feed, a.source, a.url, a.title, a.language,
               a.published_at, a.published_at_inferred, a.first_seen_at
        FROM events e JOIN articles a USING (article_id)
        """
    )
    # Downstream services LISTEN wirewatch_events instead of polling the table.
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
    # The read-only role (created by deploy scripts) reads tables and views; it never writes.
    op.execute(
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wirewatch_reader') THEN
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO wirewatch_reader', current_schema());
                EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO wirewatch_reader', current_schema());
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
    op.execute("DROP FUNCTION IF EXISTS wirewatch_notify_event()")
    op.execute("DROP VIEW IF EXISTS current_events")
    op.drop_index("ix_events_category_classified_at", table_name="events")
    op.drop_table("events")
    op.drop_table("classifications")
    op.drop_index("ix_articles_feed_published_at", table_name="articles")
    op.drop_index("ix_articles_source_published_at", table_name="articles")
    op.drop_index("ix_articles_published_at", table_name="articles")
    op.drop_table("articles")
