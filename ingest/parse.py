"""Feed documents -> entries: RSS 0.9x/1.0/2.0, Atom and RDF via feedparser, JSON Feed by hand.

Owns turning the bytes of one document into a :class:`ParsedFeed` of
:class:`RawEntry` values, or into a :class:`ParseError` that says why not. It
must not fetch (it only ever hands *bytes* to feedparser, never a URL), keep
state, or decide what is new; cleaning text and building ids is
:mod:`ingest.normalize`'s job.

Decisions, in order:

1. **Hostile XML is refused before any parser sees it.** A scan of the
   *whole* (size-bounded) body — not just what looks like the prolog, since
   an unclosed comment can make a DTD look like content — finds every entity
   declaration and rejects parameter entities, external entities
   (``SYSTEM``/``PUBLIC``: XXE), entities that reference other entities (the
   "billion laughs" bomb), long entity values, many entities, declarations it
   cannot read, and documents whose entity references would expand to more
   than ``_MAX_EXPANSION`` characters -> :class:`HostileDocumentError`. Plain
   external DOCTYPEs (``<!DOCTYPE rss PUBLIC ... rss-0.91.dtd>``) and a few
   small character entities (``<!ENTITY nbsp "&#160;">``) are fine.
2. **JSON Feed** (``application/feed+json`` or a body starting with ``{``) is
   read with :mod:`json`; invalid JSON -> :class:`MalformedFeedError`.
3. **feedparser** handles the XML dialects, wrong or missing encodings
   included. A ``bozo`` document that still yields entries is used and its
   problem is returned in :attr:`ParsedFeed.problem` for the caller to log.
4. No entries and no feed structure: an HTML page -> :class:`NotAFeedError`
   naming the page's feed-discovery links; anything else that is broken ->
   :class:`MalformedFeedError`. A well-formed feed with zero items is fine.

:func:`parse_document` never raises anything but :class:`ParseError`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser

from ingest.errors import IngestError
from ingest.redaction import redact_url

log = logging.getLogger(__name__)

_PRESCAN_BYTES = 1 << 20
_MAX_ENTITIES = 64
_MAX_ENTITY_VALUE = 256
_MAX_EXPANSION = 1 << 20
"""Characters all entity references of a document may add when expanded."""
_ENTITY_OPEN = re.compile(r"<!ENTITY", re.I)
_ENTITY_DECL = re.compile(r"<!ENTITY\s+(%\s*)?([^\s>]+)\s*(.*?)>", re.S | re.I)
_HTML_SIGN = re.compile(rb"<!doctype\s+html|<html[\s>]|<body[\s>]|<head[\s>]", re.I)
_FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/json",
    "text/xml",
    "application/xml",
}


class ParseError(IngestError):
    """The document yields no usable feed; each subclass fixes its ``kind`` and ``retriable``."""

    kind = "malformed"
    retriable = True


class HostileDocumentError(ParseError):
    """Entity declarations that could expand without bound or read local files."""

    kind = "hostile"
    retriable = False


class NotAFeedError(ParseError):
    """An HTML page where a feed was expected; ``discovered`` lists its feed links."""

    kind = "not_a_feed"
    retriable = False

    def __init__(self, detail: str, discovered: list[str]) -> None:
        super().__init__(detail)
        self.discovered = discovered


class MalformedFeedError(ParseError):
    """Not well-formed beyond recovery, truncated, or of an unknown shape (a half-written file, a
    CMS error page served as XML: it often passes, so it is retried like a 5xx)."""

    kind = "malformed"
    retriable = True


@dataclass(frozen=True)
class RawEntry:
    """One entry as the document has it (HTML still in, dates as parsed when parseable)."""

    guid: str | None = None
    link: str | None = None
    title: str = ""
    summary_html: str = ""
    content_html: str = ""
    published: datetime | None = None
    published_text: str | None = None
    """The date as written, when no parser understood it (normalisation tries harder)."""
    language: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    format: str
    title: str = ""
    link: str | None = None
    language: str | None = None
    entries: tuple[RawEntry, ...] = ()
    problem: str | None = None
    """Why the document is not clean (bozo), when entries were recovered anyway."""
    base_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_document(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse one feed document fetched from ``url``; raises only :class:`ParseError`."""
    if not body.strip():
        raise MalformedFeedError("empty document")
    check_not_hostile(body)
    if _is_json(body, content_type):
        return parse_json_feed(body, url=url)
    # Content sniffing decides what the document is, not the server's Content-Type
    # (feeds served as text/html are common); only an explicit charset is passed on.
    charset = _charset(content_type)
    # No content-location: relative links stay relative here and normalisation resolves them
    # against the channel's own <link> (feeds are often served from another host than the site).
    headers = {"content-type": f"application/xml; charset={charset}" if charset else "application/xml"}
    try:
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=True)
    except Exception as exc:  # feedparser's internals raise many types; map them all at this boundary
        log.warning("feedparser failed on %s", redact_url(url), exc_info=True)
        raise MalformedFeedError(f"parser failure {type(exc).__name__}: {exc}") from exc
    problem = _bozo_text(parsed) if parsed.get("bozo") else None
    entries = tuple(_feedparser_entry(e) for e in parsed.entries)
    version = parsed.get("version") or ""
    if not entries:
        if _HTML_SIGN.search(body[:_PRESCAN_BYTES]) and not version:
            links = discover_feed_links(body, url)
            hint = f"; it links to feeds: {', '.join(links)}" if links else "; it links to no feed"
            raise NotAFeedError(f"{redact_url(url)} served an HTML page, not a feed{hint}", links)
        if problem:
            raise MalformedFeedError(f"no entries recovered ({problem})")
        if not version:
            raise MalformedFeedError("not a recognisable RSS, Atom, RDF or JSON feed")
    feed = dict.get(parsed, "feed") or {}
    return ParsedFeed(
        format=version or "unknown",
        title=_s(dict.get(feed, "title")),
        link=_s(dict.get(feed, "link")) or None,
        language=_s(dict.get(feed, "language")) or None,
        entries=entries,
        problem=problem,
        base_url=url,
    )


