"""``wirewatch`` — argument parsing and dispatch to the stages' commands."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from wirewatch.errors import EX_CONFIG, EX_TEMPFAIL, ConfigError

# subcommand -> (module, function adding arguments, function running, help)
SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    "poll": ("ingest.command", "add_arguments", "run", "run the feed poller"),
    "classify": ("classify.command", "add_classify_arguments", "run_classify", "run the classifier service"),
    "store": ("store.command", "add_store_arguments", "run_store", "run the PostgreSQL sink service"),
    "tag": ("classify.command", "add_tag_arguments", "run_tag", "classify a JSONL file offline"),
    "incidents": (
        "commands.incidents",
        "add_arguments",
        "run",
        "link a JSONL file of articles into incidents offline",
    ),
    "eval": ("classify.command", "add_eval_arguments", "run_eval", "score the classifier on labelled JSONL"),
    "train": ("classify.command", "add_train_arguments", "run_train", "train the classifier head"),
    "migrate": (
        "store.command",
        "add_migrate_arguments",
        "run_migrate",
        "bring the database schema up to date",
    ),
    "reclassify": (
        "commands.reclassify",
        "add_arguments",
        "run",
        "re-score stored articles with the current model",
    ),
    "lag": ("commands.cli", "add_lag_arguments", "run_lag", "consumer lag per group, topic and partition"),
    "demo": ("commands.demo", "add_arguments", "run", "the whole pipeline on the bundled sample feeds"),
}


def add_lag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--max-lag",
        type=int,
        default=None,
        metavar="N",
        help="exit 2 when the total lag of any group exceeds N (for probes and cron)",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit 2 when the oldest unconsumed message is older than this",
    )


def configured_groups(classify: Any = None, sink: Any = None) -> dict[str, list[str]]:
    """The consumer groups the services are configured with, each with the topic it reads.

    Read from the same variables the services read (``WIREWATCH_CLASSIFY_GROUP``,
    ``WIREWATCH_CLASSIFY_INPUT_TOPIC``, ``WIREWATCH_STORE_GROUP``, ``WIREWATCH_STORE_TOPIC``),
    so ``wirewatch lag`` and the demo measure the groups that actually run. A caller
    that already holds the services' settings objects passes them.
    """
    from classify.config import ClassifierSettings
    from store.config import SinkSettings
    from wirewatch.settings import load_settings

    classify = classify or load_settings(ClassifierSettings)
    sink = sink or load_settings(SinkSettings)
    groups: dict[str, list[str]] = {}
    for group, topic in (
        (classify.classify_group, classify.classify_input_topic),
        (sink.store_group, sink.store_topic),
    ):
        groups.setdefault(group, []).append(topic)
    return groups


def run_lag(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from wirewatch.lag import measure_lag
    from wirewatch.settings import ServiceSettings, load_settings

    settings = load_settings(ServiceSettings)
    try:
        report = measure_lag(settings.kafka.for_client("wirewatch-lag"), configured_groups())
    except KafkaError as exc:
        if not exc.retriable:
            raise
        # A fresh broker answers "coordinator not available" until its offsets topic exists.
        print(f"lag: Kafka at {settings.kafka.bootstrap} is not ready: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    if args.json:
        print(json.dumps(report.to_json(), indent=None))
    else:
        print(report.format_table())
    over = (args.max_lag is not None and any(v > args.max_lag for v in report.by_group().values())) or (
        args.max_age is not None and report.max_time_lag() > args.max_age
    )
    return 2 if over else 0


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(prog="wirewatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, add, _run, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _resolve(module, add)(p)
    return parser


def _resolve(module: str, attr: str) -> Callable[..., object]:
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen).parse_args(argv)
    module, _add, run, _help = SUBCOMMANDS[args.command]
    try:
        return int(_resolve(module, run)(args) or 0)  # type: ignore[call-overload]
    except ConfigError as exc:
        print(f"wirewatch: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
