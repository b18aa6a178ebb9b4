"""The poller's SQLite state: commits, revisions, locking and the read-only dry-run mode."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
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
