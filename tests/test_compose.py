"""docker-compose.yml: valid against the Compose specification, and every service's command runs.

`make test-stack` runs the stack on a real Docker engine. Here, without one, the file is validated
against the vendored Compose spec schema (tests/data/compose-spec.json) and each service's command
is run directly on this machine, with container hostnames, ports and the secret's path mapped to
local ones, and its health check run too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

from test_worker_helpers import (  # noqa: E402
    ROOT,
    free_port,
    health_ok,
    image_argv,
    output_of,
    replace_values,
    running,
)

COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates_against_the_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(compose, schema)


def test_schema_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["noise"]["depends_on"] = {"worker": {"condition": "when_ready"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_stack_shape(compose: dict[str, Any]) -> None:
    services = compose["services"]
    noise, worker = services["noise"], services["worker"]
    assert noise["deploy"]["replicas"] >= 2
    for name in ("noise", "worker", "worker-cpu"):
        check = services[name]["healthcheck"]
        assert "grpc-healthcheck" in " ".join(check["test"]) and check["start_period"]
    assert worker["depends_on"]["noise"]["condition"] == "service_healthy"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert any(v.startswith("models:/models") for v in worker["volumes"])
    assert "models" in compose["volumes"]
    assert "dns:///noise:50051" in worker["command"]
    # Profiles: the GPU worker and the CPU smoke stack never start together.
    assert worker["profiles"] == ["gpu"] and "profiles" not in noise
    for name in ("tiny-model", "worker-cpu", "smoke"):
        assert services[name]["profiles"] == ["cpu"]
    assert services["load-model"]["profiles"] == ["tools"]
    cpu = services["worker-cpu"]
    assert cpu["depends_on"]["noise"]["condition"] == "service_healthy"
    assert cpu["depends_on"]["tiny-model"]["condition"] == "service_completed_successfully"
    assert services["smoke"]["depends_on"]["worker-cpu"]["condition"] == "service_healthy"
    # One Dockerfile, one target per image; services without a build reuse a built image.
    built = {}
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()
            built.setdefault(service["image"], build["target"])
            assert built[service["image"]] == build["target"], name
    assert built == {"sigmaserve/noise:latest": "noise", "sigmaserve/worker:latest": "worker"}
    for name, service in services.items():
        assert service["image"] in built, name
    # The server: read-only root filesystem, a grace period shorter than Docker's stop timeout.
    assert noise["read_only"] is True
    assert float(noise["environment"]["SIGMASERVE_GRACE_SECONDS"]) < _seconds(
        noise["stop_grace_period"]
    )


def _seconds(duration: str) -> float:
    assert duration.endswith("s")
    return float(duration[:-1])


SECRET_PATH = "/run/secrets/sigmaserve_token"


def test_token_is_shared_through_a_secret(compose: dict[str, Any]) -> None:
    secret = compose["secrets"]["sigmaserve_token"]
    assert secret["file"].startswith("${SIGMASERVE_TOKEN_FILE:-")
    services = compose["services"]
    # Every gRPC hop carries the token from the secret file; nothing puts it in the environment.
    flags = {
        "noise": ["--token-file"],
        "worker": ["--noise-token-file", "--token-file"],
        "worker-cpu": ["--noise-token-file", "--token-file"],
        "smoke": ["--token-file"],
    }
    for name, wanted in flags.items():
        service = services[name]
        assert service["secrets"] == ["sigmaserve_token"], name
        command = service["command"]
        for flag in wanted:
            assert command[command.index(flag) + 1] == SECRET_PATH, (name, flag)
        assert "TOKEN" not in " ".join(service.get("environment", {})), name


def test_worker_port_is_published_on_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert compose["services"]["worker"]["ports"] == ["127.0.0.1:50052:50052"]


def _entrypoint(compose: dict[str, Any], name: str) -> list[str]:
    """ENTRYPOINT (compose override, else the image's) + command, in exec form."""
    service = compose["services"][name]
    entry = service.get("entrypoint") or ["sigmaserve"]  # both images: ENTRYPOINT ["sigmaserve"]
    return [*entry, *service["command"]]


def _health(compose: dict[str, Any], name: str, mapping: dict[str, str]) -> list[str]:
    test = compose["services"][name]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return image_argv(replace_values(test[1:], mapping))


def test_cpu_profile_runs_end_to_end(compose: dict[str, Any], tmp_path: Path) -> None:
    """noise -> (healthy) -> tiny-model -> worker-cpu -> (healthy) -> smoke, commands as written."""
    noise_port, worker_port, metrics_port = free_port(), free_port(), free_port()
    models = tmp_path / "models"
    token = tmp_path / "token"
    token.write_text("compose-secret\n")
    mapping = {
        "0.0.0.0": "127.0.0.1",
        SECRET_PATH: str(token),
        "9100": str(metrics_port),
        "50051": str(noise_port),
        "127.0.0.1:50051": f"127.0.0.1:{noise_port}",
        "127.0.0.1:50052": f"127.0.0.1:{worker_port}",
        "50052": str(worker_port),
        "dns:///noise:50051": f"dns:///127.0.0.1:{noise_port}",
        "worker-cpu:50052": f"127.0.0.1:{worker_port}",
        "/models/tiny": str(models / "tiny"),
        "/tmp/out": str(tmp_path / "out"),
    }
    noise_argv = image_argv(replace_values(_entrypoint(compose, "noise"), mapping))
    with running(noise_argv) as noise:
        result = health_ok(_health(compose, "noise", mapping), timeout=60)
        assert result.returncode == 0, (result.stdout, result.stderr, output_of(noise))

        tiny = subprocess.run(
            image_argv(replace_values(_entrypoint(compose, "tiny-model"), mapping)),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert tiny.returncode == 0, tiny.stderr[-3000:]
        assert (models / "tiny" / "model_index.json").is_file()

        worker_argv = image_argv(replace_values(_entrypoint(compose, "worker-cpu"), mapping))
        env = {k: str(v) for k, v in compose["services"]["worker-cpu"]["environment"].items()}
        with running(worker_argv, env=env) as worker:
            result = health_ok(_health(compose, "worker-cpu", mapping), timeout=180)
            assert result.returncode == 0, (result.stdout, result.stderr, output_of(worker))

            smoke = subprocess.run(
                image_argv(replace_values(_entrypoint(compose, "smoke"), mapping)),
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert smoke.returncode == 0, smoke.stderr[-3000:]
            meta = json.loads(smoke.stdout.strip().splitlines()[-1])
            assert meta["scheduler"] == "EulerAncestralDiscreteScheduler"
            assert meta["device"] == "cpu" and meta["seeds"] == [1, 2]
            assert len(meta["files"]) == 2
            assert all(Path(f).read_bytes().startswith(b"\x89PNG") for f in meta["files"])


def test_gpu_worker_command(compose: dict[str, Any], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("the GPU worker's command needs an NVIDIA GPU (CUDA)")
    from sigmaserve.worker.tiny import write_tiny_pipeline

    noise_port, worker_port, metrics_port = free_port(), free_port(), free_port()
    model = write_tiny_pipeline(tmp_path / "sd")
    token = tmp_path / "token"
    token.write_text("compose-secret\n")
    mapping = {
        "0.0.0.0": "127.0.0.1",
        SECRET_PATH: str(token),
        "9100": str(metrics_port),
        "50051": str(noise_port),
        "50052": str(worker_port),
        "127.0.0.1:50051": f"127.0.0.1:{noise_port}",
        "127.0.0.1:50052": f"127.0.0.1:{worker_port}",
        "dns:///noise:50051": f"dns:///127.0.0.1:{noise_port}",
        "/models/sd": str(model),
    }
    with running(image_argv(replace_values(_entrypoint(compose, "noise"), mapping))):
        assert health_ok(_health(compose, "noise", mapping)).returncode == 0
        with running(image_argv(replace_values(_entrypoint(compose, "worker"), mapping))) as w:
            result = health_ok(_health(compose, "worker", mapping), timeout=240)
            assert result.returncode == 0, output_of(w)
