"""What the incident linker compares, read from one article (pure: no database, no model).

A :class:`Report` is an article as the linker receives it (from ``news.tagged.v1`` in the sink, or
from a JSONL line in ``wirewatch incidents``); :func:`features` turns it into the
:class:`Features` that :mod:`store.incidents.linker` compares and the database keeps:

* ``vector``: the classifier's pooled embedding minus its language's mean (``centroids.json``),
  renormalised. Raw vectors of unrelated stories have cosines of 0.7-0.9 and an English rewrite of a
  Spanish story scores below two unrelated Spanish stories; centred per language, reports of one
  incident score 0.3-0.9 and unrelated ones mostly below 0.3 (README "Incidents").
* ``names``: capitalised words that the text never uses in lower case and that do not open a
  sentence, folded (no accents, lower case): people, places, venues, organisations ("uribe",
  "turbay", "modelia", "cantaritos"). They are spelled the same in both languages, so they carry
  across a translation.
* ``days``, ``month_days``, ``event_date``: what :mod:`store.incidents.dates` reads.
* ``categories`` and the optional ``location`` (country / admin1 / place), when the caller has them:
  :func:`location_of` reads it from the contract's :class:`~wirewatch.contract.EventLocation`, the
  one shape both callers hold (the classifier's, on ``news.tagged.v1``; a JSONL line's ``location``,
  as ``wirewatch tag`` writes it), so the sink and ``wirewatch incidents`` link on the same fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

from store.incidents.dates import fold, read_dates
from wirewatch.contract import EventLocation

CENTROIDS_FILE: Final = Path(__file__).with_name("centroids.json")

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_NOT_NAMES_TEXT: Final = (
    "el la los las lo le les de del al y en un una unos unas por para con que se su sus este esta "
    "estos estas ese esa hace the a an of and in on at to for with this that these those he she they "
    "it his her its who what when where after before during since mr mrs ms dr sr sra gen col lt sgt "
    "gov sen no monday tuesday wednesday thursday friday saturday sunday january february march april "
    "may june july august september october november december"
)
_NOT_NAMES: Final = frozenset(_NOT_NAMES_TEXT.split())
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+|\s+[-\u2013\u2014]\s+")


@dataclass(frozen=True)
class Location:
    """Where the event happened, as far as the caller knows (geolocation is optional)."""

    country: str | None = None
    admin1: str | None = None
    place: str | None = None


def location_of(found: EventLocation | None) -> Location | None:
    """The linker's view of an event location: country, admin1 (its ISO 3166-2 code where there is
    one, else its name: a code is the same in both languages) and place; None when nothing is known."""
    if found is None:
        return None
    admin1 = (found.admin1.code or found.admin1.name) if found.admin1 is not None else None
    if found.country is None and admin1 is None and found.place is None:
        return None
    return Location(country=found.country, admin1=admin1, place=found.place)


@dataclass(frozen=True)
class Report:
    """One article handed to the linker."""

    article_id: str
    title: str
    text: str
    lang: str | None = None
    published_at: datetime | None = None
    categories: frozenset[str] = frozenset()
    embedding: Sequence[float] | None = None
    source: str | None = None
    location: Location | None = None


@dataclass(frozen=True, eq=False)
class Features:
    """What the linker compares and the database keeps, for one article."""

    article_id: str
    lang: str
    published_at: datetime | None
    event_date: date | None
    days: frozenset[date]
    month_days: frozenset[int]  # month * 100 + day
    names: frozenset[str]
    categories: frozenset[str]
    vector: np.ndarray | None = field(repr=False)
    source: str | None = None
    title: str = ""
    country: str | None = None
    admin1: str | None = None
    place: str | None = None

    @property
    def published(self) -> date | None:
        return self.published_at.date() if self.published_at is not None else None

    @property
    def founder_key(self) -> tuple[str, str]:
        """Sort key of the first report: earliest publication, then article id (None sorts last)."""
        stamp = self.published_at.isoformat() if self.published_at is not None else "~"
        return (stamp, self.article_id)


def names(title: str, text: str) -> frozenset[str]:
    """Folded capitalised words that the text never writes in lower case (see the module docstring).

    A capitalised word that opens a sentence or line ("Hombres armados...", "Gunmen kidnapped...") only
    counts when the text also capitalises it elsewhere.
    """
    lower: set[str] = set()
    inside: set[str] = set()
    for line in f"{title}\n{text}".splitlines():
        for sentence in _SENTENCE.split(line):
            for index, word in enumerate(_WORD.findall(sentence)):
                folded = fold(word)
                if word[0].islower():
                    lower.add(folded)
                elif len(word) >= 3 and index > 0:
                    inside.add(folded)
    return frozenset(w for w in inside if w not in lower and w not in _NOT_NAMES)


@lru_cache(maxsize=1)
def centroids() -> dict[str, np.ndarray]:
    raw = json.loads(CENTROIDS_FILE.read_text(encoding="utf-8"))["centroids"]
    means = {lang: np.asarray(v, dtype=np.float32) for lang, v in raw.items()}
    means["*"] = np.mean(list(means.values()), axis=0).astype(np.float32)
    return means


def centre(embedding: Sequence[float] | None, lang: str) -> np.ndarray | None:
    """The embedding minus its language's mean, renormalised (None when there is none or it is flat)."""
    if embedding is None:
        return None
    vector = np.asarray(embedding, dtype=np.float32)
    if vector.ndim != 1 or not np.all(np.isfinite(vector)):
        return None
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return None
    means = centroids()
    mean = means.get(lang, means["*"])
    if mean.shape != vector.shape:
        return None  # an encoder of another size: compare by names only
    centred = vector / norm - mean
    length = float(np.linalg.norm(centred))
    return centred / length if length > 0 and math.isfinite(length) else None


def features(report: Report) -> Features:
    lang = (report.lang or "").lower()[:2] or "*"
    published = report.published_at.date() if report.published_at is not None else None
    reading = read_dates(report.title, report.text, published)
    location = report.location or Location()
    return Features(
        article_id=report.article_id,
        lang=lang,
        published_at=report.published_at,
        event_date=reading.event_date,
        days=reading.days,
        month_days=frozenset(m * 100 + d for m, d in reading.month_days),
        names=names(report.title, report.text),
        categories=frozenset(report.categories),
        vector=centre(report.embedding, lang),
        source=report.source,
        title=report.title.strip(),
        country=location.country.upper() if location.country else None,
        admin1=location.admin1,
        place=location.place,
    )
