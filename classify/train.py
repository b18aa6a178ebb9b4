"""``wirewatch train``: corpus -> features -> head -> calibration -> thresholds -> artifact.

Owns the training recipe and the artifact it writes (``classify/artifact/``:
``head.safetensors``, ``model_card.json``, ``MODEL_CARD.md``). The recipe, chosen
by measurement (see ``classify/NOTES.md``):

1. read every ``classify/corpus/*.jsonl`` (the committed bilingual corpus);
2. split it with ``seed`` into a training part and a held-out calibration part
   (stratified by language and label set);
3. encode with the frozen multilingual-e5-small (mean of last hidden states,
   first window of ``max_length`` tokens) — features cached under ``.cache/features``;
4. fit an L2 logistic head per label (numpy Newton, deterministic), fold the
   feature standardisation into it;
5. fit per-label Platt scaling on the held-out logits, report its ECE;
6. choose per-label thresholds on the dev file (``../shared/data/classifier_dev.jsonl``,
   never trained on; 0.5 when it is absent) and report dev metrics.

It must not import torch: the encoder is reached through :mod:`classify.model`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from classify import calibration
from classify.backbone import DEFAULT_BACKBONE, REPO_ROOT
from classify.labels import LABELS, LabelledRow, TagInput, read_labelled

log = logging.getLogger(__name__)

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
DEV_FILE = REPO_ROOT.parent / "shared" / "data" / "classifier_dev.jsonl"
FEATURE_CACHE = REPO_ROOT / ".cache" / "features"
MODEL_NAME = "wirewatch-tagger"
VERSION = "1.0.0"


@dataclass(frozen=True)
class Recipe:
    backbone: str = DEFAULT_BACKBONE
    prefix: str = "passage: "
    max_length: int = 512
    pooling: str = "lead"
    l2: float = 0.03
    heldout: float = 0.2
    seed: int = 13


def corpus_digest(folder: Path = CORPUS_DIR) -> str:
    """Short sha256 of the corpus files (name + bytes, in name order) the artifact was trained on."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def read_corpus(folder: Path = CORPUS_DIR) -> list[LabelledRow]:
    rows = [row for path in sorted(folder.glob("*.jsonl")) for row in read_labelled(path)]
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row.item.id not in seen:
            seen.add(row.item.id)
            unique.append(row)
    return unique


