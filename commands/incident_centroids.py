"""Rebuild ``store/incidents/centroids.json``: the mean article embedding per language.

The incident linker subtracts its language's mean from every embedding before comparing two
articles (:mod:`store.incidents.features`). The encoder's raw vectors all point the same way
(cosines between unrelated stories are 0.7-0.9) and carry the language strongly, so an English
rewrite of a Spanish story scored below two unrelated Spanish stories; centred per language, the
same pairs separate (README "Incidents"). The means come from our own corpus (``classify/corpus``,
every third story per language), never from the evaluation file.

Run after changing the encoder: ``python -m commands.incident_centroids``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "store" / "incidents" / "centroids.json"


def main() -> int:

    from classify.labels import TagInput
    from classify.model import Tagger

    tagger = Tagger.load(threads=1)
    rows = []
    for path in sorted((ROOT / "classify" / "corpus").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    centroids: dict[str, list[float]] = {}
    for lang in ("en", "es"):
        chosen = [r for r in rows if r["lang"] == lang][::3][:300]
        items = [TagInput(id=r["id"], title=r.get("title") or "", text=r.get("text") or "") for r in chosen]
        vectors = tagger.embed(items)
        centroids[lang] = [round(float(x), 6) for x in vectors.mean(0)]
        print(f"{lang}: {len(chosen)} stories", file=sys.stderr)
    TARGET.write_text(
        json.dumps(
            {
                "encoder": f"{tagger.card.backbone}, {tagger.card.prefix!r} prefix, lead window of "
                f"{tagger.card.max_length} tokens, mean-pooled last hidden state, L2-normalised, "
                f"{tagger.encoder.runner.name}",
                "source": "classify/corpus: every third story per language; built by "
                "commands/incident_centroids.py",
                "centroids": centroids,
            }
        )
        + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
