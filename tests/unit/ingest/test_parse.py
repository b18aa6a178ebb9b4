"""Parsing: every dialect, broken-but-usable documents, HTML pages and hostile XML."""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse import (
    HostileDocumentError,
    MalformedFeedError,
    NotAFeedError,
    ParseError,
    check_not_hostile,
    parse_document,
)

Bytes = Callable[[str], bytes]


def test_rss20_entries_links_resolved_and_dates_parsed(fixture_bytes: Bytes) -> None:
    feed = parse_document(fixture_bytes("rss20_es.xml"), url="https://noticias.example.org/rss")
    assert feed.format == "rss20" and feed.language == "es-EC" and feed.problem is None
    first, second, third = feed.entries
    assert first.guid == "nx-0001" and first.published is not None
    assert first.published.isoformat() == "2024-09-03T15:15:00+00:00"
    assert "tres sospechosos" in first.content_html.lower()
    assert second.link == "/cuenca/tranvia-horario"  # resolved by normalisation, against the channel link
    assert feed.link == "https://noticias.example.org/"
    assert second.published is None
    assert third.link is None


def test_atom_and_rdf(fixture_bytes: Bytes) -> None:
    atom = parse_document(fixture_bytes("atom_en.xml"), url="https://wire.example.com/atom.xml")
    assert atom.format == "atom10" and len(atom.entries) == 2
    assert atom.entries[0].link == "/world/port-strike-ends" and atom.link == "https://wire.example.com/"
    rdf = parse_document(fixture_bytes("rdf_en.xml"), url="https://rdf.example.net/rss")
    assert rdf.format == "rss10" and [e.link for e in rdf.entries] == [
        "https://rdf.example.net/a",
        "https://rdf.example.net/b",
    ]


def test_json_feed_is_read_without_feedparser(fixture_bytes: Bytes) -> None:
    feed = parse_document(fixture_bytes("jsonfeed11_pt.json"), url="https://json.example.io/feed.json")
    assert feed.format == "jsonfeed11" and feed.language == "pt-BR"
    one, two, three = feed.entries
    assert one.guid == "j1" and one.published is not None and one.published.hour == 13
    assert two.link is None and "controle" in two.content_html
    assert three.guid is None and three.link == "/posts/3"


def test_bozo_document_with_entries_is_used_and_problem_reported(fixture_bytes: Bytes) -> None:
    feed = parse_document(fixture_bytes("latin1_bozo.xml"), url="https://latin.example.pt/rss")
    assert feed.problem and len(feed.entries) == 1
    assert feed.entries[0].title == "Coração da cidade"
    assert feed.entries[0].published_text == "Seg, 24 Set 2018 19:42:40 -0300"


def test_plain_external_doctype_is_fine(fixture_bytes: Bytes) -> None:
    feed = parse_document(fixture_bytes("rss091_doctype.xml"), url="https://old.example/rss")
    assert len(feed.entries) == 1


def test_html_page_is_reported_with_its_feed_links(fixture_bytes: Bytes) -> None:
    with pytest.raises(NotAFeedError) as caught:
        parse_document(
            fixture_bytes("html_page.html"), url="https://news.example.com/", content_type="text/html"
        )
    assert caught.value.discovered == [
        "https://news.example.com/rss/all.xml",
        "https://news.example.com/atom.xml",
    ]
    assert "https://news.example.com/rss/all.xml" in str(caught.value)


@pytest.mark.parametrize("name", ["entity_bomb.xml", "xxe.xml"])
def test_hostile_documents_are_refused_fast_and_small(fixture_bytes: Bytes, name: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(HostileDocumentError):
            parse_document(fixture_bytes(name), url="https://bomb.example/rss")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1.0
    assert peak < 5_000_000


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE r [<!ENTITY % p "x">]>',
        '<!DOCTYPE r [<!ENTITY e PUBLIC "-//x" "http://evil/x.dtd">]>',
        "<!DOCTYPE r [<!ENTITY big '" + "x" * 1000 + "'>]>",
        "<!DOCTYPE r [" + "".join(f'<!ENTITY e{i} "v">' for i in range(100)) + "]>",
    ],
)
def test_other_hostile_declarations(doctype: str) -> None:
    with pytest.raises(HostileDocumentError):
        check_not_hostile(f'<?xml version="1.0"?>{doctype}<r/>'.encode())


