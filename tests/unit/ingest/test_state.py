"""The poller's SQLite state: commits, revisions, locking and the read-only dry-run mode."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.state import FeedState, PollerState, StateLockedError
from tests.support.factories import seen

T = datetime(2024, 9, 1, tzinfo=UTC)


def test_commit_then_lookup_survives_reopening(tmp_path: Path) -> None:
    state = PollerState(tmp_path)
    feed = FeedState(name="f", declared_url="https://x/rss", url="https://x/rss", etag='"v1"', next_due_at=T)
    state.commit([feed], [seen("a1"), seen("a2")])
    state.close()
    again = PollerState(tmp_path)
    records = again.seen(["a1", "a2", "a3"])
    assert set(records) == {"a1", "a2"} and records["a1"].revision == 1
    assert again.feed("f", "https://x/rss") == feed
    again.close()


def test_higher_revision_replaces_lower_never_the_reverse(tmp_path: Path) -> None:
    state = PollerState(tmp_path)
    state.commit([], [seen("a1", revision=2, text="v2")])
    state.commit([], [seen("a1", revision=1, text="v1")])
    record = state.seen(["a1"])["a1"]
    assert record.revision == 2 and record.content_hash == seen("a1", revision=2, text="v2").content_hash
    state.close()


def test_changed_declared_url_starts_afresh(tmp_path: Path) -> None:
    state = PollerState(tmp_path)
    state.commit([FeedState(name="f", declared_url="https://old/rss", url="https://moved/rss", gone=True)])
    assert state.feed("f", "https://new/rss") == FeedState(
        name="f", declared_url="https://new/rss", url="https://new/rss"
    )
    assert state.feed("f", "https://old/rss").gone
    state.close()


def test_one_poller_per_state_dir(tmp_path: Path) -> None:
    first = PollerState(tmp_path)
    with pytest.raises(StateLockedError):
        PollerState(tmp_path)
    first.close()
    PollerState(tmp_path).close()


def test_read_only_state_never_writes(tmp_path: Path) -> None:
    dry = PollerState(tmp_path / "absent", read_only=True)
    dry.commit([FeedState(name="f", declared_url="u", url="u")], [seen("a1")])
    assert "a1" in dry.seen(["a1"])
    dry.close()
    assert not (tmp_path / "absent").exists()

    real = PollerState(tmp_path / "real")
    real.commit([], [seen("a1")])
    real.close()
    before = (tmp_path / "real" / "poller.sqlite3").read_bytes()
    dry = PollerState(tmp_path / "real", read_only=True)
    dry.commit([replace(FeedState(name="f", declared_url="u", url="u"), etag="x")], [seen("a2")])
    assert set(dry.seen(["a1", "a2"])) == {"a1", "a2"} and dry.count_seen() == 2
    dry.close()
    assert (tmp_path / "real" / "poller.sqlite3").read_bytes() == before


def test_forget_drops_only_what_no_feed_listed_since(tmp_path: Path) -> None:
    state = PollerState(tmp_path)
    old, kept, listed = (seen(i, fetched_at=T - timedelta(days=100)) for i in ("old", "kept", "listed"))
    state.commit([], [old, kept.model_copy(update={"fetched_at": T}), listed])
    state.commit([], [], still_listed=["listed"], listed_at=T - timedelta(days=1))
    assert state.forget(T - timedelta(days=90)) == 1
    found = state.seen(["old", "kept", "listed"])
    assert {k for k, r in found.items() if not r.forgotten} == {"kept", "listed"}
    assert found["old"].forgotten and found["old"].revision == 1  # a tombstone, not nothing
    assert state.seen(["listed"])["listed"].listed_at == T - timedelta(days=1)
    assert state.forget(T - timedelta(days=90)) == 0
    state.close()


def test_a_version_1_state_file_is_upgraded_in_place(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "poller.sqlite3") as db:  # what the first poller release wrote
        db.executescript(
            "CREATE TABLE seen (article_id TEXT PRIMARY KEY, feed TEXT NOT NULL, revision INTEGER NOT NULL, "
            "content_hash TEXT NOT NULL, first_seen_at TEXT NOT NULL, published_at TEXT, "
            "published_inferred INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL);"
            "INSERT INTO seen VALUES ('a1', 'f', 1, 'h', '2024-05-01T00:00:00+00:00', NULL, 1, "
            "'2024-05-01 00:00:00'); PRAGMA user_version=1;"
        )
    state = PollerState(tmp_path)
    record = state.seen(["a1"])["a1"]
    assert record.listed_at is None and record.revision == 1
    assert state.forget(T) == 1  # falls back to first_seen_at
    state.close()
    with sqlite3.connect(tmp_path / "poller.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


def test_forgetting_keeps_a_tombstone_with_the_revision(tmp_path: Path) -> None:
    state = PollerState(tmp_path)
    state.commit([], [seen("a1", fetched_at=T - timedelta(days=100))])
    state.commit([], [seen("a1", revision=2, text="edited", fetched_at=T - timedelta(days=95))])
    assert state.forget(T - timedelta(days=90)) == 1
    state.close()
    again = PollerState(tmp_path)
    record = again.seen(["a1"])["a1"]
    assert (record.forgotten, record.revision) == (True, 2)
    assert record.content_hash == seen("a1", revision=2, text="edited").content_hash
    again.commit([], [seen("a1", revision=3, text="edited again")])  # it came back, edited
    record = again.seen(["a1"])["a1"]
    assert (record.forgotten, record.revision) == (False, 3)
    assert again.forget(T - timedelta(days=90)) == 0
    again.close()