def split(rows: Sequence[LabelledRow], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (language x label set) deterministic split -> (train indices, held-out indices)."""
    rng = np.random.default_rng(seed)
    strata: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        key = (row.item.lang or "?") + ":" + "".join("1" if row.gold[k] else "0" for k in LABELS)
        strata.setdefault(key, []).append(i)
    train: list[int] = []
    held: list[int] = []
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda i: rows[i].item.id)
        order = rng.permutation(len(members))
        cut = round(len(members) * fraction)
        held += [members[j] for j in order[:cut]]
        train += [members[j] for j in order[cut:]]
    return sorted(train), sorted(held)


def _row_key(recipe: Recipe, item: TagInput) -> str:
    raw = json.dumps([recipe.backbone, recipe.prefix, recipe.max_length, item.title, item.text])
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def features(items: Sequence[TagInput], recipe: Recipe, encoder: Any = None) -> np.ndarray:
    """Pooled encoder features, cached per (recipe, text) under ``.cache/features``."""
    FEATURE_CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = FEATURE_CACHE / f"{recipe.backbone}-{recipe.max_length}.npz"
    cache: dict[str, np.ndarray] = dict(np.load(cache_file)) if cache_file.exists() else {}
    keys = [_row_key(recipe, item) for item in items]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if missing:
        if encoder is None:
            from classify.backbone import ensure_backbone
            from classify.model import Encoder

            encoder = Encoder(ensure_backbone(recipe.backbone), recipe.prefix, recipe.max_length)
        started = time.perf_counter()
        new = encoder.pooled([items[i] for i in missing], recipe.pooling)
        log.info("encoded %d texts in %.1fs", len(missing), time.perf_counter() - started)
        for i, vector in zip(missing, new, strict=True):
            cache[keys[i]] = vector
        np.savez(cache_file, **cache)  # type: ignore[arg-type]
    return np.stack([cache[k] for k in keys]).astype(np.float32)


def gold(rows: Sequence[LabelledRow]) -> np.ndarray:
    return np.array([[row.gold[k] for k in LABELS] for row in rows], dtype=bool)


def fit_head(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-label logistic regression on standardised features, folded back to raw features."""
    mu = x.mean(0, dtype=np.float64)
    sd = x.std(0, dtype=np.float64) + 1e-6
    z = (x - mu) / sd
    weight = np.zeros((len(LABELS), x.shape[1]))
    bias = np.zeros(len(LABELS))
    for j in range(len(LABELS)):
        w, b = calibration.fit_logistic(z, y[:, j].astype(np.float64), l2)
        weight[j] = w / sd
        bias[j] = b - float((w * mu / sd).sum())
    return weight.astype(np.float32), bias.astype(np.float32)


def label_metrics(
    probs: np.ndarray, y: np.ndarray, thresholds: np.ndarray, langs: np.ndarray
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang in ["all", *sorted(set(langs))]:
        sel = np.ones(len(y), bool) if lang == "all" else langs == lang
        per = {
            k: round(calibration.f1(y[sel, j], probs[sel, j] >= thresholds[j]), 4)
            for j, k in enumerate(LABELS)
        }
        out[lang] = {"n": int(sel.sum()), "f1": per, "macro_f1": round(float(np.mean(list(per.values()))), 4)}
    return out


def train(
    output: Path, recipe: Recipe, corpus: Path = CORPUS_DIR, dev: Path | None = DEV_FILE
) -> dict[str, Any]:
    """Train and write the artifact into ``output``; returns the model card."""
    started = time.perf_counter()
    rows = read_corpus(corpus)
    if not rows:
        raise SystemExit(f"no labelled rows under {corpus}")
    train_idx, held_idx = split(rows, recipe.heldout, recipe.seed)
    x = features([r.item for r in rows], recipe)
    y = gold(rows)
    weight, bias = fit_head(x[train_idx], y[train_idx], recipe.l2)
    held_logits = x[held_idx] @ weight.T + bias
    platt = [calibration.fit_platt(held_logits[:, j], y[held_idx, j].astype(np.float64)) for j in range(3)]
    a = np.array([p[0] for p in platt])
    c = np.array([p[1] for p in platt])
    held_probs = calibration.sigmoid(a * held_logits + c)
    held_langs = np.array([rows[i].item.lang or "?" for i in held_idx])

    thresholds = np.full(len(LABELS), 0.5)
    dev_report: dict[str, Any] | None = None
    if dev is not None and dev.exists():
        dev_rows = [r for r in read_labelled(dev) if not r.ambiguous]
        dev_probs = calibration.sigmoid(
            a * (features([r.item for r in dev_rows], recipe) @ weight.T + bias) + c
        )
        dev_y = gold(dev_rows)
        dev_langs = np.array([r.item.lang or "?" for r in dev_rows])
        thresholds = np.array(
            [calibration.choose_threshold(dev_probs[:, j], dev_y[:, j], list(dev_langs)) for j in range(3)]
        )
        dev_report = {
            "file": dev.name,
            "rows": len(dev_rows),
            "metrics": label_metrics(dev_probs, dev_y, thresholds, dev_langs),
            "metrics_at_0.5": label_metrics(dev_probs, dev_y, np.full(3, 0.5), dev_langs),
            "ece": round(calibration.expected_calibration_error(dev_probs, dev_y), 4),
        }
    head_file = output / "head.safetensors"
    output.mkdir(parents=True, exist_ok=True)
    save_file({"weight": weight, "bias": bias}, str(head_file), metadata={"labels": ",".join(LABELS)})
    card: dict[str, Any] = {
        "name": f"{MODEL_NAME}-{recipe.backbone}",
        "version": VERSION,
        "labels": list(LABELS),
        "backbone": recipe.backbone,
        "prefix": recipe.prefix,
        "max_length": recipe.max_length,
        "pooling": recipe.pooling,
        "head": "linear on mean-pooled last hidden states (frozen encoder), L2 logistic per label",
        "thresholds": {k: float(thresholds[j]) for j, k in enumerate(LABELS)},
        "platt": {k: [round(float(a[j]), 6), round(float(c[j]), 6)] for j, k in enumerate(LABELS)},
        "recipe": recipe.__dict__,
        "data": {
            "corpus_rows": len(rows),
            "corpus_sha256": corpus_digest(corpus),
            "train_rows": len(train_idx),
            "heldout_rows": len(held_idx),
            "positives": {k: int(y[:, j].sum()) for j, k in enumerate(LABELS)},
            "languages": {
                lang: sum(1 for r in rows if r.item.lang == lang)
                for lang in sorted({str(r.item.lang) for r in rows})
            },
        },
        "heldout": {
            "metrics": label_metrics(held_probs, y[held_idx], thresholds, held_langs),
            "ece": round(calibration.expected_calibration_error(held_probs, y[held_idx]), 4),
        },
        "dev": dev_report,
    }
    (output / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    (output / "MODEL_CARD.md").write_text(model_card_markdown(card))
    log.info("trained in %.1fs -> %s", time.perf_counter() - started, output)
    return card


def model_card_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# {card['name']} {card['version']}",
        "",
        "Multi-label tagger (kidnapping, shootout, extortion) for English and Spanish news.",
        f"Encoder: {card['backbone']} (frozen; built offline by `python -m classify.backbone build`), "
        f"input `{card['prefix']}TITLE\\nTEXT`, first {card['max_length']} tokens, mean pooling; "
        f"{card['head']}.",
        "Scores are Platt-calibrated per label on a held-out split of the corpus; "
        "thresholds are chosen on the dev file.",
        "",
        f"Data: {card['data']['corpus_rows']} rows of the committed corpus (classify/corpus/*.jsonl, sha "
        f"{card['data']['corpus_sha256']}), {card['data']['train_rows']} train / "
        f"{card['data']['heldout_rows']} held out; "
        f"positives {card['data']['positives']}, languages {card['data']['languages']}.",
        "",
        "| label | threshold | Platt (a, c) |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {card['thresholds'][k]:.2f} | {card['platt'][k]} |" for k in card["labels"]]
    for name, section in (("held-out corpus", card["heldout"]), ("dev (real news)", card["dev"])):
        if not section:
            continue
        lines += [
            "",
            f"## {name}: ECE {section['ece']}",
            "",
            "| slice | n | " + " | ".join(card["labels"]) + " | macro |",
        ]
        lines.append("|---" * (len(card["labels"]) + 3) + "|")
        for lang, m in section["metrics"].items():
            lines.append(
                f"| {lang} | {m['n']} | "
                + " | ".join(f"{m['f1'][k]:.3f}" for k in card["labels"])
                + f" | {m['macro_f1']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(output: str | None = None, seed: int = 13, dev: str | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = Path(output) if output else Path(__file__).resolve().parent / "artifact"
    card = train(target, Recipe(seed=seed), dev=Path(dev) if dev else DEV_FILE)
    print(json.dumps({"dev": card["dev"] and card["dev"]["metrics"], "heldout": card["heldout"]}, indent=2))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m classify.train")
    parser.add_argument("--output", default=None)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--dev", default=None)
    args = parser.parse_args()
    raise SystemExit(main(args.output, args.seed, args.dev))
