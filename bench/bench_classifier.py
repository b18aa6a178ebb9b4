"""How fast does the classifier tag articles on this machine, and at what quality?

Three ways to run the same trained model over the same articles (the labelled
dev file when ../shared is present, else the demo's sample items), each in its
own process so peak memory is its own, measured in one run:

* naive    — a Hugging Face ``pipeline("feature-extraction")`` called once per
             article, then the same head, calibration and thresholds
* serving  — wirewatch's path: title + lead window, batched, sorted by length,
             dynamic padding, ``torch.inference_mode``
* int8     — the serving path with the encoder's Linear layers quantised to int8
             per output channel (``torch.ao`` dynamic quantisation)

Prints articles/s, peak RSS and macro-F1 (when the file carries labels).
Run: .venv/bin/python bench/bench_classifier.py [--input FILE] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEV = ROOT.parent / "shared" / "data" / "classifier_dev.jsonl"


def load_rows(path: Path | None, limit: int | None) -> list[dict]:
    if path is not None and path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:  # no labelled file: the demo feeds' items, unlabelled
        import feedparser

        from commands.demo import DEMO_FEEDS
        from ingest.normalize import clean_text

        rows = []
        for feed in sorted(DEMO_FEEDS.glob("*.xml")):
            for e in feedparser.parse(feed.read_bytes()).entries:
                rows.append(
                    {
                        "id": e.get("id", ""),
                        "title": e.get("title", ""),
                        "text": clean_text(e.get("summary", "")),
                    }
                )
    return rows[:limit] if limit else rows


def run_variant(variant: str, rows: list[dict]) -> dict:
    import numpy as np
    import torch

    from classify.labels import LABELS, TagInput
    from classify.model import Tagger

    tagger = Tagger.load(threads=2)
    items = [
        TagInput(id=str(r["id"]), title=r.get("title") or "", text=r.get("text") or "", lang=r.get("lang"))
        for r in rows
    ]
    if variant == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        tagger.encoder.model = quantize_dynamic(
            tagger.encoder.model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    started = time.perf_counter()
    if variant == "naive":
        from transformers import pipeline

        folder = tagger.encoder.model.name_or_path
        extract = pipeline("feature-extraction", model=folder, tokenizer=folder, device="cpu")
        logits = []
        for item in items:
            text = f"{tagger.card.prefix}{item.title}\n{item.text}"
            states = np.asarray(extract(text, truncation=True, max_length=tagger.card.max_length)[0])
            logits.append(states.mean(0) @ tagger.weight.numpy().T + tagger.bias)
        probs = tagger.calibrate(np.asarray(logits, dtype=np.float64))
        labels = [[k for j, k in enumerate(LABELS) if p[j] >= tagger.card.thresholds[k]] for p in probs]
    else:
        labels = [list(p.labels) for p in tagger.predict(items)]
    elapsed = time.perf_counter() - started
    return {
        "variant": variant,
        "articles": len(items),
        "seconds": elapsed,
        "per_second": len(items) / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "labels": labels,
    }


def macro_f1(rows: list[dict], predicted: list[list[str]]) -> float | None:
    from classify.evaluate import score

    scored = [
        (r["labels"], p)
        for r, p in zip(rows, predicted, strict=True)
        if "labels" in r and not r.get("ambiguous")
    ]
    if not scored:
        return None
    return score([g for g, _ in scored], [p for _, p in scored]).macro_f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEV)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = load_rows(args.input, args.limit)
    if args.variant:
        print(json.dumps(run_variant(args.variant, rows)))
        return
    print(
        f"bench_classifier: {len(rows)} articles from {args.input if args.input.exists() else 'demo feeds'}"
    )
    results = {}
    for variant in ("naive", "serving", "int8"):
        cmd = [sys.executable, __file__, "--variant", variant, "--input", str(args.input)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        f1 = macro_f1(rows, result["labels"])
        results[variant] = result["per_second"]
        f1_text = "-" if f1 is None else f"{f1:.3f}"
        print(
            f"{variant:<8} {result['per_second']:>7.2f} articles/s  {result['seconds']:>7.1f} s  "
            f"peak RSS {result['peak_rss_mb']:>6.0f} MB  macro-F1 {f1_text}",
            flush=True,
        )
    serving, int8 = results["serving"] / results["naive"], results["int8"] / results["naive"]
    print(f"serving / naive: {serving:.1f}x; int8 / naive: {int8:.1f}x")


if __name__ == "__main__":
    main()
