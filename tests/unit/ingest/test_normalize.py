"""Normalisation: ids, canonical URLs, clean text, dates and language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls

from ingest.normalize import (
    MAX_GUID_CHARS,
    MAX_URL_CHARS,
    NormalizedFeed,
    article_id,
    canonical_url,
    clean_text,
    clean_title,
    detect_language,
    normalize_entry,
    normalize_feed,
    parse_date_text,
    strip_controls,
    url_identity,
)
from ingest.parse import RawEntry, parse_document

from .conftest import declaration

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
Bytes = Callable[[str], bytes]


def _feed(fixture_bytes: Bytes, name: str, url: str, language: str | None = None) -> NormalizedFeed:
    parsed = parse_document(fixture_bytes(name), url=url)
    return normalize_feed(parsed, declaration(url=url, language=language), NOW)


def test_rss_entries_become_clean_articles(fixture_bytes: Bytes) -> None:
    result = _feed(fixture_bytes, "rss20_es.xml", "https://noticias.example.org/rss")
    first, second, third = result.articles
    assert first.url == "https://noticias.example.org/ecuador/rescate-machala?id=7"
    assert first.title == "Rescatan a un comerciante secuestrado en Machala"
    assert (
        first.summary
        == "La policía liberó al comerciante tras dos días de cautiverio.\nTres sospechosos fueron detenidos."
    )
    assert "operativo nocturno" in first.text and "track()" not in first.text
    assert first.summary_html and "<b>" in first.summary_html
    assert first.language == "es" and first.source == "noticias.example.org"
    assert first.published_at == datetime(2024, 9, 3, 15, 15, tzinfo=UTC) and not first.published_at_inferred
    assert second.title == "Nuevo horario del tranvía de Cuenca & sus paradas"
    assert second.url == "https://noticias.example.org/cuenca/tranvia-horario"
    assert second.published_at == NOW and second.published_at_inferred
    assert third.url is None and third.guid == "nx-0003"
    assert third.article_id == article_id("test-feed", None, "nx-0003", third.content_hash)
    assert len({a.article_id for a in result.articles}) == 3


def test_relative_links_resolve_against_the_channel_link_else_the_document(fixture_bytes: Bytes) -> None:
    cdn = _feed(fixture_bytes, "atom_en.xml", "https://cdn.example.net/feeds/atom.xml")
    assert cdn.articles[0].url == "https://wire.example.com/world/port-strike-ends"
    json_feed = _feed(fixture_bytes, "jsonfeed11_pt.json", "https://cdn.example.net/feed.json")
    assert json_feed.articles[2].url == "https://json.example.io/posts/3"  # home_page_url
    no_channel_link = parse_document(
        b'<rss version="2.0"><channel><title>x</title>'
        b"<item><title>a</title><link>/a</link></item></channel></rss>",
        url="https://only.example/rss",
    )
    assert normalize_feed(no_channel_link, declaration(), NOW).articles[0].url == "https://only.example/a"


def test_declared_language_wins_then_feed_then_detection(fixture_bytes: Bytes) -> None:
    declared = _feed(fixture_bytes, "rss20_es.xml", "https://noticias.example.org/rss", language="pt")
    assert {a.language for a in declared.articles} == {"pt"}
    atom = _feed(fixture_bytes, "atom_en.xml", "https://wire.example.com/atom.xml")
    assert {a.language for a in atom.articles} == {"en"}  # xml:lang on the entries
    rdf = _feed(fixture_bytes, "rdf_en.xml", "https://rdf.example.net/rss")
    assert [a.language for a in rdf.articles] == ["en", "en"]  # detected


def test_json_feed_text_is_free_of_control_characters(fixture_bytes: Bytes) -> None:
    result = _feed(fixture_bytes, "jsonfeed11_pt.json", "https://json.example.io/feed.json")
    one, two, three = result.articles
    assert one.title == "Ponte nova \u2013 aberta" and one.url == "https://json.example.io/posts/1"
    assert one.text == "A ponte foi aberta ao tráfego." and one.language == "pt"
    for article in result.articles:
        for value in (article.title, article.summary, article.text, article.summary_html or ""):
            assert "\x00" not in value and "\x07" not in value
            value.encode("utf-8")  # no lone surrogates left
    assert two.url is None and two.published_at_inferred
    assert three.published_at == datetime(2024, 9, 6, 12, 0, tzinfo=UTC)


def test_duplicates_inside_a_document(fixture_bytes: Bytes) -> None:
    result = _feed(fixture_bytes, "dup_guids.xml", "https://dup.example.org/rss")
    assert result.entries == 4 and result.duplicates_dropped == 1
    titles = [a.title for a in result.articles]
    assert titles == ["First story", "Second story, same guid", "Third story"]
    assert len({a.article_id for a in result.articles}) == 3
    again = _feed(fixture_bytes, "dup_guids.xml", "https://dup.example.org/rss")
    assert [a.article_id for a in again.articles] == [a.article_id for a in result.articles]


def test_dates_in_other_shapes() -> None:
    assert parse_date_text("Seg, 24 Set 2018 19:42:40 -0300") == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)
    assert parse_date_text("08/02/2013 12:00:00") == datetime(2013, 2, 8, 12, 0, tzinfo=UTC)
    assert parse_date_text("07.02.2025") == datetime(2025, 2, 7, tzinfo=UTC)
    assert parse_date_text("2020/1/10 14:33:00") == datetime(2020, 1, 10, 14, 33, tzinfo=UTC)
    assert parse_date_text("31/02/2020") is None
    assert parse_date_text("yesterday") is None and parse_date_text(None) is None


def test_entry_without_link_or_guid_gets_a_content_id() -> None:
    entry = RawEntry(title="Only a title", summary_html="and a summary")
    a = normalize_entry(entry, declaration(), "https://x.example/rss", None, NOW)
    b = normalize_entry(entry, declaration(), "https://x.example/rss", None, NOW)
    assert a.article_id == b.article_id and a.url is None and a.guid is None
    other_feed = normalize_entry(entry, declaration(name="other"), "https://x.example/rss", None, NOW)
    assert other_feed.article_id != a.article_id


def test_guid_that_is_a_url_is_used_as_url() -> None:
    entry = RawEntry(guid="https://x.example/story?utm_campaign=z", title="t")
    article = normalize_entry(entry, declaration(), "https://x.example/rss", None, NOW)
    assert article.url == "https://x.example/story"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://WWW.Example.COM:80/a/./b/../c?b=2&a=1&utm_source=x", "http://www.example.com/a/c?a=1&b=2"),
        ("https://example.com:443/x?fbclid=1&gclid=2", "https://example.com/x"),
        ("https://example.com/news#xtor=RSS-3", "https://example.com/news"),
        ("https://example.com/day.html#a080631", "https://example.com/day.html#a080631"),
        ("https://example.com/a b/%7euser", "https://example.com/a%20b/~user"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("/relative/path", "https://base.example/relative/path"),
        ("mailto:someone@example.com", None),
        ("javascript:alert(1)", None),
        ("", None),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
    ],
)
def test_canonical_url(raw: str, expected: str | None) -> None:
    assert canonical_url(raw, "https://base.example/feed") == expected


@pytest.mark.parametrize(
    ("url", "guid", "expected"),
    [
        ("HTTP://WWW.Example.COM/a/./b/../c?b=2&a=1&utm_source=x", None, "fe484064b6dd4b3122674d630a970325"),
        ("https://bücher.example/a b/%7eu?rss_id=3&id=7#xtor=RSS", None, "bd89052276bd12667a60776d008ed9e5"),
        (None, "guid-1", "a8495061486db6af4b770ae0cf15aa37"),
        (None, None, "f764722fab540acaf9706cac909e893c"),
    ],
)
def test_ids_are_pinned(url: str | None, guid: str | None, expected: str) -> None:
    """Ids are the poller's and the store's de-duplication keys: a change (a new URL library, a new
    rule) re-publishes every listed article on upgrade, so it must be deliberate and migrated."""
    assert article_id("f", canonical_url(url), guid, "h") == expected


def test_scheme_and_www_do_not_change_the_id() -> None:
    a = article_id("f", canonical_url("http://www.example.com/x?utm_source=rss"), None, "h")
    b = article_id("g", canonical_url("https://example.com/x"), "other-guid", "other-hash")
    assert a == b and len(a) == 32


def test_text_cleaning() -> None:
    assert (
        clean_text("<p>One&nbsp;<b>two</b></p><style>p{}</style><p>three &amp; four</p>")
        == "One two\nthree & four"
    )
    assert clean_text(None) == "" and clean_text("") == ""
    assert clean_title("Five <i>tips</i>\n for &quot;you&quot;") == 'Five tips for "you"'
    assert clean_title("5<10 is true") == "5<10 is true"
    assert strip_controls("a\x00b\x01c\x85d\ud800e\ufeff") == "abcde"


def test_language_detection_needs_enough_confident_text() -> None:
    assert detect_language("La policía detuvo a tres personas acusadas de extorsión en el centro") == "es"
    assert detect_language("Hi") is None


_http_urls = urls().filter(lambda u: u.startswith(("http://", "https://")))


@settings(max_examples=300, deadline=None)
@given(_http_urls)
def test_canonicalisation_is_idempotent_and_keeps_the_id(url: str) -> None:
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once
    assert article_id("f", once, None, "x") == article_id("f", canonical_url(once), None, "x")


@settings(max_examples=200, deadline=None)
@given(
    _http_urls,
    st.sampled_from(["utm_source", "utm_medium", "fbclid", "gclid", "at_medium"]),
    st.text(max_size=10),
)
def test_tracking_parameters_never_change_the_id(url: str, param: str, value: str) -> None:
    base = canonical_url(url)
    assert base is not None
    separator = "&" if "?" in base.split("#")[0] else "?"
    path, hash_sign, fragment = base.partition("#")
    tracked = f"{path}{separator}{param}={quote(value, safe='')}{hash_sign}{fragment}"
    assert url_identity(canonical_url(tracked) or "") == url_identity(base)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=50)))
def test_canonical_url_never_raises(text: str, base: str | None) -> None:
    canonical_url(text, base)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300), st.one_of(st.none(), st.text(max_size=40)))
def test_any_entry_normalises_to_a_valid_message(title: str, summary: str, link: str | None) -> None:
    entry = RawEntry(title=title, summary_html=summary, link=link, guid=link)
    article = normalize_entry(entry, declaration(), "https://x.example/rss", None, NOW)
    for value in (article.title, article.summary, article.text):
        assert "\x00" not in value
        value.encode("utf-8")
    again = normalize_entry(entry, declaration(), "https://x.example/rss", None, NOW)
    assert again.article_id == article.article_id and again.content_hash == article.content_hash


def test_huge_entries_still_fit_in_one_kafka_message() -> None:
    from wirewatch.contract import encode

    entry = RawEntry(
        guid="g" * 10_000,
        link="https://x.example/" + "p" * 10_000,
        title="é" * 5_000,
        summary_html='<p>"quoted"</p>' * 50_000,
        content_html="<p>" + "€" * 1_000_000 + "</p>",
    )
    article = normalize_entry(entry, declaration(), "https://x.example/rss", "en", NOW)
    assert len(encode(article)) < 1024 * 1024  # Kafka's default message limit
    assert article.text.startswith("€€€") and article.summary.startswith('"quoted"')


def test_overlong_links_and_guids_are_bounded_without_losing_identity() -> None:
    link = "https://x.example/" + "p" * (MAX_URL_CHARS + 1)
    entry = RawEntry(guid="tag:x.example:" + "g" * 5_000, link=link, title="t")
    article = normalize_entry(entry, declaration(), "https://x.example/rss", "en", NOW)
    assert article.url is None  # not an article URL; identity falls back to the GUID
    assert article.guid is not None and len(article.guid) == MAX_GUID_CHARS
    other = RawEntry(guid="tag:x.example:" + "g" * 4_999 + "h", link=link, title="t")
    assert normalize_entry(other, declaration(), "https://x.example/rss", "en", NOW).article_id != (
        article.article_id
    )  # GUIDs that differ only past the cut are still two articles
