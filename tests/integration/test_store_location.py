"""Location columns against a real PostgreSQL: written, exposed in current_events, kept on redelivery."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from store.repository import save_batch
from store.tables import articles
from tests.support.factories import seen, tagged
from wirewatch.contract import Admin1Ref, EventLocation

pytestmark = pytest.mark.integration

QUEVEDO = EventLocation(
    country="EC",
    admin1=Admin1Ref(name="Los Ríos", code="EC-R"),
    place="Quevedo",
    lat=-1.02863,
    lon=-79.46352,
    precision="city",
    evidence="Frustran secuestro en Quevedo, Los Ríos.",
)


def _save(engine: Engine, *batch) -> None:
    with Session(engine) as session, session.begin():
        save_batch(session, list(batch))


def test_location_is_stored_and_readable_from_current_events(migrated_engine: Engine) -> None:
    msg = tagged(seen("geo1"), labels=("kidnapping",)).model_copy(update={"location": QUEVEDO})
    _save(migrated_engine, msg)
    _save(migrated_engine, msg)  # redelivery: same row
    with Session(migrated_engine) as s:
        row = s.execute(
            text(
                "SELECT country, admin1_name, admin1_code, place, lat, lon, geo_precision, geo_evidence "
                "FROM current_events WHERE category = 'kidnapping' AND admin1_code = 'EC-R'"
            )
        ).one()
    assert tuple(row) == ("EC", "Los Ríos", "EC-R", "Quevedo", -1.02863, -79.46352, "city", QUEVEDO.evidence)


def test_message_without_location_keeps_the_stored_one(migrated_engine: Engine) -> None:
    located = tagged(seen("geo2", revision=1)).model_copy(update={"location": QUEVEDO})
    _save(migrated_engine, located)
    _save(migrated_engine, tagged(seen("geo2", revision=2)))  # an older classifier: no location
    with Session(migrated_engine) as s:
        row = s.execute(
            select(articles.c.revision, articles.c.place).where(articles.c.article_id == "geo2")
        ).one()
    assert tuple(row) == (2, "Quevedo")


def test_none_precision_replaces_a_location(migrated_engine: Engine) -> None:
    _save(migrated_engine, tagged(seen("geo3", revision=1)).model_copy(update={"location": QUEVEDO}))
    _save(migrated_engine, tagged(seen("geo3", revision=2)).model_copy(update={"location": EventLocation()}))
    with Session(migrated_engine) as s:
        row = s.execute(
            select(articles.c.country, articles.c.place, articles.c.geo_precision).where(
                articles.c.article_id == "geo3"
            )
        ).one()
    assert tuple(row) == (None, None, "none")
