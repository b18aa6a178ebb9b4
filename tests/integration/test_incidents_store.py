"""Incident linking through the real PostgreSQL (and broker): order, redelivery, concurrency, and
the outbox rows that tell readers which incident an event opened or joined."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from store.incidents.features import Report, features
from store.incidents.linker import incident_id
from store.repository import save_batch
from store.tables import event_outbox, incident_reports, incidents
from tests.support.factories import seen, tagged
from tests.support.incidents import (
    PAREDES_DISTRACTOR,
    T0,
    VALVERDE_EN,
    VALVERDE_ES_1,
    VALVERDE_ES_2,
    vector,
)
from wirewatch.contract import Admin1Ref, ArticleTagged, EventLocation

pytestmark = pytest.mark.integration

DOCS = {
    "es-1": (VALVERDE_ES_1, "es", "valverde", timedelta(0), "eluniverso.com"),
    "es-2": (VALVERDE_ES_2, "es", "valverde", timedelta(hours=3), "elcomercio.com"),
    "en-1": (VALVERDE_EN, "en", "valverde", timedelta(days=1), "reuters.com"),
    "es-9": (PAREDES_DISTRACTOR, "es", "paredes", timedelta(days=2), "eluniverso.com"),
}


def message(article_id: str) -> ArticleTagged:
    (title, body), lang, incident, offset, source = DOCS[article_id]
    article = seen(
        article_id,
        title=title,
        text=body,
        language=lang,
        source=source,
        published_at=T0 + offset,
        first_seen_at=T0 + offset + timedelta(minutes=1),
        fetched_at=T0 + offset + timedelta(minutes=1),
    )
    return tagged(article, labels=("kidnapping",)).model_copy(
        update={"embedding": vector(lang, incident, article_id)}
    )


def founder_id(article_id: str) -> str:
    (title, body), lang, _incident, offset, _source = DOCS[article_id]
    return incident_id(features(Report(article_id, title, body, lang, T0 + offset)))


def save(engine: Engine, *ids: str) -> None:
    with Session(engine) as s, s.begin():
        save_batch(s, [message(a) for a in ids])


def links(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(incident_reports.c.article_id, incident_reports.c.incident_id)).all())


def incident_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(incidents).order_by(incidents.c.incident_id)).mappings().all()
    return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]


def outbox(engine: Engine) -> list[tuple[str, str, str, str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                event_outbox.c.article_id,
                event_outbox.c.category,
                event_outbox.c.change,
                event_outbox.c.incident_id,
                event_outbox.c.incident,
            ).order_by(event_outbox.c.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_reports_out_of_order_and_redelivered_end_as_two_incidents(migrated_engine: Engine) -> None:
    save(migrated_engine, "en-1")  # the English rewrite arrives first
    save(migrated_engine, "es-9", "es-2")  # then the distractor with the second Spanish report
    save(migrated_engine, "es-1")  # the first report, published first, arrives last
    first, changes = incident_rows(migrated_engine), outbox(migrated_engine)
    save(migrated_engine, "es-1", "es-2", "en-1", "es-9")  # everything redelivered
    save(migrated_engine, "es-2")

    assert incident_rows(migrated_engine) == first
    assert outbox(migrated_engine) == changes  # redelivery changes no event: no outbox row
    # Each row names the incident as it stood when it committed: the rewrite opened one, each
    # Spanish report published earlier took it over as it arrived (the current link is in
    # incident_reports), the distractor opened its own.
    assert [(a, i, how) for a, _c, _ch, i, how in changes] == [
        ("en-1", founder_id("en-1"), "opened"),
        ("es-2", founder_id("es-2"), "opened"),
        ("es-9", founder_id("es-9"), "opened"),
        ("es-1", founder_id("es-1"), "opened"),
    ]
    valverde, paredes = founder_id("es-1"), founder_id("es-9")
    assert links(migrated_engine) == {"es-1": valverde, "es-2": valverde, "en-1": valverde, "es-9": paredes}
    rows = {r["incident_id"]: r for r in first}
    assert set(rows) == {valverde, paredes}
    v = rows[valverde]
    assert (v["founder_article_id"], v["article_count"], v["source_count"]) == ("es-1", 3, 3)
    assert v["categories"] == ["kidnapping"] and v["event_date"] == T0.date()
    assert (v["first_reported_at"], v["last_reported_at"]) == (T0, T0 + timedelta(days=1))
    assert v["title"] == VALVERDE_ES_1[0]
    assert rows[paredes]["article_count"] == 1
    with migrated_engine.connect() as conn:
        view = conn.execute(text("SELECT incident_id, category FROM incident_categories ORDER BY 1")).all()
    assert sorted(view) == sorted([(valverde, "kidnapping"), (paredes, "kidnapping")])


def test_an_article_that_loses_its_categories_leaves_its_incident(migrated_engine: Engine) -> None:
    save(migrated_engine, "es-1", "es-2")
    untagged = tagged(message("es-1").article, labels=(), classified_at=T0 + timedelta(hours=9))
    with Session(migrated_engine) as s, s.begin():
        save_batch(s, [untagged])
    assert links(migrated_engine) == {"es-2": founder_id("es-2")}
    assert [r["incident_id"] for r in incident_rows(migrated_engine)] == [founder_id("es-2")]


def _waiting_on_advisory_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
            ).scalar_one()
        )


def test_two_linkers_at_once_wait_for_each_other_and_neither_splits(
    migrated_engine: Engine, database_url: str
) -> None:
    other = create_engine(database_url)
    errors: list[BaseException] = []

    def second_sink() -> None:
        try:
            save(other, "es-2", "en-1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        with Session(migrated_engine) as s, s.begin():
            save_batch(s, [message("es-1"), message("es-9")])  # holds the linking lock until commit
            worker = threading.Thread(target=second_sink)
            worker.start()
            deadline = time.monotonic() + 60
            while not _waiting_on_advisory_lock(migrated_engine):
                assert time.monotonic() < deadline, "the second sink never waited for the lock"
                assert worker.is_alive(), "the second sink linked without waiting"
                time.sleep(0.1)
        worker.join(60)
        assert not worker.is_alive() and not errors
    finally:
        other.dispose()
    valverde = founder_id("es-1")
    assert links(migrated_engine) == {
        "es-1": valverde,
        "es-2": valverde,
        "en-1": valverde,
        "es-9": founder_id("es-9"),
    }


def test_outbox_row_says_whether_an_event_opened_or_joined_an_incident(migrated_engine: Engine) -> None:
    import psycopg

    url = migrated_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN wirewatch_events")
        save(migrated_engine, "es-1")
        save(migrated_engine, "en-1")
        untagged = tagged(message("es-1").article, labels=(), classified_at=T0 + timedelta(hours=9))
        with Session(migrated_engine) as s, s.begin():
            save_batch(s, [untagged])  # es-1 loses its category and leaves the incident
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=10, stop_after=3)]
    valverde = founder_id("es-1")
    assert outbox(migrated_engine) == [
        ("es-1", "kidnapping", "added", valverde, "opened"),
        ("en-1", "kidnapping", "added", valverde, "joined"),
        ("es-1", "kidnapping", "removed", None, None),
    ]
    # The notification stays the id-only hint of migration 0003: incident details only in the outbox.
    assert [set(n) for n in notes] == [{"outbox_id"}] * 3


def test_the_same_story_in_two_countries_is_two_incidents(migrated_engine: Engine) -> None:
    """Regression: the sink linked without the message's location, so the same wording placed in
    Ecuador and in Peru became one incident; the incident rows now carry the location too."""

    def placed(article_id: str, country: str, admin1: Admin1Ref, place: str) -> ArticleTagged:
        where = EventLocation(country=country, admin1=admin1, place=place, precision="city")
        return message("es-1").model_copy(
            update={
                "article": message("es-1").article.model_copy(update={"article_id": article_id}),
                "location": where,
            }
        )

    here = placed("ec-1", "EC", Admin1Ref(name="El Oro", code="EC-O"), "Machala")
    there = placed("pe-1", "PE", Admin1Ref(name="Tumbes", code="PE-TUM"), "Tumbes")
    with Session(migrated_engine) as s, s.begin():
        save_batch(s, [here])
    with Session(migrated_engine) as s, s.begin():
        save_batch(s, [there, here])  # redelivered beside the other country's copy
    found = links(migrated_engine)
    assert set(found) == {"ec-1", "pe-1"} and found["ec-1"] != found["pe-1"]
    rows = {r["founder_article_id"]: r for r in incident_rows(migrated_engine)}
    assert {(a, r["country"], r["admin1"], r["place"]) for a, r in rows.items()} == {
        ("ec-1", "EC", "EC-O", "Machala"),
        ("pe-1", "PE", "PE-TUM", "Tumbes"),
    }


def test_with_linking_off_the_sink_stores_events_without_incidents(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store.config import SinkSettings

    monkeypatch.setenv("WIREWATCH_LINK_INCIDENTS", "false")
    assert SinkSettings().link_incidents is False
    assert SinkSettings.model_fields["link_incidents"].default is True
    with Session(migrated_engine) as s, s.begin():
        save_batch(s, [message("es-1"), message("es-2")], link=False)
    assert links(migrated_engine) == {} and incident_rows(migrated_engine) == []
    assert outbox(migrated_engine) == [
        ("es-1", "kidnapping", "added", None, None),
        ("es-2", "kidnapping", "added", None, None),
    ]


def test_reader_role_reads_incidents(migrated_engine: Engine) -> None:
    save(migrated_engine, "es-1")
    reader = create_engine(migrated_engine.url.set(username="wirewatch_reader", password="wirewatch_reader"))
    try:
        with reader.connect() as conn:
            for relation in ("incidents", "incident_reports", "incident_categories"):
                assert conn.execute(text(f"SELECT count(*) FROM {relation}")).scalar_one() == 1
    finally:
        reader.dispose()


def test_through_the_broker_out_of_order_with_duplicates(
    kafka_settings, new_topic, new_group, database_url, migrated_engine, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from store.command import run as run_sink
    from store.config import SinkSettings
    from tests.support.kafka import produce_raw
    from wirewatch.contract import encode

    topic, group = new_topic("test.tagged"), new_group("store")
    order = ["en-1", "es-9", "es-2", "en-1", "es-1", "es-2", "es-9"]
    produce_raw(kafka_settings, topic, [(a, encode(message(a))) for a in order])
    for key, value in {
        "WIREWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "WIREWATCH_DATABASE_URL": database_url,
        "WIREWATCH_STORE_TOPIC": topic,
        "WIREWATCH_STORE_GROUP": group,
    }.items():
        monkeypatch.setenv(key, value)
    assert run_sink(SinkSettings(), threading.Event(), idle_exit=5.0) == 0
    valverde = founder_id("es-1")
    assert links(migrated_engine) == {
        "es-1": valverde,
        "es-2": valverde,
        "en-1": valverde,
        "es-9": founder_id("es-9"),
    }
    assert len(incident_rows(migrated_engine)) == 2


def test_fault_verdict_sees_half_done_incident_bookkeeping(migrated_engine: Engine) -> None:
    from tests.faults.verify import incident_problems

    save(migrated_engine, "es-1", "es-2", "es-9")
    with migrated_engine.connect() as conn:
        assert incident_problems(conn) == []
    with migrated_engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE founder_article_id = 'es-9'"))
        conn.execute(text("DELETE FROM incident_reports WHERE article_id = 'es-2'"))
    with migrated_engine.connect() as conn:
        problems = incident_problems(conn)
    assert any("es-2: events but no incident" in p for p in problems)
    assert any("row says 0 reports, 1 linked" in p for p in problems)
    assert any("row says 2 reports, 1 linked" in p for p in problems)
