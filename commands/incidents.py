"""``wirewatch incidents``: link a JSONL file of articles into incidents, offline.

Each input line has ``id``, ``title``, ``text`` and optionally ``lang``, ``published_at``,
``labels`` (list, or ``{"kidnapping": true, ...}``) or ``categories``, ``location``
(``{"country", "admin1", "place"}``; ``admin1`` may be ``{"name", "code"}``), ``source``/``site``/
``url`` and ``embedding``. Lines without an embedding are encoded with the classifier's encoder
(the vector the classifier puts on ``news.tagged.v1``), lines without categories get the model's
labels, and lines without a location are geolocated as ``wirewatch tag`` does (the classifier's
locator; ``--no-locate`` links them without one). A location becomes the linker's through
:func:`store.incidents.features.location_of`, the function the sink applies to the message's
``location``, so both paths build the same :class:`~store.incidents.features.Report`. Linking is
:class:`store.incidents.linker.Linker` over a :class:`~store.incidents.linker.MemoryStore`: the
sink runs the same class over PostgreSQL. Every input line gets one output line
``{"id", "incident_id"}``, in input order.

``--cache FILE`` keeps embeddings and labels (keyed by the model version and a hash of the text)
in an ``.npz`` file, so re-running on the same file does not encode it again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from classify.config import RUNTIMES
from store.incidents.features import Location, Report, features, location_of
from store.incidents.linker import link_all
from wirewatch.contract import EventLocation

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, help="JSONL with id, title, text (optional lang, published_at)"
    )
    parser.add_argument("--output", default="-", help="JSONL output (default: stdout)")
    parser.add_argument(
        "--cache", default=None, help="an .npz file that keeps embeddings and labels between runs"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="encoder runtime (default: WIREWATCH_CLASSIFY_RUNTIME, else onnx-int8)",
    )
    parser.add_argument(
        "--no-locate",
        action="store_true",
        help="do not geolocate lines without a location (link them on text, dates and categories)",
    )


def read_lines(path: str) -> Iterator[dict[str, Any]]:
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    try:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"{path}:{number}: not JSON: {exc}") from exc
    finally:
        if handle is not sys.stdin:
            handle.close()


def given_categories(row: dict[str, Any]) -> frozenset[str] | None:
    """Categories the line carries (``labels`` as a list or a dict of booleans, or ``categories``)."""
    value = row.get("labels", row.get("categories"))
    if value is None:
        return None
    if isinstance(value, dict):
        return frozenset(k for k, v in value.items() if v)
    return frozenset(str(v) for v in value)


def row_location(row: dict[str, Any]) -> EventLocation | None:
    """The line's own ``location`` in the contract's shape (``admin1`` may also be a plain name)."""
    raw = row.get("location")
    if not isinstance(raw, dict):
        return None
    fields = dict(raw)
    if isinstance(fields.get("admin1"), str):
        fields["admin1"] = {"name": fields["admin1"]}
    try:
        return EventLocation.model_validate(fields)
    except ValueError as exc:
        raise SystemExit(f"line {row.get('id')!r}: location: {exc}") from exc


def location(row: dict[str, Any]) -> Location | None:
    """The linker's view of the line's own ``location`` (None without one)."""
    return location_of(row_location(row))


def event_locations(rows: Sequence[dict[str, Any]], locate: bool = True) -> list[EventLocation | None]:
    """Each line's location: its own, else (``locate``) the classifier's locator's, as in ``wirewatch
    tag`` (the gazetteer is loaded only when some line needs it)."""
    found = [row_location(r) for r in rows]
    need = [i for i, loc in enumerate(found) if loc is None and "location" not in rows[i]]
    if locate and need:
        from classify.command import load_locator

        locator = load_locator()
        for i in need:
            found[i] = EventLocation.model_validate(locator.locate_fields(rows[i]))
    return found


def source(row: dict[str, Any]) -> str | None:
    if row.get("source") or row.get("site"):
        return str(row.get("source") or row.get("site"))
    url = row.get("url")
    return urlsplit(url).hostname if isinstance(url, str) else None


def published_at(row: dict[str, Any]) -> datetime | None:
    value = row.get("published_at")
    if not value:
        return None
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        raise SystemExit(f"line {row.get('id')!r}: published_at needs a time zone")
    return stamp


def _key(version: str, row: dict[str, Any]) -> str:
    digest = hashlib.sha256(f"{version}\0{row.get('title') or ''}\0{row.get('text') or ''}".encode())
    return digest.hexdigest()[:32]


def model_outputs(
    rows: Sequence[dict[str, Any]], runtime: str | None, cache: Path | None
) -> tuple[list[list[float] | None], list[frozenset[str]]]:
    """Embeddings and model labels for the rows that need them (loading the model only if some do)."""
    need = [i for i, r in enumerate(rows) if r.get("embedding") is None or given_categories(r) is None]
    embeddings: list[list[float] | None] = [r.get("embedding") for r in rows]
    labels: list[frozenset[str]] = [given_categories(r) or frozenset() for r in rows]
    if not need:
        return embeddings, labels
    import numpy as np

    from classify.command import load_model
    from classify.config import ClassifierSettings
    from classify.labels import TagInput
    from wirewatch.settings import load_settings

    tagger = load_model(load_settings(ClassifierSettings), runtime)
    version = f"{tagger.model_name}/{tagger.model_version}"
    known: dict[str, tuple[np.ndarray, list[str]]] = {}
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as saved:
            for k, vec, lab in zip(saved["keys"], saved["vectors"], saved["labels"], strict=True):
                known[str(k)] = (vec, [x for x in str(lab).split(",") if x])
    missing = [i for i in need if _key(version, rows[i]) not in known]
    if missing:
        items = [
            TagInput(
                id=str(rows[i]["id"]),
                title=rows[i].get("title") or "",
                text=rows[i].get("text") or "",
                lang=rows[i].get("lang"),
            )
            for i in missing
        ]
        log.info("encoding %d articles", len(items))
        predictions = tagger.predict(items)  # embeds the articles that carry a category
        unembedded = [j for j, p in enumerate(predictions) if p.embedding is None]
        rest = iter(tagger.embed([items[j] for j in unembedded]) if unembedded else [])
        vectors = [
            next(rest) if p.embedding is None else np.asarray(p.embedding, dtype=np.float32)
            for p in predictions
        ]
        for i, vec, pred in zip(missing, vectors, predictions, strict=True):
            known[_key(version, rows[i])] = (vec, list(pred.labels))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(known)
            np.savez(
                cache,
                keys=np.array(keys),
                vectors=np.stack([known[k][0] for k in keys]),
                labels=np.array([",".join(known[k][1]) for k in keys]),
            )
    for i in need:
        vec, lab = known[_key(version, rows[i])]
        if embeddings[i] is None:
            embeddings[i] = [float(x) for x in vec]
        if given_categories(rows[i]) is None:
            labels[i] = frozenset(lab)
    return embeddings, labels


def link_rows(
    rows: Sequence[dict[str, Any]],
    embeddings: Sequence[Sequence[float] | None],
    labels: Sequence[frozenset[str]],
    locations: Sequence[EventLocation | None] | None = None,
) -> list[str]:
    """The incident id of every row, in input order (``locations``: from :func:`event_locations`;
    None reads only the lines' own)."""
    if locations is None:
        locations = [row_location(r) for r in rows]
    reports = [
        features(
            Report(
                article_id=str(row["id"]),
                title=row.get("title") or "",
                text=row.get("text") or "",
                lang=row.get("lang"),
                published_at=published_at(row),
                categories=cats,
                embedding=emb,
                source=source(row),
                location=location_of(loc),
            )
        )
        for row, emb, cats, loc in zip(rows, embeddings, labels, locations, strict=True)
    ]
    store = link_all(reports, batch_size=32)
    return [store.incident_of(f.article_id) for f in reports]


def run(args: argparse.Namespace) -> int:
    from wirewatch.logging import setup_logging

    setup_logging("INFO", "text")
    rows = list(read_lines(args.input))
    ids = [str(r.get("id", "")) for r in rows]
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        raise SystemExit(f"{args.input}: every line needs a unique, non-empty id")
    embeddings, labels = model_outputs(rows, args.runtime, Path(args.cache) if args.cache else None)
    incidents = link_rows(rows, embeddings, labels, event_locations(rows, locate=not args.no_locate))
    out: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for article_id, incident in zip(ids, incidents, strict=True):
            out.write(json.dumps({"id": article_id, "incident_id": incident}, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
