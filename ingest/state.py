"""What the poller has published, and each feed's HTTP and health state, in SQLite.

Owns ``<state dir>/poller.sqlite3`` (``WIREWATCH_STATE_DIR``, default ``.state``):

* ``seen``  — one row per ``article_id``: the feed that owns it (the first to
  list it; only that feed publishes revisions), its GUID in that feed, the
  revision and ``content_hash`` last *acknowledged by Kafka*, when it was
  first seen, and the stamped date of entries that carried none (so a
  revision keeps its first sighting).
* ``forgotten`` — tombstones of rows :meth:`PollerState.forget` dropped: the
  id, owner, GUID, revision and hash, so an entry that comes back continues
  its revision count (an edit is published as revision N + 1, which the sink
  accepts) instead of restarting at 1 (which the sink would ignore).
* ``feeds`` — one row per feed name: the URL in use (a permanent redirect
  target), conditional-GET validators, schedule, health (last success,
  consecutive failures, last error, last new entry) and whether it is gone.

Why SQLite: one file, transactional, needs no server, survives ``kill -9``
(WAL journal), and a lookup of a poll's ids is one indexed query. One poller
per state directory: a lock file (``poller.lock``) makes a second one fail
fast instead of double-publishing.

Rules the poller relies on:

* :meth:`PollerState.commit` is the only write. It records the published
  articles *and* the feed's new validators in one transaction, called only
  after the broker acknowledged the articles. A crash before it means the
  feed is fetched in full again and the entries re-published (at least
  once, never lost); nothing is marked seen that Kafka did not take.
* Ids are global, not per feed: an article listed by two feeds is published
  once, under the feed that saw it first, and only that feed publishes its
  revisions (syndicated copies carry other summaries; deciding revisions per
  copy would publish a new one on every poll).
* ``read_only=True`` (``--dry-run``) opens the file read-only (or nothing,
  when there is none) and keeps commits in memory, so a dry run behaves like
  a real one within the process and leaves the directory untouched.

It must not fetch, parse, or talk to Kafka.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from wirewatch.contract import ArticleSeen
from wirewatch.errors import ConfigError

log = logging.getLogger(__name__)

DB_NAME = "poller.sqlite3"
LOCK_NAME = "poller.lock"
SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    article_id TEXT PRIMARY KEY,
    feed TEXT NOT NULL,
    guid TEXT,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    published_at TEXT,
    published_inferred INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    listed_at TEXT
);
CREATE TABLE IF NOT EXISTS forgotten (
    article_id TEXT PRIMARY KEY,
    feed TEXT NOT NULL,
    guid TEXT,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    declared_url TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_attempt_at TEXT,
    last_success_at TEXT,
    last_new_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_due_at TEXT,
    gone INTEGER NOT NULL DEFAULT 0
);
"""


class StateLockedError(ConfigError):
    """Another poller holds this state directory."""


@dataclass(frozen=True)
class SeenRecord:
    article_id: str
    feed: str
    revision: int
    content_hash: str
    first_seen_at: datetime
    published_at: datetime | None
    published_inferred: bool
    listed_at: datetime | None = None
    """When a feed last listed it (refreshed sparingly); what :meth:`PollerState.forget` goes by."""
    guid: str | None = None
    """The entry's GUID in its owning feed (None for rows written before schema 3)."""
    forgotten: bool = False
    """A tombstone: forgotten, but its revision and hash are kept."""


@dataclass(frozen=True)
class FeedState:
    """A feed's persisted state; values are replaced (``dataclasses.replace``), never mutated."""

    name: str
    declared_url: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_new_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    next_due_at: datetime | None = None
    gone: bool = False


