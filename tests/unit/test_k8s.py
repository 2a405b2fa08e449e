"""The Kubernetes manifests are valid (strict schema of the pinned Kubernetes
version, offline) and run the package's real entry points."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _resources() -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / "k8s").glob("*.yaml")):
        found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def test_every_manifest_is_valid_kubernetes() -> None:
    resources = _resources()
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, "1.33", strict=True)


def test_workloads_run_entry_points_and_the_processor_keeps_its_state() -> None:
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    workloads = {
        r["metadata"]["name"]: r for r in _resources() if r["kind"] in ("Deployment", "StatefulSet")
    }
    for name, workload in workloads.items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert container["command"][0] in scripts, name
    processor = workloads["dispatch-processor"]
    assert processor["kind"] == "StatefulSet"
    assert processor["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
    expected = {
        "dispatch-gateway",
        "dispatch-processor",
        "dispatch-sender",
        "dispatch-webhooks",
        "dispatch-projector",
        "dispatch-console",
    }
    assert expected <= set(workloads)


def _workloads() -> dict[str, dict[str, Any]]:
    return {
        r["metadata"]["name"]: r for r in _resources() if r["kind"] in ("Deployment", "StatefulSet")
    }


def test_every_workload_has_a_disruption_budget_that_selects_its_pods() -> None:
    budgets = [r for r in _resources() if r["kind"] == "PodDisruptionBudget"]
    for name, workload in _workloads().items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, f"{name}: {len(matching)} disruption budgets"
        spec = matching[0]["spec"]
        # A budget must let a drain go on (never all pods pinned) and keep some up.
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] == 1, name
        else:
            assert spec["minAvailable"] < workload["spec"].get("replicas", 2), name


def test_the_gateway_scales_with_a_horizontal_autoscaler() -> None:
    [hpa] = [r for r in _resources() if r["kind"] == "HorizontalPodAutoscaler"]
    gateway = _workloads()["dispatch-gateway"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": gateway["kind"],
        "name": "dispatch-gateway",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # The autoscaler owns the count: an apply must not reset it.
    assert "replicas" not in gateway["spec"]
    # CPU utilisation needs a CPU request to be measured against.
    [container] = gateway["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"]


def test_topics_are_replicated_so_one_broker_can_be_lost() -> None:
    [config] = [r for r in _resources() if r["metadata"]["name"] == "dispatch-config"]
    replicas = int(config["data"]["DISPATCH_REPLICATION_FACTOR"])
    min_isr = int(config["data"]["DISPATCH_MIN_INSYNC_REPLICAS"])
    assert (replicas, min_isr) == (3, 2)


def test_the_projector_keeps_its_read_models_in_postgresql() -> None:
    projector = _workloads()["dispatch-projector"]
    containers = projector["spec"]["template"]["spec"]["containers"]
    [container] = [c for c in containers if c["name"] == "projector"]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["PROJECTOR_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "dispatch-secrets",
        "key": "PROJECTOR_STORE_URL",
    }
    # No local file to lose with the pod.
    assert "volumes" not in projector["spec"]["template"]["spec"]
    [config] = [r for r in _resources() if r["metadata"]["name"] == "dispatch-config"]
    assert "PROJECTOR_DB" not in config["data"]


def test_the_console_reads_the_projectors_postgresql_store_with_its_own_token() -> None:
    console = _workloads()["dispatch-console"]
    [container] = console["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PROJECTOR_STORE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "PROJECTOR_STORE_URL"
    assert env["CONSOLE_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "dispatch-secrets",
        "key": "CONSOLE_TOKEN",
    }
    assert "volumes" not in console["spec"]["template"]["spec"]


def test_every_workload_requires_the_secret_holding_the_callback_secret() -> None:
    # An optional Secret would let the gateway start (and refuse to) without
    # INBOUND_SIGNATURE_SECRET instead of failing to schedule, visibly.
    with_secrets = set()
    for resource in _resources():
        if resource["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in resource["spec"]["template"]["spec"]["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert not source["secretRef"].get("optional", False), resource["metadata"]
                    with_secrets.add(resource["metadata"]["name"])
    assert "dispatch-gateway" in with_secrets
    config = (ROOT / "k8s" / "config.yaml").read_text()
    assert "INBOUND_SIGNATURE_SECRET" in config


def test_internal_endpoints_are_fenced_by_network_policies() -> None:
    policies = {
        r["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: r
        for r in _resources()
        if r["kind"] == "NetworkPolicy"
    }
    projector = policies["dispatch-projector"]["spec"]
    assert projector["policyTypes"] == ["Ingress"]
    (rule,) = projector["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "dispatch-gateway"}}}
    ]
    assert [p["port"] for p in rule["ports"]] == [8070]
    processor = policies["dispatch-processor"]["spec"]
    assert [p["port"] for r in processor["ingress"] for p in r["ports"]] == [9102]
    config = (ROOT / "k8s" / "config.yaml").read_text()
    assert "DISPATCH_INTERNAL_TOKEN" in config
