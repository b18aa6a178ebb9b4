"""Incidents: one row per real-world incident, each article's link to it, and a per-category view.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-04

* ``incidents``: one row per incident (categories, country/admin1/place, event date, first and last
  reported, article and source counts, representative title, the founding article).
* ``incident_reports``: each linked article's incident, plus what the linker compared (names, dates,
  centred embedding), so the sink can link new articles against stored ones.
* view ``incident_categories``: one row per (incident, category), what downstream counts.
* ``event_outbox`` (0003) gains ``incident_id`` and ``incident`` (``opened`` when the article is
  the incident's first report, ``joined`` otherwise; both null when the article has no incident),
  which the sink writes in the same transaction, after linking. The outbox stays the only source
  of facts: ``NOTIFY wirewatch_events`` is still the id-only hint of 0003 (any role can send a
  NOTIFY, so no payload with incident details is sent); nothing here touches the triggers.
* Grants: the sink role writes both tables, the reader role reads them and the view (the new
  outbox columns are covered by 0003's table grants).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
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
        "incidents",
        sa.Column(
            "incident_id", sa.Text(), nullable=False, comment="Derived from the first report's article id"
        ),
        sa.Column(
            "founder_article_id",
            sa.Text(),
            nullable=False,
            comment="The first report (earliest published)",
        ),
        sa.Column(
            "categories",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            comment="Union of the reports' categories",
        ),
        sa.Column(
            "country", sa.Text(), nullable=True, comment="ISO 3166-1 alpha-2, the reports' most common"
        ),
        sa.Column("admin1", sa.Text(), nullable=True),
        sa.Column("place", sa.Text(), nullable=True),
        sa.Column(
            "event_date",
            sa.Date(),
            nullable=True,
            comment="Day of the event as the reports state or imply it",
        ),
        sa.Column("first_reported_at", TZ, nullable=True),
        sa.Column("last_reported_at", TZ, nullable=True),
        sa.Column("article_count", sa.Integer(), nullable=False),
        sa.Column("source_count", sa.Integer(), nullable=False, comment="Distinct publishers"),
        sa.Column("title", sa.Text(), nullable=False, comment="Title of the earliest report that has one"),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incidents")),
        comment="One row per real-world incident (reports linked by store/incidents)",
    )
    op.create_index("ix_incidents_first_reported_at", "incidents", [sa.text("first_reported_at DESC")])
    op.create_index("ix_incidents_country_event_date", "incidents", ["country", "event_date"])

    op.create_table(
        "incident_reports",
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False, comment="The article's current incident"),
        sa.Column(
            "component_id",
            sa.Text(),
            nullable=False,
            comment="Reports joined by close pairs (linker bookkeeping)",
        ),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.Column("days", postgresql.ARRAY(sa.Date()), nullable=False, comment="Every day the text states"),
        sa.Column(
            "month_days",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            comment="month * 100 + day of each date mention",
        ),
        sa.Column(
            "names",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            comment="Folded proper names the linker compares",
        ),
        sa.Column("categories", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "embedding",
            sa.LargeBinary(),
            nullable=True,
            comment="Language-centred encoder embedding, float32 little-endian",
        ),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("admin1", sa.Text(), nullable=True),
        sa.Column("place", sa.Text(), nullable=True),
        sa.Column("linked_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.article_id"],
            name=op.f("fk_incident_reports_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_incident_reports")),
        comment="Each linked article: its incident and what the linker compared",
    )
    op.create_index("ix_incident_reports_incident_id", "incident_reports", ["incident_id"])
    op.create_index("ix_incident_reports_component_id", "incident_reports", ["component_id"])
    op.create_index("ix_incident_reports_published_at", "incident_reports", ["published_at"])
    op.create_index("ix_incident_reports_names", "incident_reports", ["names"], postgresql_using="gin")

    op.execute(
        """
        CREATE VIEW incident_categories AS
        SELECT i.incident_id, c.category, i.country, i.admin1, i.place, i.event_date,
               i.first_reported_at, i.last_reported_at, i.article_count, i.source_count, i.title
        FROM incidents i CROSS JOIN LATERAL unnest(i.categories) AS c(category)
        """
    )
    op.add_column(
        "event_outbox",
        sa.Column(
            "incident_id",
            sa.Text(),
            nullable=True,
            comment="The article's incident after this commit's linking; null when it has none (0005)",
        ),
    )
    op.add_column(
        "event_outbox",
        sa.Column(
            "incident",
            sa.Text(),
            nullable=True,
            comment="opened (the incident's first report) or joined; null without one",
        ),
    )
    op.create_check_constraint("ck_event_outbox_incident", "event_outbox", "incident IN ('opened', 'joined')")
    op.execute(
        _if_role(
            SINK_ROLE,
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON incidents, incident_reports TO {SINK_ROLE};",
        )
    )
    op.execute(
        _if_role(
            READER_ROLE,
            f"GRANT SELECT ON incidents, incident_reports, incident_categories TO {READER_ROLE};",
        )
    )


def downgrade() -> None:
    op.drop_constraint("ck_event_outbox_incident", "event_outbox", type_="check")
    op.drop_column("event_outbox", "incident")
    op.drop_column("event_outbox", "incident_id")
    op.execute("DROP VIEW IF EXISTS incident_categories")
    op.drop_index("ix_incident_reports_names", table_name="incident_reports")
    op.drop_index("ix_incident_reports_published_at", table_name="incident_reports")
    op.drop_index("ix_incident_reports_component_id", table_name="incident_reports")
    op.drop_index("ix_incident_reports_incident_id", table_name="incident_reports")
    op.drop_table("incident_reports")
    op.drop_index("ix_incidents_country_event_date", table_name="incidents")
    op.drop_index("ix_incidents_first_reported_at", table_name="incidents")
    op.drop_table("incidents")
