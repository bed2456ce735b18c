"""deploy/k8s: headless Service + round_robin for noise, native gRPC probes, GPU worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_noise_service_is_headless_and_load_balanced_client_side(objects: dict) -> None:
    service = objects[("Service", "sigmaserve-noise")]
    assert service["spec"]["clusterIP"] == "None"
    (port,) = service["spec"]["ports"]
    assert port["appProtocol"] == "grpc" and port["name"] == "grpc"
    deployment = objects[("Deployment", "sigmaserve-noise")]
    assert deployment["spec"]["replicas"] >= 2
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    worker = _container(objects[("Deployment", "sigmaserve-worker")])
    (noise_arg,) = [a for a in worker["args"] if a.startswith("--noise=")]
    # dns:/// + the headless name: the client resolves every pod and round-robins over them.
    assert noise_arg == "--noise=dns:///sigmaserve-noise.sigmaserve.svc.cluster.local:50051"


@pytest.mark.parametrize(
    ("name", "port", "service"),
    [
        ("sigmaserve-noise", 50051, "sigmaserve.v1.NoiseService"),
        ("sigmaserve-worker", 50052, "sigmaserve.v1.WorkerService"),
    ],
)
def test_native_grpc_probes(objects: dict, name: str, port: int, service: str) -> None:
    container = _container(objects[("Deployment", name)])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc_probe = container[probe]["grpc"]
        assert isinstance(grpc_probe["port"], int) and grpc_probe["port"] == port  # no named ports
    assert container["readinessProbe"]["grpc"]["service"] == service
    assert container["livenessProbe"]["grpc"]["service"] == ""
    assert container["ports"][0]["containerPort"] == port
    security = objects[("Deployment", name)]["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] != 0


def test_worker_gets_a_gpu_and_the_models(objects: dict) -> None:
    deployment = objects[("Deployment", "sigmaserve-worker")]
    container = _container(deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--device=cuda" in container["args"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "models"]
    assert mount["readOnly"] and mount["mountPath"] == "/models"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in objects
