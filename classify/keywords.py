"""The bilingual keyword baseline: one regular expression per label, English + Spanish.

Owns the baseline that ``wirewatch eval`` prints beside the model, so the
model's numbers have something honest to beat. A label fires when its pattern
matches the title or the text; the score is 1.0 or 0.0 and the evidence is the
first matching sentence. It deliberately knows nothing about context (negation,
metaphor, background mentions) — that is the model's job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from classify.labels import LABELS, Prediction, TagInput, split_sentences

PATTERNS: dict[str, re.Pattern[str]] = {
    "kidnapping": re.compile(
        r"\b(kidnap\w*|abduct\w*|hostages?|held captive|secuestr\w*|plagi(o|ad\w*)|rapt(o|ad\w*)"
        r"|privad\w+ de (la|su) libertad|desaparici[oó]n forzada)\b",
        re.IGNORECASE,
    ),
    "shootout": re.compile(
        r"\b(shoot-?outs?|gun-?fights?|gun ?battles?|fire-?fights?|exchanges? of (gun)?fire"
        r"|exchanged (gun)?fire|traded (gun)?fire|returned fire|balaceras?|tiroteos?"
        r"|enfrentamientos? armados?"
        r"|intercambio de (disparos|balas|fuego)|repeli\w+ (la )?agresi[oó]n|se enfrentaron)\b",
        re.IGNORECASE,
    ),
    "extortion": re.compile(
        r"\b(extort\w*|sextortion|racketeering|protection (money|racket)|ransomware|extorsi\w+|cobro de piso"
        r"|vacunas? \w* ?(a|de) (comerciantes|transportistas)|cuotas? criminal\w*|derecho de piso)\b",
        re.IGNORECASE,
    ),
}


class KeywordTagger:
    """Baseline tagger: a label is present iff its regular expression matches."""

    model_name = "keyword-baseline"
    model_version = "1"

    def predict(self, items: Sequence[TagInput]) -> list[Prediction]:
        return [self._one(item) for item in items]

    def _one(self, item: TagInput) -> Prediction:
        sentences = ([item.title] if item.title else []) + split_sentences(item.text)
        labels: list[str] = []
        evidence: dict[str, str] = {}
        for name in LABELS:
            hit = next((s for s in sentences if PATTERNS[name].search(s)), None)
            if hit is not None:
                labels.append(name)
                evidence[name] = hit
        scores = {name: 1.0 if name in labels else 0.0 for name in LABELS}
        return Prediction(id=item.id, labels=tuple(labels), scores=scores, evidence=evidence)
