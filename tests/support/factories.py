"""Builders of contract messages for tests (pure data, no I/O)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from wirewatch.contract import ArticleSeen, ArticleTagged

T0 = datetime(2024, 8, 28, 14, 0, tzinfo=UTC)


def seen(article_id: str = "a1", revision: int = 1, **overrides: Any) -> ArticleSeen:
    text = overrides.pop("text", f"Body of {article_id} revision {revision}.")
    fields: dict[str, Any] = {
        "article_id": article_id,
        "revision": revision,
        "feed": "efe-americas",
        "source": "efe.com",
        "url": f"https://www.efe.com/noticia/{article_id}",
        "guid": article_id,
        "title": f"Title {article_id}",
        "summary": text[:80],
        "text": text,
        "language": "es",
        "published_at": T0,
        "first_seen_at": T0 + timedelta(minutes=1),
        "fetched_at": T0 + timedelta(minutes=revision),
        "content_hash": hashlib.sha256(text.encode()).hexdigest(),
    }
    fields.update(overrides)
    return ArticleSeen(**fields)


def tagged(
    article: ArticleSeen | None = None,
    labels: tuple[str, ...] = ("kidnapping", "shootout"),
    model_version: str = "1",
    classified_at: datetime | None = None,
) -> ArticleTagged:
    article = article or seen()
    scores = {"kidnapping": 0.04, "shootout": 0.03, "extortion": 0.02}
    scores.update({label: 0.9 for label in labels})
    return ArticleTagged(
        article=article,
        labels=list(labels),
        scores=scores,
        evidence={label: f"evidence for {label}" for label in labels},
        model_name="test-model",
        model_version=model_version,
        classified_at=classified_at or article.fetched_at + timedelta(seconds=5),
    )
