"""Message contract: round trips, versioning, poison detection."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.factories import seen, tagged
from wirewatch.contract import (
    DeadLetter,
    decode_dead_letter,
    decode_seen,
    decode_tagged,
    encode,
)
from wirewatch.errors import PoisonMessageError


def test_seen_round_trip_keeps_every_field() -> None:
    msg = seen("x1", revision=3, language="en")
    assert decode_seen(encode(msg)) == msg


def test_tagged_round_trip_and_schema_field() -> None:
    msg = tagged()
    payload = json.loads(encode(msg))
    assert payload["schema"] == "news.tagged.v1"
    assert payload["article"]["schema"] == "news.raw.v1"
    assert decode_tagged(encode(msg)) == msg


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "schema"),
        (json.dumps({"schema": "news.raw.v2"}).encode(), "schema"),
        (json.dumps({"schema": "news.raw.v1", "article_id": ""}).encode(), "schema"),
        (None, "empty"),
    ],
)
def test_undecodable_messages_are_poison_with_a_reason(data: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessageError) as info:
        decode_seen(data)
    assert info.value.reason == reason


def test_naive_timestamps_are_rejected() -> None:
    payload = json.loads(encode(seen()))
    payload["published_at"] = "2024-08-28T14:00:00"
    with pytest.raises(PoisonMessageError):
        decode_seen(json.dumps(payload).encode())


def test_timestamps_are_normalised_to_utc() -> None:
    payload = json.loads(encode(seen()))
    payload["published_at"] = "2024-08-28T09:00:00-05:00"
    msg = decode_seen(json.dumps(payload).encode())
    assert msg.published_at == datetime.fromisoformat("2024-08-28T14:00:00+00:00")
    assert msg.published_at is not None and msg.published_at.utcoffset().total_seconds() == 0


@given(st.binary(max_size=300))
def test_dead_letter_keeps_original_bytes(value: bytes) -> None:
    letter = DeadLetter.for_record(
        stage="store",
        topic="t",
        partition=1,
        offset=7,
        key=b"k",
        value=value,
        error=PoisonMessageError("schema", "bad"),
    )
    back = decode_dead_letter(encode(letter))
    assert back.original_value() == value
    assert (back.reason, back.source_offset, back.key) == ("schema", 7, "k")


@given(st.text(max_size=200), st.text(max_size=200))
def test_seen_round_trip_any_text(title: str, text: str) -> None:
    msg = seen("p", title=title, text=text)
    assert decode_seen(encode(msg)) == msg
