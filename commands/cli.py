"""``wirewatch`` — argument parsing and dispatch to the stages' commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from wirewatch.errors import EX_CONFIG, ConfigError

# subcommand -> (module, function adding arguments, function running, help)
SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    "poll": ("ingest.command", "add_poll_arguments", "run_poll", "run the feed poller"),
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
    "lag": ("commands.lag", "add_arguments", "run", "consumer lag per group, topic and partition"),
    "demo": ("commands.demo", "add_arguments", "run", "the whole pipeline on the bundled sample feeds"),
}


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
