"""Pure parts of classify/: sentence split, keyword baseline, scoring, calibration numerics, Q4 decoding."""

from __future__ import annotations

import numpy as np
import pytest

from classify import calibration
from classify.backbone import QK, dequantize_q4
from classify.evaluate import evaluate, score
from classify.keywords import KeywordTagger
from classify.labels import LABELS, LabelledRow, Prediction, TagInput, row_from_json, split_sentences


def test_split_sentences_keeps_abbreviations_and_quotes() -> None:
    text = 'El Sr. López dijo: "Nos dispararon." Luego huyeron.\n¿Qué pasó? Gen. Smith said so.'
    assert split_sentences(text) == [
        'El Sr. López dijo: "Nos dispararon."',
        "Luego huyeron.",
        "¿Qué pasó?",
        "Gen. Smith said so.",
    ]


def test_keyword_baseline_is_bilingual_and_gives_evidence() -> None:
    items = [
        TagInput("1", "Secuestran a empresario", "La policía busca a los plagiarios. Nada más."),
        TagInput("2", "Gunfight in Culiacán", "Soldiers exchanged fire with gunmen.", "en"),
        TagInput("3", "Weather", "Sunny all week."),
    ]
    preds = KeywordTagger().predict(items)
    assert preds[0].labels == ("kidnapping",)
    assert preds[0].evidence["kidnapping"] == "Secuestran a empresario"
    assert preds[1].labels == ("shootout",)
    assert preds[2].labels == ()
    assert set(preds[2].scores) == set(LABELS)


def test_score_counts_per_label() -> None:
    golds = [{"kidnapping": True, "shootout": False, "extortion": False}] * 2
    sc = score(golds, [["kidnapping"], ["shootout"]])
    assert (sc.labels["kidnapping"].tp, sc.labels["kidnapping"].fn) == (1, 1)
    assert sc.labels["shootout"].fp == 1
    assert sc.labels["kidnapping"].f1 == pytest.approx(2 / 3)


class _Fixed:
    model_name = "fixed"
    model_version = "0"

    def predict(self, items: list[TagInput]) -> list[Prediction]:
        return [Prediction(i.id, ("kidnapping",), dict.fromkeys(LABELS, 0.5)) for i in items]


def test_evaluate_skips_ambiguous_and_reports_languages_and_baseline() -> None:
    rows = [
        row_from_json({"id": "a", "lang": "en", "title": "x", "text": "", "labels": {"kidnapping": True}}),
        row_from_json({"id": "b", "lang": "es", "title": "y", "text": "", "labels": {}}),
        row_from_json({"id": "c", "lang": "es", "title": "z", "text": "", "labels": {}, "ambiguous": True}),
    ]
    report = evaluate(rows, _Fixed())
    assert (report.rows, report.skipped_ambiguous) == (2, 1)
    assert set(report.model.by_lang) == {"en", "es"}
    assert report.baseline is not None and report.baseline.name == "keyword-baseline"
    out = report.to_json()
    assert out["labels"]["kidnapping"]["precision"] == 0.5
    assert "baseline" in out and "macro-F1" in report.format_table()
    assert [e["id"] for e in report.errors] == ["b"]


def test_evaluate_rows_are_labelled_rows() -> None:
    row = row_from_json({"id": 7, "title": None, "text": "t", "labels": {"extortion": 1}})
    assert isinstance(row, LabelledRow) and row.item.id == "7" and row.gold["extortion"] is True


def test_dequantize_q4_block_layout() -> None:
    # one row of 32 weights: scale 0.5, byte j holds weight j (low nibble) and j+16 (high nibble)
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    low = np.arange(16, dtype=np.uint8)  # q = 0..15  -> (q - 8) * 0.5
    high = np.full(16, 8, dtype=np.uint8)  # q = 8 -> 0.0
    block["qs"] = low | (high << 4)
    out = dequantize_q4(block.view(np.uint8), 1, QK)
    assert out.shape == (1, QK)
    assert np.allclose(out[0, :16], (np.arange(16) - 8) * 0.5)
    assert np.allclose(out[0, 16:], 0.0)


def test_logistic_fit_separates_and_platt_calibrates() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(float)
    w, b = calibration.fit_logistic(x, y, l2=1e-3)
    assert w[0] > 1 and abs(w[1]) < 0.5
    logits = x @ w + b
    a, c = calibration.fit_platt(logits, y)
    probs = calibration.sigmoid(a * logits + c)
    assert calibration.expected_calibration_error(probs, y) < 0.08
    # deterministic
    assert np.array_equal(calibration.fit_logistic(x, y, l2=1e-3)[0], w)


def test_choose_threshold_prefers_a_plateau_near_half() -> None:
    probs = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.05])
    y = np.array([True, True, True, False, False, False])
    assert 0.25 <= calibration.choose_threshold(probs, y) <= 0.65


def test_model_cache_follows_the_environment(monkeypatch, tmp_path) -> None:
    from classify.backbone import DEFAULT_ROOT, MODEL_CACHE_ENV, model_cache_root

    monkeypatch.delenv(MODEL_CACHE_ENV, raising=False)
    assert model_cache_root() == DEFAULT_ROOT
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path))
    assert model_cache_root() == tmp_path
