"""docker-compose.yml survives a restart with its data, starts in an order that works, and exposes little."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]  # type: ignore[no-any-return]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named-volume mounts of a service: container path -> volume."""
    out = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if not source.startswith((".", "/")):
            out[target] = source
    return out


def test_kafka_writes_its_log_into_the_named_volume() -> None:
    """apache/kafka writes to /tmp/kraft-combined-logs unless KAFKA_LOG_DIRS says otherwise."""
    kafka = _services()["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    mounts = _mounts(kafka)
    assert log_dirs and all(any(d == m or d.startswith(m + "/") for m in mounts) for d in log_dirs), (
        log_dirs,
        mounts,
    )


def test_postgres_keeps_its_data_and_reports_healthy_only_over_tcp() -> None:
    """The image's init-time server listens on the socket only: a TCP check waits for the real one."""
    postgres = _services()["postgres"]
    assert "/var/lib/postgresql/data" in _mounts(postgres)
    check = " ".join(postgres["healthcheck"]["test"])
    assert "pg_isready" in check
    assert "-h 127.0.0.1" in check or "-h localhost" in check


def test_only_the_stages_that_use_the_database_get_a_url() -> None:
    services = _services()
    for name in ("poller", "classifier"):
        assert "WIREWATCH_DATABASE_URL" not in services[name]["environment"], name
    assert "//wirewatch:" in services["migrate"]["environment"]["WIREWATCH_DATABASE_URL"]
    assert "//wirewatch_sink:" in services["sink"]["environment"]["WIREWATCH_DATABASE_URL"]


def test_stateful_services_have_named_volumes_declared() -> None:
    declared = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"])
    services = _services()
    for name in ("kafka", "postgres", "poller"):
        volumes = set(_mounts(services[name]).values())
        assert volumes and volumes <= declared, name


def test_monitoring_is_not_open_to_the_network_nor_anonymous() -> None:
    services = _services()
    for name in ("prometheus", "grafana"):
        for port in services[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), (name, port)
    grafana = services["grafana"]["environment"]
    assert str(grafana.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() == "false"
