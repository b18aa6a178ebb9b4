"""Two classifiers and two sinks; mid-stream one of each is killed and a new one of each joins.

Each kill leaves a dead member in the group until its session times out; each
join rebalances the partitions. Batches in flight on the dead member are
redelivered to a survivor, batches committed across a rebalance may be
re-read: the database must still hold every corpus entry exactly once.
"""

from __future__ import annotations

import random

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def test_rebalance_with_a_member_killed_and_one_added(pipeline, seed: int) -> None:
    pipe = pipeline(seed, partitions=4)
    rng = random.Random(f"{seed}-rebalance")
    stream = pipe.corpus.stream_seconds
    kill_at = round(rng.uniform(2.0, stream * 0.5), 2)
    add_at = round(kill_at + rng.uniform(1.0, 4.0), 2)
    victim_classify, victim_store = (
        rng.choice(["classify-1", "classify-2"]),
        rng.choice(["store-1", "store-2"]),
    )
    pipe.faults.plan(
        f"kill -9 {victim_classify} and {victim_store} at t={kill_at}s; add one of each at t={add_at}s"
    )
    pipe.start(classifiers=2, sinks=2)

    pipe.sleep_until(kill_at)
    pipe.kill9(victim_classify)
    pipe.kill9(victim_store)
    pipe.sleep_until(add_at)
    pipe.faults.note(pipe.server.elapsed, "add classify-3 and store-3")
    pipe.add("classify")
    pipe.add("store")
    pipe.wait_drained()

    pipe.assert_exactly_once()
    pipe.assert_no_crashes()
    pipe.assert_no_secrets_logged()
    survivors = [name for name in ("classify-1", "classify-2", "classify-3") if name != victim_classify]
    assert all(pipe.supervisor[name].alive() for name in survivors)
