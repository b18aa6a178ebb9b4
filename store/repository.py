"""Row building and idempotent writes. Functions receive a session and never commit.

The caller owns the transaction (``with session.begin():``), so a whole batch
of messages lands atomically or not at all. Every statement is an upsert
whose outcome depends only on the message, so re-delivery changes nothing:

* ``articles``: the newest ``revision`` wins; ``first_seen_at`` keeps the earliest.
* ``classifications``: insert-or-ignore on (article, revision, model, version).
* ``events``: replaced for an article only when the incoming classification is
  newer (revision, then classified time) than the one the current rows came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Integer, Text, column, delete, func, select, values
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store.tables import articles, classifications, events
from wirewatch.contract import ArticleTagged


@dataclass(frozen=True)
class SaveResult:
    articles: int
    events_replaced_for: int
    events_written: int


def article_row(msg: ArticleTagged) -> dict[str, Any]:
    a = msg.article
    return {
        "article_id": a.article_id,
        "revision": a.revision,
        "feed": a.feed,
        "source": a.source,
        "url": a.url,
        "guid": a.guid,
        "title": a.title,
        "summary": a.summary,
        "text": a.text,
        "language": a.language,
        "published_at": a.published_at or a.first_seen_at,
        "published_at_inferred": a.published_at_inferred or a.published_at is None,
        "content_hash": a.content_hash,
        "fetched_at": a.fetched_at,
        "first_seen_at": a.first_seen_at,
        "last_seen_at": a.fetched_at,
    }


def classification_row(msg: ArticleTagged) -> dict[str, Any]:
    return {
        "article_id": msg.article_id,
        "article_revision": msg.article.revision,
        "model_name": msg.model_name,
        "model_version": msg.model_version,
        "labels": list(msg.labels),
        "scores": dict(msg.scores),
        "evidence": dict(msg.evidence),
        "classified_at": msg.classified_at,
        "language_supported": msg.language_supported,
    }


def event_rows(msg: ArticleTagged) -> list[dict[str, Any]]:
    return [
        {
            "article_id": msg.article_id,
            "category": label,
            "score": float(msg.scores.get(label, 0.0)),
            "evidence": msg.evidence.get(label),
            "model_name": msg.model_name,
            "model_version": msg.model_version,
            "article_revision": msg.article.revision,
            "classified_at": msg.classified_at,
            "language_supported": msg.language_supported,
        }
        for label in dict.fromkeys(msg.labels)
    ]


def newest_per_article(batch: Sequence[ArticleTagged]) -> list[ArticleTagged]:
    """Keep one message per article: the newest (revision, classified time). Order is stable."""
    best: dict[str, ArticleTagged] = {}
    for msg in batch:
        current = best.get(msg.article_id)
        if current is None or _version(msg) >= _version(current):
            best[msg.article_id] = msg
    return list(best.values())


def _version(msg: ArticleTagged) -> tuple[int, Any]:
    return (msg.article.revision, msg.classified_at)


def save_batch(session: Session, batch: Sequence[ArticleTagged]) -> SaveResult:
    """Write a batch of tagged articles. Idempotent; never commits."""
    if not batch:
        return SaveResult(0, 0, 0)
    newest = newest_per_article(batch)
    _upsert_articles(session, newest)
    session.execute(
        insert(classifications).on_conflict_do_nothing(
            index_elements=["article_id", "article_revision", "model_name", "model_version"]
        ),
        [classification_row(m) for m in batch],
    )
    fresher = _fresher_than_stored(session, newest)
    written = _replace_events(session, fresher)
    return SaveResult(len(newest), len(fresher), written)


def _upsert_articles(session: Session, newest: Sequence[ArticleTagged]) -> None:
    stmt = insert(articles)
    ex = stmt.excluded
    update: dict[str, Any] = {
        c: ex[c]
        for c in (
            "revision",
            "feed",
            "source",
            "url",
            "guid",
            "title",
            "summary",
            "text",
            "language",
            "published_at",
            "published_at_inferred",
            "content_hash",
            "fetched_at",
            "last_seen_at",
        )
    }
    update["first_seen_at"] = func.least(articles.c.first_seen_at, ex.first_seen_at)
    update["updated_at"] = func.now()
    # Sorted ids make concurrent sinks take row locks in one order (no deadlocks).
    rows = sorted((article_row(m) for m in newest), key=lambda r: r["article_id"])
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["article_id"],
            set_=update,
            where=articles.c.revision <= ex.revision,
        ),
        rows,
    )


def _fresher_than_stored(session: Session, newest: Sequence[ArticleTagged]) -> list[ArticleTagged]:
    ids = [m.article_id for m in newest]
    stored = {
        row.article_id: (row.classified_revision, row.classified_at)
        for row in session.execute(
            select(articles.c.article_id, articles.c.classified_revision, articles.c.classified_at)
            .where(articles.c.article_id.in_(ids))
            .with_for_update()
        )
    }
    fresher = []
    for msg in newest:
        rev, at = stored.get(msg.article_id, (None, None))
        if rev is None or (msg.article.revision, msg.classified_at) > (rev, at):
            fresher.append(msg)
    return fresher


def _replace_events(session: Session, fresher: Sequence[ArticleTagged]) -> int:
    if not fresher:
        return 0
    ids = [m.article_id for m in fresher]
    session.execute(delete(events).where(events.c.article_id.in_(ids)))
    rows = [row for m in fresher for row in event_rows(m)]
    if rows:
        session.execute(insert(events), rows)
    # One UPDATE ... FROM (VALUES ...) instead of a round trip per article.
    marks = values(
        column("article_id", Text),
        column("revision", Integer),
        column("at", DateTime(timezone=True)),
        name="marks",
    ).data([(m.article_id, m.article.revision, m.classified_at) for m in fresher])
    session.execute(
        articles.update()
        .where(articles.c.article_id == marks.c.article_id)
        .values(classified_revision=marks.c.revision, classified_at=marks.c.at)
    )
    return len(rows)


def count_rows(session: Session) -> dict[str, int]:
    return {
        t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (articles, classifications, events)
    }
