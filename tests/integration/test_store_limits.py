"""A hostile value that PostgreSQL can never index is capped or dead-lettered, never retried forever.

Issue 11, item 5: a 3,900-character host went into ``source`` (an index key),
PostgreSQL refused the index row (SQLSTATE 54000, raised by psycopg as an
OperationalError), the sink mapped it to retriable and held the batch forever.
"""

from __future__ import annotations

import random
import string
from collections import namedtuple

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

import store.repository as repository
from store.database import make_engine, map_error
from store.repository import MAX_SOURCE_CHARS, count_rows
from store.sink import TaggedArticleWriter
from store.tables import articles
from tests.support.factories import seen, tagged
from wirewatch.contract import ArticleTagged, encode
from wirewatch.errors import PoisonMessageError

pytestmark = pytest.mark.integration

Rec = namedtuple("Rec", "topic partition offset key value")


def _hostile_host(chars: int = 3_900) -> str:
    # Random letters: pglz cannot compress them, so the index row really is ~3.9 kB.
    rng = random.Random(11)
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=chars)) + ".example"


def _records(*messages: ArticleTagged) -> list[Rec]:
    return [Rec("news.tagged.v1", 0, i, m.article_id.encode(), encode(m)) for i, m in enumerate(messages)]


def test_a_3900_character_host_is_capped_and_the_batch_stored(migrated_engine: Engine) -> None:
    hostile = tagged(seen("hostile", source=_hostile_host()))
    batch = _records(tagged(seen("ok1")), hostile, tagged(seen("ok2")))
    failures = TaggedArticleWriter(migrated_engine)(batch)  # type: ignore[arg-type]
    assert failures == []
    with Session(migrated_engine) as s:
        assert count_rows(s)["articles"] == 3
        source = s.execute(select(articles.c.source).where(articles.c.article_id == "hostile")).scalar_one()
    assert source == hostile.article.source[:MAX_SOURCE_CHARS]


def test_an_index_row_over_the_limit_is_dead_lettered_not_retried(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Take the cap away to reach the database's own refusal (SQLSTATE 54000).
    monkeypatch.setattr(repository, "MAX_SOURCE_CHARS", 100_000)
    batch = _records(
        tagged(seen("ok1")), tagged(seen("hostile", source=_hostile_host())), tagged(seen("ok2"))
    )
    failures = TaggedArticleWriter(migrated_engine)(batch)  # type: ignore[arg-type]
    assert [f.record.offset for f in failures] == [1]
    assert failures[0].error.reason == "limit"
    assert "54000" in failures[0].error.detail
    with Session(migrated_engine) as s:
        assert count_rows(s)["articles"] == 2


def test_overlong_key_names_are_poison_before_reaching_the_database(migrated_engine: Engine) -> None:
    bad_label = tagged(seen("bad-label"), labels=(_hostile_host(4_000),))
    bad_model = tagged(seen("bad-model"), model_version=_hostile_host(3_000))
    batch = _records(bad_label, tagged(seen("ok")), bad_model)
    failures = TaggedArticleWriter(migrated_engine)(batch)  # type: ignore[arg-type]
    assert [(f.record.offset, f.error.reason) for f in failures] == [
        (0, "field_too_long"),
        (2, "field_too_long"),
    ]
    with Session(migrated_engine) as s:
        assert count_rows(s)["articles"] == 1


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("SELECT repeat('x', 5)::varchar(2)::int", PoisonMessageError),  # 22P02: invalid text for int
        ("SELECT 1/0", PoisonMessageError),  # 22012: division by zero
        ("SELECT pg_sleep(3)", "retriable"),  # 57014: cancelled by statement_timeout
        ("SELECT * FROM no_such_table", "bug"),  # 42P01: a bug, not the message's fault
    ],
)
def test_errors_are_mapped_by_sqlstate(migrated_engine: Engine, statement: str, kind: object) -> None:
    with migrated_engine.connect() as conn:
        conn.execute(text("SET statement_timeout = '200ms'"))
        with pytest.raises(sa_exc.DBAPIError) as info:
            conn.execute(text(statement))
    mapped = map_error(info.value)
    if kind == "retriable":
        assert mapped.retriable  # type: ignore[attr-defined]
    elif kind == "bug":
        assert mapped is info.value
    else:
        assert isinstance(mapped, PoisonMessageError)


def test_connections_carry_a_statement_timeout_and_tcp_keepalives(database_url: str) -> None:
    """Issue 11, item 17: a stuck statement or half-open connection ends in a retriable error."""
    engine = make_engine(database_url, statement_timeout=0.5)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "500ms"
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert params["keepalives"] == "1" and int(params["keepalives_idle"]) <= 60
            assert int(params["tcp_user_timeout"]) > 0
            with pytest.raises(sa_exc.OperationalError) as info:
                conn.execute(text("SELECT pg_sleep(5)"))
        assert map_error(info.value).retriable  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_the_sink_default_statement_timeout_is_below_max_poll_interval(database_url: str) -> None:
    from store.config import SinkSettings

    settings = SinkSettings()
    assert 0 < settings.database_statement_timeout < 300  # the consumers' max.poll.interval.ms / 1000
    engine = make_engine(database_url, statement_timeout=settings.database_statement_timeout)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1min"
    finally:
        engine.dispose()
