"""``wirewatch reclassify``: roll the current model over the stored history.

Joins the two stages it needs without making them import each other: the
classifier's tagger (``classify``) scores stored articles, and the sink's own
write path (``store.repository.save_batch``) stores the result, so lineage rows,
event replacement, incident links and outbox notifications behave exactly as for
live traffic. Each batch is read in one short transaction, tagged outside any
transaction, and written in its own; a killed run keeps every finished batch,
and the next run selects only articles the current model has not scored.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from classify.labels import TaggerProtocol
from classify.worker import tag_input, tagged_messages
from store.reclassify import EventDiff, Selection, count_pending, event_diff, next_batch
from store.repository import save_batch
from wirewatch.contract import utcnow

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_date, default=None, help="only articles published on/after DATE")
    parser.add_argument(
        "--model-version-not",
        default=None,
        metavar="V",
        help="also skip articles whose current revision version V already scored",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    parser.add_argument("--batch-size", type=int, default=64)


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    from classify.command import load_tagger
    from classify.config import ClassifierSettings
    from store.config import SinkSettings
    from store.database import make_engine
    from wirewatch.logging import setup_logging
    from wirewatch.settings import load_settings

    classifier = load_settings(ClassifierSettings)
    sink = load_settings(SinkSettings)
    setup_logging(classifier.log_level, classifier.log_format)
    tagger = load_tagger(classifier)
    engine = make_engine(sink.database_url.get_secret_value())
    try:
        selection = Selection(tagger.model_version, since=args.since, not_version=args.model_version_not)
        diff = reclassify(engine, tagger, selection, args.batch_size, args.dry_run, _progress_bar)
    finally:
        engine.dispose()
    summary = {"model_version": tagger.model_version, "dry_run": args.dry_run, **diff.to_json()}
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def reclassify(
    engine: Engine,
    tagger: TaggerProtocol,
    selection: Selection,
    batch_size: int = 64,
    dry_run: bool = False,
    progress: Callable[[int], Callable[[int], object]] | None = None,
) -> EventDiff:
    """Re-score every selected article in ``article_id`` order; returns the events that appeared/went."""
    with Session(engine) as session:
        total = count_pending(session, selection)
    advance = progress(total) if progress else (lambda n: None)
    diff = EventDiff()
    after: str | None = None
    while True:
        with Session(engine) as session:
            batch = next_batch(session, selection, after, batch_size)
        if not batch:
            break
        predictions = tagger.predict([tag_input(article) for article in batch])
        tagged = tagged_messages(tagger, batch, predictions, utcnow())
        with Session(engine) as session, session.begin():
            diff.add(event_diff(session, tagged))
            if not dry_run:
                save_batch(session, tagged)
        after = batch[-1].article_id
        advance(len(batch))
        log.debug("reclassified up to article_id=%s", after)
    return diff


def _progress_bar(total: int) -> Callable[[int], object]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="article", file=sys.stderr, desc="reclassify")
    return bar.update
