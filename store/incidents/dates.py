"""When the reported event happened, from the text and the publication date (pure, English and Spanish).

News states the day of an event in three ways, and :func:`read_dates` understands each:

* a calendar date, with or without its year: ``"el 9 de noviembre de 2025"``, ``"Nov. 1, 2025"``,
  ``"el pasado 19 de septiembre"``, ``"29 March"``;
* a weekday relative to publication: ``"este miércoles"``, ``"el pasado domingo"``, ``"on Saturday"``;
* a day word: ``"ayer"``, ``"anoche"``, ``"yesterday"``, ``"hoy"``, ``"today"``.

A date without a year takes the latest year that puts it on or before publication; a weekday is the
latest such day on or before publication (news says "este miércoles" for the Wednesday just past).
Without a publication date only calendar dates that carry their year resolve; the others still count
as ``(month, day)`` mentions, which is what :mod:`store.incidents.linker` compares when the years are
unknown. The event date is the first mention in reading order that resolves to a day no later than
publication and no more than :data:`BACKGROUND_DAYS` before it (older dates are background: "was
kidnapped in 2012").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

BACKGROUND_DAYS: Final = 45
"""A date this many days before publication, or more, is background, not the event reported."""

_MONTHS: Final = {
    "enero": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    "ene": 1,
    "abr": 4,
    "ago": 8,
    "dic": 12,
}
_WEEKDAYS: Final = {
    "lunes": 0,
    "martes": 1,
    "miercoles": 2,
    "jueves": 3,
    "viernes": 4,
    "sabado": 5,
    "domingo": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_DAY_WORDS: Final = {
    "ayer": 1,
    "anoche": 1,
    "anteayer": 2,
    "antier": 2,
    "yesterday": 1,
    "hoy": 0,
    "today": 0,
    "tonight": 0,
    "this morning": 0,
    "last night": 1,
    "esta manana": 0,
    "esta madrugada": 0,
    "this afternoon": 0,
    "esta tarde": 0,
}

_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY = "|".join(_WEEKDAYS)
_DAYWORD = "|".join(sorted((re.escape(k).replace(r"\ ", r"\s+") for k in _DAY_WORDS), key=len, reverse=True))
_YEAR = r"(?:19|20)\d\d"

# "9 de noviembre de 2025", "9 de noviembre del 2025", "29 March 2025", "1° de mayo"
_DAY_MONTH = re.compile(
    rf"\b(?P<day>[0-3]?\d)(?:°|º|o)?\s+(?:de\s+)?(?P<month>{_MONTH})\b\.?"
    rf"(?:,?\s+(?:de(?:l)?\s+)?(?P<year>{_YEAR})\b)?"
)
# "November 2, 2025", "Nov. 1", "Dec 30"
_MONTH_DAY = re.compile(
    rf"\b(?P<month>{_MONTH})\.?\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>{_YEAR})\b)?"
)
_RELATIVE_WEEKDAY = re.compile(rf"\b(?P<weekday>{_WEEKDAY})\b")
_DAY_WORD = re.compile(rf"\b(?P<word>{_DAYWORD})\b")
_YEAR_ONLY = re.compile(rf"\b(?P<year>{_YEAR})\b")


@dataclass(frozen=True, order=True)
class Mention:
    """One statement of a day in the text, in reading order (``position`` is the character offset)."""

    position: int
    month: int | None = None
    day: int | None = None
    year: int | None = None
    weekday: int | None = None
    days_before: int | None = None  # "ayer" = 1, "hoy" = 0

    def resolve(self, published: date | None) -> date | None:
        """The calendar day this mention names, given the publication day (None if it cannot say)."""
        if self.month is not None and self.day is not None:
            if self.year is not None:
                return _safe_date(self.year, self.month, self.day)
            if published is None:
                return None
            for year in (published.year, published.year - 1):
                found = _safe_date(year, self.month, self.day)
                if found is not None and found <= published + timedelta(days=1):
                    return found
            return None
        if published is None:
            return None
        if self.weekday is not None:
            return published - timedelta(days=(published.weekday() - self.weekday) % 7)
        if self.days_before is not None:
            return published - timedelta(days=self.days_before)
        return None


@dataclass(frozen=True)
class DateReading:
    """What the text says about when: the event date, every resolved day and every (month, day)."""

    event_date: date | None
    days: frozenset[date]
    month_days: frozenset[tuple[int, int]]
    years: frozenset[int]


def fold(text: str) -> str:
    """Lower case without accents: ``"Miércoles"`` -> ``"miercoles"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def mentions(text: str) -> list[Mention]:
    """Every day mentioned in ``text``, in reading order."""
    folded = fold(text)
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        for m in pattern.finditer(folded):
            month = _MONTHS[m.group("month")]
            day = int(m.group("day"))
            if not 1 <= day <= 31 or _overlaps(taken, m.span()):
                continue
            if m.group("month") == "may" and pattern is _MONTH_DAY and not _looks_like_date(folded, m):
                continue  # "may 2 officers" is a verb
            year = int(m.group("year")) if m.group("year") else None
            found.append(Mention(m.start(), month=month, day=day, year=year))
            taken.append(m.span())
    for m in _RELATIVE_WEEKDAY.finditer(folded):
        if not _overlaps(taken, m.span()) and not _is_named_date_weekday(folded, m.end()):
            found.append(Mention(m.start(), weekday=_WEEKDAYS[m.group("weekday")]))
    for m in _DAY_WORD.finditer(folded):
        word = " ".join(m.group("word").split())
        found.append(Mention(m.start(), days_before=_DAY_WORDS[word]))
    return sorted(found)


def _overlaps(spans: list[tuple[int, int]], span: tuple[int, int]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in spans)


def _looks_like_date(folded: str, m: re.Match[str]) -> bool:
    # English "May 25" is a date when a year follows or the month is capitalised in the source;
    # in folded text we accept it when it is not followed by a plural noun ("may 2 officers").
    return bool(m.group("year")) or not re.match(r"\s+[a-z]+s\b", folded[m.end() :])


def _is_named_date_weekday(folded: str, end: int) -> bool:
    """``"sábado 24 de enero"``: the weekday only names a calendar date that follows; skip it."""
    return bool(re.match(r",?\s+[0-3]?\d\b", folded[end:]))


def read_dates(title: str, text: str, published: date | None) -> DateReading:
    """Resolve every day the article states; pick the event date (see the module docstring)."""
    found = mentions(f"{title}\n{text}")
    days: set[date] = set()
    event: date | None = None
    for mention in found:
        day = mention.resolve(published)
        if day is None:
            continue
        days.add(day)
        if event is None and _plausible_event_day(day, published):
            event = day
    month_days = frozenset((m.month, m.day) for m in found if m.month is not None and m.day is not None)
    years = frozenset(int(y) for y in _YEAR_ONLY.findall(text))
    return DateReading(event, frozenset(days), month_days, years)


def _plausible_event_day(day: date, published: date | None) -> bool:
    if published is None:
        return True
    return published - timedelta(days=BACKGROUND_DAYS) < day <= published + timedelta(days=1)
