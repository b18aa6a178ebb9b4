"""The incident linker without services: dates, names, pair rules, clustering, determinism."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import incidents as command
from store.incidents.dates import read_dates
from store.incidents.evaluate import pair_scores
from store.incidents.features import Features, Location, Report, features, names
from store.incidents.linker import (
    AGREE,
    DISAGREE,
    UNKNOWN,
    Linker,
    MemoryStore,
    cluster,
    incident_id,
    link_all,
    margin,
    summarise,
    threshold,
)
from store.incidents.repository import report_from_tagged
from tests.support.factories import seen, tagged
from tests.support.incidents import (
    PAREDES_DISTRACTOR,
    T0,
    VALVERDE_EN,
    VALVERDE_ES_1,
    VALVERDE_ES_2,
    VALVERDE_FOLLOW_UP,
    vector,
)
from wirewatch.contract import Admin1Ref, EventLocation

WEDNESDAY = date(2026, 3, 4)


def report(
    article_id: str,
    doc: tuple[str, str],
    lang: str,
    incident: str,
    published: object = T0,
    categories: tuple[str, ...] = ("kidnapping",),
    **extra: object,
) -> Features:
    return features(
        Report(
            article_id=article_id,
            title=doc[0],
            text=doc[1],
            lang=lang,
            published_at=published,  # type: ignore[arg-type]
            categories=frozenset(categories),
            embedding=vector(lang, incident, article_id),
            source=f"{article_id}.example",
            **extra,  # type: ignore[arg-type]
        )
    )


@pytest.fixture
def valverde() -> list[Features]:
    return [
        report("es-1", VALVERDE_ES_1, "es", "valverde", T0),
        report("es-2", VALVERDE_ES_2, "es", "valverde", T0 + timedelta(hours=3)),
        report("en-1", VALVERDE_EN, "en", "valverde", T0 + timedelta(days=1)),
    ]


@pytest.fixture
def distractor() -> Features:
    return report("es-9", PAREDES_DISTRACTOR, "es", "paredes", T0 + timedelta(days=2))


# ---- dates ----------------------------------------------------------------------------------------


def test_weekday_is_the_latest_such_day_before_publication() -> None:
    reading = read_dates("", "El ataque ocurrió este miércoles en la noche.", date(2026, 3, 6))
    assert reading.event_date == WEDNESDAY


def test_weekday_on_the_day_of_publication_is_that_day() -> None:
    assert read_dates("", "Police said on Wednesday that", WEDNESDAY).event_date == WEDNESDAY


def test_yesterday_and_ayer() -> None:
    assert read_dates("", "Ayer fue liberado el rehén.", date(2026, 3, 5)).event_date == WEDNESDAY
    assert read_dates("", "He was freed yesterday.", date(2026, 3, 5)).event_date == WEDNESDAY


def test_date_without_year_takes_the_year_that_puts_it_before_publication() -> None:
    assert read_dates("", "el pasado 30 de diciembre", date(2026, 1, 3)).event_date == date(2025, 12, 30)


def test_full_dates_in_both_languages() -> None:
    assert read_dates("", "El 9 de noviembre de 2025 hubo", None).event_date == date(2025, 11, 9)
    assert read_dates("", "On Nov. 1, 2025, gunmen", None).event_date == date(2025, 11, 1)


def test_background_dates_are_not_the_event() -> None:
    text = "Fue secuestrado el 28 de junio de 2012. Este miércoles su familia pidió pruebas de vida."
    reading = read_dates("", text, date(2026, 3, 4))
    assert reading.event_date == WEDNESDAY
    assert date(2012, 6, 28) in reading.days


def test_weekday_naming_a_calendar_date_is_not_read_twice() -> None:
    reading = read_dates("", "la mañana de este sábado 24 de enero en Trujillo", date(2026, 1, 25))
    assert reading.event_date == date(2026, 1, 24)
    assert reading.month_days == frozenset({(1, 24)})


def test_without_publication_a_date_without_year_stays_a_month_and_day() -> None:
    reading = read_dates("", "ocurrido el 13 de agosto en Arauca", None)
    assert reading.event_date is None
    assert reading.month_days == frozenset({(8, 13)})


# ---- names ----------------------------------------------------------------------------------------


def test_names_are_folded_and_skip_words_the_text_also_writes_in_lower_case() -> None:
    found = names("Secuestro en Machala", "La Policía de Machala detuvo a Óscar Núñez. La policía dijo")
    assert {"machala", "oscar", "nunez"} <= found
    assert "policia" not in found  # also written in lower case
    assert "la" not in found


# ---- pairs ----------------------------------------------------------------------------------------


def test_reports_of_one_incident_are_close_across_languages(valverde: list[Features]) -> None:
    for a, b in itertools.combinations(valverde, 2):
        assert margin(a, b) >= 0, (a.article_id, b.article_id)


def test_a_different_incident_in_the_same_city_and_week_is_not_close(
    valverde: list[Features], distractor: Features
) -> None:
    for a in valverde:
        assert len(a.names & distractor.names) >= 2  # same city, province, police
        assert margin(a, distractor) < 0


def test_dates_set_the_bar(valverde: list[Features]) -> None:
    es1, es2, _ = valverde
    assert threshold(es1, es2) == AGREE  # same day stated, published hours apart
    undated = dataclasses.replace(es2, published_at=None, days=frozenset(), month_days=frozenset())
    assert threshold(es1, undated) == UNKNOWN
    other_day = dataclasses.replace(undated, month_days=frozenset({1224}))
    es1_days = dataclasses.replace(es1, month_days=frozenset({304}))
    assert threshold(es1_days, other_day) == DISAGREE


@pytest.mark.parametrize(
    "change",
    [
        {"categories": frozenset({"extortion"})},
        {"published_at": T0 + timedelta(days=60)},
        {"country": "PE"},
    ],
    ids=["disjoint categories", "published two months apart", "another country"],
)
def test_some_pairs_can_never_be_one_incident(valverde: list[Features], change: dict[str, object]) -> None:
    es1, es2, _ = valverde
    es1 = dataclasses.replace(es1, country="EC")
    assert margin(es1, es2) >= 0
    assert margin(es1, dataclasses.replace(es2, **change)) == float("-inf")


def test_event_dates_far_apart_are_different_incidents(valverde: list[Features]) -> None:
    es1, es2, _ = valverde
    later = dataclasses.replace(
        es2, event_date=WEDNESDAY + timedelta(days=12), days=frozenset({WEDNESDAY + timedelta(days=12)})
    )
    assert margin(es1, later) == float("-inf")


def test_a_follow_up_days_later_joins(valverde: list[Features]) -> None:
    follow_up = report("es-3", VALVERDE_FOLLOW_UP, "es", "valverde", T0 + timedelta(days=9))
    store = link_all([*valverde, follow_up])
    assert len({store.incident_of(f.article_id) for f in [*valverde, follow_up]}) == 1


# ---- incidents ------------------------------------------------------------------------------------


def test_three_reports_and_a_distractor_make_two_incidents(
    valverde: list[Features], distractor: Features
) -> None:
    store = link_all([*valverde, distractor])
    ids = {f.article_id: store.incident_of(f.article_id) for f in [*valverde, distractor]}
    assert ids["es-1"] == ids["es-2"] == ids["en-1"] == incident_id(valverde[0])
    assert ids["es-9"] == incident_id(distractor) != ids["es-1"]


def test_a_report_close_to_one_incident_only_cannot_bridge_two(valverde: list[Features]) -> None:
    # A report as close to Valverde's first report as to another incident's, but far from the rest:
    # single linkage would merge everything; complete linkage with slack keeps two incidents.
    other = [
        report(f"x-{i}", PAREDES_DISTRACTOR, "es", "paredes", T0 + timedelta(hours=i)) for i in range(1, 3)
    ]
    both = (VALVERDE_ES_1[0], VALVERDE_ES_1[1] + " " + PAREDES_DISTRACTOR[1])
    bridge = dataclasses.replace(
        report("bridge", both, "es", "none", T0 + timedelta(hours=5)), vector=_between(valverde[0], other[0])
    )
    assert margin(bridge, valverde[0]) >= 0 and margin(bridge, other[0]) >= 0
    groups = {frozenset(f.article_id for f in g) for g in cluster([*valverde, *other, bridge])}
    assert not any({"es-1", "x-1"} <= g for g in groups)
    assert frozenset({"x-1", "x-2"}) <= next(g for g in groups if "x-1" in g)


def _between(a: Features, b: Features) -> object:
    assert a.vector is not None and b.vector is not None
    mixed = a.vector + b.vector
    return mixed / float((mixed @ mixed) ** 0.5)


def test_summary_of_an_incident(valverde: list[Features]) -> None:
    placed = [
        dataclasses.replace(f, country="EC", admin1="EC-O", place="Machala", source=s)
        for f, s in zip(valverde, ["efe.com", "efe.com", "reuters.com"], strict=True)
    ]
    s = summarise(placed)
    assert s.incident_id == incident_id(valverde[0]) and s.founder_article_id == "es-1"
    assert (s.article_count, s.source_count) == (3, 2)
    assert s.categories == ("kidnapping",)
    assert (s.country, s.admin1, s.place, s.event_date) == ("EC", "EC-O", "Machala", WEDNESDAY)
    assert s.first_reported_at == T0 and s.last_reported_at == T0 + timedelta(days=1)
    assert s.title == VALVERDE_ES_1[0]


def test_location_travels_from_the_report(valverde: list[Features]) -> None:
    f = features(
        Report("l1", "t", "x", "es", T0, location=Location(country="ec", admin1="EC-O", place="Machala"))
    )
    assert (f.country, f.admin1, f.place) == ("EC", "EC-O", "Machala")


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(5)), batch=st.integers(min_value=1, max_value=5))
def test_arrival_order_and_batching_never_change_incidents_or_ids(order: list[int], batch: int) -> None:
    reports = [
        report("es-1", VALVERDE_ES_1, "es", "valverde", T0),
        report("es-2", VALVERDE_ES_2, "es", "valverde", T0 + timedelta(hours=3)),
        report("en-1", VALVERDE_EN, "en", "valverde", T0 + timedelta(days=1)),
        report("es-3", VALVERDE_FOLLOW_UP, "es", "valverde", T0 + timedelta(days=9)),
        report("es-9", PAREDES_DISTRACTOR, "es", "paredes", T0 + timedelta(days=2)),
    ]
    reference = {a: s.incident_id for a, s in link_all(reports).reports.items()}
    shuffled = link_all([reports[i] for i in order], batch_size=batch)
    assert {a: s.incident_id for a, s in shuffled.reports.items()} == reference


def test_redelivery_changes_nothing_and_a_late_first_report_renames(valverde: list[Features]) -> None:
    store = MemoryStore()
    linker = Linker(store)
    store.apply(linker.link(valverde[1:]))
    assert store.incident_of("es-2") == incident_id(valverde[1])
    again = linker.link(valverde[1:])
    assert set(again.changed()) == {"es-2", "en-1"}  # the batch itself is rewritten, nothing else
    assert {a: s.incident_id for a, s in again.assignments.items()} == {
        "es-2": incident_id(valverde[1]),
        "en-1": incident_id(valverde[1]),
    }
    assert not again.vanished
    late = linker.link(valverde[:1])  # published first, arrives last
    store.apply(late)
    assert {store.incident_of(f.article_id) for f in valverde} == {incident_id(valverde[0])}
    assert late.vanished == {incident_id(valverde[1])}


def test_removing_a_report_takes_it_out_of_its_incident(valverde: list[Features]) -> None:
    store = link_all(valverde)
    plan = Linker(store).link([], remove=["es-1"])
    store.apply(plan)
    assert "es-1" not in store.reports
    assert store.incident_of("es-2") == store.incident_of("en-1") == incident_id(valverde[1])


# ---- the command and the evaluation ----------------------------------------------------------------


def test_pair_scores() -> None:
    gold = {"a": "1", "b": "1", "c": "2", "d": "2"}
    predicted = {"a": "x", "b": "x", "c": "x", "d": "y"}
    s = pair_scores(predicted, gold)
    assert (s.correct_pairs, s.predicted_pairs, s.gold_pairs) == (1, 3, 2)
    cross = pair_scores(predicted, gold, {"a": "es", "b": "en", "c": "es", "d": "es"}, cross_language=True)
    assert (cross.correct_pairs, cross.predicted_pairs, cross.gold_pairs) == (1, 2, 1)


def test_incidents_command_links_every_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from commands.cli import main

    lines = []
    for article_id, doc, lang, incident, hours, labels in [
        ("es-1", VALVERDE_ES_1, "es", "valverde", 0, ["kidnapping"]),
        ("en-1", VALVERDE_EN, "en", "valverde", 24, {"kidnapping": True, "shootout": True}),
        ("es-9", PAREDES_DISTRACTOR, "es", "paredes", 48, []),
    ]:
        lines.append(
            {
                "id": article_id,
                "lang": lang,
                "title": doc[0],
                "text": doc[1],
                "published_at": (T0 + timedelta(hours=hours)).isoformat(),
                "labels": labels,
                "embedding": vector(lang, incident, article_id),
            }
        )
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["incidents", "--input", str(source)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["es-1", "en-1", "es-9"]
    assert out[0]["incident_id"] == out[1]["incident_id"] != out[2]["incident_id"]


def test_command_reads_categories_and_locations() -> None:
    assert command.given_categories({"labels": {"kidnapping": True, "extortion": False}}) == {"kidnapping"}
    assert command.given_categories({"categories": ["shootout"]}) == {"shootout"}
    assert command.given_categories({"id": "x"}) is None
    loc = command.location({"location": {"country": "EC", "admin1": {"name": "El Oro", "code": "EC-O"}}})
    assert loc == Location(country="EC", admin1="EC-O", place=None)
    assert command.location({"location": {"country": "EC", "admin1": "El Oro"}}) == Location("EC", "El Oro")
    assert command.location({"location": {"precision": "none"}}) is None
    assert command.location({"id": "x"}) is None


PLACED = EventLocation(
    country="EC",
    admin1=Admin1Ref(name="El Oro", code="EC-O"),
    place="Machala",
    lat=-3.26,
    lon=-79.96,
    precision="city",
    evidence="en el barrio Las Brisas de Machala",
)


def test_the_sink_hands_the_linker_the_messages_location() -> None:
    """Regression: ``report_from_tagged`` built the Report without the tagged message's location."""
    article = seen("es-1", title=VALVERDE_ES_1[0], text=VALVERDE_ES_1[1], published_at=T0)
    msg = tagged(article, labels=("kidnapping",)).model_copy(update={"location": PLACED})
    report_ = report_from_tagged(msg)
    assert report_.location == Location(country="EC", admin1="EC-O", place="Machala")
    f = features(report_)
    assert (f.country, f.admin1, f.place) == ("EC", "EC-O", "Machala")
    unplaced = report_from_tagged(msg.model_copy(update={"location": EventLocation(precision="none")}))
    assert unplaced.location is None
    assert report_from_tagged(tagged(article)).location is None  # an older classifier: no location


