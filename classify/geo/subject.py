"""Is an article about a creative work rather than an event?

A film review, a list of westerns or a piece on a song names places (Hollywood, the Texas of
the plot, the singer's country) that are not where anything happened, and the guideline gives
such an article no location. Words for films, music and art are rare in event reports, so three
of them, at least two different, mark the piece. Pure and deterministic.
"""

from __future__ import annotations

import re
from typing import Final

from classify.geo.names import fold_word

_WORK_WORDS: Final = re.compile(
    r"\b(films?|filmes?|movies?|pel[ií]culas?|thrillers?|westerns?|starring|netflix"
    r"|hollywood|box office|taquilla|actress(?:es)?|actriz|actrices|screenplay"
    r"|guionista|sequel|secuela|estreno|premiered?|streaming|hbo|albums?|songs?|canci[oó]n(?:es)?"
    r"|singer|cantante|sculptures?|esculturas?|paintings?|masterpieces?|obras? maestras?"
    r"|documental|documentary|novels?|novelas?|novelist|novelista)\b",
    re.IGNORECASE,
)
"""Spanish accents optional. Not "series", "director", "review", "trama", "actor(es)" ("threat
actor", "actores armados") or "protagonizar" ("protagonizaron una balacera"): news uses them."""

MIN_WORDS: Final = 3
MIN_DISTINCT: Final = 2
"""Measured on the 302 hand-located articles of ``geo_dev.jsonl``: every article about a work
has three or more, no event report more than two (a robbery "como de película", twice)."""


def about_a_work(text: str) -> bool:
    """True when ``text`` (title and body) reads as a piece about a film, song, book or artwork."""
    found = [fold_word(w) for w in _WORK_WORDS.findall(text)]
    return len(found) >= MIN_WORDS and len(set(found)) >= MIN_DISTINCT
