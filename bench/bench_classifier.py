"""How fast does the classifier tag articles on this machine, and at what quality?

Four ways to run the same trained model over the same articles (the labelled
dev file when ../shared is present, else the demo's sample items), each in its
own process so peak memory is its own, measured in one run:

* naive     — a Hugging Face ``pipeline("feature-extraction")`` called once per
              article (fp32 torch), then the same head, calibration and thresholds
* torch     — wirewatch's windows on the fp32 ``AutoModel``: batched, sorted by
              length, dynamic padding, ``torch.inference_mode``
* onnx      — the same, on the encoder exported and fused for ONNX Runtime (fp32)
* onnx-int8 — the serving default: fused ONNX, weights int8 per output channel,
              one window per call (see classify/onnx_export.py)

Models load and tag two articles before the clock starts; each variant makes
``--repeat`` timed passes (default 3) and reports the median. Prints articles/s,
peak RSS, macro-F1 (when the file carries labels), and how
far each variant's labels and scores are from the naive fp32 ones.
Run: .venv/bin/python bench/bench_classifier.py [--input FILE] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
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


VARIANTS = ("naive", "torch", "onnx", "onnx-int8")


def naive_tagger() -> Callable[[list], tuple[list[list[str]], list[list[float]]]]:
    """The textbook way: one pipeline call per article, mean-pool, the trained head."""
    import numpy as np
    import torch
    from safetensors.numpy import load_file
    from transformers import pipeline

    from classify.backbone import ensure_backbone, served_backbone
    from classify.model import ARTIFACT_DIR, HEAD_FILE, Card, calibrate

    torch.set_num_threads(2)
    card = Card.read(ARTIFACT_DIR)
    head = load_file(str(ARTIFACT_DIR / HEAD_FILE))
    folder = str(served_backbone(ARTIFACT_DIR, ensure_backbone(card.backbone)))
    extract = pipeline("feature-extraction", model=folder, tokenizer=folder, device="cpu")

    def tag(items: list) -> tuple[list[list[str]], list[list[float]]]:
        logits = []
        for item in items:
            text = f"{card.prefix}{item.title}\n{item.text}"
            states = np.asarray(extract(text, truncation=True, max_length=card.max_length)[0])
            logits.append(states.mean(0) @ head["weight"].T + head["bias"])
        probs = calibrate(card, np.asarray(logits, dtype=np.float64))
        labels = [list(card.labels(p)) for p in probs]
        return labels, probs.tolist()

    return tag


def serving_tagger(runtime: str) -> Callable[[list], tuple[list[list[str]], list[list[float]]]]:
    from classify.labels import LABELS
    from classify.model import Tagger

    tagger = Tagger.load(threads=2, runtime=runtime)

    def tag(items: list) -> tuple[list[list[str]], list[list[float]]]:
        predictions = tagger.predict(items)
        return [list(p.labels) for p in predictions], [[p.scores[k] for k in LABELS] for p in predictions]

    return tag


def run_variant(variant: str, rows: list[dict], repeat: int) -> dict:
    from classify.labels import TagInput

    items = [
        TagInput(id=str(r["id"]), title=r.get("title") or "", text=r.get("text") or "", lang=r.get("lang"))
        for r in rows
    ]
    tag = naive_tagger() if variant == "naive" else serving_tagger(variant)
    tag(items[:2])  # warm-up, the same for every variant: first-call allocations stay off the clock
    passes = []
    for _ in range(repeat):  # the median pass: one pass of ~100 articles is noisy on a shared machine
        started = time.perf_counter()
        labels, scores = tag(items)
        passes.append(time.perf_counter() - started)
    elapsed = statistics.median(passes)
    return {
        "variant": variant,
        "articles": len(items),
        "seconds": elapsed,
        "per_second": len(items) / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "labels": labels,
        "scores": scores,
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
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per variant (median reported)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = load_rows(args.input, args.limit)
    if args.variant:
        print(json.dumps(run_variant(args.variant, rows, args.repeat)))
        return
    print(
        f"bench_classifier: {len(rows)} articles from {args.input if args.input.exists() else 'demo feeds'}"
    )
    results: dict[str, dict] = {}
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", variant, "--input", str(args.input)]
        cmd += ["--repeat", str(args.repeat)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        result = results[variant] = json.loads(out)
        f1 = macro_f1(rows, result["labels"])
        naive = results["naive"]
        agree = sum(a == b for a, b in zip(result["labels"], naive["labels"], strict=True)) / len(rows)
        drift = max(
            (
                abs(a - b)
                for x, y in zip(result["scores"], naive["scores"], strict=True)
                for a, b in zip(x, y, strict=True)
            ),
            default=0.0,
        )
        f1_text = "-" if f1 is None else f"{f1:.3f}"
        print(
            f"{variant:<10} {result['per_second']:>7.2f} articles/s  {result['seconds']:>7.1f} s  "
            f"peak RSS {result['peak_rss_mb']:>6.0f} MB  macro-F1 {f1_text}  "
            f"labels = naive {agree:6.1%}  max |score - naive| {drift:.3f}",
            flush=True,
        )
    base = results["naive"]["per_second"]
    print(
        "speed-up over naive: "
        + ", ".join(f"{v} {results[v]['per_second'] / base:.1f}x" for v in VARIANTS[1:])
    )


if __name__ == "__main__":
    main()
