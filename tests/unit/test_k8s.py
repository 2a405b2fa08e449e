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
    }
    assert expected <= set(workloads)


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
