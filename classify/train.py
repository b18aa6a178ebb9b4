"""``wirewatch train``: real news -> fine-tuned top layers + head -> calibration -> artifact.

Owns the training recipe and the artifact it writes (``classify/artifact/``:
``encoder.safetensors`` with the tuned top layers, ``head.safetensors``,
``cv.json`` with the out-of-fold record, ``model_card.json``,
``MODEL_CARD.md``). The protocol (README "Classify: the model"):

1. train on every line of ``../shared/data/classifier_train.jsonl`` (real news,
   ambiguous lines included: the guideline labels them too);
2. every choice — recipe, epochs, calibration, thresholds — comes from k-fold
   cross-validation grouped by site (no site on both sides), recorded in
   ``cv.json`` as out-of-fold logits per article id: ``--cv`` recomputes it
   (k trainings; hours on two cores, minutes on a GPU);
3. the final model is trained on the whole file (:func:`fit`, deterministic on
   CPU); per-label Platt scaling and per-label thresholds are fitted on the
   out-of-fold logits (never on dev), per language for the report;
4. the dev file (``classifier_dev.jsonl``) is scored once for the card and the
   README, and never used for any choice.

Real news stays in ``../shared``: nothing from it is written into the
artifact except article ids and scores. It must not import torch: the encoder
is reached through :mod:`classify.finetune` and :mod:`classify.model`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classify import calibration
from classify.backbone import DEFAULT_BACKBONE, REPO_ROOT, TUNED_LAYERS_FILE
from classify.labels import LABELS, LabelledRow, read_labelled

log = logging.getLogger(__name__)

DATA_DIR = REPO_ROOT.parent / "shared" / "data"
TRAIN_FILE = DATA_DIR / "classifier_train.jsonl"
DEV_FILE = DATA_DIR / "classifier_dev.jsonl"
ARTIFACT_DIR = Path(__file__).resolve().parent / "artifact"
CV_FILE = "cv.json"
MODEL_NAME = "wirewatch-tagger"
VERSION = "2.0.0"


@dataclass(frozen=True)
class Recipe:
    backbone: str = DEFAULT_BACKBONE
    prefix: str = "passage: "
    max_length: int = 512
    layers: int = 4
    lr: float = 1e-4
    head_lr: float = 1e-3
    epochs: int = 4
    batch_size: int = 16
    seed: int = 13
    folds: int = 5
    fold_seed: int = 0
    limit: int = 0
    """Train on the first ``limit`` lines only (0: all): for tests of the pipeline, never the artifact."""

    def tuning(self) -> Any:
        """The fine-tuning part of the recipe, as :mod:`classify.finetune` takes it."""
        from classify.finetune import FinetuneRecipe

        names = ("layers", "lr", "head_lr", "epochs", "batch_size", "seed")
        return FinetuneRecipe(**{name: getattr(self, name) for name in names})


@dataclass(frozen=True)
class Example:
    row: LabelledRow
    site: str


def read_examples(path: Path, limit: int = 0) -> list[Example]:
    """Labelled lines with their site (the grouping key of the cross-validation)."""
    sites = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                sites.append(str(json.loads(line).get("site") or ""))
    rows = list(read_labelled(path))
    examples = [Example(row, site) for row, site in zip(rows, sites, strict=True)]
    return examples[:limit] if limit else examples


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def group_folds(sites: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold index per example: sites shuffled with ``seed`` and dealt round-robin into ``k`` folds."""
    unique = sorted(set(sites))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[p]: i % k for i, p in enumerate(order)}
    return np.array([fold_of[s] for s in sites])


def gold(rows: Sequence[LabelledRow]) -> np.ndarray:
    return np.array([[row.gold[k] for k in LABELS] for row in rows], dtype=bool)


def fit(recipe: Recipe, examples: Sequence[Example], windows: Sequence[Sequence[int]], pad: int) -> Any:
    """Train the final model's top layers and head on ``examples`` (token ``windows`` given)."""
    from classify.backbone import ensure_backbone
    from classify.finetune import train_top

    targets = gold([e.row for e in examples])
    return train_top(str(ensure_backbone(recipe.backbone)), windows, targets, recipe.tuning(), pad)


