"""Where an article's event happened: a pure resolver over the gazetteer.

:func:`locate` reads a title and text (plus an optional country hint: the feed's declared
country, else the country of the URL's domain) and returns a :class:`Location`. Steps:

1. **Mentions.** Every run of capitalised words that names a country, first-level division or
   town (longest match first, accents and case ignored), and every demonym ("ecuatoriano",
   "Nigerian"). Names of people and organisations that collide with small towns are dropped by
   context: a capitalised neighbour ("Fernando Rosales"), a stop list of common words.
2. **Readings.** Each mention's candidates are scored by kind and population and by support
   from the rest of the text: countries and divisions named elsewhere, demonyms, the hint, and
   towns near each other. "Quevedo" next to "Los Ríos" is Ecuador's, "San José" follows the
   country the text is about, "Niger State" is Nigeria's.
3. **The event.** Mentions are weighted by where they stand (title and first sentence first, a
   dateline less, "cártel de Sinaloa" hardly), and by a locative word before them ("en",
   "municipio de"); the country with most weight wins, then the division, then the town in it.

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
from classify.geo.names import (
    ADMIN1_WORDS,
    CAPITAL_CUES,
    CAPITALS_ONLY,
    DOMESTIC_CUES,
    FACILITY_BEFORE,
    LOCAL_NEWS_CUES,
    LOCATIVE_BEFORE,
    NEIGHBOURHOOD_HEADS,
    NOT_PLACES,
    ORIGIN_BEFORE,
    STRONG_LOCATIVE,
    SUB_CITY_CUES,
    fold,
    fold_word,
    words,
)

Precision = Literal["none", "country", "admin1", "city", "sub-city"]

MAX_TEXT_CHARS = 6_000
"""Only the lead of an article is read: the event is told there, and it bounds the time."""
MAX_TITLE_CHARS = 500
HINT_BONUS = 4.0
"""Score a reading in the feed's declared country gains: enough to pick Córdoba, Argentina for
an Argentine outlet, not enough to outweigh a country named in the text."""
MAX_EVIDENCE_CHARS = 240

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“¿¡A-ZÁÉÍÓÚÑ])|\n+")
_JOINER = re.compile("^[ .\\-'\u2019]{0,3}\\Z")
_DATELINE = re.compile(
    r"^\s*([A-ZÁÉÍÓÚÑ][\wÁÉÍÓÚÑáéíóúñ .'-]{1,40}?)\s*(?:,[^\n(]{0,40})?\s*"
    r"(?:\((?:EFE|AP|AFP|Reuters|Europa Press|Xinhua|ANSA|dpa|DPA|Sputnik|NTN24|AFP/EFE)\)"
    "|[.,]?\\s*[\u2014\u2013-]{1,2}|\\.-)"
)
_EVENT_CUE = re.compile(
    r"\b(?:ocurri[óo]|sucedi[óo]|se produjo|tuvo lugar|se registr[óo]|happened|occurred|took place)\b",
    re.IGNORECASE,
)
"""The sentence that says where it happened ("El hecho ocurrió en ...") outweighs the others."""
_CITY_WORDS = frozenset({"ciudad", "city", "town", "localidad"})
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
_COURT_CUE = re.compile(
    r"\b(?:tribunal|juzgado|juez|audiencia|imputad[oa]s?|vinculad[oa]s? a proceso|extraditad[oa]s?|"
    r"court|judge|charged|arraigned|sentenced|extradited)\b",
    re.IGNORECASE,
)
"""Where suspects were later charged or tried is not where the event happened."""
_WEAK_LOCATIVE = frozenset({"de", "del", "from", "desde", "of"})
"""Alone, "de" is as often "pescadores de Buenaventura" (who) as "municipio de X" (where)."""
METRO_RADIUS_KM = 15.0
_GENERIC_TLDS = frozenset({"tv", "io", "me", "ly", "fm", "ai", "cc", "ws", "to", "gg", "la", "is", "it"})
_CARTEL = frozenset({"cartel", "carteles", "tren", "clan"})


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


@dataclass
class _Mention:
    start: int
    end: int
    sentence: int
    surface: str
    key: str
    candidates: list[Place]
    demonym: str | None
    weight: float
    locative: bool
    dateline: bool
    weak_locative: bool = False
    city_cue: bool = False
    """"ciudad de Durango": the town, not the state of the same name."""
    """Only "de" before it: "pescadores de Buenaventura" (who) as often as "municipio de X"."""


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
    mentions = _mentions(gaz, full, title_end)
    hint = hint.upper() if hint else None
    if hint and hint in gaz.countries:
        folded_text = fold(full)
        for cue in DOMESTIC_CUES:
            at = folded_text.find(cue)
            if at >= 0:
                home = gaz.places[gaz.countries[hint]]
                mentions.append(_Mention(0, 0, 99, cue, cue, [home], None, 0.4, False, False))
                break
    mentions = _supported(mentions, hint)
    if not mentions:
        if hint and hint in gaz.countries:
            return _local_news(gaz, full, hint)
        return NOWHERE
    readings = _read(gaz, mentions, hint)
    return _decide(gaz, full, mentions, readings, hint)


# ---- 1. mentions --------------------------------------------------------------------------------


def _index_of(starts: list[int], offset: int) -> int:
    return max(k for k, s in enumerate(starts) if s <= offset)


def _sentence_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _SENTENCE_END.finditer(text)]


def _mentions(gaz: Gazetteer, text: str, title_end: int) -> list[_Mention]:
    toks = words(text)
    folded = [fold_word(t.group()) for t in toks]
    caps = real_caps = [t.group()[0].isupper() for t in toks]
    if title_end > 0 and not any(ch.isupper() for ch in text[:title_end]):
        # An all-lower-case headline ("tiroteo al sur de culiacan"): any word may be a name.
        caps = [
            c or (t.start() < title_end and len(t.group()) >= 4 and fold_word(t.group()) not in NOT_PLACES)
            for c, t in zip(caps, toks, strict=True)
        ]
    starts = _sentence_starts(text)
    court_sentences = {_index_of(starts, m.start()) for m in _COURT_CUE.finditer(text)}
    event_sentences = {_index_of(starts, m.start()) for m in _EVENT_CUE.finditer(text)}
    dateline = _DATELINE.match(text[title_end + 1 :] if title_end >= 0 else text)
    dateline_end = (title_end + 1 + dateline.end(1)) if dateline else -1
    out: list[_Mention] = []
    sent = 0
    i = 0
    n = len(toks)
    while i < n:
        start = toks[i].start()
        while sent + 1 < len(starts) and starts[sent + 1] <= start:
            sent += 1
        found = None
        if caps[i]:
            j_max = i + 1
            while j_max < min(n, i + gaz.max_words) and _JOINER.match(
                text[toks[j_max - 1].end() : toks[j_max].start()]
            ):
                j_max += 1
            for j in range(j_max, i, -1):
                if not caps[j - 1] and j - 1 > i:
                    continue
                key = " ".join(folded[i:j])
                if key in CAPITALS_ONLY and not text[start : toks[j - 1].end()].replace(".", "").isupper():
                    continue
                cands = gaz.lookup(key)
                dem = gaz.demonyms.get(key) if j - i <= 2 else None
                if cands or dem:
                    found = (j, key, cands, dem)
                    break
        elif folded[i] in gaz.demonyms:
            found = (i + 1, folded[i], (), gaz.demonyms[folded[i]])
        if not found:
            i += 1
            continue
        j, key, cands, dem = found
        end = toks[j - 1].end()
        prev = folded[i - 1] if i > 0 else ""
        places = [gaz.places[p] for p in cands]
        places = _plausible(places, key, text, toks, real_caps, folded, i, j, starts[sent])
        if places or dem:
            in_title = start <= title_end
            pos_w = (
                2.0 if in_title else (1.6 if sent <= (1 if title_end >= 0 else 0) else 1.0 / (1 + 0.2 * sent))
            )
            after = folded[j] if j < n else ""
            before = folded[i - 2] if i >= 2 and prev in ("de", "del", "of") else prev
            cartel = before in _CARTEL or after in _CARTEL
            origin = before in ORIGIN_BEFORE
            weight = pos_w * (0.25 if cartel else 1.0) * (0.15 if origin else 1.0)
            if sent in event_sentences:
                weight *= 1.5
            elif sent in court_sentences:
                weight *= 0.4
            out.append(
                _Mention(
                    start,
                    end,
                    sent,
                    text[start:end],
                    key,
                    places,
                    dem,
                    weight,
                    prev in LOCATIVE_BEFORE,
                    start < dateline_end,
                    prev in _WEAK_LOCATIVE and before not in LOCATIVE_BEFORE,
                    before in _CITY_WORDS,
                )
            )
        i = j
    return out


def _plausible(
    places: list[Place],
    key: str,
    text: str,
    toks: list[re.Match[str]],
    caps: list[bool],
    folded: list[str],
    i: int,
    j: int,
    sentence_start: int,
) -> list[Place]:
    """Drop readings a name can hardly have here: a small town that is also a common word, a
    surname ("Fernando Rosales"), a neighbourhood or building ("colonia Miravalle")."""
    single = j - i == 1
    prev = folded[i - 1] if i > 0 else ""
    before = folded[i - 2] if i >= 2 and prev in ("de", "del", "of") else prev
    if prev in FACILITY_BEFORE:
        return [p for p in places if p.kind == "country"]
    strong = before in STRONG_LOCATIVE
    prev_cap = (
        i > 0
        and caps[i - 1]
        and toks[i - 1].start() > sentence_start
        and _JOINER.match(text[toks[i - 1].end() : toks[i].start()]) is not None
    )
    # "Club de Leones", "Valle de las Palmas": a capitalised word, "de" (and an article), the name.
    k = i - 2 if i >= 2 and folded[i - 1] in ("la", "las", "el", "los") else i - 1
    org_of = k >= 1 and folded[k] in ("de", "del") and caps[k - 1] and folded[k - 1] not in LOCATIVE_BEFORE
    next_cap = (
        j < len(toks) and caps[j] and _JOINER.match(text[toks[j - 1].end() : toks[j].start()]) is not None
    )
    if k >= 1 and folded[k] in ("de", "del") and folded[k - 1] in NEIGHBOURHOOD_HEADS:
        return [p for p in places if p.kind == "country"]  # "Bosques de San Sebastián", "Villa de Aragón"
    admin1_named = before in ADMIN1_WORDS and any(p.kind == "admin1" for p in places)
    at_start = (
        toks[i].start() <= sentence_start + 1 or text[sentence_start : toks[i].start()].strip(' "“¿¡(') == ""
    )
    kept = []
    for p in places:
        if admin1_named and p.kind != "admin1":
            continue
        if p.kind == "city" and p.population < 1_000_000 and (prev_cap or next_cap) and not strong:
            continue
        if p.kind == "admin1" and single and prev_cap:
            continue
        common = single and not strong and (key in NOT_PLACES or len(key) < 4)
        if p.kind == "city" and single and key in NOT_PLACES and fold(p.name) != key:
            continue  # "Para" is an old name of Belém, and a preposition
        if p.kind == "city" and p.population < 100_000 and common:
            continue
        if p.kind == "admin1" and single and key in NOT_PLACES and not strong:
            continue
        if p.kind == "city" and p.population < 100_000 and org_of and not strong:
            continue
        if p.kind == "city" and p.population < 100_000 and single and at_start:
            continue
        kept.append(p)
    return kept


def _supported(mentions: list[_Mention], hint: str | None) -> list[_Mention]:
    """Drop readings of small towns and divisions in countries nothing else in the text points
    to: "Papá" is not a town in Hungary, "Vecinos" not one in Spain."""
    support: dict[str, set[str]] = defaultdict(set)
    for m in mentions:
        if m.demonym:
            support[m.demonym].add(m.key)
        for p in m.candidates:
            if p.kind == "country" or (p.kind == "city" and p.population >= 200_000):
                support[p.country].add(m.key)
    kept = []
    for m in mentions:
        keys_by_country = {p.country for p in m.candidates if p.kind != "country"}
        backed = {
            c
            for c in keys_by_country
            if c == hint
            or support.get(c, set()) - {m.key}
            or any(o.key != m.key and any(q.country == c for q in o.candidates) for o in mentions)
        }
        cands = [
            p
            for p in m.candidates
            if p.kind == "country"
            or p.country in backed
            or m.locative
            or (p.kind == "city" and p.population >= 200_000)
            or (p.kind == "admin1" and len(keys_by_country) == 1)
        ]
        if cands or m.demonym:
            m.candidates = cands
            kept.append(m)
    return kept


def _local_news(gaz: Gazetteer, text: str, hint: str) -> Location:
    for w in words(text):
        if fold_word(w.group()) in LOCAL_NEWS_CUES:
            p = gaz.places[gaz.countries[hint]]
            m = _Mention(w.start(), w.end(), 0, w.group(), w.group(), [p], None, 1.0, False, False)
            return Location(hint, None, None, None, p.lat, p.lon, "country", _evidence(text, m))
    return NOWHERE


# ---- 2. readings --------------------------------------------------------------------------------


def _read(gaz: Gazetteer, mentions: list[_Mention], hint: str | None) -> list[Place | None]:
    """The reading of each mention: its candidates scored by prior and by what the *other*
    names in the text support (a name never supports itself: "Trujillo" the Venezuelan state
    does not vouch for Trujillo the Venezuelan town)."""
    named_countries: dict[str, float] = defaultdict(float)
    named_admin1: dict[str, set[str]] = defaultdict(set)
    for m in mentions:
        if m.demonym:
            named_countries[m.demonym] += 0.5
        for p in m.candidates:
            if p.kind == "country":
                named_countries[p.country] += 1.0
            elif p.kind == "admin1" and p.admin1:
                named_admin1[p.admin1].add(m.key)
    readings: list[Place | None] = [None] * len(mentions)
    for _ in range(2):
        resolved = [(mentions[k].key, r) for k, r in enumerate(readings) if r is not None]
        for idx, m in enumerate(mentions):
            best, best_score = None, -math.inf
            for p in m.candidates:
                s = _prior(p)
                s += 3.0 * min(named_countries.get(p.country, 0.0), 2.0)
                if hint and p.country == hint:
                    s += HINT_BONUS
                if p.kind == "city" and p.admin1 and named_admin1.get(p.admin1, set()) - {m.key}:
                    s += 4.0
                for key, r in resolved:
                    if key == m.key or r.kind == "country":
                        continue
                    if r.country == p.country:
                        s += 1.0
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
        return 9.0
    if p.kind == "admin1":
        return 6.0
    return 1.0 + math.log10(p.population + 10) * 0.8


# ---- 3. the event -------------------------------------------------------------------------------


def _decide(
    gaz: Gazetteer, text: str, mentions: list[_Mention], readings: list[Place | None], hint: str | None
) -> Location:
    country_score: dict[str, float] = defaultdict(float)
    for m, r in zip(mentions, readings, strict=True):
        foreign_dateline = m.dateline and hint is not None and r is not None and r.country != hint
        w = m.weight * (0.25 if foreign_dateline else 0.8 if m.dateline else 1.0)
        if r is not None:
            country_score[r.country] += w * (1.2 if m.locative else 1.0)
        elif m.demonym:
            country_score[m.demonym] += 0.5 * w
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
    cities: list[tuple[float, int, _Mention, Place]] = []
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
    city: tuple[float, int, _Mention, Place] | None = None
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
        sentence = _sentence_of(text, m)
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
            _evidence(text, m),
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
            _evidence(text, m),
        )
    capital = _capital(gaz, text, country, chosen_admin1)
    if capital is not None:
        p, m = capital
        a = gaz.admin1_of(p)
        sub = any(fold_word(w.group()) in SUB_CITY_CUES for w in words(_sentence_of(text, m)))
        return Location(
            country,
            a.name if a else None,
            a.code if a else None,
            p.name,
            round(p.lat, 5),
            round(p.lon, 5),
            "sub-city" if sub else "city",
            _evidence(text, m),
        )
    if chosen_admin1:
        a = gaz.admin1[chosen_admin1]
        p = gaz.places[a.place_id]
        m = next(
            mm
            for mm, r in zip(mentions, readings, strict=True)
            if r is not None and r.admin1 == chosen_admin1
        )
        return Location(country, a.name, a.code, None, p.lat, p.lon, "admin1", _evidence(text, m))
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
        _evidence(text, m),
    )


def _unlisted_place(gaz: Gazetteer, text: str, country: str) -> tuple[str, Precision, _Mention] | None:
    """The first "municipio de X" / "colonia X" in the lead whose X the gazetteer does not know
    in the event's country (an "El Aguacate" elsewhere does not count)."""
    lead = text[: min(len(text), 1200)]
    for match in _UNLISTED.finditer(lead):
        name = match.group("name").strip(" .,")
        if len(name) < 3 or any(gaz.places[p].country == country for p in gaz.lookup(fold(name))):
            continue
        cue = fold_word(match.group("cue").split()[0])
        precision: Precision = "sub-city" if cue in _NEIGHBOURHOOD_CUES else "city"
        m = _Mention(match.start("name"), match.end("name"), 0, name, fold(name), [], None, 1.0, True, False)
        return name, precision, m
    return None


