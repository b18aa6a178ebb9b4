"""The event-location resolver on short texts written for these tests (not shared data)."""

from __future__ import annotations

import time

import pytest

from classify.geo.gazetteer import Gazetteer, load
from classify.geo.locate import country_from_url, locate
from classify.geo.names import fold
from wirewatch.contract import EventLocation


@pytest.fixture(scope="module")
def gaz(tmp_path_factory: pytest.TempPathFactory) -> Gazetteer:
    from classify.backbone import model_cache_root

    return load(str(model_cache_root()))


def test_city_with_its_province_resolves_to_ecuador_not_spain(gaz: Gazetteer) -> None:
    loc = locate(
        gaz,
        "Frustran secuestro en Quevedo",
        "La policía frustró un secuestro en Quevedo, Los Ríos, este martes.",
    )
    assert (loc.country, loc.admin1_code, loc.place) == ("EC", "EC-R", "Quevedo")
    assert loc.precision == "city"
    assert "Quevedo" in (loc.evidence or "")
    assert loc.lat is not None and -2.0 < loc.lat < 0.0  # Ecuador's Quevedo, not Spain's


def test_niger_state_is_nigeria(gaz: Gazetteer) -> None:
    loc = locate(gaz, "", "Gunmen abducted twelve farmers in Niger State on Sunday, police said.")
    assert loc.country == "NG"
    assert loc.admin1_code == "NG-NI"


def test_san_jose_follows_the_country_of_the_text_and_the_hint(gaz: Gazetteer) -> None:
    text = "Un comerciante fue secuestrado en San José el lunes."
    assert locate(gaz, "", text + " La policía de Costa Rica investiga.").country == "CR"
    assert locate(gaz, "", text, hint="CR").country == "CR"


def test_accents_are_optional(gaz: Gazetteer) -> None:
    with_accent = locate(gaz, "", "Balacera en Culiacán, Sinaloa, deja dos heridos.")
    without = locate(gaz, "", "Balacera en Culiacan, Sinaloa, deja dos heridos.")
    assert with_accent.place == without.place
    assert (with_accent.country, with_accent.admin1_code) == ("MX", "MX-SIN")


def test_demonym_alone_gives_the_country(gaz: Gazetteer) -> None:
    loc = locate(gaz, "", "Autoridades ecuatorianas rescataron a un empresario secuestrado.")
    assert (loc.country, loc.precision) == ("EC", "country")
    assert locate(gaz, "", "Nigerian troops freed the hostages.").country == "NG"


def test_no_place_is_none(gaz: Gazetteer) -> None:
    loc = locate(
        gaz, "A quiet thriller", "The film follows a mother whose son is taken; the acting is strong."
    )
    assert loc.precision == "none"
    assert loc.to_json() == EventLocation().model_dump()


def test_hint_alone_places_local_police_news_in_its_country(gaz: Gazetteer) -> None:
    text = "La policía detuvo a dos hombres en la calle 10 tras un asalto a mano armada."
    assert locate(gaz, "", text, hint="AR").country == "AR"
    assert locate(gaz, "", text).precision == "none"


def test_a_surname_that_is_a_town_is_not_a_place(gaz: Gazetteer) -> None:
    loc = locate(gaz, "", "El fiscal Fernando Rosales informó de la detención en Puebla.")
    assert loc.country == "MX"
    assert loc.place != "Rosales"


def test_neighbourhood_is_sub_city_and_metropolis_districts_report_the_city(gaz: Gazetteer) -> None:
    loc = locate(gaz, "", "Un hombre fue asesinado en la colonia Centro de Monterrey, Nuevo León.")
    assert (loc.place, loc.precision) == ("Monterrey", "sub-city")


def test_country_from_url() -> None:
    assert country_from_url("https://www.eluniverso.com.ec/noticias/x") == "EC"
    assert country_from_url("https://www.bbc.co.uk/news") == "GB"
    assert country_from_url("https://example.com/a") is None
    assert country_from_url("https://startup.co/a") is None
    assert country_from_url("https://news.tv/a") is None
    assert country_from_url(None) is None


def test_deterministic_and_fast(gaz: Gazetteer) -> None:
    text = "Dos policías murieron en un ataque en Guayaquil, Guayas, según la Fiscalía de Ecuador. " * 30
    first = locate(gaz, "Ataque en Guayaquil", text)
    started = time.perf_counter()
    for _ in range(20):
        assert locate(gaz, "Ataque en Guayaquil", text) == first
    per_call = (time.perf_counter() - started) / 20
    assert per_call < 1.0  # generous on a busy machine; typically ~2 ms
    assert (first.country, first.place) == ("EC", "Guayaquil")


def test_fold_ignores_case_accents_and_punctuation() -> None:
    assert fold("Los Ríos") == fold("los rios") == "los rios"
    assert fold("EE.UU.") == "ee uu"


def test_declared_country_beats_a_lone_foreign_name_in_local_news(gaz: Gazetteer) -> None:
    text = "Un tiroteo en la zona de Colón dejó un herido; la policía detuvo a dos hombres."
    assert locate(gaz, "", text).country != "UY"
    assert locate(gaz, "", text, hint="UY").country == "UY"


def test_a_single_nationality_adjective_is_not_a_place(gaz: Gazetteer) -> None:
    assert locate(gaz, "", "La cantante estadounidense llegó a un acuerdo por plagio.").precision == "none"
    assert locate(gaz, "", "Dos estadounidenses fueron secuestrados.").country == "US"


def test_where_suspects_were_charged_is_not_where_it_happened(gaz: Gazetteer) -> None:
    text = (
        "En Monterrey, un juez imputó a dos hombres. "
        "Están acusados de secuestrar a un comerciante en Saltillo."
    )
    assert locate(gaz, "", text).place == "Saltillo"


def test_a_wire_dateline_is_not_the_event_place(gaz: Gazetteer) -> None:
    text = (
        "MADRID (EFE).- Un comerciante fue secuestrado el martes en Quevedo, "
        "en la provincia ecuatoriana de Los Ríos."
    )
    loc = locate(gaz, "Secuestran a comerciante", text)
    assert (loc.country, loc.place) == ("EC", "Quevedo")


def test_a_village_the_gazetteer_lacks_is_the_place_as_written(gaz: Gazetteer) -> None:
    text = "Una niña fue rescatada en la aldea Piedra Quemada Alta, en el departamento de Chimaltenango."
    loc = locate(gaz, "", text)
    assert (loc.country, loc.admin1_code, loc.place, loc.precision) == (
        "GT",
        "GT-04",
        "Piedra Quemada Alta",
        "city",
    )
    assert loc.lat is not None  # the division's coordinates, the finest level found
