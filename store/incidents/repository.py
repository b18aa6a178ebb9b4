"""Incident linking inside the sink's transaction: a :class:`ReportStore` over PostgreSQL, and writes.

Functions receive a session and never commit; the sink's batch transaction owns them, so an
article, its events and its incident link land together or not at all, and a crash anywhere
re-delivers a batch whose linking is then redone from the same stored state.

Concurrency: linking reads the neighbourhood of a batch and rewrites it, so two sinks must not
link at once. :func:`lock_linking` takes a transaction-scoped advisory lock
(``pg_advisory_xact_lock``); :func:`store.repository.save_batch` takes it *before* it locks any
article row, so a sink never waits for the lock while holding rows another sink's linking needs
(which would deadlock). The lock is released at commit or rollback; sinks still decode, batch and
commit offsets in parallel, and only their database transactions queue (README "Incidents").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import numpy as np
from sqlalchemy import Row, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store.incidents.features import Features, Report, features, location_of
from store.incidents.linker import MIN_SHARED_NAMES, WINDOW_DAYS, Linker, LinkPlan, Stored
from store.tables import incident_reports, incidents
from wirewatch.contract import ArticleTagged

LINK_LOCK_KEY: Final = 0x77_69_72_65_2D_69_6E_63  # "wire-inc": one key for every linker
"""The advisory lock all linkers share (``pg_advisory_xact_lock``)."""


def lock_linking(session: Session) -> None:
    """Serialise incident linking across sinks until this transaction ends (re-entrant)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LINK_LOCK_KEY})


def report_from_tagged(msg: ArticleTagged) -> Report:
    """The linker's view of a tagged article (no ``published_at``: first sight, as in ``articles``),
    with the classifier's event location (:func:`~store.incidents.features.location_of`, as offline)."""
    a = msg.article
    return Report(
        article_id=a.article_id,
        title=a.title,
        text=a.text or a.summary,
        lang=a.language,
        published_at=a.published_at or a.first_seen_at,
        categories=frozenset(msg.labels),
        embedding=msg.embedding,
        source=a.source,
        location=location_of(msg.location),
    )


ONE_DAY: Final = timedelta(days=1)
CANDIDATES_PER_REPORT: Final = 100
"""Most recent stored reports considered per new report (a bound for crowded neighbourhoods)."""

# One round trip for the whole batch: each new report (a JSON object) finds the stored reports that
# share at least two names with it, in its window, with agreeing categories. The names GIN index
# answers ``&&`` for the report's names less its most common one (a report sharing two names shares
# one of the others), the rest re-checks those rows.
_CANDIDATES = text(
    """
    WITH batch AS (
        SELECT ARRAY(SELECT jsonb_array_elements_text(b.names)) AS names,
               ARRAY(SELECT jsonb_array_elements_text(b.probe)) AS probe,
               ARRAY(SELECT jsonb_array_elements_text(b.categories)) AS categories,
               b.low, b.high
        FROM jsonb_to_recordset(CAST(:batch AS jsonb))
             AS b(names jsonb, probe jsonb, categories jsonb, low timestamptz, high timestamptz)
    )
    SELECT DISTINCT ON (found.article_id) found.*
    FROM batch CROSS JOIN LATERAL (
        SELECT r.* FROM incident_reports r
        WHERE r.names && batch.probe
          AND (SELECT count(*) FROM unnest(r.names) AS n WHERE n = ANY(batch.names)) >= :least
          AND (batch.low IS NULL OR r.published_at IS NULL
               OR r.published_at BETWEEN batch.low AND batch.high)
          AND (cardinality(batch.categories) = 0 OR cardinality(r.categories) = 0
               OR r.categories && batch.categories)
        ORDER BY r.published_at DESC NULLS LAST, r.article_id
        LIMIT :per_report
    ) AS found
    ORDER BY found.article_id
    """
)


_SEEN_NAMES: Counter[str] = Counter()
"""How often this process linked each name: only chooses which name a candidate probe leaves out
(:func:`_probe`), never what a probe can find, so it affects speed and never a result."""


def _probe(names: Sequence[str]) -> list[str]:
    """The names to look up: all but the most common one (cuts the rows a city or country name pulls)."""
    if len(names) < MIN_SHARED_NAMES:
        return list(names)
    common = max(names, key=lambda n: (_SEEN_NAMES[n], n))
    return [n for n in names if n != common]


def _midnight(day: date) -> str:
    return datetime.combine(day, time.min, tzinfo=UTC).isoformat()


def _features(row: Row[Any]) -> Features:
    return Features(
        article_id=row.article_id,
        lang=row.language,
        published_at=row.published_at,
        event_date=row.event_date,
        days=frozenset(row.days),
        month_days=frozenset(row.month_days),
        names=frozenset(row.names),
        categories=frozenset(row.categories),
        vector=np.frombuffer(row.embedding, dtype="<f4") if row.embedding is not None else None,
        source=row.source,
        title=row.title,
        country=row.country,
        admin1=row.admin1,
        place=row.place,
    )


def _stored(row: Row[Any]) -> Stored:
    return Stored(_features(row), row.incident_id, row.component_id)


