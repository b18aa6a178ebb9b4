"""Pairwise precision/recall of ``wirewatch incidents`` output against a file with gold incident keys.

    .venv/bin/wirewatch incidents --input ../shared/data/incidents_dev.jsonl --output /tmp/incidents.jsonl
    .venv/bin/python bench/eval_incidents.py --gold ../shared/data/incidents_dev.jsonl \
        --pred /tmp/incidents.jsonl

Prints precision, recall and pair counts for all pairs and for cross-language pairs (``--json`` for one
JSON object). The gold file has one line per article with ``id``, ``lang`` and ``incident``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.incidents.evaluate import pair_scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", required=True)
    parser.add_argument("--pred", required=True)
    parser.add_argument("--key", default="incident", help="gold cluster field (default: incident)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    gold_rows = [
        json.loads(line) for line in Path(args.gold).read_text(encoding="utf-8").splitlines() if line
    ]
    gold = {str(r["id"]): str(r[args.key]) for r in gold_rows}
    lang = {str(r["id"]): str(r.get("lang")) for r in gold_rows}
    pred_rows = [
        json.loads(line) for line in Path(args.pred).read_text(encoding="utf-8").splitlines() if line
    ]
    predicted = {str(r["id"]): str(r["incident_id"]) for r in pred_rows}
    result: dict[str, Any] = {
        "articles": len(set(gold) & set(predicted)),
        "incidents_gold": len({gold[i] for i in predicted if i in gold}),
        "incidents_predicted": len({predicted[i] for i in gold if i in predicted}),
        "all": pair_scores(predicted, gold).as_dict(),
        "cross_language": pair_scores(predicted, gold, lang, cross_language=True).as_dict(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"articles {result['articles']}, incidents gold {result['incidents_gold']}, "
            f"predicted {result['incidents_predicted']}"
        )
        for name in ("all", "cross_language"):
            s = result[name]
            print(
                f"{name:15s} precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
                f"(pairs: predicted {s['predicted_pairs']}, gold {s['gold_pairs']}, "
                f"correct {s['correct_pairs']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
