"""The message contract between stages: versioned JSON facts on Kafka.

Each message type is a frozen pydantic model whose ``schema`` field names its
version. A new shape is a new version (``news.raw.v2``), never an edit of an
existing one: consumers that are still running must keep understanding what
is already on the topics.

``decode_*`` functions turn bytes into models and raise
:class:`~wirewatch.errors.PoisonMessageError` for anything that can never be
understood, so the loops can dead-letter it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from wirewatch.errors import PoisonMessageError

RAW_SCHEMA: Final = "news.raw.v1"
TAGGED_SCHEMA: Final = "news.tagged.v1"
DEAD_LETTER_SCHEMA: Final = "news.dlq.v1"

MAX_DEAD_LETTER_VALUE: Final = 512 * 1024
"""Bytes of a poison message kept in its dead letter (base64 makes them 4/3 larger)."""
MAX_DEAD_LETTER_KEY: Final = 1024


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class ArticleSeen(_Message):
    """A feed entry the poller saw, normalised (topic ``news.raw.v1``).

    ``revision`` starts at 1 and grows when the publisher edits the entry
    (same ``article_id``, new ``content_hash``): downstream treats a higher
    revision as an update of the same article, never as a new one.
    """

    schema_: Literal["news.raw.v1"] = Field(default=RAW_SCHEMA, alias="schema")
    article_id: str = Field(min_length=1, max_length=128)
    revision: int = Field(default=1, ge=1)
    feed: str = Field(min_length=1)
    source: str | None = None
    url: str | None = None
    guid: str | None = None
    title: str = ""
    summary: str = ""
    text: str = ""
    summary_html: str | None = None
    language: str | None = None
    country_hint: str | None = None
    """The feed's declared country (ISO 3166-1 alpha-2): a hint for geolocation, not a fact."""
    published_at: UtcDatetime | None = None
    published_at_inferred: bool = False
    first_seen_at: UtcDatetime
    fetched_at: UtcDatetime
    content_hash: str = Field(min_length=1)


GeoPrecision = Literal["none", "country", "admin1", "city", "sub-city"]


class Admin1Ref(_Message):
    """A first-level division: its name and ISO 3166-2 code where one exists."""

    name: str
    code: str | None = None


class EventLocation(_Message):
    """Where the article's event happened (not where the outlet is).

    ``lat``/``lon`` are those of the finest level found; ``evidence`` is the passage the
    location was read from. ``precision`` is ``none`` (and everything else null) when the
    text names no place.
    """

    country: str | None = None
    admin1: Admin1Ref | None = None
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    precision: GeoPrecision = "none"
    evidence: str | None = None


class ArticleTagged(_Message):
    """An article with its violence tags (topic ``news.tagged.v1``).

    ``scores`` holds a calibrated probability for every category the model
    knows; ``labels`` are the categories above their thresholds; ``evidence``
    maps each label to the sentence that best supports it. ``location`` is where the
    event happened, ``language_supported`` whether the scores are calibrated for the
    article's language, ``embedding`` the article vector for incident linking: all three
    were added later with defaults, so messages of older classifiers still read.
    """

    schema_: Literal["news.tagged.v1"] = Field(default=TAGGED_SCHEMA, alias="schema")
    article: ArticleSeen
    labels: list[str]
    scores: dict[str, float]
    evidence: dict[str, str] = Field(default_factory=dict)
    model_name: str
    model_version: str
    classified_at: UtcDatetime
    location: EventLocation | None = None
    language_supported: bool = True
    """False when the article's language is not one the model was trained and calibrated for."""
    embedding: list[float] | None = None
    """The encoder's L2-normalised article vector (incident linking); None from taggers without one."""

    @property
    def article_id(self) -> str:
        return self.article.article_id


class DeadLetter(_Message):
    """A message a stage gave up on, with where it came from and why (``news.dlq.v1``).

    ``value_b64`` keeps the original bytes exactly (they may not be UTF-8) up to
    :data:`MAX_DEAD_LETTER_VALUE` bytes: a larger original is cut there and ``detail`` says
    so, since base64 of a message near Kafka's 1 MiB limit would not fit in a message itself
    (and a dead letter that can never be produced would hold its batch forever).
    ``value_preview`` is a readable prefix for operators.
    """

    schema_: Literal["news.dlq.v1"] = Field(default=DEAD_LETTER_SCHEMA, alias="schema")
    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None
    value_b64: str
    value_preview: str
    reason: str
    detail: str
    failed_at: UtcDatetime

    @classmethod
    def for_record(
        cls,
        *,
        stage: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: PoisonMessageError,
    ) -> DeadLetter:
        raw = value or b""
        detail = error.detail[:2000]
        if len(raw) > MAX_DEAD_LETTER_VALUE:
            detail = f"original value of {len(raw)} bytes cut to {MAX_DEAD_LETTER_VALUE}; {detail}"
            raw = raw[:MAX_DEAD_LETTER_VALUE]
        return cls(
            stage=stage,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            key=key[:MAX_DEAD_LETTER_KEY].decode("utf-8", "replace") if key is not None else None,
            value_b64=base64.b64encode(raw).decode("ascii"),
            value_preview=raw[:500].decode("utf-8", "replace"),
            reason=error.reason,
            detail=detail,
            failed_at=utcnow(),
        )

    def original_value(self) -> bytes:
        return base64.b64decode(self.value_b64)


def encode(message: _Message) -> bytes:
    """Serialise a message to the JSON bytes that go on the wire."""
    return message.model_dump_json(by_alias=True).encode("utf-8")


M = TypeVar("M", bound=_Message)


def _decode(data: bytes | None, model: type[M], schema: str) -> M:
    if data is None:
        raise PoisonMessageError("empty", "message has no value (tombstone?)")
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessageError("invalid_json", str(exc)) from exc
    if not isinstance(payload, dict):
        raise PoisonMessageError("schema", f"expected a JSON object, got {type(payload).__name__}")
    found = payload.get("schema")
    if found != schema:
        raise PoisonMessageError("schema", f"expected schema {schema!r}, got {found!r}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise PoisonMessageError("schema", _short(exc)) from exc


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)


def decode_seen(data: bytes | None) -> ArticleSeen:
    return _decode(data, ArticleSeen, RAW_SCHEMA)


def decode_tagged(data: bytes | None) -> ArticleTagged:
    return _decode(data, ArticleTagged, TAGGED_SCHEMA)


def decode_dead_letter(data: bytes | None) -> DeadLetter:
    return _decode(data, DeadLetter, DEAD_LETTER_SCHEMA)
