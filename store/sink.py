"""The sink service: ``news.tagged.v1`` batches -> one PostgreSQL transaction -> commit offsets.

Offsets are committed by the batch loop only after the transaction committed,
so a crash between the two re-delivers a batch that the idempotent upserts
absorb. A database outage raises ``RetriableError``: the loop holds the batch
(uncommitted) and retries with backoff. A batch the database rejects is split
message by message inside savepoints, so only the message that can never be
written is dead-lettered and the rest are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from store.database import map_error
from store.repository import check_storable, save_batch
from wirewatch.contract import ArticleTagged, decode_tagged
from wirewatch.errors import PoisonMessageError
from wirewatch.kafka import Failure
from wirewatch.logging import record_ref

log = logging.getLogger(__name__)


class TaggedArticleWriter:
    """The batch handler of the sink: decode, write in one transaction, report poison."""

    def __init__(
        self,
        engine: Engine,
        on_stored: Callable[[Sequence[ArticleTagged]], None] | None = None,
        link_incidents: bool = True,
    ) -> None:
        self._engine = engine
        self._on_stored = on_stored or (lambda stored: None)
        self._link = link_incidents

    def __call__(self, batch: list[ConsumerRecord]) -> list[Failure]:
        failures: list[Failure] = []
        decoded: list[tuple[ConsumerRecord, ArticleTagged]] = []
        for rec in batch:
            try:
                msg = decode_tagged(rec.value)
                check_storable(msg)
                decoded.append((rec, msg))
            except PoisonMessageError as exc:
                failures.append(Failure(rec, exc))
        if decoded:
            failures.extend(self._write(decoded))
        return failures

    def _write(self, decoded: Sequence[tuple[ConsumerRecord, ArticleTagged]]) -> list[Failure]:
        try:
            with Session(self._engine) as session, session.begin():
                save_batch(session, [msg for _, msg in decoded], link=self._link)
            self._on_stored([msg for _, msg in decoded])
            return []
        except sa_exc.SQLAlchemyError as exc:
            mapped = map_error(exc)
            if not isinstance(mapped, PoisonMessageError):
                raise mapped from exc
            log.warning("batch of %d rejected (%s); isolating the bad message", len(decoded), mapped)
        return self._write_one_by_one(decoded)

    def _write_one_by_one(self, decoded: Sequence[tuple[ConsumerRecord, ArticleTagged]]) -> list[Failure]:
        failures: list[Failure] = []
        try:
            with Session(self._engine) as session, session.begin():
                for rec, msg in decoded:
                    try:
                        with session.begin_nested():
                            save_batch(session, [msg], link=self._link)
                    except sa_exc.SQLAlchemyError as exc:
                        mapped = map_error(exc)
                        if not isinstance(mapped, PoisonMessageError):
                            raise
                        log.warning(
                            "cannot store %s article_id=%s: %s",
                            record_ref(rec.topic, rec.partition, rec.offset),
                            msg.article_id,
                            mapped,
                        )
                        failures.append(Failure(rec, mapped))
        except sa_exc.SQLAlchemyError as exc:
            mapped = map_error(exc)
            raise mapped from exc
        bad = {id(f.record) for f in failures}
        self._on_stored([msg for rec, msg in decoded if id(rec) not in bad])
        return failures