def token_windows(recipe: Recipe, examples: Sequence[Example]) -> tuple[list[list[int]], int]:
    """The lead window of every example, exactly as the tagger builds it at serving time."""
    from classify.backbone import ensure_backbone
    from classify.model import Windowing

    windowing = Windowing(ensure_backbone(recipe.backbone), recipe.prefix, recipe.max_length)
    windows, _ = windowing.windows([e.row.item for e in examples], "lead")
    return [w.ids for w in windows], windowing.pad_id


@dataclass
class Calibration:
    """Per-label Platt scaling and thresholds, fitted on out-of-fold logits."""

    platt: dict[str, tuple[float, float]]
    thresholds: dict[str, float]
    report: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        a = np.array([self.platt[k][0] for k in LABELS])
        c = np.array([self.platt[k][1] for k in LABELS])
        return calibration.sigmoid(a * logits + c)


def label_metrics(
    probs: np.ndarray, y: np.ndarray, thresholds: Sequence[float], langs: np.ndarray
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang in ["all", *sorted(set(langs.tolist()))]:
        sel = np.ones(len(y), bool) if lang == "all" else langs == lang
        per = {
            k: round(calibration.f1(y[sel, j], probs[sel, j] >= thresholds[j]), 4)
            for j, k in enumerate(LABELS)
        }
        ece = calibration.expected_calibration_error(probs[sel], y[sel]) if sel.any() else 0.0
        out[lang] = {
            "n": int(sel.sum()),
            "f1": per,
            "macro_f1": round(float(np.mean(list(per.values()))), 4),
            "ece": round(ece, 4),
        }
    return out


def calibrate_out_of_fold(logits: np.ndarray, examples: Sequence[Example]) -> Calibration:
    """Platt per label on every out-of-fold logit; thresholds on unambiguous lines (mean F1 of languages)."""
    y = gold([e.row for e in examples])
    langs = np.array([e.row.item.lang or "?" for e in examples])
    clear = np.array([not e.row.ambiguous for e in examples])
    platt = {k: calibration.fit_platt(logits[:, j], y[:, j].astype(np.float64)) for j, k in enumerate(LABELS)}
    cal = Calibration(platt=platt, thresholds={})
    probs = cal.probabilities(logits)
    cal.thresholds = {
        k: calibration.choose_threshold(probs[clear, j], y[clear, j], list(langs[clear]))
        for j, k in enumerate(LABELS)
    }
    th = [cal.thresholds[k] for k in LABELS]
    cal.report = {
        "rows": len(examples),
        "unambiguous": int(clear.sum()),
        "metrics": label_metrics(probs[clear], y[clear], th, langs[clear]),
    }
    return cal


def cross_validate(
    recipe: Recipe, examples: Sequence[Example], windows: Sequence[Sequence[int]], pad: int
) -> np.ndarray:
    """Out-of-fold logits ``[n, labels]``: ``recipe.folds`` trainings, each scoring its held-out sites."""
    from classify.backbone import ensure_backbone
    from classify.finetune import lower_states, predict_top, train_top

    backbone = str(ensure_backbone(recipe.backbone))
    folds = group_folds([e.site for e in examples], recipe.folds, recipe.fold_seed)
    targets = gold([e.row for e in examples])
    tuning = recipe.tuning()
    lower = lower_states(backbone, windows, 12 - recipe.layers, pad)
    out = np.zeros((len(examples), len(LABELS)))
    for k in range(recipe.folds):
        train_idx = np.where(folds != k)[0]
        test_idx = np.where(folds == k)[0]
        tuned = train_top(
            backbone,
            [windows[i] for i in train_idx],
            targets[train_idx],
            tuning,
            pad,
            lower=[lower[i] for i in train_idx],
        )
        out[test_idx] = predict_top(backbone, tuned, [lower[i] for i in test_idx])
        log.info("fold %d/%d done", k + 1, recipe.folds)
    return out


# ---- the artifact ---------------------------------------------------------------------------------


def write_cv(path: Path, recipe: Recipe, examples: Sequence[Example], logits: np.ndarray, note: str) -> None:
    """The out-of-fold record: per article id, its logits from the fold that held its site out."""
    record = {
        "recipe": training_fields(recipe),
        "train_sha256": file_digest(TRAIN_FILE) if TRAIN_FILE.exists() else None,
        "produced_by": note,
        "ids": [e.row.item.id for e in examples],
        "logits": [[round(float(v), 5) for v in row] for row in logits],
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")


def read_cv(path: Path, recipe: Recipe, examples: Sequence[Example]) -> np.ndarray:
    """Out-of-fold logits in ``examples`` order; refuses a record made for another recipe or file."""
    record = json.loads(path.read_text(encoding="utf-8"))
    if record["recipe"] != training_fields(recipe):
        raise SystemExit(
            f"{path} was made for recipe {record['recipe']}, not {training_fields(recipe)}: run --cv"
        )
    by_id = dict(zip(record["ids"], record["logits"], strict=True))
    missing = [e.row.item.id for e in examples if e.row.item.id not in by_id]
    if missing:
        raise SystemExit(f"{path} lacks {len(missing)} training ids (e.g. {missing[:3]}): run --cv")
    return np.array([by_id[e.row.item.id] for e in examples], dtype=np.float64)


def training_fields(recipe: Recipe) -> dict[str, Any]:
    """The recipe fields that decide the weights (not where they are written)."""
    return asdict(recipe)


def train(output: Path, recipe: Recipe, run_cv: bool = False, dev: Path | None = DEV_FILE) -> dict[str, Any]:
    """Train on the real training file and write the artifact into ``output``; returns the card."""
    from safetensors.numpy import save_file

    if not TRAIN_FILE.exists():
        raise SystemExit(f"{TRAIN_FILE} is missing: training needs the real-news training file")
    started = time.perf_counter()
    examples = read_examples(TRAIN_FILE, recipe.limit)
    windows, pad = token_windows(recipe, examples)
    output.mkdir(parents=True, exist_ok=True)
    cv_path = output / CV_FILE
    if run_cv or not cv_path.exists():
        oof = cross_validate(recipe, examples, windows, pad)
        write_cv(cv_path, recipe, examples, oof, "classify/train.py --cv (CPU)")
    oof = read_cv(cv_path, recipe, examples)
    cal = calibrate_out_of_fold(oof, examples)
    tuned = fit(recipe, examples, windows, pad)
    # Stored in float16 (half the size); the card's numbers are measured on exactly these weights.
    save_file(
        {k: v.astype(np.float16) for k, v in sorted(tuned.layers.items())},
        str(output / TUNED_LAYERS_FILE),
    )
    save_file(
        {"weight": tuned.weight.astype(np.float32), "bias": tuned.bias.astype(np.float32)},
        str(output / "head.safetensors"),
        metadata={"labels": ",".join(LABELS)},
    )
    for written in (output / TUNED_LAYERS_FILE, output / "head.safetensors"):
        written.chmod(0o644)  # safetensors writes 0600; the image serves as another user
    card = model_card(recipe, examples, cal, json.loads(cv_path.read_text())["produced_by"])
    write_card(output, card)
    if dev is not None and dev.exists():
        card["dev"] = dev_report(output, dev)
        write_card(output, card)
    log.info("trained in %.1fs -> %s", time.perf_counter() - started, output)
    return card


def model_card(recipe: Recipe, examples: Sequence[Example], cal: Calibration, cv_note: str) -> dict[str, Any]:
    y = gold([e.row for e in examples])
    return {
        "name": f"{MODEL_NAME}-{recipe.backbone}",
        "version": VERSION,
        "labels": list(LABELS),
        "backbone": recipe.backbone,
        "prefix": recipe.prefix,
        "max_length": recipe.max_length,
        "pooling": "lead",
        "head": f"top {recipe.layers} encoder layers fine-tuned, linear head on mean-pooled last states",
        "thresholds": {k: float(v) for k, v in cal.thresholds.items()},
        "platt": {k: [round(float(a), 6), round(float(c), 6)] for k, (a, c) in cal.platt.items()},
        "recipe": training_fields(recipe),
        "data": {
            "train_file": TRAIN_FILE.name,
            "train_sha256": file_digest(TRAIN_FILE),
            "rows": len(examples),
            "ambiguous": sum(e.row.ambiguous for e in examples),
            "sites": len({e.site for e in examples}),
            "positives": {k: int(y[:, j].sum()) for j, k in enumerate(LABELS)},
            "languages": {
                lang: sum(1 for e in examples if e.row.item.lang == lang)
                for lang in sorted({str(e.row.item.lang) for e in examples})
            },
        },
        "cross_validation": {
            "folds": recipe.folds,
            "grouped_by": "site",
            "produced_by": cv_note,
            **cal.report,
        },
        "dev": None,
    }


def dev_report(artifact: Path, dev: Path) -> dict[str, Any]:
    """The dev file scored once by the written artifact (fp32 torch runtime); never used for a choice."""
    from classify.model import Tagger

    tagger = Tagger.load(artifact, runtime="torch")
    rows = [r for r in read_labelled(dev) if not r.ambiguous]
    logits, _ = tagger.logits([r.item for r in rows])
    probs = tagger.calibrate(logits)
    langs = np.array([r.item.lang or "?" for r in rows])
    th = [tagger.card.thresholds[k] for k in LABELS]
    return {"file": dev.name, "rows": len(rows), "metrics": label_metrics(probs, gold(rows), th, langs)}


def write_card(output: Path, card: dict[str, Any]) -> None:
    (output / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    (output / "MODEL_CARD.md").write_text(model_card_markdown(card))


def model_card_markdown(card: dict[str, Any]) -> str:
    data = card["data"]
    lines = [
        f"# {card['name']} {card['version']}",
        "",
        "Multi-label tagger (kidnapping, shootout, extortion) for English and Spanish news, following",
        "the labelling guideline in `../shared/data/GUIDELINE.md` (an event, case or scheme is reported;",
        "background mentions do not count; both sides must fire; ransom stays with kidnapping).",
        "",
        f"Encoder: {card['backbone']}, {card['head']}; input `{card['prefix']}TITLE\\nTEXT`, first "
        f"{card['max_length']} tokens. Trained on {data['rows']} real news excerpts ({data['train_file']}, "
        f"sha {data['train_sha256']}; {data['sites']} sites; {data['ambiguous']} marked ambiguous), "
        f"languages {data['languages']}, positives {data['positives']}.",
        "Scores are Platt-calibrated per label on out-of-fold logits of a "
        f"{card['cross_validation']['folds']}-fold cross-validation grouped by site; thresholds are chosen "
        "on the same out-of-fold predictions. The dev file is never used for a choice.",
        "Articles in other languages than English and Spanish are tagged with `language_supported: false`.",
        "",
        "| label | threshold | Platt (a, c) |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {card['thresholds'][k]:.2f} | {card['platt'][k]} |" for k in card["labels"]]
    for name, section in (
        ("out-of-fold (unambiguous lines)", card["cross_validation"]),
        ("dev (held out)", card["dev"]),
    ):
        if not section:
            continue
        lines += ["", f"## {name}", "", "| slice | n | " + " | ".join(card["labels"]) + " | macro | ECE |"]
        lines.append("|---" * (len(card["labels"]) + 4) + "|")
        for lang, m in section["metrics"].items():
            lines.append(
                f"| {lang} | {m['n']} | "
                + " | ".join(f"{m['f1'][k]:.3f}" for k in card["labels"])
                + f" | {m['macro_f1']:.3f} | {m['ece']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(output: str | None = None, seed: int = 13, cv: bool = False, limit: int = 0) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = Path(output) if output else ARTIFACT_DIR
    card = train(target, Recipe(seed=seed, limit=limit), run_cv=cv)
    print(json.dumps({"cross_validation": card["cross_validation"]["metrics"], "dev": card["dev"]}, indent=2))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m classify.train")
    parser.add_argument("--output", default=None)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cv", action="store_true", help="recompute the out-of-fold record (k trainings)")
    args = parser.parse_args()
    raise SystemExit(main(args.output, args.seed, args.cv))