def test_the_sink_and_the_command_build_the_same_report() -> None:
    """One article, as a tagged message in the sink and as a ``wirewatch tag``-shaped JSONL line."""
    title, body = VALVERDE_ES_1
    article = seen("es-1", title=title, text=body, language="es", source="efe.com", published_at=T0)
    embedding = vector("es", "valverde", "es-1")
    update = {"location": PLACED, "embedding": embedding}
    msg = tagged(article, labels=("kidnapping",)).model_copy(update=update)
    row = {
        "id": "es-1",
        "lang": "es",
        "title": article.title,
        "text": article.text,
        "published_at": T0.isoformat(),
        "source": "efe.com",
        "location": PLACED.model_dump(mode="json"),
    }
    offline = command.event_locations([row], locate=False)
    assert offline == [PLACED]
    sink = report_from_tagged(msg)
    line = Report(
        article_id="es-1",
        title=row["title"],
        text=row["text"],
        lang="es",
        published_at=command.published_at(row),
        categories=frozenset({"kidnapping"}),
        embedding=embedding,
        source=command.source(row),
        location=command.location(row),
    )
    assert line == dataclasses.replace(sink, embedding=embedding)
    same = command.link_rows([row, {**row, "id": "es-1b"}], [embedding] * 2, [frozenset({"kidnapping"})] * 2)
    assert same[0] == same[1]


