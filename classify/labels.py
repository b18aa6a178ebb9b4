"""The tagger's vocabulary and plain data types, free of torch and Kafka.

Owns the label names, the tagger interface (:class:`TaggerProtocol`), its input
(:class:`TagInput`) and its one result type (:class:`Prediction`), the
labelled-row reader shared by training and evaluation, and sentence splitting
(used for evidence). It must not import torch/transformers: ``evaluate`` and
``keywords`` stand on it without loading a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

LABELS: tuple[str, ...] = ("kidnapping", "shootout", "extortion")
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es")
"""Languages the model is trained and calibrated on (ISO 639-1)."""


@dataclass(frozen=True)
class TagInput:
    """One article to tag. ``lang`` is a hint only (ISO 639-1), never required."""

    id: str
    title: str
    text: str
    lang: str | None = None


@dataclass(frozen=True)
class Prediction:
    """Calibrated per-label probabilities, the labels over their thresholds, and evidence.

    ``evidence`` maps each label in ``labels`` to the sentence that best supports it.
    """

    id: str
    labels: tuple[str, ...]
    scores: Mapping[str, float]
    evidence: Mapping[str, str] = field(default_factory=dict)
    language_supported: bool = True
    """False when the article's language is not one the model was trained and calibrated for:
    its scores are then the model's best guess, not calibrated probabilities."""
    embedding: Sequence[float] | None = None
    """The encoder's L2-normalised mean-pooled article vector (for linking reports of one incident)."""


@dataclass(frozen=True)
class LabelledRow:
    """An input with gold labels (training corpus, dev file)."""

    item: TagInput
    gold: Mapping[str, bool]
    ambiguous: bool = False
    kind: str = ""


class TaggerProtocol(Protocol):
    """The one tagger interface: inputs to predictions, with names for lineage.

    Implemented by the model (:class:`classify.model.Tagger`) and the keyword baseline
    (:class:`classify.keywords.KeywordTagger`); the worker, ``tag``, ``eval`` and
    ``reclassify`` take either.
    """

    model_name: str
    model_version: str

    def predict(self, items: Sequence[TagInput]) -> list[Prediction]: ...


def row_from_json(obj: Mapping[str, Any]) -> LabelledRow:
    labels = obj.get("labels") or {}
    return LabelledRow(
        item=TagInput(
            id=str(obj["id"]), title=obj.get("title") or "", text=obj.get("text") or "", lang=obj.get("lang")
        ),
        gold={name: bool(labels.get(name, False)) for name in LABELS},
        ambiguous=bool(obj.get("ambiguous", False)),
        kind=str(obj.get("kind") or ""),
    )


def read_labelled(path: Path) -> Iterator[LabelledRow]:
    """Rows of a labelled JSONL file (``{"id", "title", "text", "labels": {...}}``)."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield row_from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc


_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”»)]))\s+(?=[\"'“«¿¡(]*[A-ZÁÉÍÓÚÑ0-9])|\n+")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "sr",
        "sra",
        "srta",
        "gen",
        "gral",
        "col",
        "cnel",
        "lt",
        "sgt",
        "st",
        "no",
        "gov",
        "rep",
        "sen",
        "jr",
        "prof",
        "capt",
        "cap",
        "av",
        "dra",
        "lic",
        "ing",
    ]
)


def split_sentences(text: str) -> list[str]:
    """Split news prose into sentences (paragraph breaks and ./!/? before a capital)."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text):
        part = part.strip()
        if not part:
            continue
        if (
            out
            and out[-1].rsplit(None, 1)[-1].rstrip(".").lower() in _ABBREVIATIONS
            and out[-1].endswith(".")
        ):
            out[-1] = out[-1] + " " + part
        else:
            out.append(part)
    return out
