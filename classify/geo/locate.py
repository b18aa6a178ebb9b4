"""Where an article's event happened: a pure resolver over the gazetteer.

:func:`locate` reads a title and text (plus an optional country hint) and returns a
:class:`Location`. Steps:

1. **Mentions** (``mentions.py``). Every run of capitalised words that names a country,
   first-level division or town (longest match first, accents and case ignored), and every
   demonym ("ecuatoriano", "Nigerian", "bonaerense") or national police/court body ("Guardia
   Civil", "FBI"), weighed by the word beside it: "autoridades venezolanas" (a state's own
   institution) counts like the country's name, "ciudadanos colombianos" (a passport) hardly.
   Names of people and organisations that collide with small towns are dropped by context: a
   capitalised neighbour ("Fernando Rosales"), a stop list of common words, "county"/"state"
   after the name, a lower-case headline word the body does not name.
2. **Readings.** Each mention's candidates are scored by kind and population and by support
   from the rest of the text: countries and divisions named elsewhere, demonyms, the hint, and
   towns near each other (a division is supported by a town in it). "Quevedo" next to "Los
   Ríos" is Ecuador's, "San José" follows the country the text is about, "Niger State" is
   Nigeria's, "Georgia" beside "Atlanta" is the US state. A name never supports itself.
3. **The event.** Mentions are weighted by where they stand (title and first sentence first, a
   dateline less, "cártel de Sinaloa" hardly), and by a locative word before them ("en",
   "municipio de", "city of"); the country with most weight wins (the nationality of the
   story's people, however often repeated, counts about once), then the division, then the
   town in it.

Deterministic (no randomness, ties broken by text position) and pure: nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from classify.geo.gazetteer import Gazetteer, Place, distance_km
from classify.geo.mentions import Mention, evidence, find_mentions, sentence_of, supported
from classify.geo.names import (
    CAPITAL_CUES,
    DOMESTIC_CUES,
    LOCAL_NEWS_CUES,
    SUB_CITY_CUES,
    fold,
    fold_word,
    words,
)
from classify.geo.subject import about_a_work

Precision = Literal["none", "country", "admin1", "city", "sub-city"]

MAX_TEXT_CHARS = 6_000
"""Only the lead of an article is read: the event is told there, and it bounds the time."""
MAX_TITLE_CHARS = 500
HINT_BONUS = 4.0
"""Score a reading in the feed's declared country gains: enough to pick Córdoba, Argentina for
an Argentine outlet, not enough to outweigh a country named in the text."""

_NAME_RUN = (
    r"[A-ZÁÉÍÓÚÑ][\wáéíóúñü]+(?:\s+(?:de\s+|del\s+|la\s+|las\s+|los\s+|el\s+)?[A-ZÁÉÍÓÚÑ0-9][\wáéíóúñü]*)*"
)
_UNLISTED = re.compile(
    r"\b(?P<cue>municipio de|distrito de|localidad de|comunidad de|cantón|parroquia|aldea|caserío|"
    r"vereda|corregimiento|barrio|colonia|fraccionamiento|cooperativa|urbanización|town of|village of|"
    r"alcalde de|alcaldesa de|alcaldía de|mayor of)"
    rf"\s+(?P<name>{_NAME_RUN})"
)
_NEIGHBOURHOOD_CUES = frozenset(
    {"barrio", "colonia", "fraccionamiento", "cooperativa", "urbanizacion", "vereda", "corregimiento"}
)
METRO_RADIUS_KM = 15.0
_GENERIC_TLDS = frozenset({"tv", "io", "me", "ly", "fm", "ai", "cc", "ws", "to", "gg", "la", "is", "it"})


@dataclass(frozen=True)
class Location:
    country: str | None = None
    admin1_name: str | None = None
    admin1_code: str | None = None
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    precision: Precision = "none"
    evidence: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``location`` object of ``wirewatch tag`` and of the tagged message."""
        return {
            "country": self.country,
            "admin1": {"name": self.admin1_name, "code": self.admin1_code} if self.admin1_name else None,
            "place": self.place,
            "lat": self.lat,
            "lon": self.lon,
            "precision": self.precision,
            "evidence": self.evidence,
        }


NOWHERE = Location()


def country_from_url(url: str | None) -> str | None:
    """The country of a URL's domain (``eluniverso.com.ec`` -> ``EC``), for the hint."""
    if not url:
        return None
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    labels = host.split(".")
    if len(labels) < 2 or len(labels[-1]) != 2:
        return None
    tld = labels[-1]
    if tld in _GENERIC_TLDS or (tld == "co" and labels[-2] not in {"com", "gov", "org", "edu", "net"}):
        return None
    return "GB" if tld == "uk" else tld.upper()


