"""The classifier's entry point to geolocation: an article in, its event's location out.

:class:`ArticleLocator` loads the gazetteer once (from the model cache when it was built
before) and turns each :class:`~wirewatch.contract.ArticleSeen` into the contract's
:class:`~wirewatch.contract.EventLocation`, with the feed's declared country as the hint.
``locate_fields`` does the same for offline rows (``wirewatch tag``), whose hint is the row's
``country``, else the country of its URL's domain (rows have no feed declaration).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from classify.geo.gazetteer import load
from classify.geo.locate import Location, country_from_url, locate
from wirewatch.contract import ArticleSeen, EventLocation

log = logging.getLogger(__name__)


class ArticleLocator:
    """Callable: ``ArticleSeen`` -> ``EventLocation``. Build once per process (a few seconds)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        started = time.perf_counter()
        self._gaz = load(str(cache_dir) if cache_dir is not None else None)
        log.info(
            "gazetteer loaded in %.1f s (%d places)", time.perf_counter() - started, len(self._gaz.places)
        )

    def locate(
        self, *, title: str, text: str, url: str | None = None, country: str | None = None
    ) -> Location:
        return locate(self._gaz, title, text, country or country_from_url(url))

    def __call__(self, article: ArticleSeen) -> EventLocation:
        """The service path: the hint is only the feed's declared ``country`` (a world desk on a
        national domain, such as a broadcaster's ``.co.uk``, must not pull its stories home)."""
        found = locate(self._gaz, article.title, article.text or article.summary, article.country_hint)
        return EventLocation.model_validate(found.to_json())

    def locate_fields(self, row: dict[str, Any], evidence: bool = False) -> dict[str, Any]:
        """The ``location`` object of ``wirewatch tag`` for an input line (``title``, ``text``,
        optional ``url`` and ``country``): SPEC's keys, plus ``evidence`` when asked for."""
        found = self.locate(
            title=row.get("title") or "",
            text=row.get("text") or "",
            url=row.get("url"),
            country=row.get("country"),
        ).to_json()
        if not evidence:
            found.pop("evidence")
        return found


def default_locator() -> ArticleLocator:
    """The locator with the gazetteer cached beside the encoder (``WIREWATCH_MODEL_CACHE``)."""
    from classify.backbone import model_cache_root

    return ArticleLocator(model_cache_root())
