"""Backoff stays bounded through a day-long outage (issue 11, item 6), simulated without sleeping."""

from __future__ import annotations

import math
import random

import pytest

from tests.support.loop import FakeConsumer, FakeDeadLetters, SimulatedTime, records
from wirewatch.errors import RetriableError
from wirewatch.kafka import BatchLoop
from wirewatch.retry import Backoff


def test_delays_stay_within_the_cap_for_a_hundred_thousand_attempts() -> None:
    backoff = Backoff(base=0.5, cap=15.0, _rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(100_000)]
    assert all(math.isfinite(d) and 0 < d <= 15.0 for d in delays)
    assert max(delays[-1000:]) > 7.5  # still backing off at the cap, not collapsed to the base
    assert backoff.attempts == 100_000


def test_without_jitter_the_delay_doubles_then_holds_at_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=30.0, jitter=False)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.attempts = 10**6
    assert backoff.next_delay() == 30.0
    backoff.reset()
    assert backoff.next_delay() == 1.0


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (-1, 1), (2, 1), (1, math.inf)])
def test_nonsense_parameters_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Backoff(base=base, cap=cap)


def test_the_batch_loop_survives_a_day_long_database_outage() -> None:
    consumer = FakeConsumer(records(3))
    outage_ends_at = 24 * 3600.0
    clock = SimulatedTime()

    def handler(batch):  # type: ignore[no-untyped-def]
        if clock.now < outage_ends_at:
            raise RetriableError("database unavailable")
        return []

    loop = BatchLoop(consumer, handler, FakeDeadLetters())  # type: ignore[arg-type]
    while loop.run_once(clock) == 0:  # type: ignore[arg-type]
        pass
    assert len(clock.waits) > 5_000  # thousands of held attempts (the old code died at ~1,024)
    assert max(clock.waits) <= 15.0
    assert consumer.commits == [{next(iter(consumer.positions)): 3}]  # held, then stored, never dropped
