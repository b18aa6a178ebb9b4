"""A generated, seeded corpus of feed entries whose fate through the pipeline is known in advance.

Owns the entries (English and Spanish, known URL and GUID, a release time
relative to the start of the stream), how they are split into feeds, and the
rendering of a feed document (RSS 2.0 or Atom) listing the entries released so
far. Expected labels come from the keyword baseline applied to exactly the
plain text the poller will hand the classifier, so with ``WIREWATCH_TAGGER=keywords``
the events of every stored article are computable.

Pure data: no sockets, no clock (the caller passes "seconds since the stream
started"), no Kafka, no database.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from classify.keywords import KeywordTagger
from classify.labels import TagInput

CITIES = ("Guayaquil", "Culiacán", "Tegucigalpa", "Rosario", "Cali", "Lima", "Quito", "Monterrey")

SENTENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "kidnapping": (
            "Gunmen kidnapped a businessman outside his shop in {city}.",
            "Police said the abducted driver was freed after two days in {city}.",
        ),
        "shootout": (
            "Soldiers and gang members exchanged fire for an hour in {city}.",
            "A gunfight broke out near the main market of {city}.",
        ),
        "extortion": (
            "Shop owners in {city} said a gang demanded protection money every week.",
            "Prosecutors charged four men with extortion of bus drivers in {city}.",
        ),
        "none": (
            "The city council of {city} approved next year's budget on Tuesday.",
            "Banana exports from {city} rose twelve percent in the quarter.",
            "A new bridge over the river in {city} opened to traffic.",
        ),
    },
    "es": {
        "kidnapping": (
            "Hombres armados secuestraron a un comerciante frente a su tienda en {city}.",
            "La policía liberó a un conductor que permanecía secuestrado en {city}.",
        ),
        "shootout": (
            "Un tiroteo entre policías y pandilleros dejó dos heridos en {city}.",
            "Militares y sicarios se enfrentaron durante una hora en {city}.",
        ),
        "extortion": (
            "Comerciantes de {city} denunciaron extorsiones de una banda criminal.",
            "La fiscalía acusó a cuatro hombres de extorsión a transportistas en {city}.",
        ),
        "none": (
            "El concejo municipal de {city} aprobó el presupuesto del próximo año.",
            "Las exportaciones de banano de {city} crecieron un doce por ciento.",
            "Un nuevo puente sobre el río de {city} se abrió al tráfico.",
        ),
    },
}
HEADLINES = {"en": "Wire report {n} from {city}", "es": "Despacho {n} desde {city}"}


@dataclass(frozen=True)
class Entry:
    """One corpus entry: what the feed serves and what the database must end up holding."""

    index: int
    feed: str
    language: str
    guid: str
    path: str
    """URL path on the feed server; the stored ``url`` is ``base + path``."""
    title: str
    text: str
    release: float
    """Seconds after the start of the stream at which the entry appears in its feed."""
    labels: tuple[str, ...]
    """What the keyword baseline tags it with (sorted)."""


@dataclass(frozen=True)
class CorpusFeed:
    name: str
    language: str
    format: str  # "rss" or "atom"
    entries: tuple[Entry, ...]
    releases: tuple[float, ...] = field(repr=False, default=())

    def released(self, elapsed: float, window: float | None = None) -> tuple[Entry, ...]:
        """The entries released ``elapsed`` seconds into the stream (oldest first); with ``window``,
        only those released in the last ``window`` seconds (a publisher's rolling feed)."""
        end = bisect_right(self.releases, elapsed)
        start = 0 if window is None else bisect_right(self.releases, elapsed - window)
        return self.entries[start:end]


@dataclass(frozen=True)
class Corpus:
    seed: int
    feeds: tuple[CorpusFeed, ...]
    stream_seconds: float
    epoch: datetime
    """Wall-clock time mapped to release 0, used for the entries' publication dates."""

    @property
    def entries(self) -> list[Entry]:
        return [e for f in self.feeds for e in f.entries]

    def feed(self, name: str) -> CorpusFeed:
        return next(f for f in self.feeds if f.name == name)


def expected_labels(title: str, text: str) -> tuple[str, ...]:
    prediction = KeywordTagger().predict([TagInput(id="x", title=title, text=text)])[0]
    return tuple(sorted(prediction.labels))


def build_corpus(
    seed: int,
    entries: int = 600,
    feeds: int = 6,
    stream_seconds: float = 15.0,
    *,
    prefix: str = "ww",
    atom_every: int = 3,
) -> Corpus:
    """``entries`` entries spread over ``feeds`` feeds (half English, half Spanish), released
    uniformly at random over ``stream_seconds``. Same seed, same corpus."""
    rng = random.Random(seed)
    names = [
        (f"{prefix}-{'en' if i % 2 == 0 else 'es'}-{i}", "en" if i % 2 == 0 else "es") for i in range(feeds)
    ]
    releases = sorted(rng.uniform(0, stream_seconds) for _ in range(entries))
    per_feed: dict[str, list[Entry]] = {name: [] for name, _ in names}
    for index, release in enumerate(releases):
        name, language = names[rng.randrange(feeds)]
        city = rng.choice(CITIES)
        wanted = [label for label in ("kidnapping", "shootout", "extortion") if rng.random() < 0.3]
        sentences = [rng.choice(SENTENCES[language][label]).format(city=city) for label in wanted]
        sentences.append(rng.choice(SENTENCES[language]["none"]).format(city=city))
        rng.shuffle(sentences)
        title = HEADLINES[language].format(n=index, city=city)
        text = " ".join(sentences)
        guid = f"urn:{prefix}:{seed}:{index:05d}"
        per_feed[name].append(
            Entry(
                index=index,
                feed=name,
                language=language,
                guid=guid,
                path=f"/news/{name}/{index:05d}",
                title=title,
                text=text,
                release=release,
                labels=expected_labels(title, text),
            )
        )
    built = tuple(
        CorpusFeed(
            name=name,
            language=language,
            format="atom" if atom_every and i % atom_every == atom_every - 1 else "rss",
            entries=tuple(per_feed[name]),
            releases=tuple(e.release for e in per_feed[name]),
        )
        for i, (name, language) in enumerate(names)
    )
    return Corpus(seed=seed, feeds=built, stream_seconds=stream_seconds, epoch=datetime.now(UTC))


def render(feed: CorpusFeed, entries: tuple[Entry, ...], base: str, epoch: datetime) -> bytes:
    """The feed document listing ``entries`` (newest first, as publishers do)."""
    items = list(reversed(entries))
    if feed.format == "atom":
        return _atom(feed, items, base, epoch)
    return _rss(feed, items, base, epoch)


def _when(entry: Entry, epoch: datetime) -> datetime:
    return (epoch + timedelta(seconds=entry.release)).replace(microsecond=0)


def _rss(feed: CorpusFeed, items: list[Entry], base: str, epoch: datetime) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(feed.name)}</title><link>{base}/</link><language>{feed.language}</language>",
    ]
    for e in items:
        parts.append(
            f"<item><title>{escape(e.title)}</title><link>{base}{e.path}</link>"
            f'<guid isPermaLink="false">{e.guid}</guid>'
            f"<pubDate>{format_datetime(_when(e, epoch))}</pubDate>"
            f"<description>{escape(e.text)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def _atom(feed: CorpusFeed, items: list[Entry], base: str, epoch: datetime) -> bytes:
    updated = _when(items[0], epoch) if items else epoch.replace(microsecond=0)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:lang="{feed.language}">',
        f"<title>{escape(feed.name)}</title><id>urn:feed:{feed.name}</id>"
        f"<updated>{updated.isoformat()}</updated><link href={quoteattr(base + '/')}/>",
    ]
    for e in items:
        parts.append(
            f"<entry><title>{escape(e.title)}</title><link href={quoteattr(base + e.path)}/>"
            f"<id>{e.guid}</id><updated>{_when(e, epoch).isoformat()}</updated>"
            f'<summary type="text">{escape(e.text)}</summary></entry>'
        )
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")
