"""Mark scores from languages the model was not trained for.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

``classifications.language_supported`` and ``events.language_supported``
(default true: every earlier row came from English or Spanish feeds scored by
a model trained on both) say whether a score is a calibrated probability or a
best guess in an unsupported language. ``current_events`` exposes it, so
downstream counts can leave those rows out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COMMENTS = {
    "classifications": "False: the article's language is not one the model was trained and calibrated for",
    "events": "False: scored in a language the model was not trained for (not a calibrated probability)",
}


# CREATE OR REPLACE VIEW may only add columns at the end, so the view keeps 0004's columns first.
_VIEW = """
    CREATE OR REPLACE VIEW current_events AS
    SELECT e.article_id, e.category, e.score, e.evidence, e.model_name, e.model_version,
           e.classified_at, a.feed, a.source, a.url, a.title, a.language,
           a.published_at, a.published_at_inferred, a.first_seen_at,
           a.country, a.admin1_name, a.admin1_code, a.place, a.lat, a.lon,
           a.geo_precision, a.geo_evidence{extra}
    FROM events e JOIN articles a USING (article_id)
"""


def upgrade() -> None:
    for table, comment in _COMMENTS.items():
        op.add_column(
            table,
            sa.Column(
                "language_supported", sa.Boolean(), nullable=False, server_default="true", comment=comment
            ),
        )
    op.execute(_VIEW.format(extra=", e.language_supported"))


def downgrade() -> None:
    op.execute("DROP VIEW current_events")
    op.execute(_VIEW.format(extra=""))
    for table in _COMMENTS:
        op.drop_column(table, "language_supported")
    op.execute(
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wirewatch_reader') THEN
                GRANT SELECT ON current_events TO wirewatch_reader;
            END IF;
        END $$
        """
    )
