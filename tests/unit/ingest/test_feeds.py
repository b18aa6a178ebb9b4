"""Feed declarations: YAML and OPML, and errors that name the bad entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.feeds import FeedsFileError, load_feeds, parse_feeds_yaml, parse_interval, parse_opml

from .conftest import FIXTURES


def test_yaml_file_is_read_with_defaults_and_disabled_feeds_left_out() -> None:
    feeds = load_feeds(FIXTURES / "feeds_valid.yaml")
    assert [f.name for f in feeds] == ["noticias", "wire"]
    noticias, wire = feeds
    assert noticias.language == "es" and noticias.interval == 600.0
    assert wire.headers == {"X-Token": "abc"} and wire.full_text and wire.interval is None
    assert noticias.host == "noticias.example.org"


def test_opml_outlines_become_feeds_with_unique_names() -> None:
    feeds = load_feeds(FIXTURES / "feeds.opml")
    assert [(f.name, f.url) for f in feeds] == [
        ("Noticias", "https://noticias.example.org/rss"),
        ("Noticias-2", "https://otra.example.org/rss"),
        ("Wire", "https://wire.example.com/atom.xml"),
    ]
    assert feeds[2].language == "en"


def test_the_repo_feeds_file_is_valid() -> None:
    feeds = load_feeds(Path(__file__).resolve().parents[3] / "feeds.yaml")
    assert len(feeds) >= 8
    assert all(f.url.startswith("https://") for f in feeds)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("feeds:\n  - name: a\n", r"feeds\[0\] \('a'\): 'url' is required"),
        ("feeds:\n  - url: https://x.example/rss\n", r"feeds\[0\]: 'name' is required"),
        (
            "feeds:\n  - {name: a, url: 'ftp://x/rss'}\n",
            r"\('a'\): url 'ftp://x/rss' must be an absolute http",
        ),
        (
            "feeds:\n  - {name: a, url: 'https://x/', intervall: 5}\n",
            r"\('a'\): unknown key\(s\) \['intervall'\]",
        ),
        ("feeds:\n  - {name: a, url: 'https://x/', interval: soon}\n", r"\('a'\): interval 'soon'"),
        ("feeds:\n  - {name: a, url: 'https://x/', language: '12'}\n", r"\('a'\): language '12'"),
        (
            "feeds:\n  - {name: a, url: 'https://x/'}\n  - {name: a, url: 'https://y/'}\n",
            r"feeds\[1\] \('a'\).*feeds\[0\]",
        ),
        ("feeds: {name: a}\n", "'feeds' must be a list"),
        ("- just a list\n", "expected a mapping with a 'feeds' list"),
        ("feeds: [\n", "not valid YAML"),
        (
            "feeds:\n  - {name: a, url: 'https://x/', full_text: 'yes'}\n",
            r"'full_text' must be true or false",
        ),
    ],
)
def test_invalid_entries_are_named(document: str, message: str) -> None:
    with pytest.raises(FeedsFileError, match=message):
        parse_feeds_yaml(document, source="feeds.yaml")


def test_missing_file_and_bad_opml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(FeedsFileError, match="cannot read feeds file"):
        load_feeds(tmp_path / "nope.yaml")
    with pytest.raises(FeedsFileError, match="not a readable OPML"):
        parse_opml(b"<opml><body><outline", source="x.opml")
    with pytest.raises(FeedsFileError, match="not a readable OPML"):
        parse_opml(b'<!DOCTYPE opml [<!ENTITY a "b">]><opml/>', source="x.opml")


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90.0), ("90", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0)]
)
def test_intervals(value: object, seconds: float) -> None:
    assert parse_interval(value) == seconds


@pytest.mark.parametrize("value", [0, -5, "0m", True, "ten"])
def test_bad_intervals(value: object) -> None:
    with pytest.raises(ValueError):
        parse_interval(value)
