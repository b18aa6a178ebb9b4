"""``wirewatch classify`` (service), ``tag``, ``eval`` and ``train``.

torch and transformers are imported lazily, inside the functions that need the
model, so building the command line stays cheap.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

from classify.config import RUNTIMES, ClassifierSettings
from classify.labels import TaggerProtocol
from classify.worker import TaggingHandler
from wirewatch.kafka import ensure_topics, make_producer
from wirewatch.logging import setup_logging
from wirewatch.metrics import LATENCY_BUCKETS, ServiceMetrics
from wirewatch.service import add_idle_exit_argument, run_consumer_service, stop_on_signals
from wirewatch.settings import load_settings

if TYPE_CHECKING:
    from classify.geo.locator import ArticleLocator
    from classify.model import Tagger

log = logging.getLogger(__name__)


def load_tagger(settings: ClassifierSettings, runtime: str | None = None) -> TaggerProtocol:
    """The tagger ``WIREWATCH_TAGGER`` names: the trained model, or the keyword baseline (no torch).

    ``runtime`` (a command-line choice) overrides ``WIREWATCH_CLASSIFY_RUNTIME``.
    """
    if settings.tagger == "keywords":
        from classify.keywords import KeywordTagger

        log.info("keyword baseline tagger (WIREWATCH_TAGGER=keywords), not the model")
        return KeywordTagger()
    return load_model(settings, runtime)


def load_model(settings: ClassifierSettings, runtime: str | None = None) -> Tagger:
    """The trained model itself (``wirewatch incidents`` needs its encoder's vectors)."""
    from classify.model import Tagger

    tagger = Tagger.load(
        settings.model_dir,
        backbone_dir=settings.backbone_dir,
        threads=settings.classify_threads,
        runtime=runtime or settings.classify_runtime,
    )
    log.info("model %s %s loaded", tagger.model_name, tagger.model_version)
    return tagger


def load_locator() -> ArticleLocator:
    """The event geolocator (gazetteer cached beside the encoder in ``WIREWATCH_MODEL_CACHE``)."""
    from classify.geo.locator import default_locator

    return default_locator()


# ---- the service -------------------------------------------------------------------------------


def add_classify_arguments(parser: argparse.ArgumentParser) -> None:
    add_idle_exit_argument(parser)


def run_classify(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    settings = load_settings(ClassifierSettings)
    setup_logging(settings.log_level, settings.log_format)
    return run(settings, stop or stop_on_signals(), idle_exit=args.idle_exit)


def run(
    settings: ClassifierSettings,
    stop: threading.Event,
    idle_exit: float | None = None,
    tagger: TaggerProtocol | None = None,
    locator: ArticleLocator | None = None,
) -> int:
    """The classifier service: until ``stop`` is set (or ``idle_exit`` seconds pass without messages).

    Every stage's service has this shape, ``run(settings, stop)``; ``run_classify`` is the
    command line's adapter (settings from the environment, stop on SIGTERM). ``tagger`` and
    ``locator`` are loaded here unless given: a process that runs other services on threads (the
    demo) loads them first, so their seconds of CPU-bound loading do not starve the other
    services' Kafka clients while those join their groups.
    """
    tagger = tagger or load_tagger(settings)
    locator = locator or load_locator()
    kafka = settings.kafka.for_client("wirewatch-classify")
    ensure_topics(
        kafka, [settings.classify_input_topic, settings.classify_output_topic, settings.dead_letter_topic]
    )
    metrics = ServiceMetrics("classify")
    producer = make_producer(kafka)
    try:
        handler = TaggingHandler(
            tagger,
            producer,
            settings.classify_output_topic,
            on_inference=inference_observer(metrics),
            locator=locator,
        )
        return run_consumer_service(
            "classify",
            settings,
            settings.consumer,
            handler,
            stop,
            metrics=metrics,
            idle_exit=idle_exit,
            producer=producer,
        )
    finally:
        producer.close(timeout=10)


def inference_observer(metrics: ServiceMetrics) -> Callable[[int, float], None]:
    seconds = Histogram(
        "wirewatch_inference_seconds",
        "Model time per batch",
        buckets=LATENCY_BUCKETS,
        registry=metrics.registry,
    )
    articles = Counter(
        "wirewatch_inference_articles_total", "Articles through the model", registry=metrics.registry
    )

    def observe(size: int, elapsed: float) -> None:
        seconds.observe(elapsed)
        articles.inc(size)

    return observe


# ---- offline: tag, eval, train --------------------------------------------------------------------


def _read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"{path}:{number}: not JSON: {exc}") from exc


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="JSONL with id, title, text (optional lang)")
    parser.add_argument("--output", default="-", help="JSONL output (default: stdout)")
    parser.add_argument(
        "--evidence",
        action="store_true",
        help="include the supporting sentence per label and for the location",
    )
    _add_runtime_argument(parser)


def _add_runtime_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="encoder runtime (default: WIREWATCH_CLASSIFY_RUNTIME, else onnx-int8)",
    )


def run_tag(args: argparse.Namespace) -> int:
    from classify.labels import TagInput

    settings = load_settings(ClassifierSettings)
    setup_logging(settings.log_level, settings.log_format)
    tagger = load_tagger(settings, args.runtime)
    locator = load_locator()
    rows = list(_read_jsonl(args.input))
    items = [
        TagInput(id=str(r["id"]), title=r.get("title") or "", text=r.get("text") or "", lang=r.get("lang"))
        for r in rows
    ]
    out: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for row, item, pred in zip(rows, items, tagger.predict(items), strict=True):
            line: dict[str, Any] = {
                "id": item.id,
                "labels": list(pred.labels),
                "scores": {k: round(v, 4) for k, v in pred.scores.items()},
                "location": locator.locate_fields(row, evidence=args.evidence),
            }
            if args.evidence:
                line["evidence"] = dict(pred.evidence)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help='JSONL lines with "labels": {"kidnapping": true, ...}')
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _add_runtime_argument(parser)


def run_eval(args: argparse.Namespace) -> int:
    from classify.evaluate import evaluate_file

    settings = load_settings(ClassifierSettings)
    setup_logging(settings.log_level, settings.log_format)
    tagger = load_tagger(settings, args.runtime)
    report = evaluate_file(Path(args.input), tagger)
    print(json.dumps(report.to_json(), ensure_ascii=False) if args.json else report.format_table())
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default=None, help="artifact folder (default: classify/artifact)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--cv",
        action="store_true",
        help="recompute the grouped cross-validation record first (5 trainings: hours on CPU)",
    )


def run_train(args: argparse.Namespace) -> int:
    from classify.train import main as train_main

    return int(train_main(output=args.output, seed=args.seed, cv=args.cv) or 0)
