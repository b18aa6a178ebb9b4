"""Secrets out of URLs: userinfo and secret-looking query values, in URLs, free text and log records."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.normalize import MAX_HOST_CHARS, normalize_entry
from ingest.parse import RawEntry
from ingest.redaction import RedactingFilter, redact_text, redact_url

from .conftest import declaration


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@feeds.example/rss", "https://***@feeds.example/rss"),
        ("https://token@feeds.example/rss", "https://***@feeds.example/rss"),
        ("https://feeds.example/rss?apikey=abc&lang=en", "https://feeds.example/rss?apikey=***&lang=en"),
        ("https://feeds.example/rss?access_token=abc", "https://feeds.example/rss?access_token=***"),
        ("https://x.example/f?X-Amz-Signature=abc&page=2", "https://x.example/f?X-Amz-Signature=***&page=2"),
        ("https://x.example/f?client_secret=abc", "https://x.example/f?client_secret=***"),
        ("https://feeds.example/rss?section=world", "https://feeds.example/rss?section=world"),
        ("https://feeds.example/rss", "https://feeds.example/rss"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_every_url() -> None:
    text = "HTTP 404 from https://u:pw1@a.example/x?token=t1 after http://b.example/y?key=k2 (retry)"
    shown = redact_text(text)
    assert "pw1" not in shown and "t1" not in shown and "k2" not in shown
    assert shown.startswith("HTTP 404 from https://***@a.example/x?token=***") and shown.endswith("(retry)")


_USERINFO_CHARS = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#")


@given(st.text(), st.text(alphabet=_USERINFO_CHARS, min_size=6))
def test_a_password_never_survives_redaction(prefix: str, password: str) -> None:
    shown = redact_text(f"{prefix} https://reader:{password}@feeds.example/rss?apikey={password}")
    assert f":{password}@" not in shown and f"apikey={password}" not in shown


def test_the_log_filter_redacts_messages_and_tracebacks() -> None:
    try:
        raise ValueError("cannot reach https://u:pw-in-trace@a.example/rss")
    except ValueError:
        record = logging.LogRecord(
            "ingest",
            logging.ERROR,
            __file__,
            1,
            "fetching %s failed",
            ("https://u:pw-in-msg@a.example/",),
            None,
        )
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "pw-in-msg" not in text and "pw-in-trace" not in text
    assert "ValueError" in text and "a.example" in text


def test_a_link_with_a_host_longer_than_dns_allows_is_not_the_link() -> None:
    entry = RawEntry(guid="g-1", link=f"http://{'a' * 4000}.example/story", title="T", summary_html="S")
    feed = declaration(url="https://site.example/rss")
    article = normalize_entry(entry, feed, feed.url, "en", datetime(2024, 9, 1, tzinfo=UTC))
    assert article.url is None and article.guid == "g-1"
    assert article.source is not None and len(article.source) <= MAX_HOST_CHARS
