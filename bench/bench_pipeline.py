"""How fresh is the data, and how many articles per second does the whole pipeline sustain here?

Runs the three real processes (``wirewatch poll``, ``classify``, ``store``) on
the local Kafka and PostgreSQL, fed by a generated corpus served over loopback
HTTP at a fixed rate (articles/s, spread over 10 feeds polled every second,
each listing its last ``--window`` seconds of entries). Each trial uses its own
topics, groups and database. Reported per trial:

* freshness p50/p95/p99: ``articles.stored_at - articles.first_seen_at`` (first
  sight by the poller -> row committed by the sink; ``stored_at`` is the sink
  transaction's start, so it is a slight under-estimate);
* the largest consumer lag sampled in the second half of the stream (messages,
  and the age of the oldest unconsumed message), and how long the pipeline
  took to drain after the stream ended. The stream starts once the services
  are up (model loaded), so start-up is not counted as lag.

A rate is *sustained* when every article is stored within ``--drain`` seconds
after the stream ends and no message waited more than ``--max-lag-seconds``
(default 10) unconsumed in the second half. ``--search`` doubles the rate until a
trial is not sustained, then bisects between the last good and first bad rate.

Run from the repository root as a module (it reuses the fault tests' corpus, feed server and
pipeline harness from ``tests/faults``, importable from there without touching ``sys.path``):
     .venv/bin/python -m bench.bench_pipeline --rate 50 --duration 60
     .venv/bin/python -m bench.bench_pipeline --search [--tagger model]

Incident linking runs in the sink. ``--linking both`` (the default) runs every trial, or the whole
search, twice: with ``WIREWATCH_LINK_INCIDENTS=true`` and ``false``, and prints the two side by
side with the ratio of the highest sustained rates (``on`` / ``off`` for one of them).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from store.database import make_engine
from store.migrate import upgrade
from tests.faults.corpus import build_corpus
from tests.faults.feedserver import FeedServer
from tests.faults.harness import FaultLog, Names, Pipeline
from tests.faults.verify import stored_count
from wirewatch.kafka import ensure_topics
from wirewatch.settings import KafkaSettings

DATABASE_URL = os.environ.get(
    "WIREWATCH_DATABASE_URL", "postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:5432/wirewatch"
)
KAFKA = KafkaSettings(
    bootstrap=os.environ.get("WIREWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092"), client_id="bench"
)


@dataclass
class Trial:
    linking: bool
    rate: float
    expected: int
    stored: int
    p50: float
    p95: float
    p99: float
    max_lag: int
    max_lag_age: float
    drain_seconds: float
    sustained: bool

    def line(self) -> str:
        return (
            f"{'on' if self.linking else 'off':>7} {self.rate:8.1f} {self.stored:>7}/{self.expected:<7} "
            f"{self.p50:7.2f} {self.p95:7.2f} {self.p99:7.2f} "
            f"{self.max_lag:>8} {self.max_lag_age:8.1f} {self.drain_seconds:8.1f}  "
            f"{'yes' if self.sustained else 'NO'}"
        )


HEADER = (
    f"{'linking':>7} {'rate/s':>8} {'stored/expected':>15} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} "
    f"{'max lag':>8} {'lag age':>8} {'drain s':>8}  sustained"
)


def run_trial(rate: float, args: argparse.Namespace, linking: bool = True) -> Trial:
    entries = max(1, int(rate * args.duration))
    admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    db = f"wirewatch_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    url = DATABASE_URL.rsplit("/", 1)[0] + f"/{db}"
    engine = make_engine(url)
    upgrade(engine)
    suffix = uuid.uuid4().hex[:8]
    names = Names(
        f"bench.raw.{suffix}",
        f"bench.tagged.{suffix}",
        f"bench.dlq.{suffix}",
        f"bench-classify-{suffix}",
        f"bench-store-{suffix}",
    )
    ensure_topics(KAFKA, [names.raw, names.tagged], partitions=3)
    ensure_topics(KAFKA, [names.dlq], partitions=1)
    corpus = build_corpus(
        int(rate * 1000), entries=entries, feeds=10, stream_seconds=args.duration, prefix=f"b{suffix}"
    )
    server = FeedServer(corpus, window=args.window)
    with tempfile.TemporaryDirectory(prefix="wirewatch-bench-") as workdir:
        pipe = Pipeline(
            kafka=KAFKA,
            engine=engine,
            service_database_url=url,
            corpus=corpus,
            server=server,
            names=names,
            workdir=Path(workdir),
            faults=FaultLog(0, f"bench@{rate}"),
            tagger=args.tagger,
            extra_env={"WIREWATCH_LINK_INCIDENTS": "true" if linking else "false"},
        )
        try:
            pipe.start(classifiers=args.classifiers, sinks=1, wait_ready=True)
            max_lag, max_age = 0, 0.0
            while not server.stream_done():
                pipe.sleep(1.0)
                report = pipe.lag() if server.elapsed > args.duration / 2 else None
                if report is not None:
                    max_lag, max_age = max(max_lag, report.total), max(max_age, report.max_time_lag())
            ended = time.monotonic()
            while time.monotonic() - ended < args.drain and stored_count(engine) < entries:
                pipe.sleep(0.5)
            drain = time.monotonic() - ended
            stored = stored_count(engine)
        finally:
            pipe.close()
            server.close()
    with engine.connect() as conn:
        p50, p95, p99 = (
            conn.execute(
                text(
                    "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                    "(ORDER BY extract(epoch FROM stored_at - first_seen_at)) FROM articles"
                )
            ).scalar_one()
            or (float("nan"),) * 3
        )
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()
    sustained = stored >= entries and drain < args.drain and max_age <= args.max_lag_seconds
    return Trial(linking, rate, entries, stored, p50, p95, p99, max_lag, max_age, drain, sustained)


def search(args: argparse.Namespace, linking: bool) -> float:
    """The highest sustained rate found by doubling from ``--rate``, then bisecting twice."""
    good, bad, rate = None, None, args.rate
    while rate <= args.max_rate:
        trial = run_trial(rate, args, linking)
        print(trial.line(), flush=True)
        if not trial.sustained:
            bad = rate
            break
        good, rate = rate, rate * 2
    for _ in range(2 if good and bad else 0):
        mid = round((good + bad) / 2, 1)  # type: ignore[operator]
        trial = run_trial(mid, args, linking)
        print(trial.line(), flush=True)
        good, bad = (mid, bad) if trial.sustained else (good, mid)
    state = "on" if linking else "off"
    print(
        f"linking {state}: highest sustained rate {good or 0:.1f} articles/s "
        f"(first unsustained: {bad or '-'})"
    )
    return good or 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="articles per second (default 50)")
    parser.add_argument(
        "--duration", type=float, default=40.0, help="seconds of stream per trial (default 40)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds of entries each feed lists")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds allowed to drain after the stream")
    parser.add_argument(
        "--max-lag-seconds",
        type=float,
        default=10.0,
        help="bounded lag: oldest unconsumed message at most this old",
    )
    parser.add_argument("--tagger", choices=["keywords", "model"], default="keywords")
    parser.add_argument("--classifiers", type=int, default=1)
    parser.add_argument("--search", action="store_true", help="find the highest sustained rate")
    parser.add_argument("--max-rate", type=float, default=1600.0)
    parser.add_argument(
        "--linking",
        choices=["both", "on", "off"],
        default="both",
        help="incident linking in the sink (WIREWATCH_LINK_INCIDENTS): both side by side (default), on, off",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    print(
        f"pipeline bench: tagger={args.tagger} classifiers={args.classifiers} duration={args.duration:.0f}s "
        f"window={args.window:.0f}s, {os.cpu_count()} CPUs"
    )
    print(HEADER)
    settings = {"both": [True, False], "on": [True], "off": [False]}[args.linking]
    if not args.search:
        trials = [run_trial(args.rate, args, linking) for linking in settings]
        for trial in trials:
            print(trial.line(), flush=True)
        return 0
    found = {linking: search(args, linking) for linking in settings}
    if len(found) == 2 and found[False]:
        print(
            f"sustained rate with linking / without: {found[True]:.1f} / {found[False]:.1f} "
            f"= {found[True] / found[False]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
