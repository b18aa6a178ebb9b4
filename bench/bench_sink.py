"""How fast does the sink write tagged articles into PostgreSQL?

Three ways to store the same N tagged articles (each: 1 article, 1 classification,
2 events), each into a fresh database of its own, measured in one run:

* naive    — the per-row ORM loop: for each message, add the rows and commit
* sink     — wirewatch's repository: multi-row upserts, one transaction per batch
* copy     — PostgreSQL's raw limit: COPY of the same rows (no upsert semantics)

Kafka is left out on purpose: this measures the database path the sink owns.
Run: .venv/bin/python bench/bench_sink.py [--n 5000] [--batch 500]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

from store.database import make_engine
from store.migrate import upgrade
from store.repository import article_row, classification_row, count_rows, event_rows, save_batch
from store.tables import articles, classifications, events
from tests.support.factories import seen, tagged
from wirewatch.contract import ArticleTagged

DATABASE_URL = os.environ.get(
    "WIREWATCH_DATABASE_URL", "postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:5432/wirewatch"
)


def make_messages(n: int) -> list[ArticleTagged]:
    body = "La Policía frustró un secuestro tras un intercambio de disparos con los captores. " * 8
    return [tagged(seen(f"bench-{i:07d}", text=body)) for i in range(n)]


def naive(engine: Engine, messages: list[ArticleTagged], batch: int) -> None:
    for msg in messages:
        with Session(engine) as session:
            session.execute(insert(articles), [article_row(msg)])
            session.execute(insert(classifications), [classification_row(msg)])
            session.execute(insert(events), event_rows(msg))
            session.commit()


def sink(engine: Engine, messages: list[ArticleTagged], batch: int) -> None:
    for start in range(0, len(messages), batch):
        with Session(engine) as session, session.begin():
            save_batch(session, messages[start : start + batch])


def copy(engine: Engine, messages: list[ArticleTagged], batch: int) -> None:
    def tsv(rows: list[dict], columns: list[str]) -> io.StringIO:
        buf = io.StringIO()
        for row in rows:
            values = []
            for c in columns:
                v = row[c]
                if isinstance(v, dict | list):
                    v = json.dumps(v) if isinstance(v, dict) else "{" + ",".join(v) + "}"
                values.append(
                    "\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")
                )
            buf.write("\t".join(values) + "\n")
        buf.seek(0)
        return buf

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, rows in (
            ("articles", [article_row(m) for m in messages]),
            ("classifications", [classification_row(m) for m in messages]),
            ("events", [r for m in messages for r in event_rows(m)]),
        ):
            columns = list(rows[0])
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:  # type: ignore[attr-defined]
                cp.write(tsv(rows, columns).getvalue())
        raw.commit()
    finally:
        raw.close()


def fresh_database(admin: Engine) -> str:
    name = f"wirewatch_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return name


def measure(admin: Engine, label: str, fn: Callable, messages: list[ArticleTagged], batch: int) -> float:
    name = fresh_database(admin)
    engine = make_engine(DATABASE_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        upgrade(engine)
        started = time.perf_counter()
        fn(engine, messages, batch)
        elapsed = time.perf_counter() - started
        with Session(engine) as s:
            counts = count_rows(s)
        assert counts["articles"] == len(messages), counts
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    rate = len(messages) / elapsed
    print(f"{label:<8} {len(messages):>7} articles {elapsed:>8.2f} s {rate:>10.0f} articles/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    messages = make_messages(args.n)
    admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    print(f"bench_sink: {args.n} tagged articles (1 article, 1 classification, 2 events), batch {args.batch}")
    rates = {
        "naive": measure(admin, "naive", naive, messages, args.batch),
        "sink": measure(admin, "sink", sink, messages, args.batch),
        "copy": measure(admin, "copy", copy, messages, args.batch),
    }
    ratio, share = rates["sink"] / rates["naive"], rates["sink"] / rates["copy"]
    print(f"sink / naive: {ratio:.1f}x; sink / copy: {share:.2f}")
    admin.dispose()


if __name__ == "__main__":
    main()