def parse_json_feed(body: bytes, *, url: str) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        document = json.loads(body.decode("utf-8-sig", "replace"))
    except (ValueError, RecursionError) as exc:
        raise MalformedFeedError(f"invalid JSON: {str(exc)[:200]}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("items", []), list):
        raise MalformedFeedError("JSON document is not a JSON Feed (no items list)")
    version = _s(document.get("version"))
    if "jsonfeed.org/version/" not in version and "items" not in document:
        raise MalformedFeedError("JSON document is not a JSON Feed (no version, no items)")
    entries = []
    for item in document.get("items", []):
        if not isinstance(item, dict):
            continue
        published_text = _s(item.get("date_published") or item.get("date_modified")) or None
        link = _s(item.get("url") or item.get("external_url")) or None
        entries.append(
            RawEntry(
                guid=_s(item.get("id")) or None,
                link=link,
                title=_s(item.get("title")),
                summary_html=_s(item.get("summary")),
                content_html=_s(item.get("content_html")) or _html_escape(_s(item.get("content_text"))),
                published=_iso_date(published_text),
                published_text=published_text,
                language=_s(item.get("language")) or None,
                author=_json_author(item) or _json_author(document),
            )
        )
    suffix = version.rsplit("/", 1)[-1].replace(".", "") if version else ""
    suffix = "10" if suffix == "1" else suffix
    return ParsedFeed(
        format=f"jsonfeed{suffix}",
        title=_s(document.get("title")),
        link=_s(document.get("home_page_url")) or None,
        language=_s(document.get("language")) or None,
        entries=tuple(entries),
        base_url=url,
    )


def check_not_hostile(body: bytes) -> None:
    """Refuse documents whose DTD could expand entities without bound or pull in files.

    Scans every byte of the body: where the prolog ends is exactly what an attacker blurs (an
    unclosed comment holding ``<a`` once hid a DTD from a prolog-only scan).
    """
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(body) > 3 and (body[0] == 0 or body[1] == 0)):
        text = body.decode("utf-16", "replace")
    else:
        text = body.decode("latin-1")
    if not _ENTITY_OPEN.search(text):
        return
    opened = len(_ENTITY_OPEN.findall(text))
    if opened > _MAX_ENTITIES:
        raise HostileDocumentError(f"{opened} entity declarations in the DTD")
    declarations = _ENTITY_DECL.findall(text)
    if len(declarations) != opened:
        raise HostileDocumentError("unparseable entity declaration in the DTD")
    expansion = 0
    for percent, name, rest in declarations:
        if percent:
            raise HostileDocumentError(f"parameter entity %{name} declared in the DTD")
        if re.match(r"(SYSTEM|PUBLIC)\b", rest, re.I):
            raise HostileDocumentError(f"external entity {name} declared in the DTD")
        value = rest.strip()[1:-1] if rest.strip()[:1] in {'"', "'"} else rest
        if re.search(r"&(?!#)", value):
            raise HostileDocumentError(f"entity {name} refers to other entities (expansion bomb)")
        if len(value) > _MAX_ENTITY_VALUE:
            raise HostileDocumentError(f"entity {name} has a {len(value)}-character value")
        expansion += len(value) * text.count(f"&{name};")
        if expansion > _MAX_EXPANSION:
            raise HostileDocumentError(f"entity references would add over {_MAX_EXPANSION} characters")


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        rels = a.get("rel", "").lower().split()
        if "alternate" in rels and a.get("type", "").lower().split(";")[0].strip() in _FEED_TYPES:
            self.links.append((a.get("href", ""), a.get("type", "")))