class SqlReportStore:
    """:class:`store.incidents.linker.ReportStore` over ``incident_reports`` (reads only)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def stored(self, article_ids: Collection[str]) -> list[Stored]:
        if not article_ids:
            return []
        rows = self._session.execute(
            select(incident_reports).where(incident_reports.c.article_id.in_(sorted(article_ids)))
        )
        return [_stored(r) for r in rows]

    def candidates(self, reports: Sequence[Features]) -> list[Stored]:
        """Stored reports that meet the necessary conditions of a close pair with one of ``reports``
        (:func:`store.incidents.linker.margin`): two shared names, the window, agreeing categories."""
        window = timedelta(days=WINDOW_DAYS + 1)
        days = {
            (tuple(sorted(f.names)), tuple(sorted(f.categories)), f.published)
            for f in reports
            if len(f.names) >= MIN_SHARED_NAMES
        }  # syndicated copies ask once
        batch = [
            {
                "names": list(names),
                "probe": _probe(names),
                "categories": list(categories),
                "low": _midnight(published - window) if published is not None else None,
                "high": _midnight(published + window + ONE_DAY) if published is not None else None,
            }
            for names, categories, published in sorted(days, key=repr)
        ]
        if not batch:
            return []
        rows = self._session.execute(
            _CANDIDATES,
            {"batch": json.dumps(batch), "least": MIN_SHARED_NAMES, "per_report": CANDIDATES_PER_REPORT},
        )
        return [_stored(r) for r in rows]

    def members(self, component_ids: Collection[str], limit: int) -> list[Stored]:
        if not component_ids:
            return []
        rows = self._session.execute(
            select(incident_reports)
            .where(incident_reports.c.component_id.in_(sorted(component_ids)))
            .order_by(incident_reports.c.article_id)
            .limit(limit)
        )
        return [_stored(r) for r in rows]

    def incident_members(self, incident_ids: Collection[str]) -> list[Stored]:
        if not incident_ids:
            return []
        rows = self._session.execute(
            select(incident_reports).where(incident_reports.c.incident_id.in_(sorted(incident_ids)))
        )
        return [_stored(r) for r in rows]


def _report_row(s: Stored) -> dict[str, Any]:
    f = s.features
    return {
        "article_id": f.article_id,
        "incident_id": s.incident_id,
        "component_id": s.component_id,
        "language": f.lang,
        "published_at": f.published_at,
        "event_date": f.event_date,
        "days": sorted(f.days),
        "month_days": sorted(f.month_days),
        "names": sorted(f.names),
        "categories": sorted(f.categories),
        "embedding": f.vector.astype("<f4").tobytes() if f.vector is not None else None,
        "source": f.source,
        "title": f.title,
        "country": f.country,
        "admin1": f.admin1,
        "place": f.place,
    }


def apply_plan(session: Session, plan: LinkPlan) -> None:
    """Write a :class:`LinkPlan`: reports, their incidents, and what disappeared. Never commits."""
    if plan.removed:
        session.execute(delete(incident_reports).where(incident_reports.c.article_id.in_(plan.removed)))
    if plan.changed():
        stmt = insert(incident_reports)
        columns = [c.name for c in incident_reports.columns if c.name not in ("article_id", "linked_at")]
        update: dict[str, Any] = {c: stmt.excluded[c] for c in columns}
        update["linked_at"] = func.now()
        moved = plan.changed()  # neighbours that kept their incident and component are not rewritten
        rows = sorted((_report_row(s) for s in moved.values()), key=lambda r: r["article_id"])
        session.execute(stmt.on_conflict_do_update(index_elements=["article_id"], set_=update), rows)
    if plan.vanished:
        session.execute(delete(incidents).where(incidents.c.incident_id.in_(sorted(plan.vanished))))
    if plan.summaries:
        stmt = insert(incidents)
        columns = [c.name for c in incidents.columns if c.name not in ("incident_id", "updated_at")]
        update = {c: stmt.excluded[c] for c in columns}
        update["updated_at"] = func.now()
        rows = [
            {
                "incident_id": s.incident_id,
                "founder_article_id": s.founder_article_id,
                "categories": list(s.categories),
                "country": s.country,
                "admin1": s.admin1,
                "place": s.place,
                "event_date": s.event_date,
                "first_reported_at": s.first_reported_at,
                "last_reported_at": s.last_reported_at,
                "article_count": s.article_count,
                "source_count": s.source_count,
                "title": s.title,
            }
            for s in sorted(plan.summaries.values(), key=lambda s: s.incident_id)
        ]
        session.execute(stmt.on_conflict_do_update(index_elements=["incident_id"], set_=update), rows)


def link_tagged(session: Session, fresher: Sequence[ArticleTagged]) -> LinkPlan:
    """Link the batch's newly classified articles: those with a category join or open an incident,
    those that lost every category leave theirs. Takes the linking lock; never commits."""
    if not fresher:
        return LinkPlan()
    lock_linking(session)
    linked = [features(report_from_tagged(m)) for m in fresher if m.labels]
    unlinked = [m.article_id for m in fresher if not m.labels]
    plan = Linker(SqlReportStore(session)).link(linked, remove=unlinked)
    apply_plan(session, plan)
    for f in linked:
        _SEEN_NAMES.update(f.names)
    if len(_SEEN_NAMES) > 200_000:  # keep the guide small: forget the rarest half
        for name, _count in _SEEN_NAMES.most_common()[100_000:]:
            del _SEEN_NAMES[name]
    return plan