def test_harmless_internal_entity_is_allowed() -> None:
    check_not_hostile(b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;">]><rss/>')


def test_utf16_bomb_is_seen_too() -> None:
    doc = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "&b;">]><r/>'
    with pytest.raises(HostileDocumentError):
        check_not_hostile(doc.encode("utf-16"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty document"),
        (b"   \n", "empty document"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON"),
        (b"[1, 2]", "no entries recovered"),
        (b'{"hello": "world"}', "not a JSON Feed"),
        (b"just some text", "no entries recovered"),
    ],
)
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(MalformedFeedError, match=message):
        parse_document(body, url="https://x.example/feed")


def test_truncated_feed_without_entries_is_malformed(fixture_bytes: Bytes) -> None:
    with pytest.raises(MalformedFeedError, match="no entries recovered"):
        parse_document(fixture_bytes("truncated.xml"), url="https://cut.example/rss")


def test_deeply_nested_json_does_not_blow_the_stack() -> None:
    with pytest.raises(MalformedFeedError):
        parse_document(b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", url="https://x/")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_parser_never_raises_anything_but_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_document(body, url="https://fuzz.example/feed")


_fragments = st.sampled_from(
    [
        b"<?xml version='1.0'?>", b"<rss version='2.0'>", b"<channel>", b"<item>", b"</item>", b"<title>",
        b"</title>", b"<link>", b"</link>", b"&amp;", b"&nbsp;", b"<![CDATA[", b"]]>", b"<!DOCTYPE rss [",
        b"<!ENTITY a 'x'>", b"]>", b"<feed xmlns='http://www.w3.org/2005/Atom'>", b"<entry>", b"{",
        b'"items":',
        b"[", b"]", b"}", b"\x00", b"\xff\xfe", b"\x1f\x8b", b"<html>", b"<link rel='alternate' href='/x'>",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_fragments, st.binary(max_size=20)), max_size=40))
def test_parser_never_raises_on_feed_shaped_garbage(parts: list[bytes]) -> None:
    try:
        feed = parse_document(b"".join(parts), url="https://fuzz.example/feed")
    except ParseError:
        return
    assert isinstance(feed.entries, tuple)


def _bomb_dtd() -> str:
    levels = ['<!ENTITY a0 "' + "x" * 200 + '">']
    levels += [f'<!ENTITY a{i} "' + f"&a{i - 1};" * 10 + '">' for i in range(1, 8)]
    return "<!DOCTYPE rss [" + "".join(levels) + "]>"


@pytest.mark.parametrize(
    "prefix",
    [
        "<!-- <a ",  # an unclosed comment holding "<a": the old prolog scan stopped there
        "<!-- a comment that says <rss> --> <a/>",
        "<!--" + " " * (1 << 20) + "-->",  # the DTD starts after the first MiB
    ],
)
def test_a_dtd_hidden_behind_comments_or_padding_is_still_refused(prefix: str) -> None:
    doc = f'<?xml version="1.0"?>{prefix}{_bomb_dtd()}<rss version="2.0"><channel><title>&a7;</title>'
    doc += "<item><title>&a7;</title><link>http://x.example/1</link></item></channel></rss>"
    with pytest.raises(HostileDocumentError):
        parse_document(doc.encode(), url="https://x.example/feed")


def test_many_references_to_a_small_entity_are_refused() -> None:
    doc = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "' + "y" * 200 + '">]><rss><channel><title>'
    doc += "&e;" * 20_000 + "</title></channel></rss>"  # 60 kB that expand to 4 MB
    with pytest.raises(HostileDocumentError, match=r"add over"):
        check_not_hostile(doc.encode())
