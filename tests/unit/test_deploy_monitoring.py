"""Alerts fire when they should (``promtool test rules``), the configs load, the dashboard adds up."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from store.database import POISON_SQLSTATE_CLASSES
from wirewatch.metrics import DEAD_LETTER_REASONS, DEAD_LETTERING_SERVICES, ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
SOURCE_PACKAGES = ("wirewatch", "ingest", "classify", "store", "commands")


def _promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; `make tools` installs it)")
    return binary


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=MONITORING, timeout=120)


def test_alert_rules_are_valid() -> None:
    result = _run(_promtool(), "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    cases = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    checks = [c for case in cases for c in case.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in checks if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in checks if not c.get("exp_alerts")}
    assert alerts <= fired, alerts - fired
    assert alerts <= quiet, alerts - quiet


def test_alert_unit_tests_pass() -> None:
    """Includes the first dead letter and the lag exported by two replicas of one group."""
    result = _run(_promtool(), "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_prometheus_configs_are_valid(config: str) -> None:
    result = _run(_promtool(), "check", "config", config)
    if "kubernetes_sd_configs not found" in result.stderr + result.stdout:
        pytest.skip("this promtool build has no Kubernetes service discovery (Debian builds it without)")
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = yaml.safe_load((MONITORING / config).read_text())["scrape_configs"]
    assert [job["job_name"] for job in scrape] == ["wirewatch"]  # the job the alerts select


def test_dead_letter_series_exist_at_zero_from_start_up() -> None:
    """A series first exported at 1 reads as no increase; at 0 from start-up the first one counts."""
    for service in sorted(DEAD_LETTERING_SERVICES):
        exported = generate_latest(ServiceMetrics(service).registry).decode()
        for reason in DEAD_LETTER_REASONS:
            line = f'wirewatch_records_failed_total{{reason="{reason}",service="{service}"}} 0.0'
            assert line in exported, line


def test_every_dead_letter_reason_in_the_code_is_initialised() -> None:
    pattern = re.compile(r'PoisonMessageError\(\s*"([a-z_]+)"')
    raised = {
        reason
        for package in SOURCE_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for reason in pattern.findall(path.read_text(encoding="utf-8"))
    }
    assert raised, "no PoisonMessageError reasons found: the pattern is stale"
    raised |= set(POISON_SQLSTATE_CLASSES.values())  # raised with a reason looked up by SQLSTATE
    assert raised <= set(DEAD_LETTER_REASONS), raised - set(DEAD_LETTER_REASONS)


def _dashboard_panels() -> list[dict]:
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "wirewatch.json").read_text())
    return dashboard["panels"]  # type: ignore[no-any-return]


def test_dashboard_panels_have_a_query_per_thing_their_title_names() -> None:
    """ "in / out" and "p50/p95" are two lines each."""
    for panel in _dashboard_panels():
        named = len(re.split(r"\s*/\s*", panel["title"].split("(")[0]))
        assert len(panel["targets"]) >= named, panel["title"]


def test_lag_is_taken_once_per_partition_before_summing() -> None:
    """Every replica of a group exports the whole group's lag."""
    exprs = [t["expr"] for p in _dashboard_panels() for t in p["targets"]]
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    lag = [e for e in exprs if "kafka_consumergroup_lag" in e]
    assert lag
    for expr in lag:
        for use in re.findall(r"\(\s*kafka_consumergroup_lag\b[^)]*\)", expr):
            before = expr[: expr.index(use)]
            assert before.rstrip().endswith("max by (consumergroup, topic, partition)"), expr
