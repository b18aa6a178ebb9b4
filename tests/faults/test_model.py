"""One end-to-end fault run with the real model (``WIREWATCH_TAGGER=model``): kill -9 of the classifier.

The model is slow on CPU and takes seconds to load, so the corpus is small and
the test runs once (not per seed). Its labels are the model's, so the verdict
checks exactly-once storage and one classification per article, and that the
stored events come from the model (not the keyword baseline). Skipped when
``classify/artifact`` is not built.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from tests.faults.harness import kill_schedule, run_kills

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def test_real_model_classifier_killed_mid_stream(pipeline, model_artifact) -> None:
    seed = 11
    pipe = pipeline(seed, entries=120, feeds=4, stream_seconds=8, tagger="model")
    schedule = kill_schedule(random.Random(seed), 2, 4.0, 14.0, downtime=(0.0, 1.0))
    pipe.faults.plan(f"kill -9 classify-1 (real model) at {schedule}")
    pipe.start()
    run_kills(pipe, lambda: "classify-1", schedule)
    pipe.wait_drained(timeout=240)

    pipe.assert_exactly_once()
    pipe.assert_no_crashes()
    pipe.assert_no_secrets_logged()
    with pipe.engine.connect() as conn:
        models = set(conn.execute(text("SELECT DISTINCT model_name FROM classifications")).scalars())
        tagged = conn.execute(text("SELECT count(DISTINCT article_id) FROM events")).scalar_one()
    assert models and "keyword-baseline" not in models
    expected_positive = sum(1 for e in pipe.corpus.entries if e.labels)
    # The model is not the baseline, but on these plain stories it must find most of what the regexes find.
    assert tagged >= 0.5 * expected_positive, (tagged, expected_positive)
