"""The database schema: the interface downstream services read (documented in the README).

* ``articles``        one row per article, the newest revision wins, ``first_seen_at`` never moves
* ``classifications`` every classification ever stored (model lineage), one per
                      (article, revision, model, version) — re-delivery adds nothing
* ``events``          the current tags: one row per (article, category) above threshold,
                      from the newest classification of the article
* view ``current_events`` events joined with their article (and its location), for readers
* ``event_outbox``    every change of ``events`` (added, updated, removed) in commit order, by
                      a growing id: what downstream services poll (``id > last seen``); only
                      the sink writes it. ``NOTIFY wirewatch_events`` is a wake-up hint only.
                      Since 0005 a row also names the article's incident and whether the
                      article opened or joined it.
* ``incidents``        one row per real-world incident; ``incident_reports`` links each article to it
* view ``incident_categories`` one row per (incident, category), for counting

Changing anything here needs a new Alembic revision; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    Column("country", Text, comment="Where the event happened: ISO 3166-1 alpha-2"),
    Column("admin1_name", Text, comment="First-level division of the event (state, province, department)"),
    Column("admin1_code", Text, comment="ISO 3166-2 code of admin1, where one exists"),
    Column("place", Text, comment="Town or city of the event (or the neighbourhood, when that is all)"),
    Column("lat", Float, comment="Latitude of the finest level found"),
    Column("lon", Float, comment="Longitude of the finest level found"),
    Column("geo_precision", Text, comment="none, country, admin1, city or sub-city; NULL: not located"),
    Column("geo_evidence", Text, comment="The passage the location was read from"),
    comment="One row per article; the newest revision wins",
)
Index("ix_articles_published_at", articles.c.published_at.desc())
Index("ix_articles_source_published_at", articles.c.source, articles.c.published_at.desc())
Index("ix_articles_feed_published_at", articles.c.feed, articles.c.published_at.desc())
Index("ix_articles_country_admin1_code", articles.c.country, articles.c.admin1_code)

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

event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True, comment="Grows in commit order"),
    Column("article_id", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("change", Text, nullable=False, comment="added, updated or removed"),
    Column("score", Float, comment="Current score; null when removed"),
    Column(
        "article_revision", Integer, nullable=False, comment="Revision whose classification made the change"
    ),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column(
        "incident_id",
        Text,
        comment="The article's incident after this commit's linking; null when it has none (0005)",
    ),
    Column("incident", Text, comment="opened (the incident's first report) or joined; null without one"),
    CheckConstraint("change IN ('added', 'updated', 'removed')", name="ck_event_outbox_change"),
    CheckConstraint("incident IN ('opened', 'joined')", name="ck_event_outbox_incident"),
    comment="Changes of events in commit order; readers poll by id, only the sink writes",
)

# ---- incidents (migration 0005): one row per real-world incident, and each article's link to it ----

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", Text, primary_key=True, comment="Derived from the first report's article id"),
    Column("founder_article_id", Text, nullable=False, comment="The first report (earliest published)"),
    Column("categories", ARRAY(Text), nullable=False, comment="Union of the reports' categories"),
    Column("country", Text, comment="ISO 3166-1 alpha-2, the reports' most common"),
    Column("admin1", Text),
    Column("place", Text),
    Column("event_date", Date, comment="Day of the event as the reports state or imply it"),
    Column("first_reported_at", TZ),
    Column("last_reported_at", TZ),
    Column("article_count", Integer, nullable=False),
    Column("source_count", Integer, nullable=False, comment="Distinct publishers"),
    Column("title", Text, nullable=False, comment="Title of the earliest report that has one"),
    Column("updated_at", TZ, nullable=False, server_default=func.now()),
    comment="One row per real-world incident (reports linked by store/incidents)",
)
Index("ix_incidents_first_reported_at", incidents.c.first_reported_at.desc())
Index("ix_incidents_country_event_date", incidents.c.country, incidents.c.event_date)

incident_reports = Table(
    "incident_reports",
    metadata,
    Column("article_id", Text, ForeignKey("articles.article_id", ondelete="CASCADE"), primary_key=True),
    Column("incident_id", Text, nullable=False, comment="The article's current incident"),
    Column(
        "component_id", Text, nullable=False, comment="Reports joined by close pairs (linker bookkeeping)"
    ),
    Column("language", Text, nullable=False),
    Column("published_at", TZ),
    Column("event_date", Date),
    Column("days", ARRAY(Date), nullable=False, comment="Every day the text states"),
    Column("month_days", ARRAY(Integer), nullable=False, comment="month * 100 + day of each date mention"),
    Column("names", ARRAY(Text), nullable=False, comment="Folded proper names the linker compares"),
    Column("categories", ARRAY(Text), nullable=False),
    Column("embedding", LargeBinary, comment="Language-centred encoder embedding, float32 little-endian"),
    Column("source", Text),
    Column("title", Text, nullable=False),
    Column("country", Text),
    Column("admin1", Text),
    Column("place", Text),
    Column("linked_at", TZ, nullable=False, server_default=func.now()),
    comment="Each linked article: its incident and what the linker compared",
)
Index("ix_incident_reports_incident_id", incident_reports.c.incident_id)
Index("ix_incident_reports_component_id", incident_reports.c.component_id)
Index("ix_incident_reports_published_at", incident_reports.c.published_at)
Index("ix_incident_reports_names", incident_reports.c.names, postgresql_using="gin")