def _capital(gaz: Gazetteer, text: str, country: str, admin1: str | None) -> tuple[Place, _Mention] | None:
    """The country's capital when the text says "la capital", "capitalinos" and names no town."""
    pid = gaz.capitals.get(country)
    if pid is None:
        return None
    p = gaz.places[pid]
    if admin1 is not None and p.admin1 != admin1:
        return None
    for w in words(text[:MAX_TEXT_CHARS]):
        if fold_word(w.group()) in CAPITAL_CUES:
            return p, _Mention(w.start(), w.end(), 0, w.group(), "capital", [p], None, 1.0, True, False)
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


def _demonyms_place_it(mentions: list[_Mention]) -> bool:
    """Nationalities alone place a story only when they say more than a person's passport ("la
    cantante estadounidense", "el cine español" do not): two mentions, a plural, or a
    capitalised one (English, or part of a name)."""
    counts: dict[str, int] = defaultdict(int)
    for m in mentions:
        if m.demonym:
            counts[m.demonym] += 1
            if m.key.endswith("s") or m.surface[:1].isupper():
                counts[m.demonym] += 1  # a plural, English, or a name ("Ejército Mexicano")
    return any(n >= 2 for n in counts.values())


def _lone_foreign_name(mentions: list[_Mention], readings: list[Place | None], country: str) -> bool:
    keys = {m.key for m, r in zip(mentions, readings, strict=True) if r is not None and r.country == country}
    named = any(
        (r is not None and r.country == country and r.kind == "country") or m.demonym == country
        for m, r in zip(mentions, readings, strict=True)
    )
    return len(keys) == 1 and not named


def _first(mentions: list[_Mention], readings: list[Place | None], country: str) -> int:
    for m, r in zip(mentions, readings, strict=True):
        if (r is not None and r.country == country) or m.demonym == country:
            return m.start
    return 1 << 30


def _first_admin1(mentions: list[_Mention], readings: list[Place | None], key: str) -> int:
    for m, r in zip(mentions, readings, strict=True):
        if r is not None and r.admin1 == key:
            return m.start
    return 1 << 30


def _sentence_of(text: str, m: _Mention) -> str:
    starts = _sentence_starts(text)
    begin = max(s for s in starts if s <= m.start)
    after = [s for s in starts if s > m.start]
    return text[begin : after[0] if after else len(text)]


def _evidence(text: str, m: _Mention) -> str:
    sentence = _sentence_of(text, m).strip()
    if len(sentence) <= MAX_EVIDENCE_CHARS:
        return sentence
    offset = max(0, text.find(sentence))
    centre = m.start - offset
    lo = max(0, min(centre - MAX_EVIDENCE_CHARS // 2, len(sentence) - MAX_EVIDENCE_CHARS))
    return sentence[lo : lo + MAX_EVIDENCE_CHARS].strip()
