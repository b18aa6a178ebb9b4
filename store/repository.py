"""Row building and idempotent writes. Functions receive a session and never commit.

The caller owns the transaction (``with session.begin():``), so a whole batch
of messages lands atomically or not at all. Every statement is an upsert
whose outcome depends only on the message, so re-delivery changes nothing:

* ``articles``: the newest ``revision`` wins; ``first_seen_at`` keeps the earliest.
* ``classifications``: insert-or-ignore on (article, revision, model, version).
* ``events``: replaced for an article only when the incoming classification is
  newer (revision, then classified time) than the one the current rows came from.
* ``incident_reports`` / ``incidents``: the same newer classifications are linked into
  incidents (:mod:`store.incidents.repository`), under a lock all sinks share.
* ``event_outbox``: one row per category that the replacement added, removed, or
  changed (score, model or revision), with the article's incident after linking
  (``incident_id``, and ``incident``: ``opened`` or ``joined``), written last, under
  an EXCLUSIVE table lock held to commit, so ids grow in commit order and a reader
  polling ``id > last`` never skips a row that commits late.

Indexed text stays under PostgreSQL's index-row limit (~2.7 kB, SQLSTATE 54000,
which no retry can fix): descriptive columns (``source``, ``feed``) are cut to
a cap when rows are built, and key columns that name things (``category``,
``model_name``, ``model_version``) are refused by :func:`check_storable` as
poison, since cutting them could merge two different names into one key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import DateTime, Integer, Text, case, column, delete, func, select, text, values
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store.incidents.repository import link_tagged, lock_linking
from store.tables import articles, classifications, event_outbox, events, incident_reports, incidents
from wirewatch.contract import ArticleTagged
from wirewatch.errors import PoisonMessageError

MAX_SOURCE_CHARS = 255
"""``source`` is a host name (at most 253 characters in DNS); indexed with ``published_at``."""
MAX_FEED_CHARS = 200
"""``feed`` is an operator-chosen name; indexed with ``published_at``."""
MAX_KEY_CHARS = 200
"""``category``, ``model_name``, ``model_version``: part of unique keys. Worst case with a
128-character article id, all in 4-byte UTF-8: 512 + 2 x 800 bytes, under the 2,704-byte limit."""


def _cap(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None and len(value) > limit else value


def check_storable(msg: ArticleTagged) -> None:
    """Raise :class:`PoisonMessageError` if a key column of ``msg`` could never be indexed."""
    names = {"model_name": msg.model_name, "model_version": msg.model_version}
    names.update({f"label {label[:40]!r}": label for label in msg.labels})
    for what, value in names.items():
        if len(value) > MAX_KEY_CHARS:
            raise PoisonMessageError(
                "field_too_long", f"{what} has {len(value)} characters (at most {MAX_KEY_CHARS})"
            )


def article_row(msg: ArticleTagged) -> dict[str, Any]:
    a = msg.article
    return {
        "article_id": a.article_id,
        "revision": a.revision,
        "feed": _cap(a.feed, MAX_FEED_CHARS),
        "source": _cap(a.source, MAX_SOURCE_CHARS),
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
        **location_columns(msg),
    }


LOCATION_COLUMNS = (
    "country",
    "admin1_name",
    "admin1_code",
    "place",
    "lat",
    "lon",
    "geo_precision",
    "geo_evidence",
)


def location_columns(msg: ArticleTagged) -> dict[str, Any]:
    """The article's location columns; all NULL when the message carries no location."""
    loc = msg.location
    if loc is None:
        return dict.fromkeys(LOCATION_COLUMNS)
    return {
        "country": loc.country,
        "admin1_name": loc.admin1.name if loc.admin1 else None,
        "admin1_code": loc.admin1.code if loc.admin1 else None,
        "place": loc.place,
        "lat": loc.lat,
        "lon": loc.lon,
        "geo_precision": loc.precision,
        "geo_evidence": loc.evidence,
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


def save_batch(session: Session, batch: Sequence[ArticleTagged], link: bool = True) -> None:
    """Write a batch of tagged articles. Idempotent; never commits.

    ``link=False`` (``WIREWATCH_LINK_INCIDENTS=false``) writes articles, events and outbox rows
    without incident linking and without its lock: the outbox rows then name no incident, and the
    articles stay unlinked until they are next classified with linking on."""
    if not batch:
        return
    for msg in batch:
        check_storable(msg)
    newest = newest_per_article(batch)
    if link:
        lock_linking(session)  # before any row lock: see store/incidents/repository.py
    _upsert_articles(session, newest)
    session.execute(
        insert(classifications).on_conflict_do_nothing(
            index_elements=["article_id", "article_revision", "model_name", "model_version"]
        ),
        [classification_row(m) for m in batch],
    )
    fresher = _fresher_than_stored(session, newest)
    changes = _replace_events(session, fresher)
    if link:
        link_tagged(session, fresher)
        changes = _with_incidents(session, changes)
    else:
        changes = [{**c, "incident_id": None, "incident": None} for c in changes]
    _append_outbox(session, changes)


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
    # A message without a location (from an older classifier) keeps the stored one.
    for c in LOCATION_COLUMNS:
        update[c] = case((ex.geo_precision.is_(None), articles.c[c]), else_=ex[c])
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


def _replace_events(session: Session, fresher: Sequence[ArticleTagged]) -> list[dict[str, Any]]:
    """Replace the events of ``fresher`` articles; returns the outbox changes."""
    if not fresher:
        return []
    ids = [m.article_id for m in fresher]
    before: dict[tuple[str, str], tuple[Any, ...]] = {
        (row.article_id, row.category): (row.score, row.model_name, row.model_version, row.article_revision)
        for row in session.execute(
            select(
                events.c.article_id,
                events.c.category,
                events.c.score,
                events.c.model_name,
                events.c.model_version,
                events.c.article_revision,
            ).where(events.c.article_id.in_(ids))
        )
    }
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
    return event_changes(before, fresher)


def event_changes(
    before: dict[tuple[str, str], tuple[Any, ...]], fresher: Sequence[ArticleTagged]
) -> list[dict[str, Any]]:
    """Outbox rows for replacing ``before`` (``(article, category) -> (score, model, version,
    revision)``) by the events of ``fresher``: added, removed, or updated when anything a reader
    sees changed. A re-classification that changes nothing adds nothing."""
    by_article: dict[str, dict[str, tuple[Any, ...]]] = {}
    for (article_id, category), stored in before.items():
        by_article.setdefault(article_id, {})[category] = stored
    changes: list[dict[str, Any]] = []
    for msg in fresher:
        after = {row["category"]: row for row in event_rows(msg)}
        old = by_article.get(msg.article_id, {})
        base = {
            "article_id": msg.article_id,
            "article_revision": msg.article.revision,
            "model_name": msg.model_name,
            "model_version": msg.model_version,
        }
        for category in sorted(set(after) | set(old)):
            if category not in old:
                change, score = "added", after[category]["score"]
            elif category not in after:
                change, score = "removed", None
            else:
                row = after[category]
                now = (row["score"], row["model_name"], row["model_version"], row["article_revision"])
                if now == tuple(old[category]):
                    continue
                change, score = "updated", row["score"]
            changes.append({**base, "category": category, "change": change, "score": score})
    return changes


def _with_incidents(session: Session, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``changes`` with each article's incident as linking left it in this transaction:
    ``incident_id`` and ``incident`` (``opened`` when the article is the incident's first report,
    ``joined`` otherwise), both null for an article without one (it lost every category)."""
    if not changes:
        return changes
    ids = sorted({c["article_id"] for c in changes})
    linked = {
        row.article_id: (row.incident_id, "opened" if row.founder_article_id == row.article_id else "joined")
        for row in session.execute(
            select(
                incident_reports.c.article_id,
                incident_reports.c.incident_id,
                incidents.c.founder_article_id,
            )
            .select_from(
                incident_reports.outerjoin(
                    incidents, incidents.c.incident_id == incident_reports.c.incident_id
                )
            )
            .where(incident_reports.c.article_id.in_(ids))
        )
    }
    out = []
    for change in changes:
        incident_id, how = linked.get(change["article_id"], (None, None))
        out.append({**change, "incident_id": incident_id, "incident": how})
    return out


def _append_outbox(session: Session, changes: list[dict[str, Any]]) -> None:
    if not changes:
        return
    # Held until commit: ids are drawn in commit order (readers poll "id > last seen"). Taken
    # last, so concurrent sinks serialise only their final insert and commit. Readers cannot take
    # a conflicting lock (SELECT allows only ACCESS SHARE), so they cannot block the sink.
    session.execute(text("LOCK TABLE event_outbox IN EXCLUSIVE MODE"))
    ordered = sorted(changes, key=lambda c: (c["article_id"], c["category"]))
    # With RETURNING, SQLAlchemy sends multi-row INSERTs of up to 1,000 rows ("insertmanyvalues",
    # compiled once and cached), so the statement-level NOTIFY hint fires once per 1,000 rows.
    session.execute(insert(event_outbox).returning(event_outbox.c.id), ordered).all()


def count_rows(session: Session) -> dict[str, int]:
    return {
        t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (articles, classifications, events)
    }
