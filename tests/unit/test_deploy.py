"""The deployment files hold together: compose services, Kubernetes references, dashboards."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name in ("kustomization.yaml", "feeds.yaml"):
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_compose_runs_every_stage_with_healthchecks_and_ordering() -> None:
    services = _compose()["services"]
    assert {"kafka", "postgres", "migrate", "poller", "classifier", "sink"} <= set(services)
    commands = {name: services[name]["command"][0] for name in ("migrate", "poller", "classifier", "sink")}
    assert commands == {"migrate": "migrate", "poller": "poll", "classifier": "classify", "sink": "store"}
    assert set(commands.values()) <= set(SUBCOMMANDS)
    for name in ("kafka", "postgres", "poller", "classifier", "sink"):
        assert "test" in services[name]["healthcheck"], name
    assert services["sink"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("poller", "classifier", "sink"):
        env = services[name]["environment"]
        assert env["WIREWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
    for name in ("migrate", "sink"):
        assert services[name]["environment"]["WIREWATCH_DATABASE_URL"].startswith("postgresql+psycopg://")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["prometheus"]["profiles"] == ["monitoring"]


def test_sink_runs_as_its_least_privilege_role_and_migrations_as_the_owner() -> None:
    services = _compose()["services"]
    assert "//wirewatch_sink:" in services["sink"]["environment"]["WIREWATCH_DATABASE_URL"]
    assert "//wirewatch:" in services["migrate"]["environment"]["WIREWATCH_DATABASE_URL"]
    assert services["sink"]["environment"]["WIREWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"  # merge kept the rest
    init_sql = "\n".join(p.read_text() for p in sorted((ROOT / "deploy" / "postgres-init").glob("*.sql")))
    assert "CREATE ROLE wirewatch_sink LOGIN" in init_sql

    overlay = yaml.safe_load((K8S / "overlays" / "local" / "kustomization.yaml").read_text())
    urls = {
        g["name"]: dict(item.split("=", 1) for item in g["literals"]).get("WIREWATCH_DATABASE_URL", "")
        for g in overlay["secretGenerator"]
    }
    sink = yaml.safe_load((K8S / "base" / "sink.yaml").read_text())
    (container,) = sink["spec"]["template"]["spec"]["containers"]
    (secret,) = [ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref]
    assert "//wirewatch_sink:" in urls[secret]
    job = yaml.safe_load((K8S / "base" / "migrate-job.yaml").read_text())
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    (owner_secret,) = [ref["secretRef"]["name"] for ref in migrate["envFrom"] if "secretRef" in ref]
    assert "//wirewatch:" in urls[owner_secret]


def test_stop_grace_outlasts_the_work_in_hand() -> None:
    """SIGTERM is honoured between cycles/batches; the platform must not SIGKILL before that."""
    from ingest.config import PollerSettings

    fetch_deadline = PollerSettings.model_fields["fetch_total_timeout"].default
    services = _compose()["services"]
    assert int(services["poller"]["stop_grace_period"].rstrip("s")) > fetch_deadline
    for name in ("classifier", "sink"):
        assert int(services[name]["stop_grace_period"].rstrip("s")) >= 30
    (poller,) = [
        d for d in yaml.safe_load_all((K8S / "base" / "poller.yaml").read_text()) if d["kind"] == "Deployment"
    ]
    assert poller["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > fetch_deadline


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose (Debian package) is not installed")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_kubernetes_references_resolve() -> None:
    docs = _k8s_docs()
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    overlay = yaml.safe_load((K8S / "overlays" / "local" / "kustomization.yaml").read_text())
    config_maps = set(by_kind.get("ConfigMap", {})) | {
        g["name"] for g in overlay.get("configMapGenerator", [])
    }
    secrets = {g["name"] for g in overlay.get("secretGenerator", [])}
    claims = set(by_kind.get("PersistentVolumeClaim", {}))

    workloads = list(by_kind["Deployment"].values()) + list(by_kind["Job"].values())
    assert {d["metadata"]["name"] for d in by_kind["Deployment"].values()} == {
        "wirewatch-poller",
        "wirewatch-classifier",
        "wirewatch-sink",
    }
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        for container in spec["containers"]:
            assert container["args"][0] in SUBCOMMANDS
            for ref in container.get("envFrom", []):
                if "configMapRef" in ref:
                    assert ref["configMapRef"]["name"] in config_maps
                if "secretRef" in ref:
                    assert ref["secretRef"]["name"] in secrets
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
    for deployment in by_kind["Deployment"].values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert "requests" in container["resources"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_pdbs_and_scalers_target_existing_deployments() -> None:
    docs = _k8s_docs()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        assert any(pdb["spec"]["selector"]["matchLabels"].items() <= lab.items() for lab in labels)
    partitions = 3
    scalers = [d for d in docs if d["kind"] == "ScaledObject"]
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scalers} == {
        "wirewatch-classifier",
        "wirewatch-sink",
    }
    groups = {s["spec"]["triggers"][0]["metadata"]["consumerGroup"] for s in scalers}
    assert groups == {"wirewatch-classify", "wirewatch-store"}
    assert all(s["spec"]["maxReplicaCount"] <= partitions for s in scalers)


def test_base_kustomization_lists_every_manifest() -> None:
    base = K8S / "base"
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_dashboard_queries_use_exported_series() -> None:
    dashboard = json.loads((ROOT / "deploy/monitoring/grafana/dashboards/wirewatch.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for series in (
        "kafka_consumergroup_lag",
        "wirewatch_records_in_total",
        "wirewatch_freshness_seconds_bucket",
    ):
        assert series in exprs
