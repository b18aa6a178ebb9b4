"""Context rules of the resolver (issue 14, location accuracy), on texts written for these tests.

Each test is one general rule: what a demonym says (a state's institution, a passport), a
division named by its towns, a division or county word after a name, a town cue with a
demonym in it, datelines, national police bodies, headlines in lower case. None of these
texts comes from the shared data.
"""

from __future__ import annotations

import pytest

from classify.geo.gazetteer import Gazetteer, load
from classify.geo.mentions import find_mentions


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    from classify.backbone import model_cache_root

    return load(str(model_cache_root()))


def _locate(gaz: Gazetteer, title: str, text: str, hint: str | None = None):  # type: ignore[no-untyped-def]
    from classify.geo.locate import locate

    return locate(gaz, title, text, hint)


def test_state_demonym_places_the_event_and_a_passport_does_not(gaz: Gazetteer) -> None:
    text = (
        "Autoridades venezolanas lograron la liberación de dos ciudadanos colombianos. Los dos "
        "comerciantes habían sido secuestrados, según sus familiares colombianos."
    )
    assert _locate(gaz, "", text).country == "VE"
    venezolanas, ciudadanos, familiares = find_mentions(gaz, text, -1)
    assert venezolanas.demonym_weight > familiares.demonym_weight > ciudadanos.demonym_weight


def test_a_nationality_told_again_and_again_counts_once(gaz: Gazetteer) -> None:
    text = (
        "Un empresario español fue liberado en México tras un secuestro virtual. El español, "
        "de origen catalán, había viajado por negocios. La familia del empresario español pidió "
        "ayuda a la embajada española y a la policía española."
    )
    assert _locate(gaz, "", text).country == "MX"


def test_a_division_is_read_from_a_town_in_it(gaz: Gazetteer) -> None:
    # "Georgia" alone is the country; with Atlanta it is the US state. The full stop after
    # "Atlanta" does not make "Atlanta The" one capitalised name (a surname to drop).
    text = (
        "Firefighters were held hostage inside a Georgia house about 30 miles northeast of "
        "Atlanta. The standoff ended after midnight."
    )
    loc = _locate(gaz, "", text)
    assert (loc.country, loc.admin1_code) == ("US", "US-GA")


def test_a_state_word_after_the_name_is_the_division_not_its_capital(gaz: Gazetteer) -> None:
    loc = _locate(gaz, "", "Gunmen killed five worshippers in Nigeria's northern Kano state, police said.")
    assert (loc.country, loc.admin1_code, loc.precision) == ("NG", "NG-KN", "admin1")
    assert loc.place is None


def test_a_county_is_not_the_town_of_its_name(gaz: Gazetteer) -> None:
    text = "A woman was abducted in Wayne county on Monday, deputies said."
    assert gaz.lookup("wayne")  # towns called Wayne exist ...
    assert all(p.kind != "city" for m in find_mentions(gaz, text, -1) for p in m.candidates)  # ... not here


def test_city_of_is_a_locative(gaz: Gazetteer) -> None:
    (mission,) = find_mentions(gaz, "Agents traded fire with a gunman in the city of Mission.", -1)
    assert mission.locative and mission.city_cue


def test_a_demonym_between_ciudad_and_de_still_names_the_town(gaz: Gazetteer) -> None:
    text = "Terminó el motín en la prisión de San Martín, en la ciudad argentina de Córdoba."
    loc = _locate(gaz, "", text)
    assert (loc.country, loc.admin1_code, loc.place) == ("AR", "AR-X", "Córdoba")


def test_a_dateline_with_any_source_in_brackets_is_a_dateline(gaz: Gazetteer) -> None:
    text = "MIDLAND, Texas (KXYZ) \u2013 A gunman was killed on Saturday."
    midland, _texas = find_mentions(gaz, text, -1)
    assert midland.dateline


def test_national_police_bodies_say_the_country(gaz: Gazetteer) -> None:
    loc = _locate(gaz, "", "La Guardia Civil rescató ayer a dos montañeros perdidos en el Pirineo.")
    assert loc.country == "ES"
    assert loc.place != "La Guardia"
    assert _locate(gaz, "", "The F.B.I. warned residents about a phone scam this week.").country == "US"


def test_a_demonym_is_not_a_small_town_of_that_name(gaz: Gazetteer) -> None:
    (canadian,) = find_mentions(gaz, "One Canadian was among the hostages.", -1)
    assert canadian.demonym == "CA"
    assert all(p.name != "Canadian" for p in canadian.candidates)


def test_a_lower_case_headline_word_is_a_town_only_if_the_body_names_it(gaz: Gazetteer) -> None:
    title = "detienen a estrada por extorsion"
    assert find_mentions(gaz, f"{title}\nLa policía detuvo a dos hombres.", len(title)) == []
    # ... while "en" before it still makes it one, as before.
    loc = _locate(gaz, "tiroteo deja dos heridos en culiacan", "Dos hombres resultaron heridos anoche.")
    assert (loc.country, loc.admin1_code) == ("MX", "MX-SIN")


def test_de_after_a_division_word_in_a_name_does_not_make_a_country_a_division(gaz: Gazetteer) -> None:
    # "Autónoma" is a division word ("Ciudad Autónoma de Buenos Aires"), "de" is not one.
    (mexico,) = find_mentions(gaz, "Profesora de la Universidad Nacional Autónoma de México.", -1)
    assert any(p.kind == "country" and p.country == "MX" for p in mexico.candidates)


def test_a_small_foreign_town_after_en_yields_to_the_country_the_text_names(gaz: Gazetteer) -> None:
    text = (
        "Un hombre tomó como rehenes a su mujer y a sus hijos en La Matanza. La policía "
        "bonaerense lo detuvo tras dos horas."
    )
    loc = _locate(gaz, "", text)
    assert loc.country == "AR"