def locate(gaz: Gazetteer, title: str, text: str, hint: str | None = None) -> Location:
    """The location of the event an article reports (``NOWHERE`` when the text names none)."""
    head = title.strip()[:MAX_TITLE_CHARS]
    body = text[:MAX_TEXT_CHARS]
    full = f"{head}\n{body}" if head else body
    title_end = len(head) if head else -1
    if about_a_work(full):
        return NOWHERE
    mentions = find_mentions(gaz, full, title_end)
    hint = hint.upper() if hint else None
    if hint and hint in gaz.countries:
        folded_text = fold(full)
        for cue in DOMESTIC_CUES:
            at = folded_text.find(cue)
            if at >= 0:
                home = gaz.places[gaz.countries[hint]]
                mentions.append(Mention(0, 0, 99, cue, cue, [home], None, 0.4, False, False))
                break
    mentions = supported(mentions, hint)
    if not mentions:
        if hint and hint in gaz.countries:
            return _local_news(gaz, full, hint)
        return NOWHERE
    readings = _read(gaz, mentions, hint)
    return _decide(gaz, full, mentions, readings, hint)


def _local_news(gaz: Gazetteer, text: str, hint: str) -> Location:
    for w in words(text):
        if fold_word(w.group()) in LOCAL_NEWS_CUES:
            p = gaz.places[gaz.countries[hint]]
            m = Mention(w.start(), w.end(), 0, w.group(), w.group(), [p], None, 1.0, False, False)
            return Location(hint, None, None, None, p.lat, p.lon, "country", evidence(text, m))
    return NOWHERE


# ---- 2. readings --------------------------------------------------------------------------------


def _read(gaz: Gazetteer, mentions: list[Mention], hint: str | None) -> list[Place | None]:
    """The reading of each mention: its candidates scored by prior and by what the *other*
    names in the text support (a name never supports itself: "Trujillo" the Venezuelan state
    does not vouch for Trujillo the Venezuelan town)."""
    named_countries: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    named_admin1: dict[str, set[str]] = defaultdict(set)
    for m in mentions:
        if m.demonym:
            named_countries[m.demonym][m.key] += m.demonym_weight
        for p in m.candidates:
            if p.kind == "country":
                named_countries[p.country][m.key] += 1.0
            elif p.kind == "admin1" and p.admin1:
                named_admin1[p.admin1].add(m.key)
    readings: list[Place | None] = [None] * len(mentions)
    for _ in range(2):
        resolved = [(mentions[k].key, r) for k, r in enumerate(readings) if r is not None]
        for idx, m in enumerate(mentions):
            best, best_score = None, -math.inf
            for p in m.candidates:
                s = _prior(p)
                named = named_countries.get(p.country, {})
                s += 3.0 * min(sum(v for k, v in named.items() if k != m.key), 2.0)
                if hint and p.country == hint:
                    s += HINT_BONUS
                if p.kind == "city" and p.admin1 and named_admin1.get(p.admin1, set()) - {m.key}:
                    s += 4.0
                for key, r in resolved:
                    if key == m.key or r.kind == "country":
                        continue
                    if r.country == p.country:
                        s += 1.0
                        if (
                            p.kind == "admin1"
                            and r.kind == "city"
                            and r.admin1 == p.admin1
                            and not any(q.kind == "country" and q.country == p.country for q in m.candidates)
                        ):
                            s += 6.0  # "a Georgia house ... northeast of Atlanta": the state
                        if r.admin1 and r.admin1 == p.admin1 and p.kind == "city":
                            s += 1.0
                        if r.kind == "city" and p.kind == "city" and distance_km(r, p) < 150:
                            s += 1.0
                if s > best_score:
                    best, best_score = p, s
            readings[idx] = best
    for idx, (m, reading) in enumerate(zip(mentions, readings, strict=True)):
        if reading is None or reading.kind == "country":
            continue
        r = reading
        division = r.admin1
        # "en Montevideo", "policías de Puebla": the division's namesake city (its own name, or
        # any name after "ciudad de"), unless the text says "departamento de", "estado de"
        # (those mentions have no city reading left) ...
        twins = [
            p
            for p in m.candidates
            if p.kind == "city"
            and p.admin1 == division
            and (fold(p.name) == m.key or m.city_cue)
            and p.population >= 20_000
        ]
        if r.kind == "admin1" and twins:
            readings[idx] = max(twins, key=lambda p: p.population)
        # ... while "en Santa Cruz" for Santa Cruz de la Sierra is the department.
        elif r.kind == "city" and r not in twins:
            same = [p for p in m.candidates if p.kind == "admin1" and p.admin1 == division]
            if same:
                readings[idx] = same[0]
    return readings


