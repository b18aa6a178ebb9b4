"""The Kubernetes manifests render, pass strict schemas, and apply in a form that works.

Rendering needs kustomize (``kubectl kustomize`` or ``kustomize``); the schemas come from PyPI
packages (``kubernetes-validate`` ships the core API schemas, ``cloudcoil-models-keda`` models
generated from KEDA's CRDs). Each check skips, saying which tool is missing, when it cannot run.
The checks on the files themselves need nothing but PyYAML.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSION = "1.33.0"  # schemas to validate against (kubernetes-validate ships many)
WIREWATCH_STAGES = ("wirewatch-poller", "wirewatch-classifier", "wirewatch-sink", "wirewatch-migrate")


def _kustomize() -> list[str]:
    """kustomize on PATH, else the one `make tools` builds into .cache/bin, else kubectl's."""
    built = ROOT / ".cache" / "bin" / "kustomize"
    binary = shutil.which("kustomize") or (str(built) if built.is_file() else None)
    if binary:
        return [binary, "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.skip("neither kustomize nor kubectl is installed (`make tools` builds kustomize): cannot render")


@cache
def _render_cached(folder: Path, command: tuple[str, ...]) -> tuple[int, str, str]:
    result = subprocess.run([*command, str(folder)], capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout, result.stderr


def _render(folder: Path) -> list[dict[str, Any]]:
    code, out, err = _render_cached(folder, tuple(_kustomize()))
    assert code == 0, err
    return [d for d in yaml.safe_load_all(out) if d]


def _overlay(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())  # type: ignore[no-any-return]


def _files(folder: Path) -> list[dict[str, Any]]:
    """The resources a kustomization lists, read from disk (bases followed), without kustomize."""
    docs: list[dict[str, Any]] = []
    for entry in _overlay(folder).get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            docs += _files(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _secret_literals(folder: Path) -> dict[str, dict[str, str]]:
    return {
        g["name"]: dict(item.split("=", 1) for item in g.get("literals", []))
        for g in _overlay(folder).get("secretGenerator", [])
    }


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def _stages(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _workloads(docs) if d["metadata"]["name"] in WIREWATCH_STAGES}


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / (1024 * 1024)


# --- rendered: kustomize + strict schemas ------------------------------------------------------


@pytest.mark.parametrize("folder", [K8S / "base", *OVERLAYS], ids=lambda p: p.name)
def test_every_kustomization_renders_and_passes_strict_schemas(folder: Path) -> None:
    docs = _render(folder)
    core = [d for d in docs if not d["apiVersion"].startswith("keda.sh/")]
    keda = [d for d in docs if d["apiVersion"].startswith("keda.sh/")]
    assert core and keda

    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (PyPI, ships the Kubernetes schemas) is missing"
    )
    for doc in core:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except Exception as exc:  # its errors carry the schema path: show them as they are
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")

    models = pytest.importorskip(
        "cloudcoil.models.keda.v1alpha1", reason="cloudcoil-models-keda (PyPI, KEDA's CRD models) is missing"
    )
    for doc in keda:
        model = getattr(models, doc["kind"])
        parsed = model.model_validate(doc)  # types and required fields
        # Strict: the models ignore unknown fields, so a field that does not survive the round trip
        # is one KEDA's schema does not have (a typo KEDA would drop or reject).
        assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc, doc


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_an_overlay_creates_its_namespace_and_puts_everything_in_it(folder: Path) -> None:
    docs = _render(folder)
    namespace = _overlay(folder)["namespace"]
    assert namespace in _by_name(docs, "Namespace")
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]


# --- on the files: what an apply needs ---------------------------------------------------------


def test_images_are_not_pulled_when_loaded_locally() -> None:
    """``wirewatch:latest`` defaults to imagePullPolicy Always: ErrImagePull on kind/minikube."""
    for doc in _workloads(_files(K8S / "base")):
        for container in _pod(doc)["containers"]:
            if container["image"].startswith("wirewatch:"):
                assert container.get("imagePullPolicy") in ("IfNotPresent", "Never"), doc["metadata"]["name"]


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_every_stage_runs_hardened(folder: Path) -> None:
    for name, doc in _stages(_files(folder)).items():
        pod = _pod(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


def test_autoscaled_deployments_leave_the_replica_count_to_keda() -> None:
    docs = _files(K8S / "base")
    deployments = _by_name(docs, "Deployment")
    scaled = [d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "ScaledObject"]
    assert scaled
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], f"{name}: apply would reset KEDA's scale"


def test_kafka_triggers_speak_a_protocol_kafka_4_serves() -> None:
    """KEDA's Kafka client defaults to protocol 1.0.0; Kafka 4 removed requests older than 2.1."""
    for doc in (d for d in _files(K8S / "base") if d["kind"] == "ScaledObject"):
        for trigger in doc["spec"]["triggers"]:
            if trigger["type"] == "kafka":
                version = tuple(int(x) for x in trigger["metadata"]["version"].split("."))
                assert version >= (2, 1, 0), doc["metadata"]["name"]


def test_classifier_memory_limit_holds_the_largest_article() -> None:
    """The largest accepted article was measured under 4 GiB; below that it is OOM-killed forever."""
    classifier = _by_name(_files(K8S / "base"), "Deployment")["wirewatch-classifier"]
    (container,) = _pod(classifier)["containers"]
    assert _mebibytes(container["resources"]["limits"]["memory"]) >= 4 * 1024


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_only_migrate_gets_the_owner_and_only_the_sink_its_role(folder: Path) -> None:
    secrets = _secret_literals(folder)
    stages = _stages(_files(folder))

    def urls(name: str) -> list[str]:
        found = []
        for container in _pod(stages[name])["containers"]:
            for ref in container.get("envFrom", []):
                if "secretRef" in ref:
                    found.append(secrets[ref["secretRef"]["name"]].get("WIREWATCH_DATABASE_URL", ""))
            found += [
                e.get("value", "") for e in container.get("env", []) if e["name"].endswith("DATABASE_URL")
            ]
        return [u for u in found if u]

    assert urls("wirewatch-poller") == []
    assert urls("wirewatch-classifier") == []
    (owner,) = urls("wirewatch-migrate")
    (sink,) = urls("wirewatch-sink")
    assert urlsplit(sink).username == "wirewatch_sink"
    assert urlsplit(owner).username != "wirewatch_sink"


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_the_overlay_provides_what_the_urls_point_at(folder: Path) -> None:
    """From nothing: the database and Kafka hosts are Services of the overlay, and the password
    migrate creates the sink's role with is the one the sink logs in with."""
    docs = _files(folder)
    services = set(_by_name(docs, "Service"))
    secrets = _secret_literals(folder)
    config = _by_name(docs, "ConfigMap")["wirewatch-config"]["data"]
    assert config["WIREWATCH_KAFKA_BOOTSTRAP"].split(":")[0] in services
    for scaler in (d for d in docs if d["kind"] == "ScaledObject"):
        assert scaler["spec"]["triggers"][0]["metadata"]["bootstrapServers"].split(":")[0] in services
    owner = next(s for s in secrets.values() if "WIREWATCH_SINK_DB_PASSWORD" in s)
    sink = urlsplit(secrets["wirewatch-sink-secrets"]["WIREWATCH_DATABASE_URL"])
    assert sink.hostname in services
    assert urlsplit(owner["WIREWATCH_DATABASE_URL"]).hostname in services
    assert owner["WIREWATCH_SINK_DB_PASSWORD"] == sink.password


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_stateful_services_keep_their_data(folder: Path) -> None:
    for name, doc in _by_name(_files(folder), "StatefulSet").items():
        claims = {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
        mounted = {m["name"] for c in _pod(doc)["containers"] for m in c.get("volumeMounts", [])}
        assert claims and claims <= mounted, name
        env = {e["name"]: e.get("value") for c in _pod(doc)["containers"] for e in c.get("env", [])}
        if "KAFKA_NODE_ID" in env:  # apache/kafka: /tmp/kraft-combined-logs unless told otherwise
            paths = {m["mountPath"] for c in _pod(doc)["containers"] for m in c.get("volumeMounts", [])}
            assert env.get("KAFKA_LOG_DIRS") in paths, name
