"""``wirewatch lag``: consumer lag per group, topic and partition, for the groups the services run.

Its own module like every other subcommand; the demo imports :func:`configured_groups` from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wirewatch.errors import EX_TEMPFAIL


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
