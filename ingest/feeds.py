"""Feed declarations: what to poll, read from the YAML feeds file or an OPML export.

Owns the :class:`FeedDeclaration` value and the rules that make a declaration
valid. Pure data: it never fetches anything and never touches the poller's
state. Every validation error is a :class:`FeedsFileError` naming the file and
the entry (index and name) that is wrong, so an operator can fix it at once.

YAML form (SPEC: ``feeds: [{name, url, language?, country?, interval?}]``)::

    feeds:
      - name: efe-america            # unique; becomes the ``feed`` field of every article
        url: https://www.efe.com/...
        language: es                 # optional: trusted over the feed's own <language>
        country: EC                  # optional: ISO 3166-1 alpha-2, a hint for geolocation
        interval: 10m                # optional: seconds, or 30s / 10m / 2h / 1d
        headers: {Cookie: "a=b"}     # optional extra request headers
        full_text: false             # optional: fetch article pages (needs trafilatura)
        enabled: true                # optional

OPML: every ``<outline>`` carrying an ``xmlUrl`` becomes a feed named after its
``title`` (or ``text``); duplicate names get ``-2``, ``-3``... suffixes; ``language`` and
``country`` attributes are read when present.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from wirewatch.errors import ConfigError

_KEYS = {"name", "url", "language", "country", "interval", "headers", "full_text", "enabled"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class FeedsFileError(ConfigError):
    """The feeds file cannot be read or an entry in it is invalid (the message says which)."""


@dataclass(frozen=True)
class FeedDeclaration:
    """One feed to poll. ``interval`` is in seconds (None: the poller's default)."""

    name: str
    url: str
    language: str | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2 of the outlet (upper case): where its stories usually happen."""
    interval: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    full_text: bool = False
    enabled: bool = True

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


def load_feeds(path: str | Path) -> list[FeedDeclaration]:
    """Read a feeds file, YAML or OPML (told apart by content), and return its enabled feeds."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedsFileError(f"cannot read feeds file {path}: {exc.strerror or exc}") from exc
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:200].lower()
    if head.startswith(b"<") or path.suffix.lower() in {".opml", ".xml"}:
        feeds = parse_opml(data, source=str(path))
    else:
        feeds = parse_feeds_yaml(data.decode("utf-8", "replace"), source=str(path))
    return [f for f in feeds if f.enabled]


def parse_feeds_yaml(text: str, source: str = "<feeds>") -> list[FeedDeclaration]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FeedsFileError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or "feeds" not in document:
        raise FeedsFileError(f"{source}: expected a mapping with a 'feeds' list at the top")
    entries = document["feeds"]
    if not isinstance(entries, list):
        raise FeedsFileError(f"{source}: 'feeds' must be a list, got {type(entries).__name__}")
    feeds = [_declaration(entry, f"{source}: feeds[{i}]") for i, entry in enumerate(entries)]
    _check_unique(feeds, source)
    return feeds


def parse_opml(data: bytes, source: str = "<opml>") -> list[FeedDeclaration]:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise FeedsFileError(f"{source}: not a readable OPML document: {exc}") from exc
    if root.tag.lower() != "opml":
        raise FeedsFileError(f"{source}: root element is <{root.tag}>, expected <opml>")
    feeds: list[FeedDeclaration] = []
    used: set[str] = set()
    for i, outline in enumerate(root.iter("outline")):
        url = outline.get("xmlUrl") or outline.get("xmlurl")
        if not url:
            continue  # a folder, not a feed
        base = (outline.get("title") or outline.get("text") or "").strip() or urlsplit(url).hostname or "feed"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name)
        entry = {"name": name, "url": url.strip()}
        if outline.get("language"):
            entry["language"] = outline.get("language", "")
        if outline.get("country"):
            entry["country"] = outline.get("country", "")
        feeds.append(_declaration(entry, f"{source}: outline #{i} ({base!r})"))
    return feeds


def parse_interval(value: Any) -> float:
    """``600``, ``"600"``, ``"10m"``, ``"2h"``, ``"1d"`` -> seconds (positive)."""
    if isinstance(value, bool):
        raise ValueError("interval must be a number of seconds or like '10m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"interval {value!r} is not a number of seconds or like '10m', '2h', '1d'")
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not seconds > 0:
        raise ValueError(f"interval must be positive, got {value!r}")
    return seconds


def normalize_language(value: str | None) -> str | None:
    """``'es-EC'`` -> ``'es'``; empty or malformed tags -> None."""
    if not value:
        return None
    value = value.strip()
    if not _LANGUAGE.match(value):
        return None
    return re.split(r"[-_]", value, maxsplit=1)[0].lower()


def _declaration(entry: Any, where: str) -> FeedDeclaration:
    if not isinstance(entry, dict):
        raise FeedsFileError(f"{where}: expected a mapping with at least name and url")
    label = f"{where} ({entry.get('name')!r})" if entry.get("name") else where
    unknown = set(entry) - _KEYS
    if unknown:
        raise FeedsFileError(f"{label}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise FeedsFileError(f"{label}: 'name' is required and must be a non-empty string")
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise FeedsFileError(f"{label}: 'url' is required")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise FeedsFileError(f"{label}: url {url!r} must be an absolute http(s) URL")
    language = entry.get("language")
    if language is not None:
        if not isinstance(language, str) or normalize_language(language) is None:
            raise FeedsFileError(f"{label}: language {language!r} is not a language tag like 'es' or 'pt-BR'")
        language = normalize_language(language)
    country = entry.get("country")
    if country is not None:
        if not isinstance(country, str) or not _COUNTRY.match(country.strip()):
            raise FeedsFileError(f"{label}: country {country!r} is not an ISO 3166-1 alpha-2 code like 'EC'")
        country = country.strip().upper()
    interval = None
    if entry.get("interval") is not None:
        try:
            interval = parse_interval(entry["interval"])
        except ValueError as exc:
            raise FeedsFileError(f"{label}: {exc}") from exc
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and _HEADER_NAME.match(k) and isinstance(v, str | int) for k, v in headers.items()
    ):
        raise FeedsFileError(f"{label}: 'headers' must map header names to string values")
    flags = {}
    for key in ("full_text", "enabled"):
        if key in entry and not isinstance(entry[key], bool):
            raise FeedsFileError(f"{label}: {key!r} must be true or false")
        flags[key] = entry.get(key, key == "enabled")
    return FeedDeclaration(
        name=name.strip(),
        url=url,
        language=language,
        country=country,
        interval=interval,
        headers={k: str(v) for k, v in headers.items()},
        full_text=flags["full_text"],
        enabled=flags["enabled"],
    )


def _check_unique(feeds: list[FeedDeclaration], source: str) -> None:
    seen: dict[str, int] = {}
    for i, feed in enumerate(feeds):
        if feed.name in seen:
            raise FeedsFileError(
                f"{source}: feeds[{i}] ({feed.name!r}): name already used by feeds[{seen[feed.name]}]; "
                "names must be unique (they label every article)"
            )
        seen[feed.name] = i
