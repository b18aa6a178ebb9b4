"""Scoring taggers against labelled JSONL: per-label P/R/F1, macro-F1, per language.

Owns :func:`evaluate` (rows + tagger -> :class:`Report`), the keyword baseline
beside the model on the same rows, and the two renderings ``wirewatch eval``
prints (:meth:`Report.format_table`, :meth:`Report.to_json`). Lines marked
``"ambiguous": true`` are skipped. Pure: it never loads a model itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classify.keywords import KeywordTagger
from classify.labels import LABELS, LabelledRow, Prediction, TaggerProtocol, read_labelled


@dataclass(frozen=True)
class LabelScore:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def to_json(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(frozen=True)
class Scores:
    """Per-label scores of one tagger on one slice of rows."""

    n: int
    labels: Mapping[str, LabelScore]

    @property
    def macro_f1(self) -> float:
        return sum(s.f1 for s in self.labels.values()) / len(self.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "macro_f1": round(self.macro_f1, 4),
            "labels": {k: v.to_json() for k, v in self.labels.items()},
        }


def score(golds: Sequence[Mapping[str, bool]], preds: Sequence[Iterable[str]]) -> Scores:
    counts = {name: [0, 0, 0] for name in LABELS}
    for gold, pred in zip(golds, preds, strict=True):
        predicted = set(pred)
        for name in LABELS:
            g, p = gold[name], name in predicted
            counts[name][0] += g and p
            counts[name][1] += p and not g
            counts[name][2] += g and not p
    return Scores(len(golds), {k: LabelScore(*v) for k, v in counts.items()})


@dataclass(frozen=True)
class TaggerReport:
    name: str
    version: str
    overall: Scores
    by_lang: Mapping[str, Scores]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "version": self.version,
            **self.overall.to_json(),
            "by_lang": {k: v.to_json() for k, v in self.by_lang.items()},
        }


@dataclass(frozen=True)
class Report:
    """The model's scores and, when computed, the keyword baseline's on the same rows."""

    rows: int
    skipped_ambiguous: int
    model: TaggerReport
    baseline: TaggerReport | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def macro_f1(self) -> float:
        return self.model.overall.macro_f1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "skipped_ambiguous": self.skipped_ambiguous,
            **self.model.to_json(),
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.to_json()
        return out

    def format_table(self) -> str:
        lines = [f"{self.rows} rows scored, {self.skipped_ambiguous} ambiguous skipped", ""]
        reports = [self.model] + ([self.baseline] if self.baseline else [])
        header = f"{'tagger':<28}{'slice':<7}{'label':<12}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}"
        lines += [header, "-" * len(header)]
        for rep in reports:
            slices = [("all", rep.overall), *sorted(rep.by_lang.items())]
            for slice_name, sc in slices:
                for label, ls in sc.labels.items():
                    lines.append(
                        f"{rep.name:<28}{slice_name:<7}{label:<12}"
                        f"{ls.precision:>7.3f}{ls.recall:>7.3f}{ls.f1:>7.3f}{ls.support:>9}"
                    )
                lines.append(f"{rep.name:<28}{slice_name:<7}{'macro-F1':<12}{'':>14}{sc.macro_f1:>7.3f}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _tagger_report(
    tagger: TaggerProtocol, rows: Sequence[LabelledRow], preds: Sequence[Prediction]
) -> TaggerReport:
    golds = [r.gold for r in rows]
    labels = [p.labels for p in preds]
    by_lang: dict[str, Scores] = {}
    for lang in sorted({r.item.lang or "?" for r in rows}):
        idx = [i for i, r in enumerate(rows) if (r.item.lang or "?") == lang]
        by_lang[lang] = score([golds[i] for i in idx], [labels[i] for i in idx])
    return TaggerReport(tagger.model_name, tagger.model_version, score(golds, labels), by_lang)


def evaluate(
    rows: Iterable[LabelledRow], tagger: TaggerProtocol, baseline: TaggerProtocol | None = None
) -> Report:
    """Score ``tagger`` (and the keyword baseline, unless ``baseline`` is given) on non-ambiguous rows."""
    every = list(rows)
    scored = [r for r in every if not r.ambiguous]
    if baseline is None and not isinstance(tagger, KeywordTagger):
        baseline = KeywordTagger()
    items = [r.item for r in scored]
    preds = tagger.predict(items)
    errors = [
        {"id": r.item.id, "gold": sorted(k for k, v in r.gold.items() if v), "predicted": list(p.labels)}
        for r, p in zip(scored, preds, strict=True)
        if set(p.labels) != {k for k, v in r.gold.items() if v}
    ]
    return Report(
        rows=len(scored),
        skipped_ambiguous=len(every) - len(scored),
        model=_tagger_report(tagger, scored, preds),
        baseline=_tagger_report(baseline, scored, baseline.predict(items)) if baseline else None,
        errors=errors,
    )


def evaluate_file(path: Path, tagger: TaggerProtocol) -> Report:
    return evaluate(read_labelled(path), tagger)
