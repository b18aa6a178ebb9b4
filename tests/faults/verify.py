"""Comparing the database with the corpus: every entry stored exactly once, its events, nothing extra.

Owns the end-of-test verdict. It reads ``articles``, ``events`` and
``classifications`` and matches rows to corpus entries by URL (the poller's
canonical URL is exactly ``base + path`` for generated entries) and checks
the GUID, feed, language, title, text, revision, the events the keyword
baseline implies, one classification per article, and that incident linking
is whole (every article with events linked once, incident rows agreeing). A failure message lists
examples of each kind of discrepancy, never just "counts differ".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from tests.faults.corpus import Entry


@dataclass
class Verdict:
    stored: int = 0
    expected: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong_fields: list[str] = field(default_factory=list)
    wrong_events: list[str] = field(default_factory=list)
    wrong_classifications: list[str] = field(default_factory=list)
    wrong_incidents: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.extra
            or self.duplicated
            or self.wrong_fields
            or self.wrong_events
            or self.wrong_classifications
            or self.wrong_incidents
        )

    def describe(self) -> str:
        lines = [f"stored {self.stored} rows for {self.expected} corpus entries"]
        for name in (
            "missing",
            "extra",
            "duplicated",
            "wrong_fields",
            "wrong_events",
            "wrong_classifications",
            "wrong_incidents",
        ):
            items = getattr(self, name)
            if items:
                lines.append(f"{name}: {len(items)}, e.g. " + "; ".join(items[:5]))
        return "\n".join(lines)


def stored_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM articles")).scalar_one())


def compare(
    engine: Engine,
    entries: Iterable[Entry],
    base: str,
    *,
    check_events: bool = True,
    allow_extra: frozenset[str] = frozenset(),
) -> Verdict:
    """The verdict for ``entries`` served from ``base``; ``allow_extra`` URLs may exist too."""
    expected = {base + e.path: e for e in entries}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT article_id, url, guid, feed, language, title, text, revision FROM articles")
        ).all()
        event_rows = conn.execute(text("SELECT article_id, category FROM events")).all()
        class_rows = conn.execute(
            text("SELECT article_id, count(*) FROM classifications GROUP BY article_id")
        ).all()
        verdict_incidents = incident_problems(conn)
    events: dict[str, set[str]] = defaultdict(set)
    for article_id, category in event_rows:
        events[article_id].add(category)
    classified = dict(class_rows)

    verdict = Verdict(stored=len(rows), expected=len(expected), wrong_incidents=verdict_incidents)
    by_url = Counter(r.url for r in rows)
    verdict.duplicated = [f"{url} x{n}" for url, n in by_url.items() if n > 1]
    verdict.missing = sorted(url for url in expected if url not in by_url)
    verdict.extra = sorted(str(r.url) for r in rows if r.url not in expected and r.url not in allow_extra)
    for row in rows:
        entry = expected.get(row.url)
        if entry is None:
            continue
        got = (row.guid, row.feed, row.language, row.title, row.text, row.revision)
        want = (entry.guid, entry.feed, entry.language, entry.title, entry.text, 1)
        if got != want:
            diff = [
                f"{n}={g!r}!={w!r}"
                for n, g, w in zip(
                    ("guid", "feed", "language", "title", "text", "revision"), got, want, strict=True
                )
                if g != w
            ]
            verdict.wrong_fields.append(f"{row.url}: {', '.join(diff)}")
        if check_events and events.get(row.article_id, set()) != set(entry.labels):
            verdict.wrong_events.append(
                f"{row.url}: events {sorted(events.get(row.article_id, set()))} != {list(entry.labels)}"
            )
        if classified.get(row.article_id, 0) != 1:
            verdict.wrong_classifications.append(
                f"{row.url}: {classified.get(row.article_id, 0)} classifications"
            )
    return verdict


def incident_problems(conn: Connection) -> list[str]:
    """Incident bookkeeping that a crash could have left half-done: each article with events linked
    exactly once, none without, and every incident row agreeing with its reports."""
    problems = [
        f"{a}: events but no incident"
        for (a,) in conn.execute(
            text(
                "SELECT DISTINCT e.article_id FROM events e "
                "LEFT JOIN incident_reports r USING (article_id) WHERE r.article_id IS NULL"
            )
        )
    ]
    problems += [
        f"{a}: linked without events"
        for (a,) in conn.execute(
            text(
                "SELECT r.article_id FROM incident_reports r "
                "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.article_id = r.article_id)"
            )
        )
    ]
    problems += [
        f"incident {i}: row says {n} reports, {m} linked"
        for i, n, m in conn.execute(
            text(
                "SELECT coalesce(i.incident_id, r.incident_id), coalesce(i.article_count, 0), "
                "count(r.article_id) FROM incidents i FULL JOIN incident_reports r USING (incident_id) "
                "GROUP BY 1, 2 HAVING coalesce(i.article_count, 0) <> count(r.article_id)"
            )
        )
    ]
    return problems
