"""Mentions of places in a text: the first step of ``locate.py``.

Every run of capitalised words that names a country, first-level division or town (longest
match first, accents and case ignored), and every demonym, with what the words around it say:
a locative word before it ("en", "municipio de"), a dateline, a sentence that tells where it
happened or about a court, "cártel de" before it. Readings a name can hardly have here are
dropped (:func:`_plausible`, :func:`supported`). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from classify.geo.gazetteer import Gazetteer, Place
from classify.geo.names import (
    CAPITALS_ONLY,
    DIVISION_WORDS,
    FACILITY_BEFORE,
    LOCATIVE_BEFORE,
    NATIONAL_BODIES,
    NEIGHBOURHOOD_HEADS,
    NOT_PLACES,
    ORIGIN_BEFORE,
    PASSPORT_AFTER,
    PASSPORT_BEFORE,
    STATE_AFTER,
    STATE_BEFORE,
    STRONG_LOCATIVE,
    fold,
    fold_word,
    words,
)

MAX_EVIDENCE_CHARS = 240

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“¿¡A-ZÁÉÍÓÚÑ])|\n+")

_JOINER = re.compile("^[ .\\-'\u2019]{0,3}\\Z")

_DATELINE = re.compile(
    r"^\s*([A-ZÁÉÍÓÚÑ][\wÁÉÍÓÚÑáéíóúñ .'-]{1,40}?)\s*(?:,[^\n(]{0,40})?\s*"
    r"(?:\([^()\n]{1,30}\)"
    "|[.,]?\\s*[\u2014\u2013-]{1,2}|\\.-)"
)

_EVENT_CUE = re.compile(
    r"\b(?:ocurri[óo]|sucedi[óo]|se produjo|tuvo lugar|se registr[óo]|happened|occurred|took place)\b",
    re.IGNORECASE,
)
"""The sentence that says where it happened ("El hecho ocurrió en ...") outweighs the others."""

_CITY_WORDS = frozenset({"ciudad", "city", "town", "localidad"})

_COURT_CUE = re.compile(
    r"\b(?:tribunal|juzgado|juez|audiencia|imputad[oa]s?|vinculad[oa]s? a proceso|extraditad[oa]s?|"
    r"court|judge|charged|arraigned|sentenced|extradited)\b",
    re.IGNORECASE,
)
"""Where suspects were later charged or tried is not where the event happened."""

_WEAK_LOCATIVE = frozenset({"de", "del", "from", "desde", "of"})
"""Alone, "de" is as often "pescadores de Buenaventura" (who) as "municipio de X" (where)."""

DECAY = 0.2

BODY_WEIGHT = 0.75
"""What a country's own police or court body says of where (a demonym in passing says 0.5)."""

LONE_TOWN = 50_000
"""Below this, a town in a country nothing else in the text names needs more than "en"."""
"""How fast a name loses weight with each sentence after the lead."""

DIVISION_AFTER = frozenset({"state", "province", "department", "region"})
""""Nigeria's northern Kaduna state": after a name, the name is the division, not its capital."""

COUNTY_AFTER = frozenset({"county", "condado", "parish"})

_ARTICLES = frozenset({"la", "el", "los", "las", "the"})

_CARTEL = frozenset({"cartel", "carteles", "tren", "clan"})


@dataclass
class Mention:
    """A place name (or demonym) in the text, its candidate readings and its weight."""

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
    """Only "de" before it: "pescadores de Buenaventura" (who) as often as "municipio de X"."""
    city_cue: bool = False
    """"ciudad de Durango": the town, not the state of the same name."""
    demonym_weight: float = 0.5
    """What a demonym says of where: a nationality in passing 0.5, a state's institution
    ("autoridades venezolanas") 1.0 like the country's name, a person's passport 0.1."""


def index_of(starts: list[int], offset: int) -> int:
    return max(k for k, s in enumerate(starts) if s <= offset)


def sentence_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _SENTENCE_END.finditer(text)]