def _prior(p: Place) -> float:
    if p.kind == "country":
        return 12.0
    if p.kind == "admin1":
        return 6.0
    return 1.0 + math.log10(p.population + 10) * 0.8


# ---- 3. the event -------------------------------------------------------------------------------


def _decide(
    gaz: Gazetteer, text: str, mentions: list[Mention], readings: list[Place | None], hint: str | None
) -> Location:
    country_score: dict[str, float] = defaultdict(float)
    said: dict[str, list[float]] = defaultdict(list)
    for m, r in zip(mentions, readings, strict=True):
        foreign_dateline = m.dateline and hint is not None and r is not None and r.country != hint
        w = m.weight * (0.25 if foreign_dateline else 0.8 if m.dateline else 1.0)
        if r is not None:
            country_score[r.country] += w * (1.2 if m.locative else 1.0)
        elif m.demonym:
            said[m.demonym].append(m.demonym_weight * w)
    for cc, scores in said.items():
        # The nationality of the story's people, told again and again ("un empresario español
        # ... el español ... la policía española"), is one fact: the strongest mention counts,
        # the repeats little.
        scores.sort(reverse=True)
        country_score[cc] += scores[0] + 0.25 * sum(scores[1:])
    if all(r is None for r in readings) and not _demonyms_place_it(mentions):
        return _local_news(gaz, text, hint) if hint and hint in gaz.countries else NOWHERE
    if not country_score:
        return NOWHERE
    if hint and hint in country_score:
        country_score[hint] += 0.5
    country = min(country_score, key=lambda c: (-country_score[c], _first(mentions, readings, c)))
    if hint and country != hint and hint in gaz.countries and _lone_foreign_name(mentions, readings, country):
        # A local outlet's story whose only foreign reading is one name ("zona de Colón" in a
        # Uruguayan paper): the declared country is the better bet, if the text reads as local news.
        local = _local_news(gaz, text, hint)
        if local.country == hint:
            return local

    admin1_score: dict[str, float] = defaultdict(float)
    cities: list[tuple[float, int, Mention, Place]] = []
    for idx, (m, r) in enumerate(zip(mentions, readings, strict=True)):
        if r is None or r.country != country or r.kind == "country":
            continue
        w = m.weight * (1.3 if m.locative and not m.weak_locative else 1.0) * (0.5 if m.dateline else 1.0)
        if r.admin1:
            admin1_score[r.admin1] += w
        if r.kind == "city":
            cities.append((w, idx, m, r))
    chosen_admin1 = (
        min(admin1_score, key=lambda a: (-admin1_score[a], _first_admin1(mentions, readings, a)))
        if admin1_score
        else None
    )
    city: tuple[float, int, Mention, Place] | None = None
    if cities:
        best_w = max(c[0] for c in cities)
        fitting = [c for c in cities if c[3].admin1 == chosen_admin1 and c[0] >= 0.5 * best_w]
        named = any(r is not None and r.kind == "admin1" and r.admin1 == chosen_admin1 for r in readings)
        # Towns agree with a division the text names; otherwise the best-placed town wins and
        # brings its division ("ocurrió en Soyapango ... lo liberaron en Santa Tecla").
        pool = (fitting or []) if named else cities
        city = min(pool, key=lambda c: (-c[0], c[1])) if pool else None
    if city is not None:
        _, _, m, p = city
        sentence = sentence_of(text, m)
        sub = any(fold_word(w.group()) in SUB_CITY_CUES for w in words(sentence))
        metro = _metro_of(gaz, p)
        if metro is not None:
            p, sub = metro, True
        a = gaz.admin1_of(p)
        return Location(
            country,
            a.name if a else None,
            a.code if a else None,
            p.name,
            round(p.lat, 5),
            round(p.lon, 5),
            "sub-city" if sub else "city",
            evidence(text, m),
        )
    unnamed = _unlisted_place(gaz, text, country)
    if unnamed is not None:
        # A town or neighbourhood the gazetteer lacks, named after "municipio de", "aldea",
        # "colonia": the place as written, at the coordinates of the finest level found.
        name, precision, m = unnamed
        a1 = gaz.admin1.get(chosen_admin1) if chosen_admin1 else None
        anchor = (
            gaz.places[a1.place_id]
            if a1
            else gaz.places[gaz.countries[country]]
            if country in gaz.countries
            else None
        )
        return Location(
            country,
            a1.name if a1 else None,
            a1.code if a1 else None,
            name,
            anchor.lat if anchor else None,
            anchor.lon if anchor else None,
            precision,
            evidence(text, m),
        )
    capital = _capital(gaz, text, country, chosen_admin1)
    if capital is not None:
        p, m = capital
        a = gaz.admin1_of(p)
        sub = any(fold_word(w.group()) in SUB_CITY_CUES for w in words(sentence_of(text, m)))
        return Location(
            country,
            a.name if a else None,
            a.code if a else None,
            p.name,
            round(p.lat, 5),
            round(p.lon, 5),
            "sub-city" if sub else "city",
            evidence(text, m),
        )
    if chosen_admin1:
        a = gaz.admin1[chosen_admin1]
        p = gaz.places[a.place_id]
        m = next(
            mm
            for mm, r in zip(mentions, readings, strict=True)
            if r is not None and r.admin1 == chosen_admin1
        )
        return Location(country, a.name, a.code, None, p.lat, p.lon, "admin1", evidence(text, m))
    home = gaz.places[gaz.countries[country]] if country in gaz.countries else None
    m = next(
        (mm for mm, r in zip(mentions, readings, strict=True) if (r is not None and r.country == country)),
        next((mm for mm in mentions if mm.demonym == country), mentions[0]),
    )
    return Location(
        country,
        None,
        None,
        None,
        home.lat if home else None,
        home.lon if home else None,
        "country",
        evidence(text, m),
    )


