"""Pairwise precision and recall of an incident linking against gold cluster keys (pure).

A pair of articles is *predicted* together when they share an incident id and *gold* together when
they share the gold key. Precision = correct predicted pairs / predicted pairs; recall = correct
predicted pairs / gold pairs. ``cross_language`` restricts both to pairs in different languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    predicted_pairs: int
    gold_pairs: int
    correct_pairs: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "predicted_pairs": self.predicted_pairs,
            "gold_pairs": self.gold_pairs,
            "correct_pairs": self.correct_pairs,
        }


def pair_scores(
    predicted: Mapping[str, str],
    gold: Mapping[str, str],
    lang: Mapping[str, str] | None = None,
    cross_language: bool = False,
) -> PairScores:
    """Scores over the ids present in both mappings."""
    ids = sorted(set(predicted) & set(gold))
    tp = fp = fn = 0
    for a, b in combinations(ids, 2):
        if cross_language and lang is not None and lang.get(a) == lang.get(b):
            continue
        same_pred = predicted[a] == predicted[b]
        same_gold = gold[a] == gold[b]
        tp += same_pred and same_gold
        fp += same_pred and not same_gold
        fn += same_gold and not same_pred
    return PairScores(
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        predicted_pairs=tp + fp,
        gold_pairs=tp + fn,
        correct_pairs=tp,
    )