class PollerState:
    """The poller's memory. Not thread-safe: used from the poller's event-loop thread only."""

    def __init__(self, state_dir: str | Path, *, read_only: bool = False) -> None:
        self.read_only = read_only
        self._dir = Path(state_dir)
        self._lock: IO[bytes] | None = None
        self._overlay_seen: dict[str, SeenRecord] = {}
        self._overlay_feeds: dict[str, FeedState] = {}
        path = self._dir / DB_NAME
        self._db: sqlite3.Connection | None
        if read_only:
            self._db = (
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
                if path.exists()
                else None
            )
        else:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            # one user at a time (the poller loop), possibly not the thread that opened it
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._upgrade(self._db)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        """Bring a state file written by an older poller up to this schema (idempotent)."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(seen)")}
        if "listed_at" not in columns:  # version 1
            db.execute("ALTER TABLE seen ADD COLUMN listed_at TEXT")
        if "guid" not in columns:  # version 2
            db.execute("ALTER TABLE seen ADD COLUMN guid TEXT")

    def _acquire_lock(self) -> None:
        handle = (self._dir / LOCK_NAME).open("wb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise StateLockedError(
                f"another poller is using {self._dir} (lock {LOCK_NAME}); run one poller per state dir"
            ) from exc
        self._lock = handle

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ---- articles -------------------------------------------------------------------------------

    def seen(self, article_ids: Iterable[str]) -> dict[str, SeenRecord]:
        """The stored record of each id that was published before (missing ids are new)."""
        ids = list(dict.fromkeys(article_ids))
        found: dict[str, SeenRecord] = {}
        if self._db is not None:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT article_id, feed, revision, content_hash, first_seen_at, published_at, "
                    f"published_inferred, listed_at, guid FROM seen WHERE article_id IN ({marks})",
                    chunk,
                ).fetchall()
                for row in rows:
                    found[row[0]] = SeenRecord(
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        _dt(row[4]),
                        _opt_dt(row[5]),
                        bool(row[6]),
                        _opt_dt(row[7]),
                        row[8],
                    )
                missing = [article_id for article_id in chunk if article_id not in found]
                if not missing:
                    continue
                tombstones = self._db.execute(
                    "SELECT article_id, feed, revision, content_hash, first_seen_at, guid FROM forgotten "
                    f"WHERE article_id IN ({','.join('?' * len(missing))})",
                    missing,
                ).fetchall()
                for row in tombstones:
                    found[row[0]] = SeenRecord(
                        row[0], row[1], row[2], row[3], _dt(row[4]), None, False, None, row[5], forgotten=True
                    )
        for article_id in ids:
            if article_id in self._overlay_seen:
                found[article_id] = self._overlay_seen[article_id]
        return found

    # ---- feeds ----------------------------------------------------------------------------------

    def feed(self, name: str, declared_url: str) -> FeedState:
        """The feed's stored state; fresh when unknown or when its declared URL changed."""
        state = self._overlay_feeds.get(name) or self._load_feed(name)
        if state is None or state.declared_url != declared_url:
            if state is not None:
                log.info("feed %s: declared URL changed to %s, starting afresh", name, declared_url)
            return FeedState(name=name, declared_url=declared_url, url=declared_url)
        return state

    def _load_feed(self, name: str) -> FeedState | None:
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT name, declared_url, url, etag, last_modified, last_attempt_at, last_success_at, "
            "last_new_at, consecutive_failures, last_error, next_due_at, gone FROM feeds WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        return FeedState(
            name=row[0],
            declared_url=row[1],
            url=row[2],
            etag=row[3],
            last_modified=row[4],
            last_attempt_at=_opt_dt(row[5]),
            last_success_at=_opt_dt(row[6]),
            last_new_at=_opt_dt(row[7]),
            consecutive_failures=row[8],
            last_error=row[9],
            next_due_at=_opt_dt(row[10]),
            gone=bool(row[11]),
        )

    # ---- the one write --------------------------------------------------------------------------

    def commit(
        self,
        feeds: Sequence[FeedState],
        published: Sequence[ArticleSeen] = (),
        still_listed: Sequence[str] = (),
        listed_at: datetime | None = None,
    ) -> None:
        """Record acknowledged articles and feed states atomically (call only after Kafka acked).

        ``still_listed`` ids (known, unchanged, listed again) get ``listed_at`` so they are not forgotten.
        """
        records = [
            SeenRecord(
                a.article_id,
                a.feed,
                a.revision,
                a.content_hash,
                a.first_seen_at,
                a.published_at,
                a.published_at_inferred,
                a.fetched_at,
                a.guid,
            )
            for a in published
        ]
        if self.read_only or self._db is None:
            self._overlay_seen.update({r.article_id: r for r in records})
            self._overlay_feeds.update({f.name: f for f in feeds})
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO seen (article_id, feed, guid, revision, content_hash, first_seen_at, "
                "published_at, published_inferred, updated_at, listed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, datetime('now'), ?) "
                "ON CONFLICT (article_id) DO UPDATE SET revision = excluded.revision, "
                "feed = excluded.feed, guid = excluded.guid, "
                "content_hash = excluded.content_hash, published_at = excluded.published_at, "
                "published_inferred = excluded.published_inferred, updated_at = excluded.updated_at, "
                "listed_at = excluded.listed_at "
                "WHERE excluded.revision > seen.revision",
                [
                    (
                        r.article_id,
                        r.feed,
                        r.guid,
                        r.revision,
                        r.content_hash,
                        r.first_seen_at.isoformat(),
                        r.published_at.isoformat() if r.published_at else None,
                        int(r.published_inferred),
                        _iso(r.listed_at),
                    )
                    for r in records
                ],
            )
            db.executemany("DELETE FROM forgotten WHERE article_id = ?", [(r.article_id,) for r in records])
            if still_listed and listed_at is not None:
                db.executemany(
                    "UPDATE seen SET listed_at = ? WHERE article_id = ?",
                    [(listed_at.isoformat(), article_id) for article_id in still_listed],
                )
            db.executemany(
                "INSERT OR REPLACE INTO feeds (name, declared_url, url, etag, last_modified, "
                "last_attempt_at, last_success_at, last_new_at, consecutive_failures, last_error, "
                "next_due_at, gone) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f.name,
                        f.declared_url,
                        f.url,
                        f.etag,
                        f.last_modified,
                        _iso(f.last_attempt_at),
                        _iso(f.last_success_at),
                        _iso(f.last_new_at),
                        f.consecutive_failures,
                        f.last_error,
                        _iso(f.next_due_at),
                        int(f.gone),
                    )
                    for f in feeds
                ],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def forget(self, listed_before: datetime) -> int:
        """Move what no feed has listed since ``listed_before`` to tombstones; returns how many.

        The seen table would otherwise grow with every article ever published (a tombstone is a
        third of a row). An entry that comes back after being forgotten continues from its
        tombstone: unchanged, it is not published again; edited, it is revision N + 1.
        """
        if self.read_only or self._db is None:
            return 0
        db = self._db
        where = "julianday(COALESCE(listed_at, first_seen_at)) < julianday(?)"
        cutoff = (listed_before.isoformat(),)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR REPLACE INTO forgotten (article_id, feed, guid, revision, content_hash, "
                f"first_seen_at) SELECT article_id, feed, guid, revision, content_hash, first_seen_at "
                f"FROM seen WHERE {where}",
                cutoff,
            )
            cursor = db.execute(f"DELETE FROM seen WHERE {where}", cutoff)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(cursor.rowcount)

    def count_seen(self) -> int:
        stored = self._db.execute("SELECT count(*) FROM seen").fetchone()[0] if self._db else 0
        return int(stored) + len(self._overlay_seen)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _opt_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