def find_mentions(gaz: Gazetteer, text: str, title_end: int) -> list[Mention]:
    toks = words(text)
    folded = [fold_word(t.group()) for t in toks]
    caps = real_caps = [t.group()[0].isupper() for t in toks]
    if title_end > 0 and not any(ch.isupper() for ch in text[:title_end]):
        # An all-lower-case headline ("tiroteo al sur de culiacan"): any word may be a name.
        caps = [
            c or (t.start() < title_end and len(t.group()) >= 4 and fold_word(t.group()) not in NOT_PLACES)
            for c, t in zip(caps, toks, strict=True)
        ]
    starts = sentence_starts(text)
    court_sentences = {index_of(starts, m.start()) for m in _COURT_CUE.finditer(text)}
    event_sentences = {index_of(starts, m.start()) for m in _EVENT_CUE.finditer(text)}
    dateline = _DATELINE.match(text[title_end + 1 :] if title_end >= 0 else text)
    dateline_end = (title_end + 1 + dateline.end(1)) if dateline else -1
    out: list[Mention] = []
    body_keys: frozenset[str] = frozenset()
    if caps is not real_caps:
        first_body = next((k for k, t in enumerate(toks) if t.start() > title_end), len(toks))
        body_keys = _capitalised_runs(toks[first_body:], folded[first_body:])
    sent = 0
    i = 0
    n = len(toks)
    while i < n:
        start = toks[i].start()
        while sent + 1 < len(starts) and starts[sent + 1] <= start:
            sent += 1
        found = None
        if folded[i] in _ARTICLES and " ".join(folded[i + 1 : i + 3]) in gaz.demonyms:
            i += 1  # "La Guardia Civil" is the Spanish police, not the town of La Guardia
            continue
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
                dem = gaz.demonyms.get(key) if j - i <= 3 else None
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
        before = _before(folded, i, gaz.demonyms)
        places = _plausible(places, key, text, toks, real_caps, folded, i, j, starts[sent], before)
        if dem and places:
            # "One Canadian and 16 Americans": the nationality, not Canadian, Texas.
            places = [p for p in places if p.kind != "city" or p.population >= 100_000]
        inferred = any(caps[x] and not real_caps[x] for x in range(i, j))
        placed = prev in _TITLE_LOCATIVE or (before != prev and before in LOCATIVE_BEFORE)
        if places and inferred and not placed and key not in body_keys:
            # A word of an all-lower-case headline ("... hombre asesinado ..."): a town only when
            # the body names it too or "en" stands before it; a country or division stays.
            places = [p for p in places if p.kind != "city"]
        if places or dem:
            in_title = start <= title_end
            lead = sent <= (1 if title_end >= 0 else 0)
            pos_w = 2.0 if in_title else (1.6 if lead else 1.0 / (1 + DECAY * sent))
            after = folded[j] if j < n else ""
            cartel = before in _CARTEL or after in _CARTEL
            origin = before in ORIGIN_BEFORE
            weight = pos_w * (0.25 if cartel else 1.0) * (0.15 if origin else 1.0)
            dem_w = 0.5
            if dem:
                if prev in PASSPORT_BEFORE or after in PASSPORT_AFTER:
                    dem_w = 0.1
                elif prev in STATE_BEFORE or after in STATE_AFTER:
                    dem_w = 1.0
                elif key in NATIONAL_BODIES:
                    dem_w = BODY_WEIGHT
            if sent in event_sentences:
                weight *= 1.5
            elif sent in court_sentences:
                weight *= 0.4
            out.append(
                Mention(
                    start,
                    end,
                    sent,
                    text[start:end],
                    key,
                    places,
                    dem,
                    weight,
                    prev in LOCATIVE_BEFORE or before in STRONG_LOCATIVE,
                    start < dateline_end,
                    prev in _WEAK_LOCATIVE and before not in LOCATIVE_BEFORE,
                    before in _CITY_WORDS,
                    dem_w,
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
    before: str,
) -> list[Place]:
    """Drop readings a name can hardly have here: a small town that is also a common word, a
    surname ("Fernando Rosales"), a neighbourhood or building ("colonia Miravalle")."""
    single = j - i == 1
    prev = folded[i - 1] if i > 0 else ""
    after = folded[j] if j < len(folded) else ""
    if prev in FACILITY_BEFORE:
        return [p for p in places if p.kind == "country"]
    strong = before in STRONG_LOCATIVE
    prev_cap = i > 0 and caps[i - 1] and toks[i - 1].start() > sentence_start and _joined(text, toks, i - 1)
    # "Club de Leones", "Valle de las Palmas": a capitalised word, "de" (and an article), the name.
    k = i - 2 if i >= 2 and folded[i - 1] in ("la", "las", "el", "los") else i - 1
    org_of = k >= 1 and folded[k] in ("de", "del") and caps[k - 1] and folded[k - 1] not in LOCATIVE_BEFORE
    next_cap = j < len(toks) and caps[j] and _joined(text, toks, j - 1)
    if k >= 1 and folded[k] in ("de", "del") and folded[k - 1] in NEIGHBOURHOOD_HEADS:
        return [p for p in places if p.kind == "country"]  # "Bosques de San Sebastián", "Villa de Aragón"
    admin1_named = (before in DIVISION_WORDS or after in DIVISION_AFTER) and any(
        p.kind == "admin1" for p in places
    )
    if after in COUNTY_AFTER:
        # "Fayette County", "Wayne county": a county, neither the town nor a division of its name.
        return [p for p in places if p.kind == "country"]
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


_TITLE_LOCATIVE = frozenset({"en", "in", "at", "near", "cerca", "hacia"})


def _capitalised_runs(toks: list[re.Match[str]], folded: list[str]) -> frozenset[str]:
    """Every run of capitalised words, as lookup keys, with each of its sub-runs."""
    out: set[str] = set()
    run: list[str] = []
    for t, f in [*zip(toks, folded, strict=True), (None, "")]:
        if t is not None and t.group()[0].isupper():
            run.append(f)
            continue
        for a in range(len(run)):
            for b in range(a + 1, min(len(run), a + 6) + 1):
                out.add(" ".join(run[a:b]))
        run = []
    return frozenset(out)


def _before(folded: list[str], i: int, demonyms: dict[str, str]) -> str:
    """The word that says what the name at ``i`` is, past "de"/"of" and a demonym: "municipio de
    X" -> municipio, "la ciudad argentina de X" and "the Mexican city of X" -> ciudad, city."""
    prev = folded[i - 1] if i > 0 else ""
    if prev not in ("de", "del", "of") or i < 2:
        return prev
    if folded[i - 2] in demonyms and i >= 3:
        return folded[i - 3]
    return folded[i - 2]


def _joined(text: str, toks: list[re.Match[str]], k: int) -> bool:
    """Whether token ``k`` and the next one are parts of one name ("San José", "St. Louis"),
    not the end of a sentence and the start of the next ("... of Atlanta. The standoff")."""
    gap = text[toks[k].end() : toks[k + 1].start()]
    if _JOINER.match(gap) is None:
        return False
    return "." not in gap or len(toks[k].group()) <= 3


def supported(mentions: list[Mention], hint: str | None) -> list[Mention]:
    """Drop readings of small towns and divisions in countries nothing else in the text points
    to: "Papá" is not a town in Hungary, "Vecinos" not one in Spain. "en" before the name keeps a
    reading, unless it is a small town and the text names another country ("en La Matanza" in a
    story of the "policía bonaerense" is not Peru's La Matanza)."""
    support: dict[str, set[str]] = defaultdict(set)
    for m in mentions:
        if m.demonym:
            support[m.demonym].add(m.key)
        for p in m.candidates:
            if p.kind == "country" or (p.kind == "city" and p.population >= 200_000):
                support[p.country].add(m.key)
    named = {m.demonym for m in mentions if m.demonym} | {
        p.country for m in mentions for p in m.candidates if p.kind == "country"
    }
    if hint:
        named.add(hint)
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
            or (m.locative and (p.kind != "city" or p.population >= LONE_TOWN or not named - {p.country}))
            or (p.kind == "city" and p.population >= 200_000)
            or (p.kind == "admin1" and len(keys_by_country) == 1)
        ]
        if cands or m.demonym:
            m.candidates = cands
            kept.append(m)
    return kept


def sentence_of(text: str, m: Mention) -> str:
    starts = sentence_starts(text)
    begin = max(s for s in starts if s <= m.start)
    after = [s for s in starts if s > m.start]
    return text[begin : after[0] if after else len(text)]


def evidence(text: str, m: Mention) -> str:
    sentence = sentence_of(text, m).strip()
    if len(sentence) <= MAX_EVIDENCE_CHARS:
        return sentence
    offset = max(0, text.find(sentence))
    centre = m.start - offset
    lo = max(0, min(centre - MAX_EVIDENCE_CHARS // 2, len(sentence) - MAX_EVIDENCE_CHARS))
    return sentence[lo : lo + MAX_EVIDENCE_CHARS].strip()
