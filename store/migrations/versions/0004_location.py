"""Where each article's event happened: location columns on ``articles`` and in ``current_events``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

``country`` (ISO 3166-1 alpha-2), ``admin1_name``/``admin1_code`` (ISO 3166-2), ``place``,
``lat``/``lon`` of the finest level found, ``geo_precision`` (none, country, admin1, city,
sub-city; NULL for rows stored before geolocation) and ``geo_evidence``. The view
``current_events`` gains the same columns at its end (``CREATE OR REPLACE`` keeps the existing
columns and the reader's grant).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("country", sa.Text(), "Where the event happened: ISO 3166-1 alpha-2"),
    ("admin1_name", sa.Text(), "First-level division of the event (state, province, department)"),
    ("admin1_code", sa.Text(), "ISO 3166-2 code of admin1, where one exists"),
    ("place", sa.Text(), "Town or city of the event (or the neighbourhood, when that is all)"),
    ("lat", sa.Float(), "Latitude of the finest level found"),
    ("lon", sa.Float(), "Longitude of the finest level found"),
    ("geo_precision", sa.Text(), "none, country, admin1, city or sub-city; NULL: not located"),
    ("geo_evidence", sa.Text(), "The passage the location was read from"),
)

VIEW_BEFORE = """
    CREATE OR REPLACE VIEW current_events AS
    SELECT e.article_id, e.category, e.score, e.evidence, e.model_name, e.model_version,
           e.classified_at, a.feed, a.source, a.url, a.title, a.language,
           a.published_at, a.published_at_inferred, a.first_seen_at
    FROM events e JOIN articles a USING (article_id)
"""

VIEW_AFTER = """
    CREATE OR REPLACE VIEW current_events AS
    SELECT e.article_id, e.category, e.score, e.evidence, e.model_name, e.model_version,
           e.classified_at, a.feed, a.source, a.url, a.title, a.language,
           a.published_at, a.published_at_inferred, a.first_seen_at,
           a.country, a.admin1_name, a.admin1_code, a.place, a.lat, a.lon,
           a.geo_precision, a.geo_evidence
    FROM events e JOIN articles a USING (article_id)
"""


def upgrade() -> None:
    for name, type_, comment in COLUMNS:
        op.add_column("articles", sa.Column(name, type_, nullable=True, comment=comment))
    op.create_index("ix_articles_country_admin1_code", "articles", ["country", "admin1_code"])
    op.execute(VIEW_AFTER)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS current_events")
    op.execute(VIEW_BEFORE)
    op.execute(
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wirewatch_reader') THEN
                GRANT SELECT ON current_events TO wirewatch_reader;
            END IF;
        END $$
        """
    )
    op.drop_index("ix_articles_country_admin1_code", table_name="articles")
    for name, _, _ in reversed(COLUMNS):
        op.drop_column("articles", name)
