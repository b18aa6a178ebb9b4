"""Rolling a new model over the stored history: what to re-score, and what would change.

Owns the selection of stored articles that the current model has not scored
yet, the conversion of a stored row back into the :class:`ArticleSeen` the
classifier reads, and the dry-run comparison of new tags with current events.
Writing goes through :func:`store.repository.save_batch`, the sink's own path,
so lineage rows, event replacement and notifications behave exactly as for
live traffic. Functions receive a session and never commit; the caller
(``wirewatch reclassify``) commits one transaction per batch.

Resumable by construction: an article counts as done when ``classifications``
holds a row for its current revision by the current model version, and
selection walks ``article_id`` in order after a cursor. A run killed mid-way
leaves whole batches committed; the next run selects only what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.tables import articles, classifications, events
from wirewatch.contract import ArticleSeen, ArticleTagged


@dataclass(frozen=True)
class Selection:
    """Which stored articles to re-score."""

    model_version: str
    """The version about to score them: articles it already scored are skipped (resume)."""
    since: datetime | None = None
    """Only articles published at or after this time."""
    not_version: str | None = None
    """Also skip articles whose current revision this version has scored."""

    def where(self) -> ColumnElement[bool]:
        def scored_by(version: str) -> ColumnElement[bool]:
            return exists().where(
                classifications.c.article_id == articles.c.article_id,
                classifications.c.article_revision == articles.c.revision,
                classifications.c.model_version == version,
            )

        clauses = [~scored_by(self.model_version)]
        if self.not_version:
            clauses.append(~scored_by(self.not_version))
        if self.since is not None:
            clauses.append(articles.c.published_at >= self.since)
        return and_(*clauses)


def count_pending(session: Session, selection: Selection) -> int:
    return int(
        session.execute(select(func.count()).select_from(articles).where(selection.where())).scalar_one()
    )


def next_batch(session: Session, selection: Selection, after: str | None, limit: int) -> list[ArticleSeen]:
    """Up to ``limit`` articles to re-score, in ``article_id`` order after ``after``."""
    query = select(articles).where(selection.where())
    if after is not None:
        query = query.where(articles.c.article_id > after)
    rows = session.execute(query.order_by(articles.c.article_id).limit(limit)).mappings()
    return [article_from_row(row) for row in rows]


def article_from_row(row: Any) -> ArticleSeen:
    """The stored article as the classifier received it (same id, revision and text)."""
    return ArticleSeen(
        article_id=row["article_id"],
        revision=row["revision"],
        feed=row["feed"],
        source=row["source"],
        url=row["url"],
        guid=row["guid"],
        title=row["title"],
        summary=row["summary"],
        text=row["text"],
        language=row["language"],
        published_at=None if row["published_at_inferred"] else row["published_at"],
        published_at_inferred=row["published_at_inferred"],
        first_seen_at=row["first_seen_at"],
        fetched_at=row["fetched_at"],
        content_hash=row["content_hash"],
    )


@dataclass
class EventDiff:
    """Per category: events a re-scoring would add and remove."""

    appear: dict[str, int] = field(default_factory=dict)
    disappear: dict[str, int] = field(default_factory=dict)
    articles: int = 0

    def add(self, other: EventDiff) -> None:
        self.articles += other.articles
        for mine, theirs in ((self.appear, other.appear), (self.disappear, other.disappear)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value

    def to_json(self) -> dict[str, Any]:
        categories = sorted(set(self.appear) | set(self.disappear))
        return {
            "articles": self.articles,
            "appear": {c: self.appear.get(c, 0) for c in categories},
            "disappear": {c: self.disappear.get(c, 0) for c in categories},
        }


def event_diff(session: Session, tagged: Sequence[ArticleTagged]) -> EventDiff:
    """What replacing the current events of these articles with their new tags would change."""
    ids = [t.article_id for t in tagged]
    current: dict[str, set[str]] = {}
    if ids:
        query = select(events.c.article_id, events.c.category).where(events.c.article_id.in_(ids))
        for article_id, category in session.execute(query):
            current.setdefault(article_id, set()).add(category)
    diff = EventDiff(articles=len(tagged))
    for t in tagged:
        before, after = current.get(t.article_id, set()), set(t.labels)
        for category in after - before:
            diff.appear[category] = diff.appear.get(category, 0) + 1
        for category in before - after:
            diff.disappear[category] = diff.disappear.get(category, 0) + 1
    return diff
