"""deploy/k8s: headless Service + round_robin for noise, native gRPC probes, GPU worker, the
noise autoscaler and disruption budget, the model loader and bulk-sampling Jobs; every manifest
valid against the Kubernetes API schema (kubernetes-validate's bundled schemas, offline)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
# Oldest (native gRPC probes are GA from 1.27) and newest Kubernetes the manifests must fit.
KUBERNETES_VERSIONS = ("1.27", "1.37")


def manifests() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in manifests():
        for doc in documents(path):
            if doc.get("kind") != "Kustomization":
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifests(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in documents(path):
        if doc["kind"] == "Kustomization":
            continue
        # strict: unknown fields (a typo, a field of a newer API) are errors too
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolcy="Never"),
            "imagePullPolcy",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
                containerPort="50051"
            ),
            "containerPort",
        ),
        (lambda d: d["spec"].pop("selector"), "selector"),
    ],
    ids=["unknown-field", "wrong-type", "missing-required"],
)
def test_the_validator_rejects_broken_manifests(mutate: Any, message: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    (doc,) = documents(K8S / "noise-deployment.yaml")
    mutate(doc)
    with pytest.raises(kubernetes_validate.ValidationError) as info:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
    assert message in str(info.value) + str(getattr(info.value, "path", ""))


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
    assert objects[("HorizontalPodAutoscaler", "sigmaserve-noise")]["spec"]["minReplicas"] >= 2
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


def test_noise_autoscaler_and_disruption_budget(objects: dict) -> None:
    deployment = objects[("Deployment", "sigmaserve-noise")]
    # The autoscaler owns the replica count; a fixed one would undo it on every apply.
    assert "replicas" not in deployment["spec"]
    hpa = objects[("HorizontalPodAutoscaler", "sigmaserve-noise")]
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "sigmaserve-noise")
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilization is a share of the request: the container must request CPU.
    assert _container(deployment)["resources"]["requests"]["cpu"]
    pdb = objects[("PodDisruptionBudget", "sigmaserve-noise")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


def test_models_claim_is_writable_by_the_loader_and_read_only_for_workers(objects: dict) -> None:
    claim = objects[("PersistentVolumeClaim", "sigmaserve-models")]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    loader = objects[("Job", "sigmaserve-model-loader")]
    spec = loader["spec"]["template"]["spec"]
    (volume,) = spec["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == "sigmaserve-models"
    (container,) = spec["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/models" and not mount.get("readOnly")
    args = container["args"]
    assert args[0] == "load-model" and args[-1] == "/models/sd"
    # The worker Deployment reads the same path.
    worker = _container(objects[("Deployment", "sigmaserve-worker")])
    assert "--model=/models/sd" in worker["args"]


def _sample_job(objects: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    job = objects[("Job", "sigmaserve-sample")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return job, container


def test_indexed_sample_job_parts_match_its_completions(objects: dict) -> None:
    job, container = _sample_job(objects)
    assert job["spec"]["completionMode"] == "Indexed"
    (part,) = [a for a in container["args"] if a.startswith("--part=")]
    index_var, count = re.fullmatch(r"--part=\$\((\w+)\)/(\d+)", part).groups()
    assert int(count) == job["spec"]["completions"]
    # $(VAR) expands only for variables the container declares.
    (env,) = [e for e in container["env"] if e["name"] == index_var]
    assert "job-completion-index" in env["valueFrom"]["fieldRef"]["fieldPath"]
    (volume,) = job["spec"]["template"]["spec"]["volumes"]
    claim = objects[("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_indexed_sample_job_command_runs(objects: dict, tmp_path: Path) -> None:
    """Every index's command, as the pods run it (a smaller seed range), writes the same shards
    as one unsplit run; a second run of an index resumes and writes nothing."""
    job, container = _sample_job(objects)
    count = job["spec"]["completions"]
    out_arg = next(a for a in container["args"] if a.startswith("--out="))
    out = tmp_path / Path(out_arg.removeprefix("--out=")).relative_to("/data")

    def argv(index: int | None) -> list[str]:
        args = []
        for arg in container["args"]:
            if arg.startswith("--part=") and index is None:
                continue
            arg = arg.replace("$(PART_INDEX)", str(index))
            if arg.startswith("--seeds="):
                arg = "--seeds=0-39"
            elif arg.startswith("--shard-size="):
                arg = "--shard-size=4"
            elif arg.startswith(("--width=", "--height=")):
                arg = arg.split("=")[0] + "=64"
            elif arg.startswith("--out="):
                arg = f"--out={whole if index is None else out}"
            args.append(arg)
        return [sys.executable, "-m", "sigmaserve", *args]

    whole = tmp_path / "unsplit" / out.name
    for index in [*range(count), None]:
        result = subprocess.run(argv(index), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (shlex.join(argv(index)), result.stderr)
    shards = sorted(p.name for p in out.parent.glob("latents-?????-of-?????.npy"))
    assert shards == [f"latents-{i:05d}-of-00010.npy" for i in range(10)]
    for name in shards:
        assert (out.parent / name).read_bytes() == (whole.parent / name).read_bytes(), name
    again = subprocess.run(argv(count - 1), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.startswith("0 shard(s) written"), again.stdout
