"""Topic and consumer-group names: the Kafka side of the contract (SPEC.md)."""

from __future__ import annotations

RAW = "news.raw.v1"
"""Raw articles from the poller, keyed by ``article_id``."""

TAGGED = "news.tagged.v1"
"""Articles with violence tags from the classifier, keyed by ``article_id``."""

DEAD_LETTER = "news.dlq.v1"
"""Messages a stage could never process, with the reason."""

CLASSIFY_GROUP = "wirewatch-classify"
STORE_GROUP = "wirewatch-store"

ALL_TOPICS = (RAW, TAGGED, DEAD_LETTER)
