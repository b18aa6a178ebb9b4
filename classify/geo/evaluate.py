"""Location accuracy per level against hand labels: ``python -m classify.geo.evaluate``.

Reads ``geo_dev.jsonl`` (the event's ``country``, ``admin1``, ``place``, ``precision`` by item
id) and the texts it labels (``classifier_dev.jsonl``, and the first 200 items of
``classifier_train.jsonl``, whose ids start with ``r``). Prints, per split:

- **country**: right country, over items whose label has one;
- **admin1**: right first-level division, over items whose label names one (compared through
  the gazetteer, so "Region of Murcia" and "Murcia, Región de" are the same division);
- **city**: right town, over items labelled ``city`` or ``sub-city`` that name one;
- **none**: ``none`` predicted, over items labelled ``none``.

The hint is the country of the URL's domain, standing in for a feed's declared country.
Tune on ``train``; ``dev`` is the honest number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classify.geo.gazetteer import Gazetteer, load
from classify.geo.locate import Location, country_from_url, locate
from classify.geo.names import fold

LEVELS = ("country", "admin1", "city", "none")


@dataclass
class Score:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0


@dataclass
class Report:
    split: str
    scores: dict[str, Score] = field(default_factory=lambda: {k: Score() for k in LEVELS})
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds_per_item: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            **{k: {"accuracy": round(s.accuracy, 3), "n": s.total} for k, s in self.scores.items()},
            "ms_per_item": round(self.seconds_per_item * 1000, 2),
        }

    def row(self) -> str:
        cells = " | ".join(f"{s.accuracy:.3f} ({s.right}/{s.total})" for s in self.scores.values())
        return f"| {self.split} | {cells} | {self.seconds_per_item * 1000:.1f} ms |"


def same_admin1(gaz: Gazetteer, gold: dict[str, Any], pred: Location) -> bool:
    if not pred.admin1_name or not pred.country or pred.country != gold["country"]:
        return False
    gold_key = gaz.admin1_key_for(gold["country"], gold["admin1"])
    pred_key = gaz.admin1_key_for(pred.country, pred.admin1_name)
    if gold_key and pred_key:
        return gold_key == pred_key
    return fold(gold["admin1"]) == fold(pred.admin1_name)


def same_place(gaz: Gazetteer, gold: dict[str, Any], pred: Location) -> bool:
    if not pred.place or pred.country != gold["country"]:
        return False
    if fold(pred.place) == fold(gold["place"]):
        return True
    gold_ids = {p for p in gaz.lookup(fold(gold["place"])) if gaz.places[p].country == gold["country"]}
    return bool(gold_ids & set(gaz.lookup(fold(pred.place))))


def score_one(gaz: Gazetteer, gold: dict[str, Any], pred: Location, report: Report) -> None:
    wrong = []
    if gold["country"]:
        ok = pred.country == gold["country"]
        report.scores["country"].add(ok)
        wrong += [] if ok else ["country"]
    if gold["admin1"]:
        ok = same_admin1(gaz, gold, pred)
        report.scores["admin1"].add(ok)
        wrong += [] if ok else ["admin1"]
    if gold["precision"] in ("city", "sub-city") and gold["place"]:
        ok = same_place(gaz, gold, pred)
        report.scores["city"].add(ok)
        wrong += [] if ok else ["city"]
    if gold["precision"] == "none":
        ok = pred.precision == "none"
        report.scores["none"].add(ok)
        wrong += [] if ok else ["none"]
    if wrong:
        report.errors.append({"id": gold["id"], "wrong": wrong, "gold": gold, "pred": pred.to_json()})


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(data_dir: Path, gaz: Gazetteer) -> list[Report]:
    gold = {g["id"]: g for g in read_jsonl(data_dir / "geo_dev.jsonl")}
    items = (
        read_jsonl(data_dir / "classifier_dev.jsonl") + read_jsonl(data_dir / "classifier_train.jsonl")[:200]
    )
    reports = {"train": Report("train (200, tuning)"), "dev": Report("dev (102, held out)")}
    elapsed = {"train": 0.0, "dev": 0.0}
    for item in items:
        if item["id"] not in gold:
            continue
        split = "train" if item["id"].startswith("r") else "dev"
        started = time.perf_counter()
        pred = locate(gaz, item.get("title") or "", item.get("text") or "", country_from_url(item.get("url")))
        elapsed[split] += time.perf_counter() - started
        score_one(gaz, gold[item["id"]], pred, reports[split])
    for split, report in reports.items():
        count = sum(1 for i in items if i["id"] in gold and (i["id"].startswith("r")) == (split == "train"))
        report.seconds_per_item = elapsed[split] / max(count, 1)
    return list(reports.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m classify.geo.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data-dir", default="../shared/data", help="folder with geo_dev.jsonl and the texts"
    )
    parser.add_argument("--cache-dir", default=None, help="where the built gazetteer is cached")
    parser.add_argument("--errors", choices=("train", "dev"), help="print the wrong items of a split")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    if not (data_dir / "geo_dev.jsonl").exists():
        print(f"{data_dir / 'geo_dev.jsonl'} not found", file=sys.stderr)
        return 2
    started = time.perf_counter()
    gaz = load(args.cache_dir)
    load_s = time.perf_counter() - started
    reports = evaluate(data_dir, gaz)
    if args.json:
        print(json.dumps({"load_seconds": round(load_s, 2), "splits": [r.to_json() for r in reports]}))
    else:
        print(f"gazetteer loaded in {load_s:.1f} s")
        print("| split | country | admin1 | city | none | time/article |")
        print("|---|---|---|---|---|---|")
        for r in reports:
            print(r.row())
    if args.errors:
        report = reports[0] if args.errors == "train" else reports[1]
        for e in report.errors:
            print(json.dumps(e, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
