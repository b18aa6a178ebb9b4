"""A piece about a film, song or artwork has no event location (issue 14: "a book review gets
none"), while an event report that uses one such word keeps its place. Texts written for these
tests."""

from __future__ import annotations

import pytest

from classify.geo.gazetteer import Gazetteer, load
from classify.geo.locate import locate
from classify.geo.subject import about_a_work

REVIEW = (
    "The Ransom Road review: a kidnapping thriller that wastes its cast",
    "The film, starring two unknowns, follows a banker abducted outside Denver. The movie borrows "
    "its plot from a 1970s western and never finds its own voice.",
)
ESTRENO = (
    "Estreno en Netflix",
    "La película española sobre un secuestro en Sevilla llega a la plataforma tras su paso por la "
    "taquilla: un thriller con una actriz debutante.",
)
HEIST = (
    "Asalto como de película en Medellín",
    "Un robo como de película: cuatro hombres armados intercambiaron disparos con la policía en "
    "el barrio Laureles de Medellín. Los vecinos dijeron que parecía una película.",
)
ARMED_ACTORS = (
    "Desplazamiento en el Cauca",
    "Los actores armados ilegales se disputan la zona rural de Argelia, Cauca. Según la Defensoría, "
    "los actores armados protagonizaron combates; otros actores armados cobran extorsiones.",
)


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    from classify.backbone import model_cache_root

    return load(str(model_cache_root()))


@pytest.mark.parametrize("title, text", [REVIEW, ESTRENO])
def test_a_piece_about_a_work_has_no_location(gaz: Gazetteer, title: str, text: str) -> None:
    assert about_a_work(f"{title}\n{text}")
    loc = locate(gaz, title, text, hint="US")
    assert loc.precision == "none"
    assert loc.country is None


def test_a_report_that_says_movie_twice_keeps_its_place(gaz: Gazetteer) -> None:
    title, text = HEIST
    assert not about_a_work(f"{title}\n{text}")  # one word, twice
    loc = locate(gaz, title, text)
    assert (loc.country, loc.place) == ("CO", "Medellín")


def test_armed_actors_are_not_film_actors(gaz: Gazetteer) -> None:
    title, text = ARMED_ACTORS
    assert not about_a_work(f"{title}\n{text}")
    assert locate(gaz, title, text).country == "CO"


def test_national_cues_from_spanish_usage(gaz: Gazetteer) -> None:
    # "agentes ministeriales" are Mexico's prosecutors' police; "chavistas" Venezuela's ruling party.
    mx = "Agentes ministeriales detuvieron a dos extorsionadores tras una balacera en la colonia Centro."
    ve = "Los chavistas celebraron la sesión mientras la oposición denunciaba detenciones nocturnas."
    assert locate(gaz, "", mx).country == "MX"
    assert locate(gaz, "", ve).country == "VE"