def test_same_text_in_two_countries_stays_two_incidents() -> None:
    """Two wire stories with the same wording and names, placed in different countries."""
    here = report("ec-1", VALVERDE_ES_1, "es", "valverde", location=Location("EC", "EC-O", "Machala"))
    there = report("pe-1", VALVERDE_ES_1, "es", "valverde", location=Location("PE", "PE-TUM", "Tumbes"))
    unknown = report("xx-1", VALVERDE_ES_1, "es", "valverde")
    assert margin(here, there) == float("-inf")
    assert margin(here, unknown) >= 0 and margin(there, unknown) >= 0
    store = link_all([here, there])
    assert store.incident_of("ec-1") != store.incident_of("pe-1")


def test_a_different_admin1_does_not_split_a_close_pair(valverde: list[Features]) -> None:
    """The locator may place a rewrite in the province it names and the original in the capital."""
    es, en = valverde[0], valverde[2]
    placed = dataclasses.replace(es, country="EC", admin1="EC-O")
    elsewhere = dataclasses.replace(en, country="EC", admin1="EC-P")
    assert margin(placed, elsewhere) == margin(es, en) >= 0


def test_a_crowded_neighbourhood_is_attached_not_reclustered(
    valverde: list[Features], distractor: Features, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.incidents.linker as linker_module

    monkeypatch.setattr(linker_module, "MAX_POOL", 2)
    store = MemoryStore()
    linker = Linker(store)
    store.apply(linker.link(valverde[:2]))
    plan = linker.link([valverde[2], distractor])  # 2 stored + 2 new > MAX_POOL
    store.apply(plan)
    assert {store.incident_of(f.article_id) for f in valverde} == {incident_id(valverde[0])}
    assert store.incident_of(distractor.article_id) == incident_id(distractor)
    assert plan.summaries[incident_id(valverde[0])].article_count == 3


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
    | st.lists(
        st.sampled_from(
            [
                "el",
                "29",
                "de",
                "febrero",
                "Feb.",
                "31",
                "2025",
                "miércoles",
                "ayer",
                "on",
                "Monday",
                "May",
                "\n",
            ]
        ),
        max_size=30,
    ).map(" ".join),
    published=st.none() | st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)),
)
def test_reading_dates_and_names_never_fails_on_any_text(text: str, published: date | None) -> None:
    reading = read_dates(text[:40], text, published)
    if reading.event_date is not None and published is not None:
        assert published - timedelta(days=45) < reading.event_date <= published + timedelta(days=1)
    assert all(name == name.lower() for name in names("", text))
