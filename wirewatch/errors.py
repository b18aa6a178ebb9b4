"""The error hierarchy every stage maps third-party failures onto.

    WirewatchError
    ├── ConfigError          bad or missing configuration: fail fast at start
    ├── RetriableError       broker, database, HTTP 5xx/timeout: back off, do not commit
    └── PoisonMessageError   a message that can never succeed: dead-letter it, commit, go on

Anything else is a bug: the process crashes, and at-least-once delivery plus
idempotent writes mean nothing is lost on restart. Each class says whether it
is ``retriable`` (the habit taken from kafka-python's ``errors.py``), and that
flag is the retry decision: the batch loop (``wirewatch.kafka.BatchLoop``) holds
and re-reads a batch whose handler raised a ``WirewatchError`` with
``retriable`` true, and lets any other one propagate, exactly as it treats
kafka-python's own ``KafkaError.retriable`` from ``poll()``. A stage error that
is retriable subclasses :class:`RetriableError` rather than setting the flag by
hand, so ``except RetriableError`` and the flag never disagree.
"""

from __future__ import annotations

# Exit statuses every command uses (sysexits.h), so scripts and probes can tell them apart.
EX_TEMPFAIL = 75
"""Try again later: a dependency (the broker) is unreachable or still starting."""
EX_CONFIG = 78
"""Bad or missing configuration."""


class WirewatchError(Exception):
    """Base of all wirewatch errors."""

    retriable = False


class ConfigError(WirewatchError):
    """Configuration is missing or invalid; the message names the variable."""


class RetriableError(WirewatchError):
    """A transient failure of something outside the process (broker, database, network)."""

    retriable = True


class PoisonMessageError(WirewatchError):
    """A message that can never be processed, whatever the retries.

    ``reason`` is a short machine-friendly tag (``invalid_json``, ``schema``,
    ``constraint``...) and the exception text explains it for a human.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
