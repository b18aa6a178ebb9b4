"""Optional full text: fetch the article page and extract its main text (``full_text: true``).

Many wire feeds carry only a lead. For feeds that opt in, the articles the
poller's publishing side has decided to publish (new ones, and edits: a
revision must not fall back to the lead) get their ``text`` from the page.
This module never decides what is new: it fills in what it is handed, cut to the same
``MAX_TEXT_CHARS`` as feed text (so the message always fits), extracted with
trafilatura (an optional dependency, imported lazily: without it the switch
logs one warning and the feed's own text is kept). The page goes through the
same :class:`~ingest.fetch.Fetcher` — same caps, size limit and deadline.

The ``content_hash`` stays the hash of the feed's own content, so a page that
changes on every request never turns into a stream of revisions. Failures are
logged and the feed text kept; full text never fails a poll.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from ingest.errors import IngestError
from ingest.fetch import Fetcher
from ingest.normalize import MAX_TEXT_CHARS, strip_controls
from ingest.redaction import redact_url
from wirewatch.contract import ArticleSeen

log = logging.getLogger(__name__)


@functools.cache
def _extractor() -> Any:
    try:
        import trafilatura
    except ImportError:
        log.warning("full_text is on for some feeds but trafilatura is not installed; keeping feed text")
        return None
    return trafilatura


async def fill_full_text(
    fetcher: Fetcher, articles: Sequence[ArticleSeen], timeout: float
) -> tuple[ArticleSeen, ...]:
    """``articles`` with their page's text where it could be fetched and extracted (else unchanged)."""
    extractor = _extractor()
    if extractor is None:
        return tuple(articles)
    todo = [a for a in articles if a.url]
    texts = await asyncio.gather(*(_page_text(fetcher, extractor, a.url or "", timeout) for a in todo))
    by_id = {a.article_id: t for a, t in zip(todo, texts, strict=True) if t}
    return tuple(
        a.model_copy(update={"text": by_id[a.article_id]}) if a.article_id in by_id else a for a in articles
    )


async def _page_text(fetcher: Fetcher, extractor: Any, url: str, timeout: float) -> str | None:
    try:
        page = await fetcher.fetch(url, total_timeout=timeout)
    except IngestError as exc:
        log.info("full text of %s not fetched: %s", redact_url(url), exc)
        return None
    html = page.body.decode("utf-8", "replace")
    text = await asyncio.to_thread(extractor.extract, html, url=url)
    if not text:
        return None
    return strip_controls(text, keep_newlines=True).strip()[:MAX_TEXT_CHARS] or None
