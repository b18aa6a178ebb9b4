"""What does incident linking cost the sink?

The same stream of N tagged articles written twice through ``store.repository.save_batch``, each
into a fresh database: once as the sink runs (linking inside the transaction) and once with linking
switched off (``save_batch(link=False)``, what ``WIREWATCH_LINK_INCIDENTS=false`` does). The stream
is :func:`tests.support.incidents.synthetic_stream`: synthetic but shaped like the feeds (incidents
reported 1-5 times in both languages, towns and provinces shared across incidents, embeddings
carrying their incident's direction, locations on the messages).
Run: .venv/bin/python bench/bench_incidents.py [--n 3000] [--batch 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

import store.repository as repository
from store.database import make_engine
from store.migrate import upgrade
from store.tables import incidents
from tests.support.incidents import synthetic_stream
from wirewatch.contract import ArticleTagged

DATABASE_URL = os.environ.get(
    "WIREWATCH_DATABASE_URL", "postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:5432/wirewatch"
)


def run(admin, messages: list[ArticleTagged], batch: int, linking: bool) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    name = f"wirewatch_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(DATABASE_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        upgrade(engine)
        started = time.perf_counter()
        for start in range(0, len(messages), batch):
            with Session(engine) as session, session.begin():
                repository.save_batch(session, messages[start : start + batch], link=linking)
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    return len(messages) / elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    messages, made = synthetic_stream(args.n)
    admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    print(f"bench_incidents: {len(messages)} tagged articles from ~{made} incidents, batch {args.batch}")
    off, _ = run(admin, messages, args.batch, linking=False)
    on, count = run(admin, messages, args.batch, linking=True)
    print(f"sink without linking {off:>8.0f} articles/s")
    print(
        f"sink with linking    {on:>8.0f} articles/s  ({count} incidents stored; {on / off:.2f} of the rate)"
    )
    admin.dispose()


if __name__ == "__main__":
    main()
