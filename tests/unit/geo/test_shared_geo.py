"""Location accuracy per level on the hand-labelled ``../shared/data/geo_dev.jsonl``.

Floors sit a little below the measured numbers (README, "Location"), so a change that loses
accuracy fails here. Skipped where the shared data is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.geo.evaluate import evaluate
from classify.geo.gazetteer import load

pytestmark = pytest.mark.shared_data

FLOORS = {
    "train (200, tuning)": {"country": 0.93, "admin1": 0.83, "city": 0.72, "none": 0.5},
    "dev (102, held out)": {"country": 0.94, "admin1": 0.91, "city": 0.71, "none": 0.6},
}


def test_accuracy_per_level_stays_above_floors(shared_dir: Path) -> None:
    from classify.backbone import model_cache_root

    data = shared_dir / "data"
    if not (data / "geo_dev.jsonl").exists():
        pytest.skip("../shared/data/geo_dev.jsonl is not present")
    reports = evaluate(data, load(str(model_cache_root())))
    for report in reports:
        for level, floor in FLOORS[report.split].items():
            got = report.scores[level].accuracy
            assert got >= floor, f"{report.split} {level}: {got:.3f} < {floor}"
        assert report.seconds_per_item < 0.2
