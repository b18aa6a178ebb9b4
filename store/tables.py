"""The database schema: the interface downstream services read (documented in the README).

* ``articles``        one row per article, the newest revision wins, ``first_seen_at`` never moves
* ``classifications`` every classification ever stored (model lineage), one per
                      (article, revision, model, version) — re-delivery adds nothing
* ``events``          the current tags: one row per (article, category) above threshold,
                      from the newest classification of the article
* view ``current_events`` events joined with their article, for readers

Changing anything here needs a new Alembic revision; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TZ = DateTime(timezone=True)

articles = Table(
    "articles",
    metadata,
    Column(
        "article_id", Text, primary_key=True, comment="Stable id from the canonical URL, GUID or content hash"
    ),
    Column("revision", Integer, nullable=False, comment="Grows when the publisher edits the entry"),
    Column("feed", Text, nullable=False, comment="Name of the feed it came from"),
    Column("source", Text, comment="Publisher host"),
    Column("url", Text),
    Column("guid", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("text", Text, nullable=False, comment="Plain text the classifier read"),
    Column("language", Text, comment="ISO 639-1 code"),
    Column("published_at", TZ, comment="From the feed; first sight when the feed has none"),
    Column("published_at_inferred", Boolean, nullable=False, comment="True when published_at is first sight"),
    Column("content_hash", Text, nullable=False),
    Column("fetched_at", TZ, nullable=False),
    Column("first_seen_at", TZ, nullable=False, comment="When the poller first saw it; never changes"),
    Column("last_seen_at", TZ, nullable=False, comment="Fetch time of the newest stored revision"),
    Column("classified_revision", Integer, comment="Revision the current events come from"),
    Column("classified_at", TZ, comment="When the current events were classified"),
    Column("stored_at", TZ, nullable=False, server_default=func.now()),
    Column("updated_at", TZ, nullable=False, server_default=func.now()),
    comment="One row per article; the newest revision wins",
)
Index("ix_articles_published_at", articles.c.published_at.desc())
Index("ix_articles_source_published_at", articles.c.source, articles.c.published_at.desc())
Index("ix_articles_feed_published_at", articles.c.feed, articles.c.published_at.desc())

classifications = Table(
    "classifications",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("article_id", Text, ForeignKey("articles.article_id", ondelete="CASCADE"), nullable=False),
    Column("article_revision", Integer, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("labels", ARRAY(Text), nullable=False),
    Column("scores", JSONB, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("classified_at", TZ, nullable=False),
    Column(
        "language_supported",
        Boolean,
        nullable=False,
        server_default="true",
        comment="False: the article's language is not one the model was trained and calibrated for",
    ),
    Column("stored_at", TZ, nullable=False, server_default=func.now()),
    UniqueConstraint("article_id", "article_revision", "model_name", "model_version"),
    comment="Every classification of every article revision (model lineage)",
)

events = Table(
    "events",
    metadata,
    Column("article_id", Text, ForeignKey("articles.article_id", ondelete="CASCADE"), nullable=False),
    Column("category", Text, nullable=False, comment="kidnapping, shootout, extortion, ..."),
    Column("score", Float, nullable=False, comment="Calibrated probability"),
    Column("evidence", Text, comment="Sentence that best supports the tag"),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("article_revision", Integer, nullable=False),
    Column("classified_at", TZ, nullable=False),
    Column(
        "language_supported",
        Boolean,
        nullable=False,
        server_default="true",
        comment="False: scored in a language the model was not trained for (not a calibrated probability)",
    ),
    Column("stored_at", TZ, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("article_id", "category"),
    comment="Current violence tags: one row per (article, category)",
)
Index("ix_events_category_classified_at", events.c.category, events.c.classified_at.desc())
