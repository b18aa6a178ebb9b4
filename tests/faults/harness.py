"""The fault-test harness: a corpus served over HTTP, the three stages as subprocesses, faults, a verdict.

One :class:`Pipeline` per test, with topics, consumer groups, a poller state
directory and a database of its own, so fault tests never see each other's
data (they do share the broker and the PostgreSQL server, which two of them
restart). Typical use::

    pipe = Pipeline(...)                 # built by the ``pipeline`` fixture
    pipe.start()                         # poller, classifier(s), sink(s); the stream begins
    faults.run(pipe, schedule)           # kill -9 / restart at seeded moments
    pipe.wait_drained()                  # lag 0 on both groups, every entry stored, stable
    pipe.assert_exactly_once()           # database == corpus
    pipe.assert_no_secrets_logged()

Every test logs its seed and fault schedule (``WIREWATCH_FAULT_SEED`` replays
one) and, when it fails, the tail of every service's log.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from tests.faults.corpus import Corpus, Entry
from tests.faults.feedserver import FeedServer
from tests.faults.services import Supervisor, base_env, wait_for
from tests.faults.verify import Verdict, compare, stored_count
from wirewatch.lag import LagReport, measure_lag
from wirewatch.settings import KafkaSettings

log = logging.getLogger(__name__)

# A URL with a password that is not masked ("***"): user:secret@host.
_URL_WITH_PASSWORD = re.compile(r"://[^:/@\s]+:(?!\*\*\*@)[^@\s/]+@")


@dataclass(frozen=True)
class Names:
    raw: str
    tagged: str
    dlq: str
    classify_group: str
    store_group: str


@dataclass
class FaultLog:
    """What was done to the pipeline and when (seconds into the stream), for replaying a failure."""

    seed: int
    test: str
    events: list[str] = field(default_factory=list)

    def plan(self, description: str) -> None:
        log.warning(
            "FAULT PLAN %s seed=%d: %s (replay: WIREWATCH_FAULT_SEED=%d)",
            self.test,
            self.seed,
            description,
            self.seed,
        )

    def note(self, elapsed: float, what: str) -> None:
        entry = f"t={elapsed:6.2f}s {what}"
        self.events.append(entry)
        log.warning("FAULT %s seed=%d %s", self.test, self.seed, entry)

    def describe(self) -> str:
        return f"seed={self.seed} faults:\n  " + "\n  ".join(self.events or ["(none)"])


class Pipeline:
    """Poller, classifier(s) and sink(s) as subprocesses on a corpus, with their own topics and DB."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        engine: Engine,
        service_database_url: str,
        corpus: Corpus,
        server: FeedServer,
        names: Names,
        workdir: Path,
        faults: FaultLog,
        tagger: str = "keywords",
        extra_env: dict[str, str] | None = None,
        extra_feeds: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.kafka, self.engine, self.corpus, self.server = kafka, engine, corpus, server
        self.names, self.workdir, self.faults, self.tagger = names, workdir, faults, tagger
        self.supervisor = Supervisor(workdir)
        self.sasl_canary = "sasl-" + secrets.token_hex(12)
        self.service_database_url = service_database_url
        self.feeds_file = workdir / "feeds.yaml"
        lines = ["feeds:"]
        for feed in corpus.feeds:
            lines += [
                f"  - name: {feed.name}",
                f"    url: {server.url(feed.name)}",
                f"    language: {feed.language}",
                "    interval: 1",
            ]
        for name, url in extra_feeds:
            lines += [f"  - name: {name}", f"    url: {url}", "    interval: 1"]
        self.feeds_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.env = {
            **base_env(),
            "WIREWATCH_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "WIREWATCH_LOG_LEVEL": "INFO",
            "WIREWATCH_DEAD_LETTER_TOPIC": names.dlq,
            "WIREWATCH_LAG_REPORT_SECONDS": "5",
            # Present in every service's settings, used by none (no SASL mechanism): must never be logged.
            "WIREWATCH_KAFKA_SASL_USERNAME": "fault-test-user",
            "WIREWATCH_KAFKA_SASL_PASSWORD": self.sasl_canary,
            "WIREWATCH_DATABASE_URL": service_database_url,
            # poller
            "WIREWATCH_FEEDS": str(self.feeds_file),
            "WIREWATCH_STATE_DIR": str(workdir / "state"),
            "WIREWATCH_POLL_TOPIC": names.raw,
            "WIREWATCH_ALLOW_PRIVATE_ADDRESSES": "true",
            "WIREWATCH_FETCH_CONNECT_TIMEOUT": "3",
            "WIREWATCH_FETCH_READ_TIMEOUT": "3",
            "WIREWATCH_FETCH_TOTAL_TIMEOUT": "5",
            "WIREWATCH_POLL_BACKOFF_CAP": "4",
            # classifier
            "WIREWATCH_CLASSIFY_INPUT_TOPIC": names.raw,
            "WIREWATCH_CLASSIFY_OUTPUT_TOPIC": names.tagged,
            "WIREWATCH_CLASSIFY_GROUP": names.classify_group,
            "WIREWATCH_TAGGER": tagger,
            # sink
            "WIREWATCH_STORE_TOPIC": names.tagged,
            "WIREWATCH_STORE_GROUP": names.store_group,
            "WIREWATCH_STORE_BATCH_SIZE": "200",
            **(extra_env or {}),
        }
        self._counters: dict[str, int] = {}

    # ---- processes --------------------------------------------------------------------------------

    def add(self, role: str) -> str:
        """Start one more instance of ``role`` (poll, classify, store); returns its name."""
        self._counters[role] = self._counters.get(role, 0) + 1
        name = f"{role}-{self._counters[role]}"
        self.supervisor.add(name, role, dict(self.env))
        return name

    def start(
        self, classifiers: int = 1, sinks: int = 1, poll: bool = True, wait_ready: bool = False
    ) -> None:
        """Start the stages and the stream (entries begin to appear in the feeds); with ``wait_ready``
        the stream starts only once every consumer is up (model loaded) and has joined its group."""
        for _ in range(sinks):
            self.add("store")
        for _ in range(classifiers):
            self.add("classify")
        if wait_ready:
            consumers = [s for s in self.supervisor.services.values() if s.role in {"store", "classify"}]
            wait_for(
                lambda: all(" consuming " in s.output() for s in consumers), 180, what="consumers to start"
            )
            self.sleep(3.0)  # joining the group
        if poll:
            self.add("poll")
        self.server.start_stream()
        self.faults.note(
            0.0,
            f"stream started: {len(self.corpus.entries)} entries over "
            f"{self.corpus.stream_seconds:.0f}s in {len(self.corpus.feeds)} feeds",
        )

    def kill9(self, name: str) -> None:
        self.faults.note(self.server.elapsed, f"kill -9 {name}")
        self.supervisor[name].kill9()

    def restart(self, name: str) -> None:
        self.faults.note(self.server.elapsed, f"restart {name}")
        self.supervisor[name].start()

    def sleep(self, seconds: float) -> None:
        """Sleep while supervising (crashed services are restarted and recorded)."""
        deadline = time.monotonic() + seconds
        while True:
            self.supervisor.supervise()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.2, left))

    def sleep_until(self, elapsed: float) -> None:
        self.sleep(max(0.0, elapsed - self.server.elapsed))

    def close(self) -> None:
        self.supervisor.stop_all()

    # ---- draining and the verdict -----------------------------------------------------------------

    def lag(self) -> LagReport | None:
        try:
            return measure_lag(
                self.kafka,
                {self.names.classify_group: [self.names.raw], self.names.store_group: [self.names.tagged]},
            )
        except Exception as exc:  # broker down or restarting: not drained yet
            log.info("lag not measurable yet: %r", exc)
            return None

    def wait_drained(self, timeout: float = 120.0, settle: float = 3.0, expected: int | None = None) -> None:
        """Until the stream is over, both groups have lag 0 and the database holds ``expected``
        articles (default: the corpus size), unchanged for ``settle`` seconds."""
        expected = len(self.corpus.entries) if expected is None else expected
        deadline = time.monotonic() + max(0.0, self.corpus.stream_seconds - self.server.elapsed) + timeout
        stable: tuple[int, float] | None = None
        last = "nothing measured"
        while time.monotonic() < deadline:
            self.sleep(0.5)
            if not self.server.stream_done():
                continue
            try:
                count = stored_count(self.engine)
            except Exception as exc:  # database restarting
                last = f"database: {exc!r}"
                continue
            report = self.lag()
            last = f"{count}/{expected} stored, lag {report.by_group() if report else 'unknown'}"
            if report is None or report.total or count < expected:
                stable = None
                continue
            if stable is None or stable[0] != count:
                stable = (count, time.monotonic())
            elif time.monotonic() - stable[1] >= settle:
                log.info("drained: %s after %.1fs of stream", last, self.server.elapsed)
                return
        report = self.lag()
        table = report.format_table() if report else "lag unknown"
        raise AssertionError(
            f"pipeline did not drain: {last}\n{table}\n{self.faults.describe()}\n{self.supervisor.tails()}"
        )

    def verdict(self, entries: Iterable[Entry] | None = None, **options: object) -> Verdict:
        return compare(
            self.engine,
            self.corpus.entries if entries is None else entries,
            self.server.base,
            check_events=self.tagger == "keywords",
            **options,  # type: ignore[arg-type]
        )

    def assert_exactly_once(self, entries: Iterable[Entry] | None = None, **options: object) -> Verdict:
        verdict = self.verdict(entries, **options)
        assert verdict.ok, f"{verdict.describe()}\n{self.faults.describe()}\n{self.supervisor.tails()}"
        return verdict

    def assert_no_crashes(self) -> None:
        assert not self.supervisor.crashes, "services exited by themselves:\n" + "\n".join(
            f"--- {c.service} exit {c.returncode}\n{c.tail}" for c in self.supervisor.crashes
        )

    def assert_no_secrets_logged(self) -> None:
        """Neither the SASL password nor the database password (in any form) is in any log."""
        password = self.service_database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        for name, output in self.supervisor.logs().items():
            assert self.sasl_canary not in output, f"{name} logged the SASL password"
            assert password not in output, f"{name} logged the database password"
            found = _URL_WITH_PASSWORD.search(output)
            assert found is None, f"{name} logged a URL with a password: {found.group(0)!r}"


def kill_schedule(
    rng: random.Random, count: int, start: float, end: float, downtime: tuple[float, float] = (0.0, 2.0)
) -> list[tuple[float, float]]:
    """``count`` (moment, downtime) pairs, moments sorted and at least 3 s apart, within [start, end]."""
    moments: list[float] = []
    while len(moments) < count:
        moment = rng.uniform(start, end)
        if all(abs(moment - m) >= 3.0 for m in moments):
            moments.append(moment)
    return [(round(m, 2), round(rng.uniform(*downtime), 2)) for m in sorted(moments)]


def run_kills(pipe: Pipeline, pick: Callable[[], str], schedule: list[tuple[float, float]]) -> None:
    """At each moment ``kill -9`` the service ``pick()`` names, then restart it after its downtime."""
    for moment, downtime in schedule:
        pipe.sleep_until(moment)
        name = pick()
        pipe.kill9(name)
        pipe.sleep(downtime)
        pipe.restart(name)
