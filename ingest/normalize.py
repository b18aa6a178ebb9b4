"""Entries -> :class:`ArticleSeen`: stable ids, clean text, UTC dates, a language.

Owns the pure rules that turn a :class:`~ingest.parse.RawEntry` into the
contract message. No I/O, no clock (``fetched_at`` is passed in), no state: the
poller decides revisions and first sightings with :mod:`ingest.state`.

* **article_id** (32 hex chars of SHA-256) from, in order: the canonical URL
  (tracking parameters stripped, relative links resolved against the channel
  ``<link>`` — else the document URL — as feeds are often served from a CDN, host
  lower-cased, default port, empty query and ``www.`` dropped, scheme ignored
  so an http -> https move keeps the ids); else the GUID (scoped by the feed
  name, since bare GUIDs like ``12345`` collide between publishers); else a
  hash of the content (scoped the same way). The URL is what merges copies
  of one story across feeds.
* **A GUID is never overridden by a shared link**: within one feed, a URL id
  belongs to the GUID that claimed it first (``owners``, from the poller's
  state; else the first in document order); another item with the same link
  but a different GUID gets the id of its GUID. So an unrelated item
  prepended with the same link cannot take over an article's id.
* **Duplicates inside one document**: an entry whose id *and* content repeat an
  earlier one is dropped; one with the same id but different content (two
  items sharing a GUID, or a link without GUIDs) gets an id derived from the
  base id and its own content hash, so neither is lost and re-polls give the
  same ids again.
* **Text**: titles and summaries as clean text (tags stripped, entities
  decoded, whitespace collapsed, NUL and other control characters removed
  since PostgreSQL text cannot hold NUL); the original HTML is kept in
  ``summary_html`` (feedparser's sanitised form), minus NULs.
* **content_hash** covers title + summary + text, clean: markup-only churn
  (tracking pixels) is not an edit.
* **Dates** to UTC; strings feedparser could not read get a second chance
  (Portuguese/Spanish month names, ``dd/mm/yyyy``, ``dd.mm.yyyy``); naive
  times are taken as UTC. No date: ``published_at = fetched_at`` and
  ``published_at_inferred = True`` (the poller keeps the first sighting).
* **Language**: the entry's, else the declaration's, else the feed's own
  ``<language>``, else detected with py3langid (when confident), else None.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import hashlib
import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from ingest.feeds import FeedDeclaration, normalize_language
from ingest.parse import ParsedFeed, RawEntry
from wirewatch.contract import ArticleSeen

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid",
        "_ga", "_gl", "cmpid", "ocid", "ito", "xtor", "smid", "smtyp", "ref", "ref_src", "mkt_tok",
        "__twitter_impression", "s_cid", "wt.mc_id", "wt_mc_id", "rss_id",
    }
)  # fmt: skip
"""Query parameters that only say how a reader arrived (never which article): dropped from ids."""
TRACKING_PREFIXES = ("utm_", "ns_", "at_", "hsa_", "pk_", "mtm_", "oly_", "vero_", "__s")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BLOCK_TAGS = {
    "p", "br", "div", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "section", "article", "header", "footer", "figure", "figcaption", "pre", "hr", "dd", "dt",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "noscript", "template", "head", "title"}
_HAS_TAG = re.compile(r"</?[A-Za-z][^>]*>|&[#\w]+;")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_NUMERIC_DATE = re.compile(
    r"^\s*(?:\w+,?\s+)?(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*(.*)$"
)
_MONTHS = {
    "ene": "Jan", "fev": "Feb", "feb": "Feb", "mar": "Mar", "abr": "Apr", "avr": "Apr", "mai": "May",
    "may": "May", "jun": "Jun", "jui": "Jul", "jul": "Jul", "ago": "Aug", "aoû": "Aug", "aou": "Aug",
    "set": "Sep", "sep": "Sep", "out": "Oct", "oct": "Oct", "okt": "Oct", "nov": "Nov", "dez": "Dec",
    "dic": "Dec", "dec": "Dec", "déc": "Dec", "jan": "Jan", "apr": "Apr", "aug": "Aug", "mär": "Mar",
}  # fmt: skip
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
_KEEP_NEWLINES = str.maketrans({"\t": " ", "\r": " "})
_NO_NEWLINES = str.maketrans({"\t": " ", "\r": " ", "\n": " "})
_SEGMENT_SAFE = ":@!$&'()*+,;=~-._"
_DETECT_MIN_CHARS = 20
# Longest fields kept (the rest is cut): an ArticleSeen must fit in one Kafka message (1 MiB by
# default) even if every character takes 4 bytes, and still fit once tagged (article + evidence).
# A gigantic entry that cannot be produced would be retried forever and block every feed behind it.
log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 40_000
MAX_TEXT_CHARS = 100_000
MAX_HTML_CHARS = 80_000
MAX_URL_CHARS = 4_096
"""Longer links are not article URLs (data: payloads, tracking blobs); the entry falls back to its GUID."""
MAX_HOST_CHARS = 253
"""The longest DNS name: a link whose host is longer is not a link (``source`` is an index key)."""
MAX_GUID_CHARS = 1_000
"""The ``guid`` field is cut here; the id is still derived from the whole GUID."""
_DETECT_MIN_PROBABILITY = 0.5


@dataclass(frozen=True)
class NormalizedFeed:
    """The articles of one document, in document order, and what was dropped."""

    articles: tuple[ArticleSeen, ...]
    entries: int
    duplicates_dropped: int
    candidates: tuple[ArticleSeen, ...] = ()
    """Every entry with its base id, before :func:`resolve_ids` (to resolve again with ``owners``)."""


def normalize_feed(
    parsed: ParsedFeed,
    feed: FeedDeclaration,
    fetched_at: datetime,
    owners: Mapping[str, str] | None = None,
) -> NormalizedFeed:
    """Every entry of ``parsed`` as a revision-1 :class:`ArticleSeen` with in-document duplicates resolved.

    ``owners`` maps URL ids to the GUID that owns them in this feed (see :func:`resolve_ids`).
    """
    base = link_base(parsed, feed.url)
    feed_language = feed.language or normalize_language(parsed.language)
    candidates = tuple(normalize_entry(e, feed, base, feed_language, fetched_at) for e in parsed.entries)
    articles, dropped = resolve_ids(candidates, feed.name, owners or {})
    return NormalizedFeed(articles, len(parsed.entries), dropped, candidates)


def resolve_ids(
    candidates: Sequence[ArticleSeen], feed_name: str, owners: Mapping[str, str]
) -> tuple[tuple[ArticleSeen, ...], int]:
    """Final ids for one document's entries (base ids as :func:`normalize_entry` made them).

    An entry whose id comes from its link and which has a GUID keeps the link's id only if that
    GUID owns it: the owner in ``owners`` (the poller's memory of this feed), else the first GUID
    in document order; others get their GUID's id. Then repeated (id, content) pairs are dropped
    and same-id different-content entries get twin ids. Returns the articles and how many were dropped.
    """
    claimed = dict(owners)
    articles: list[ArticleSeen] = []
    by_id: dict[str, set[str]] = {}
    dropped = 0
    for candidate in candidates:
        article = candidate
        if article.url and article.guid:
            owner = claimed.setdefault(article.article_id, article.guid)
            if owner != article.guid:
                article = article.model_copy(update={"article_id": guid_id(feed_name, article.guid)})
        hashes = by_id.get(article.article_id)
        if hashes is None:
            by_id[article.article_id] = {article.content_hash}
        elif article.content_hash in hashes:
            dropped += 1
            continue
        else:
            hashes.add(article.content_hash)
            twin = _digest(f"twin\x00{article.article_id}\x00{article.content_hash}")
            article = article.model_copy(update={"article_id": twin})
            by_id.setdefault(twin, {article.content_hash})
        articles.append(article)
    return tuple(articles), dropped


def link_base(parsed: ParsedFeed, feed_url: str) -> str:
    """Base of relative entry links: the channel's <link> when absolute, else the document URL."""
    document = parsed.base_url or feed_url
    site = canonical_url(parsed.link, document) if parsed.link else None
    return site or document


def normalize_entry(
    entry: RawEntry,
    feed: FeedDeclaration,
    base_url: str,
    feed_language: str | None,
    fetched_at: datetime,
) -> ArticleSeen:
    url = canonical_url(entry.link, base_url) if entry.link else None
    guid = strip_controls(entry.guid.strip()) if entry.guid and entry.guid.strip() else None
    if url is None and guid and re.match(r"https?://", guid, re.I):
        url = canonical_url(guid, base_url)
    if url is not None and (len(url) > MAX_URL_CHARS or len(urlsplit(url).hostname or "") > MAX_HOST_CHARS):
        log.warning("feed %s: link of %d characters ignored", feed.name, len(url))
        url = None
    title = clean_title(entry.title)[:MAX_TITLE_CHARS]
    summary = clean_text(entry.summary_html)[:MAX_SUMMARY_CHARS]
    text = clean_text(entry.content_html)[:MAX_TEXT_CHARS] if entry.content_html else summary
    content = content_hash(title, summary, text)
    published = entry.published or parse_date_text(entry.published_text)
    language = normalize_language(entry.language) or feed_language or detect_language(f"{title}\n{text}")
    return ArticleSeen(
        article_id=article_id(feed.name, url, guid, content),
        feed=feed.name,
        source=_source(url or base_url),
        url=url,
        guid=guid[:MAX_GUID_CHARS] if guid else None,
        title=title,
        summary=summary,
        text=text,
        summary_html=strip_controls(entry.summary_html or entry.content_html, keep_newlines=True)[
            :MAX_HTML_CHARS
        ]
        or None,
        language=language,
        country_hint=feed.country,
        published_at=published or fetched_at,
        published_at_inferred=published is None,
        first_seen_at=fetched_at,
        fetched_at=fetched_at,
        content_hash=content,
    )


# ---- ids ----------------------------------------------------------------------------------------


def article_id(feed_name: str, url: str | None, guid: str | None, content: str) -> str:
    """The stable id: canonical URL, else feed-scoped GUID, else feed-scoped content hash."""
    if url:
        return _digest(f"url\x00{url_identity(url)}")
    if guid:
        return guid_id(feed_name, guid)
    return _digest(f"hash\x00{feed_name}\x00{content}")


def guid_id(feed_name: str, guid: str) -> str:
    """The id of an entry known by its GUID (scoped by the feed: bare GUIDs collide between publishers)."""
    return _digest(f"guid\x00{feed_name}\x00{guid}")


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """Absolute, tracking-free, normalised form of ``url``; None if it is not an http(s) URL."""
    if not url:
        return None
    url = strip_controls(url).strip()
    try:
        absolute = urljoin(base, url) if base else url
        parts = urlsplit(absolute)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = _normalize_path(parts.path)
    query = urlencode(sorted(_kept_params(parts.query)), doseq=True, quote_via=quote)
    fragment = "" if _is_tracking_fragment(parts.fragment) else _requote(parts.fragment)
    return urlunsplit((scheme, netloc, path, query, fragment))


def url_identity(canonical: str) -> str:
    """What makes two canonical URLs the same article: scheme and a leading ``www.`` do not."""
    parts = urlsplit(canonical)
    netloc = parts.netloc.removeprefix("www.")
    return urlunsplit(("", netloc, parts.path, parts.query, parts.fragment))


def content_hash(title: str, summary: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n\x1f{summary}\n\x1f{text}".encode("utf-8", "replace")).hexdigest()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def _kept_params(query: str) -> list[tuple[str, str]]:
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        low = key.lower()
        if low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES):
            continue
        kept.append((key, value))
    return kept


def _is_tracking_fragment(fragment: str) -> bool:
    low = fragment.lower()
    return not fragment or low.startswith(("xtor=", "utm_", "ref=", "at_medium", "src="))


def _normalize_path(path: str) -> str:
    """Re-encode each segment (an encoded ``/`` stays encoded), then drop ``.`` and ``..`` segments."""
    segments: list[str] = []
    for segment in (_requote(raw, safe=_SEGMENT_SAFE) for raw in path.split("/")):
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    joined = "/".join(segments)
    return joined if joined.startswith("/") else "/" + joined


def _requote(value: str, safe: str = _SEGMENT_SAFE + "/") -> str:
    """Decode then re-encode percent escapes so ``%7e``, ``~`` and ``%7E`` compare equal."""
    if not value:
        return ""
    try:
        return quote(unquote(value, errors="strict"), safe=safe)
    except UnicodeError:  # escapes of non-UTF-8 bytes: keep them as they are
        return quote(value, safe=safe + "%")


def _source(url: str) -> str | None:
    host = urlsplit(url).hostname
    return host.removeprefix("www.")[:MAX_HOST_CHARS] if host else None


# ---- text ---------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def clean_text(markup: str | None) -> str:
    """HTML -> plain text: tags out, entities decoded, paragraphs kept as single newlines."""
    if not markup:
        return ""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
        text = "".join(extractor.parts)
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    return _collapse(strip_controls(text, keep_newlines=True))


def clean_title(title: str | None) -> str:
    """A one-line title; markup is parsed only when there is some (so ``5<10`` survives)."""
    if not title:
        return ""
    text = clean_text(title) if _HAS_TAG.search(title) else title
    return _collapse(strip_controls(text)).replace("\n", " ")


def strip_controls(value: str, keep_newlines: bool = False) -> str:
    """Remove NUL, other C0/C1 controls, lone surrogates and non-characters (tabs become spaces)."""
    return _CONTROLS.sub("", value).translate(_KEEP_NEWLINES if keep_newlines else _NO_NEWLINES)


def _collapse(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# ---- dates --------------------------------------------------------------------------------------


def parse_date_text(value: str | None) -> datetime | None:
    """Second chance for dates feedparser could not read; UTC, or None."""
    if not value or not value.strip():
        return None
    value = strip_controls(value).strip()
    match = _NUMERIC_DATE.match(value)
    if match:
        a, b, c, hh, mm, ss, _rest = match.groups()
        year, month, day = (int(a), int(b), int(c)) if len(a) == 4 else (int(c), int(b), int(a))
        if year < 100:
            year += 2000
        try:
            return datetime(year, month, day, int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=UTC)
        except ValueError:
            return None
    words = [_MONTHS.get(w.lower()[:3], w) if w[:1].isalpha() else w for w in re.split(r"(\W+)", value)]
    try:
        parsed = email.utils.parsedate_to_datetime("".join(words))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ---- language -----------------------------------------------------------------------------------


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code when py3langid is confident enough, else None."""
    sample = text.strip()[:2000]
    if len(sample) < _DETECT_MIN_CHARS:
        return None
    language, probability = _identifier().classify(sample)
    return str(language) if probability >= _DETECT_MIN_PROBABILITY else None
