"""`wirewatch reclassify` against a real PostgreSQL: new lineage rows, replaced events, no duplicates,
a dry run that writes nothing, and a run killed mid-way that the next run finishes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from classify.labels import TagInput
from commands.reclassify import reclassify
from store.reclassify import Selection
from store.repository import save_batch
from store.tables import classifications, events
from tests.support.factories import T0, seen, tagged
from tests.support.taggers import FakeTagger

pytestmark = pytest.mark.integration


class KeywordModel(FakeTagger):
    """A 'new model' that tags by one word, so every expected change is known in advance."""

    def __init__(self, version: str, fail_after: int | None = None) -> None:
        super().__init__(self._by_word, model_name="test-model", model_version=version)
        self._fail_after = fail_after

    @staticmethod
    def _by_word(item: TagInput) -> dict[str, float]:
        return {"kidnapping": 0.01, "shootout": 0.01, "extortion": 0.9 if "cuota" in item.text else 0.01}

    def check(self, items: Sequence[TagInput]) -> None:
        if self._fail_after is not None and len(self.calls) > self._fail_after:
            raise RuntimeError("killed")


def _store_history(engine: Engine, n: int = 10) -> None:
    """Ten articles tagged kidnapping by model 1; the even ones mention a 'cuota' (extortion)."""
    batch = [
        tagged(
            seen(f"a{i:02d}", text=f"Story {i}" + (" exigían una cuota" if i % 2 == 0 else "")),
            labels=("kidnapping",),
            model_version="1",
        )
        for i in range(n)
    ]
    with Session(engine) as session, session.begin():
        save_batch(session, batch)


def _events(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        rows = s.execute(select(events.c.article_id, events.c.category, events.c.model_version))
        return sorted((r.article_id, r.category, r.model_version) for r in rows)


def _classifications(engine: Engine, version: str) -> int:
    with Session(engine) as s:
        query = (
            select(func.count())
            .select_from(classifications)
            .where(classifications.c.model_version == version)
        )
        return int(s.execute(query).scalar_one())


def test_dry_run_counts_changes_and_writes_nothing(migrated_engine: Engine) -> None:
    _store_history(migrated_engine)
    before = _events(migrated_engine)
    diff = reclassify(migrated_engine, KeywordModel("2"), Selection("2"), batch_size=3, dry_run=True)
    assert diff.to_json() == {
        "articles": 10,
        "appear": {"extortion": 5, "kidnapping": 0},
        "disappear": {"extortion": 0, "kidnapping": 10},
    }
    assert _events(migrated_engine) == before
    assert _classifications(migrated_engine, "2") == 0


def test_new_model_replaces_events_and_adds_lineage_once(migrated_engine: Engine) -> None:
    _store_history(migrated_engine)
    model = KeywordModel("2")
    diff = reclassify(migrated_engine, model, Selection("2"), batch_size=4)
    assert diff.appear == {"extortion": 5} and diff.disappear == {"kidnapping": 10}
    assert _events(migrated_engine) == [(f"a{i:02d}", "extortion", "2") for i in range(0, 10, 2)]
    assert _classifications(migrated_engine, "1") == 10 and _classifications(migrated_engine, "2") == 10
    # Running again finds nothing left to do and changes nothing.
    again = reclassify(migrated_engine, KeywordModel("2"), Selection("2"), batch_size=4)
    assert again.articles == 0
    assert _classifications(migrated_engine, "2") == 10


def test_a_killed_run_is_finished_by_the_next_one(migrated_engine: Engine) -> None:
    _store_history(migrated_engine)
    with pytest.raises(RuntimeError, match="killed"):
        reclassify(migrated_engine, KeywordModel("2", fail_after=2), Selection("2"), batch_size=3)
    assert _classifications(migrated_engine, "2") == 6  # two whole batches committed
    rest = reclassify(migrated_engine, KeywordModel("2"), Selection("2"), batch_size=3)
    assert rest.articles == 4
    assert _classifications(migrated_engine, "2") == 10
    assert len(_events(migrated_engine)) == 5


def test_since_and_version_filters(migrated_engine: Engine) -> None:
    _store_history(migrated_engine, n=4)
    late = tagged(seen("late", published_at=T0 + timedelta(days=30)), labels=(), model_version="1")
    with Session(migrated_engine) as session, session.begin():
        save_batch(session, [late])
    diff = reclassify(migrated_engine, KeywordModel("2"), Selection("2", since=T0 + timedelta(days=1)))
    assert diff.articles == 1
    skipped = reclassify(migrated_engine, KeywordModel("3"), Selection("3", not_version="1"))
    assert skipped.articles == 0  # version 1 scored every current revision
