"""``kill -9`` of each stage at seeded random moments, several times per run: nothing lost, nothing twice.

A killed poller may have published a batch without recording it as seen (it
re-publishes after restart); a killed classifier or sink leaves its batch
uncommitted (it is redelivered). The idempotent writes must absorb all of it:
the database ends up holding every corpus entry exactly once with its events.
"""

from __future__ import annotations

import random

import pytest

from tests.faults.harness import kill_schedule, run_kills

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

KILLS = 4


@pytest.mark.parametrize("role", ["poll", "classify", "store"])
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(pipeline, seed: int, role: str) -> None:
    pipe = pipeline(seed)
    rng = random.Random(f"{seed}-kill-{role}")
    schedule = kill_schedule(rng, KILLS, 1.0, pipe.corpus.stream_seconds + 4.0)
    pipe.faults.plan(f"kill -9 {role}-1 at (moment, downtime) {schedule}")
    pipe.start()

    run_kills(pipe, lambda: f"{role}-1", schedule)
    pipe.wait_drained()

    pipe.assert_exactly_once()
    pipe.assert_no_crashes()
    pipe.assert_no_secrets_logged()
    assert pipe.supervisor[f"{role}-1"].incarnations == KILLS + 1