def discover_feed_links(body: bytes, url: str) -> list[str]:
    """The ``<link rel=alternate type=...rss/atom/json>`` targets of an HTML page, absolute."""
    finder = _LinkFinder()
    try:
        finder.feed(body[:_PRESCAN_BYTES].decode("utf-8", "replace"))
        finder.close()
    except Exception:  # html.parser is lenient but not total; discovery is best effort
        log.debug("feed discovery stopped early on %s", redact_url(url), exc_info=True)
    found: list[str] = []
    for href, _type in finder.links:
        if href.strip():
            absolute = urljoin(url, href.strip())
            if absolute not in found:
                found.append(absolute)
    return found


def _feedparser_entry(entry: Any) -> RawEntry:
    # dict.get, not entry.get: FeedParserDict maps missing keys to others with a DeprecationWarning.
    def raw(key: str) -> Any:
        return dict.get(entry, key)

    parsed = raw("published_parsed") or raw("updated_parsed") or raw("created_parsed")
    published = None
    if parsed:
        try:
            published = datetime(*parsed[:6]).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            published = None
    content = raw("content") or []
    content_html = _s(content[0].get("value")) if content and isinstance(content[0], dict) else ""
    link = _s(raw("feedburner_origlink")) or _s(raw("link"))
    title_detail = raw("title_detail")
    return RawEntry(
        guid=_s(raw("id")) or None,
        link=link or None,
        title=_s(raw("title")),
        summary_html=_s(raw("summary")),
        content_html=content_html,
        published=published,
        published_text=None if published else (_s(raw("published") or raw("updated")) or None),
        language=_s(dict.get(title_detail, "language")) or None if isinstance(title_detail, dict) else None,
        author=_s(raw("author")) or None,
    )


def _is_json(body: bytes, content_type: str | None) -> bool:
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"{":
        return True
    ct = (content_type or "").lower()
    return "json" in ct and start in {b"[", b"{"}


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.I)
    return match.group(1) if match else None


def _bozo_text(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc is not None else "not well-formed"


def _iso_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _json_author(obj: dict[str, Any]) -> str | None:
    authors = obj.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return _s(authors[0].get("name")) or None
    author = obj.get("author")
    return _s(author.get("name")) or None if isinstance(author, dict) else None


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))
