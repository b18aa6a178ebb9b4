"""The poll loop: fetch due feeds concurrently -> parse -> normalise -> publish -> mark seen.

:class:`Poller` is the one user-facing class of ``ingest``. Its design:

* **Two sides joined by a bounded queue.** Each due feed gets a task that
  fetches, parses and normalises (CPU work in a thread) and puts its result, a
  :class:`FeedBatch` — its articles, its new :class:`FeedState` and what the
  fetch came to (a :class:`FeedOutcome`) — on the queue; it changes nothing
  else. One publishing task drains the queue: it decides what is new or
  updated against :class:`~ingest.state.PollerState` (and only then fetches
  the full text of those, for ``full_text`` feeds), publishes through the
  :class:`Publisher` seam, and only after the publisher returned (broker acks)
  commits articles and feed state together. It returns each feed's outcome
  with its counts; :meth:`Poller.run_once` assembles the :class:`CycleReport`
  from those alone. One writer means two feeds listing the same article in one
  cycle still publish it once.
* **Kafka down**: :meth:`Publisher.publish` raises
  :class:`~wirewatch.errors.RetriableError`; the publishing task keeps the
  batch, backs off and retries it. Nothing is marked seen and the feeds'
  validators are not stored, so even a restart re-fetches and re-publishes
  rather than loses. The bounded queue stops fetching meanwhile. With
  ``give_up_after`` (``--once``) it stops retrying and raises
  :class:`PublishGaveUpError`.
* **A broken feed never stops the poller**: fetch and parse errors become the
  feed's failure (logged, counted, backed off), and even an unexpected
  exception is confined to its feed (logged with its traceback as
  ``internal_error``).
* **Stopping**: ``stop()`` is checked before each feed is fetched and, while
  fetches are in flight, every 0.1 s; once it is true the fetches in flight
  are cancelled (their feeds are not marked polled, so nothing is lost), what
  was already fetched is published and committed, and the cycle returns.
* **Syndicated copies**: an article listed by several feeds is owned by the
  first feed that published it; only that feed's edits become revisions
  (another feed's copy with its own summary is not an edit), unless the
  owner is no longer declared.
* **Schedule**: each feed's next poll is ``interval * uniform(1 - jitter,
  1 + jitter)`` after the last; a failure whose :class:`~ingest.errors.IngestError`
  is ``retriable`` (timeouts, 5xx, a truncated document) backs off exponentially
  from the interval up to ``poll_backoff_cap``; one that is not (404, 403,
  oversized, hostile, not a feed: only a person can fix it) waits the whole
  cap at once; ``Retry-After`` is a floor; 410 Gone stops polling until the
  declared URL changes.

Never publishes an article twice for the same content (ids and hashes in the
state), never marks seen what the publisher did not confirm.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from ingest.config import PollerSettings
from ingest.errors import IngestError
from ingest.feeds import FeedDeclaration
from ingest.fetch import FeedGoneError, Fetcher, same_origin
from ingest.fulltext import fill_full_text
from ingest.health import FeedHealth
from ingest.normalize import normalize_feed, resolve_ids
from ingest.parse import parse_document
from ingest.redaction import redact_text, redact_url
from ingest.state import FeedState, PollerState, SeenRecord
from wirewatch.contract import ArticleSeen, utcnow
from wirewatch.errors import RetriableError
from wirewatch.retry import Backoff

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
"""Feed results waiting for the publishing side; a full queue pauses fetching (Kafka down)."""
MAX_PUBLISH_BATCH = 2000
"""Articles published and committed together at most."""


class Publisher(Protocol):
    """Where articles go. ``publish`` returns only once every article is durably accepted
    (Kafka: acknowledged by all in-sync replicas) and raises RetriableError otherwise."""

    def publish(self, articles: Sequence[ArticleSeen]) -> None: ...

    def close(self) -> None: ...


class PublishGaveUpError(RetriableError):
    """The publisher stayed unavailable longer than ``give_up_after``; nothing was marked seen."""


@dataclass(frozen=True)
class FeedOutcome:
    """What one poll of one feed came to (``--once`` reports these)."""

    feed: str
    outcome: str
    """``ok``, ``not_modified``, ``gone``, ``stopped``, or the error kind."""
    detail: str = ""
    entries: int = 0
    duplicates: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    """Entries published before (in an earlier poll, or by another feed in this one)."""
    problem: str | None = None

    @property
    def fetched(self) -> bool:
        return self.outcome in {"ok", "not_modified"}


@dataclass(frozen=True)
class CycleReport:
    outcomes: dict[str, FeedOutcome] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def published(self) -> int:
        return sum(o.new + o.updated for o in self.outcomes.values())

    @property
    def failed(self) -> list[FeedOutcome]:
        return [
            o for o in self.outcomes.values() if not o.fetched and o.outcome not in {"skipped", "stopped"}
        ]


@dataclass(frozen=True)
class FeedBatch:
    """One fetch task's result: the feed's articles, its next state, and what the fetch came to."""

    feed: FeedDeclaration
    state: FeedState
    outcome: FeedOutcome
    articles: tuple[ArticleSeen, ...] = ()


class Poller:
    """Polls ``feeds`` and publishes what is new. Call :meth:`close` when done.

    ``settings`` are the poller's own (:class:`~ingest.config.PollerSettings`, the same object the
    fetcher got); ``give_up_after`` (``--once``) bounds how long an unreachable publisher is
    retried. ``clock`` and ``rng`` are seams for tests; everything else is real.
    """

    def __init__(
        self,
        feeds: Sequence[FeedDeclaration],
        state: PollerState,
        publisher: Publisher,
        fetcher: Fetcher,
        *,
        settings: PollerSettings,
        health: FeedHealth,
        give_up_after: float | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.feeds = list(feeds)
        self._feed_names = {f.name for f in self.feeds}
        self.state = state
        self.publisher = publisher
        self.fetcher = fetcher
        self.settings = settings
        self.health = health
        self.give_up_after = give_up_after
        self._forget_after = settings.poll_forget_after or None
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(base=1.0, cap=30.0)
        self._last_forget: float | None = None

    # ---- driving ----------------------------------------------------------------------------------

    async def run_once(
        self, *, only_due: bool = False, stop: Callable[[], bool] = lambda: False
    ) -> CycleReport:
        """One cycle: every feed (or only the due ones), concurrently; returns when all is committed."""
        started = time.monotonic()
        now = self._clock()
        outcomes: dict[str, FeedOutcome | None] = {}  # in declaration order; None: polled this cycle
        todo = []
        for feed in self.feeds:
            state = self.state.feed(feed.name, feed.url)
            if state.gone:
                outcomes[feed.name] = FeedOutcome(feed.name, "gone", f"410 Gone at {state.url}")
            elif not (only_due and state.next_due_at is not None and state.next_due_at > now):
                outcomes[feed.name] = None
                todo.append((feed, state))
        queue: asyncio.Queue[FeedBatch | None] = asyncio.Queue(QUEUE_SIZE)
        publishing = asyncio.create_task(self._publish_loop(queue, stop))

        async def produce() -> None:
            await asyncio.gather(*(self._poll_feed(feed, state, queue, stop) for feed, state in todo))
            await queue.put(None)

        producing = asyncio.create_task(produce())
        watching = asyncio.create_task(_cancel_when_stopped(producing, queue, stop))
        try:
            done = await publishing  # returns after the sentinel, or raises (gave up / stopped)
        finally:
            for task in (producing, watching):
                if not task.done():
                    task.cancel()
            await asyncio.gather(producing, watching, return_exceptions=True)
        stopped = "stop requested before this feed was polled"
        report = CycleReport(
            {
                name: outcome or done.get(name) or FeedOutcome(name, "stopped", stopped)
                for name, outcome in outcomes.items()
            },
            time.monotonic() - started,
        )
        self.health.cycle_seconds.observe(report.seconds)
        return report

    async def run_forever(self, stop: Callable[[], bool]) -> None:
        """Poll due feeds, sleep until the next one is due, until ``stop()`` is true."""
        while not stop():
            report = await self.run_once(only_due=True, stop=stop)
            if report.outcomes:
                log.info(
                    "cycle: %d feeds polled, %d articles published, %d failed in %.1fs",
                    len(report.outcomes),
                    report.published,
                    len(report.failed),
                    report.seconds,
                )
            self._forget_unlisted()
            await _sleep(self._until_next_due(), stop)

    def _forget_unlisted(self) -> None:
        """Every ``poll_forget_every`` s: drop seen entries no feed has listed for ``poll_forget_after`` s."""
        if self._forget_after is None:
            return
        every = self.settings.poll_forget_every
        if self._last_forget is not None and time.monotonic() - self._last_forget < every:
            return
        self._last_forget = time.monotonic()
        forgotten = self.state.forget(self._clock() - timedelta(seconds=self._forget_after))
        if forgotten:
            log.info(
                "forgot %d articles no feed has listed for %.0f days", forgotten, self._forget_after / 86400
            )

    def _until_next_due(self) -> float:
        now = self._clock()
        dues = [
            s.next_due_at
            for s in (self.state.feed(f.name, f.url) for f in self.feeds)
            if not s.gone and s.next_due_at is not None
        ]
        if not dues:
            return 60.0
        return max(0.05, min(60.0, (min(dues) - now).total_seconds()))

    async def close(self) -> None:
        await self.fetcher.aclose()

    # ---- one feed (the fetch side: returns a FeedBatch, changes nothing else) ----------------------

    async def _poll_feed(
        self,
        feed: FeedDeclaration,
        state: FeedState,
        queue: asyncio.Queue[FeedBatch | None],
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        if stop():
            return
        now = self._clock()
        state = replace(state, last_attempt_at=now)
        try:
            batch = await self._fetch_and_parse(feed, state, now)
        except IngestError as exc:
            batch = self._failure(feed, state, exc, now)
        except Exception as exc:  # a bug triggered by one feed must not stop the others
            log.exception("feed %s: unexpected error while polling %s", feed.name, redact_url(state.url))
            batch = self._failure(feed, state, exc, now)
        await queue.put(batch)

    async def _fetch_and_parse(self, feed: FeedDeclaration, state: FeedState, now: datetime) -> FeedBatch:
        # the declared headers belong to the declared origin, also after a remembered 301 elsewhere
        headers = dict(feed.headers) if same_origin(feed.url, state.url) else {}
        result = await self.fetcher.fetch(
            state.url, etag=state.etag, last_modified=state.last_modified, headers=headers
        )
        self.health.fetch_seconds.observe(result.elapsed)
        if result.permanent_url and result.permanent_url != state.url:
            log.info(
                "feed %s moved permanently: %s -> %s (remembered)",
                feed.name,
                redact_url(state.url),
                redact_url(result.permanent_url),
            )
            state = replace(state, url=result.permanent_url)
        success = replace(
            state,
            last_success_at=now,
            consecutive_failures=0,
            last_error=None,
            next_due_at=now + timedelta(seconds=self._interval(feed)),
            last_new_at=state.last_new_at or now,
        )
        if result.not_modified:
            return FeedBatch(feed, success, FeedOutcome(feed.name, "not_modified"))
        parsed = await asyncio.to_thread(
            parse_document, result.body, url=result.url, content_type=result.content_type
        )
        if parsed.problem:
            log.info("feed %s: document is not clean but usable (%s)", feed.name, parsed.problem)
        normalized = await asyncio.to_thread(normalize_feed, parsed, feed, now)
        articles, dropped = normalized.articles, normalized.duplicates_dropped
        owners = self._owners(feed.name, normalized.candidates)
        if owners:  # ids this feed's GUIDs own already: a shared link must not take them over
            articles, dropped = resolve_ids(normalized.candidates, feed.name, owners)
        self.health.counted(feed.name, "duplicate", dropped)
        success = replace(success, etag=result.etag, last_modified=result.last_modified)
        outcome = FeedOutcome(
            feed.name, "ok", entries=normalized.entries, duplicates=dropped, problem=parsed.problem
        )
        return FeedBatch(feed, success, outcome, articles)

    def _failure(self, feed: FeedDeclaration, state: FeedState, exc: Exception, now: datetime) -> FeedBatch:
        if isinstance(exc, IngestError):
            kind, detail, retriable, retry_after = exc.kind, exc.detail, exc.retriable, exc.retry_after
        else:  # a bug: confined to its feed, and tried again like a transient failure
            kind, detail, retriable, retry_after = "internal_error", str(exc), True, None
        failures = state.consecutive_failures + 1
        delay = self._retry_delay(feed, failures, retriable)
        if retry_after is not None:
            delay = max(delay, retry_after)
        gone = isinstance(exc, FeedGoneError)
        failed = replace(
            state,
            consecutive_failures=failures,
            last_error=redact_text(f"{kind}: {detail}")[:1000],
            next_due_at=now + timedelta(seconds=delay),
            gone=gone,
        )
        outcome = FeedOutcome(feed.name, kind, redact_text(str(exc)))
        self.health.failed(
            failed, kind, outcome.detail, None if gone else delay, needs_a_person=not retriable
        )
        return FeedBatch(feed, failed, outcome)

    def _retry_delay(self, feed: FeedDeclaration, failures: int, retriable: bool) -> float:
        """Exponential from the feed's interval when trying again can help; else the cap at once."""
        cap = self.settings.poll_backoff_cap
        delay = min(cap, self._interval(feed) * 2 ** min(failures - 1, 20)) if retriable else cap
        return delay * self._rng.uniform(1 - self.settings.poll_jitter, 1 + self.settings.poll_jitter)

    def _interval(self, feed: FeedDeclaration) -> float:
        base = feed.interval or self.settings.poll_interval
        return base * self._rng.uniform(1 - self.settings.poll_jitter, 1 + self.settings.poll_jitter)

    # ---- the publishing side: the single writer ----------------------------------------------------

    async def _publish_loop(
        self, queue: asyncio.Queue[FeedBatch | None], stop: Callable[[], bool]
    ) -> dict[str, FeedOutcome]:
        """Drain the queue until its sentinel; returns the outcome of every feed it committed."""
        done: dict[str, FeedOutcome] = {}
        finished = False
        while not finished:
            batches: list[FeedBatch] = []
            item = await queue.get()
            while item is not None:
                batches.append(item)
                if sum(len(b.articles) for b in batches) >= MAX_PUBLISH_BATCH or queue.empty():
                    break
                item = queue.get_nowait()
            finished = item is None
            if batches:
                done.update((o.feed, o) for o in await self._publish_batches(batches, stop))
        return done

    async def _publish_batches(self, batches: list[FeedBatch], stop: Callable[[], bool]) -> list[FeedOutcome]:
        decided: dict[str, ArticleSeen] = {}
        still_listed: list[str] = []
        fresh_per_batch = [self._decide(batch.articles, decided, still_listed) for batch in batches]
        fresh_per_batch = await self._with_full_text(batches, fresh_per_batch, stop)
        to_publish = [article for fresh in fresh_per_batch for article in fresh]
        states: list[FeedState] = []
        outcomes: list[FeedOutcome] = []
        for batch, fresh in zip(batches, fresh_per_batch, strict=True):
            new = sum(1 for a in fresh if a.revision == 1)
            outcomes.append(
                replace(
                    batch.outcome,
                    new=new,
                    updated=len(fresh) - new,
                    unchanged=len(batch.articles) - len(fresh),
                )
            )
            state = batch.state
            if new and batch.outcome.outcome == "ok":
                state = replace(state, last_new_at=state.last_attempt_at or self._clock())
            states.append(state)
        if to_publish:
            await self._publish_with_retry(to_publish, stop)
        self.state.commit(states, to_publish, still_listed, self._clock())
        self._backoff.reset()
        for outcome, state in zip(outcomes, states, strict=True):
            if outcome.fetched:
                self.health.succeeded(state, outcome.outcome, state.last_attempt_at or self._clock())
                self.health.counted(outcome.feed, "new", outcome.new)
                self.health.counted(outcome.feed, "updated", outcome.updated)
        self.health.published(len(to_publish))
        return outcomes

    async def _with_full_text(
        self, batches: list[FeedBatch], fresh_per_batch: list[list[ArticleSeen]], stop: Callable[[], bool]
    ) -> list[list[ArticleSeen]]:
        """The articles about to be published, with the page text for ``full_text`` feeds.

        Only what :meth:`_decide` chose is fetched (new articles and edits: a revision must not
        fall back to the lead). A stop request cancels the page fetches: the feed text is kept.
        """
        wanted = [
            a for b, fresh in zip(batches, fresh_per_batch, strict=True) if b.feed.full_text for a in fresh
        ]
        if not wanted:
            return fresh_per_batch
        filling = asyncio.create_task(fill_full_text(self.fetcher, wanted, self.settings.full_text_timeout))
        while not filling.done():
            if stop():
                filling.cancel()
                await asyncio.gather(filling, return_exceptions=True)
                log.info("stop requested: %d articles keep their feed text", len(wanted))
                return fresh_per_batch
            await asyncio.wait({filling}, timeout=0.1)
        filled = {a.article_id: a for a in filling.result()}
        return [[filled.get(a.article_id, a) for a in fresh] for fresh in fresh_per_batch]

    def _decide(
        self, articles: Sequence[ArticleSeen], decided: dict[str, ArticleSeen], still_listed: list[str]
    ) -> list[ArticleSeen]:
        """New (revision 1) and edited (revision + 1) articles; unchanged ones are left out.

        Unchanged ones whose ``listed_at`` is older than half the forget window go to
        ``still_listed``: refreshing them that rarely keeps the write cost negligible while a
        feed keeps listing them, and they are never forgotten in between.
        """
        pending = [a for a in articles if a.article_id not in decided]
        known = self.state.seen(a.article_id for a in pending)
        refresh_before = (
            self._clock() - timedelta(seconds=self._forget_after / 2)
            if self._forget_after is not None
            else None
        )
        fresh = []
        for article in pending:
            record = known.get(article.article_id)
            if record is None:
                chosen = article
            elif not self._would_publish(article, record):
                listed = record.listed_at or record.first_seen_at
                if not record.forgotten and refresh_before is not None and listed < refresh_before:
                    still_listed.append(article.article_id)
                continue
            else:
                update: dict[str, object] = {
                    "revision": record.revision + 1,
                    "first_seen_at": record.first_seen_at,
                }
                if article.published_at_inferred and record.published_at is not None:
                    update["published_at"] = record.published_at
                    update["published_at_inferred"] = record.published_inferred
                chosen = article.model_copy(update=update)
                log.info(
                    "article_id=%s edited (feed %s): publishing revision %d",
                    article.article_id,
                    article.feed,
                    chosen.revision,
                )
            decided[article.article_id] = chosen
            fresh.append(chosen)
        return fresh

    def _would_publish(self, article: ArticleSeen, record: SeenRecord | None) -> bool:
        """New, or edited in the feed that owns it (or whose owner is no longer declared)."""
        if record is None:
            return True
        if record.content_hash == article.content_hash:
            return False
        return record.feed == article.feed or record.feed not in self._feed_names

    def _owners(self, feed_name: str, candidates: Sequence[ArticleSeen]) -> dict[str, str]:
        """URL ids of ``candidates`` that a GUID of this feed owns already (from the state)."""
        ids = [c.article_id for c in candidates if c.url and c.guid]
        if not ids:
            return {}
        return {
            article_id: record.guid
            for article_id, record in self.state.seen(ids).items()
            if record.feed == feed_name and record.guid
        }

    async def _publish_with_retry(self, articles: list[ArticleSeen], stop: Callable[[], bool]) -> None:
        started = time.monotonic()
        while True:
            try:
                await asyncio.to_thread(self.publisher.publish, articles)
                return
            except RetriableError as exc:
                waited = time.monotonic() - started
                limit = self.give_up_after
                if (limit is not None and waited >= limit) or stop():
                    raise PublishGaveUpError(
                        f"publisher unavailable for {waited:.0f}s; {len(articles)} articles not published, "
                        "nothing marked seen"
                    ) from exc
                delay = self._backoff.next_delay()
                self.health.publish_retried()
                log.warning("publishing %d articles failed, retrying in %.1fs: %s", len(articles), delay, exc)
                await _sleep(delay, stop)


async def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not stop():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(0.2, remaining))


async def _cancel_when_stopped(
    producing: asyncio.Task[None], queue: asyncio.Queue[FeedBatch | None], stop: Callable[[], bool]
) -> None:
    """Cancel the fetches in flight once ``stop()`` is true, then let the publisher finish up."""
    while not producing.done():
        if stop():
            producing.cancel()
            await asyncio.gather(producing, return_exceptions=True)
            log.info("stop requested: fetches in flight cancelled; their feeds are polled next time")
            await queue.put(None)
            return
        await asyncio.sleep(0.1)
