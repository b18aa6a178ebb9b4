"""What does incident linking cost the sink?

The same stream of N tagged articles written twice through ``store.repository.save_batch``, each
into a fresh database: once as the sink runs (linking inside the transaction) and once with linking
switched off. The stream is synthetic but shaped like the feeds: incidents reported 1-5 times
(copies and rewrites in both languages, published within two days), each article naming its
victim, town and province from pools of 400 surnames and 60 towns, so reports of different
incidents share towns and provinces the way a week of regional news does; embeddings carry their
incident's direction. Run: .venv/bin/python bench/bench_incidents.py [--n 3000] [--batch 100]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

import store.repository as repository
from store.database import make_engine
from store.migrate import upgrade
from store.tables import incidents
from tests.support.factories import T0, seen, tagged
from tests.support.incidents import vector
from wirewatch.contract import ArticleTagged

DATABASE_URL = os.environ.get(
    "WIREWATCH_DATABASE_URL", "postgresql+psycopg://wirewatch:wirewatch@127.0.0.1:5432/wirewatch"
)
_SYLLABLES = [
    "ba",
    "ce",
    "di",
    "fo",
    "gu",
    "la",
    "me",
    "ni",
    "po",
    "ru",
    "sa",
    "te",
    "vi",
    "zo",
    "qui",
    "dro",
]


def _words(prefix: str, count: int) -> list[str]:
    """Distinct letter-only proper names (the linker reads names as runs of letters)."""
    return [
        prefix + _SYLLABLES[i % 16] + _SYLLABLES[(i // 16) % 16] + _SYLLABLES[(i // 256) % 16]
        for i in range(count)
    ]


SURNAMES = _words("Al", 400)
TOWNS = _words("Villa", 60)
PROVINCES = _words("Pro", 12)


def make_stream(n: int, seed: int = 5) -> tuple[list[ArticleTagged], int]:
    rng = random.Random(seed)
    out: list[ArticleTagged] = []
    incident = 0
    while len(out) < n:
        incident += 1
        victim = f"{rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
        town, province = rng.choice(TOWNS), rng.choice(PROVINCES)
        day = T0 + timedelta(hours=incident * 2)
        for copy in range(rng.randint(1, 5)):
            lang = rng.choice(["es", "en"])
            place = f"{town}, {province}"
            body = (
                f"Hombres armados secuestraron a {victim} en {place}. La policía busca a los captores."
                if lang == "es"
                else f"Gunmen kidnapped {victim} in {place}. The police are searching for the captors."
            )
            article_id = f"b{incident:06d}-{copy}"
            stamp = day + timedelta(hours=rng.randint(0, 40))
            msg = tagged(
                seen(article_id, text=body, title="", language=lang, published_at=stamp),
                labels=("kidnapping",),
            ).model_copy(update={"embedding": vector(lang, f"incident-{incident}", article_id)})
            out.append(msg)
    rng.shuffle(out)
    return out[:n], incident


def run(admin, messages: list[ArticleTagged], batch: int, linking: bool) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    name = f"wirewatch_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(DATABASE_URL.rsplit("/", 1)[0] + f"/{name}")
    saved = (repository.link_tagged, repository.lock_linking)
    if not linking:
        repository.link_tagged = lambda session, fresher: None  # type: ignore[assignment,return-value]
        repository.lock_linking = lambda session: None  # type: ignore[assignment]
    try:
        upgrade(engine)
        started = time.perf_counter()
        for start in range(0, len(messages), batch):
            with Session(engine) as session, session.begin():
                repository.save_batch(session, messages[start : start + batch])
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
    finally:
        repository.link_tagged, repository.lock_linking = saved
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    return len(messages) / elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    messages, made = make_stream(args.n)
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