def _unlisted_place(gaz: Gazetteer, text: str, country: str) -> tuple[str, Precision, Mention] | None:
    """The first "municipio de X" / "colonia X" in the lead whose X the gazetteer does not know
    in the event's country (an "El Aguacate" elsewhere does not count)."""
    lead = text[: min(len(text), 1200)]
    for match in _UNLISTED.finditer(lead):
        name = match.group("name").strip(" .,")
        if len(name) < 3 or any(gaz.places[p].country == country for p in gaz.lookup(fold(name))):
            continue
        cue = fold_word(match.group("cue").split()[0])
        precision: Precision = "sub-city" if cue in _NEIGHBOURHOOD_CUES else "city"
        m = Mention(match.start("name"), match.end("name"), 0, name, fold(name), [], None, 1.0, True, False)
        return name, precision, m
    return None


def _capital(gaz: Gazetteer, text: str, country: str, admin1: str | None) -> tuple[Place, Mention] | None:
    """The country's capital when the text says "la capital", "capitalinos" and names no town."""
    pid = gaz.capitals.get(country)
    if pid is None:
        return None
    p = gaz.places[pid]
    if admin1 is not None and p.admin1 != admin1:
        return None
    for w in words(text[:MAX_TEXT_CHARS]):
        if fold_word(w.group()) in CAPITAL_CUES:
            return p, Mention(w.start(), w.end(), 0, w.group(), "capital", [p], None, 1.0, True, False)
    return None


def _metro_of(gaz: Gazetteer, p: Place) -> Place | None:
    """The metropolis a district belongs to ("La Molina" -> Lima), if it lies inside one."""
    if p.population >= 300_000:
        return None
    for mid in gaz.metros.get(p.country, ()):
        metro = gaz.places[mid]
        if metro.id != p.id and distance_km(p, metro) < METRO_RADIUS_KM:
            return metro
    return None


def _demonyms_place_it(mentions: list[Mention]) -> bool:
    """Nationalities alone place a story only when they say more than a person's passport ("la
    cantante estadounidense", "el cine español" do not): two mentions, a plural, or a
    capitalised one (English, or part of a name)."""
    counts: dict[str, int] = defaultdict(int)
    for m in mentions:
        if m.demonym and m.demonym_weight > 0.1:
            counts[m.demonym] += 2 if m.demonym_weight >= 1.0 else 1
            if m.key.endswith("s") or m.surface[:1].isupper():
                counts[m.demonym] += 1  # a plural, English, or a name ("Ejército Mexicano")
    return any(n >= 2 for n in counts.values())


def _lone_foreign_name(mentions: list[Mention], readings: list[Place | None], country: str) -> bool:
    keys = {m.key for m, r in zip(mentions, readings, strict=True) if r is not None and r.country == country}
    named = any(
        (r is not None and r.country == country and r.kind == "country") or m.demonym == country
        for m, r in zip(mentions, readings, strict=True)
    )
    return len(keys) == 1 and not named


def _first(mentions: list[Mention], readings: list[Place | None], country: str) -> int:
    for m, r in zip(mentions, readings, strict=True):
        if (r is not None and r.country == country) or m.demonym == country:
            return m.start
    return 1 << 30


def _first_admin1(mentions: list[Mention], readings: list[Place | None], key: str) -> int:
    for m, r in zip(mentions, readings, strict=True):
        if r is not None and r.admin1 == key:
            return m.start
    return 1 << 30
