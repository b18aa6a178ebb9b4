"""Mark scores from languages the model was not trained for.

Revision ID: 0006
Revises: 0002
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
down_revision = "0002"
branch_labels = None
depends_on = None

_COMMENTS = {
    "classifications": "False: the article's language is not one the model was trained and calibrated for",
    "events": "False: scored in a language the model was not trained for (not a calibrated probability)",
}


def upgrade() -> None:
    for table, comment in _COMMENTS.items():
        op.add_column(
            table,
            sa.Column(
                "language_supported", sa.Boolean(), nullable=False, server_default="true", comment=comment
            ),
        )


def downgrade() -> None:
    for table in _COMMENTS:
        op.drop_column(table, "language_supported")
