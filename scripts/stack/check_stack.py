#!/usr/bin/env python3
"""The compose stack for real: build the images, bring up the `cpu` profile, check it from outside
the containers, tear it all down, and write build/stack/report.json.

Run by `make test-stack` through scripts/stack/test_stack.sh, which installs and starts a private
Docker engine and makes the local base image first (DOCKER_HOST points at that engine). Checks:

* build: `docker compose build` of the noise and worker images on BASE_IMAGE (sizes reported);
* health: every healthcheck turns healthy; the noise server runs as uid 10001 on a read-only root
  filesystem, has no torch, and the build's CA bundle is in no image;
* security: calls without the compose secret's token are refused (UNAUTHENTICATED), health stays
  open; the GPU worker's port is published on 127.0.0.1 only;
* smoke: the smoke client's PNGs land in build/stack/smoke and are bit-identical (pixels and PNG
  bytes) to the same generation run in-process here, without containers;
* models: `docker compose run load-model` installs a model folder from this machine into the
  `models` volume, and a generation in a container from that copy gives the same images;
* sample: the Kubernetes Indexed Job's command (`sigmaserve sample --part I/N`) in the noise
  image, N containers sharing one volume, equals one unsplit run here, and a rerun resumes;
* spread: worker generations reach all three noise replicas (per-replica counts from each
  replica's Prometheus metrics);
* kill: a replica `docker kill`ed mid-load costs no failed request (the client retries);
* drain: `docker compose stop` while calls are in flight on every replica and on the worker:
  every call finishes with the right bytes, every server exits 0;
* teardown: `docker compose down -v` leaves no container, network or volume.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "sigmaserve"
COMPOSE_FILES = [
    "-f",
    str(ROOT / "docker-compose.yml"),
    "-f",
    str(ROOT / "scripts/stack/compose.stack.yml"),
]
NOISE_REPLICAS = 3
NOISE_SERVICE = "sigmaserve.v1.NoiseService"
UID = "10001"


def log(message: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {message}", flush=True)


class CheckFailed(AssertionError):
    pass


class Stack:
    """The docker and compose commands the checks need, and the report they fill."""

    def __init__(self, out: Path, base_image: str, token: str) -> None:
        self.out = out
        self.base_image = base_image
        self.token = token
        # The compose secret: a file the containers' uid 10001 can read.
        token_file = out / "secrets" / "sigmaserve-token"
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o644)
        self.env = {**os.environ, "SIGMASERVE_TOKEN_FILE": str(token_file)}
        self.report: dict[str, Any] = {"checks": {}, "seconds": {}, "failures": []}

    # ---- commands ------------------------------------------------------------------------
    def run(
        self, argv: list[str], *, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=ROOT
        )
        if check and result.returncode != 0:
            raise CheckFailed(
                f"{' '.join(argv[:6])} ... exit {result.returncode}: "
                f"{(result.stderr or result.stdout)[-2000:]}"
            )
        return result

    def compose(self, *args: str, profiles: tuple[str, ...] = ("cpu",), **kw: Any) -> Any:
        flags = [f for p in profiles for f in ("--profile", p)]
        return self.run(["docker", "compose", "-p", PROJECT, *COMPOSE_FILES, *flags, *args], **kw)

    def docker(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(["docker", *args], **kw)

    def containers(self, service: str) -> list[str]:
        ids = self.compose("ps", "-a", "-q", service).stdout.split()
        return sorted(ids, key=lambda c: self.inspect(c)["Name"])

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(self.docker("inspect", container).stdout)[0]

    def name(self, container: str) -> str:
        return str(self.inspect(container)["Name"]).lstrip("/")

    def host_port(self, container: str, port: int) -> int:
        bindings = self.inspect(container)["NetworkSettings"]["Ports"][f"{port}/tcp"]
        (binding,) = [b for b in bindings if b["HostIp"] == "127.0.0.1"]
        return int(binding["HostPort"])

    # ---- report --------------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        log(f"{name} ...")
        detail: dict[str, Any] = {}
        self.report["checks"][name] = detail
        start = time.monotonic()
        try:
            yield detail
            detail["ok"] = True
        except Exception as exc:
            detail["ok"] = False
            detail["error"] = f"{type(exc).__name__}: {exc}"
            self.report["failures"].append(name)
            log(f"{name} FAILED: {detail['error']}")
        finally:
            seconds = round(time.monotonic() - start, 1)
            self.report["seconds"][name] = seconds
            log(f"{name}: {'ok' if detail.get('ok') else 'FAILED'} ({seconds} s)")

    def save(self) -> None:
        (self.out / "report.json").write_text(json.dumps(self.report, indent=2) + "\n")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# ---- phases ------------------------------------------------------------------------------------
def build(stack: Stack, detail: dict[str, Any]) -> None:
    result = stack.compose(
        "--progress", "plain", "build", "--build-arg", f"BASE_IMAGE={stack.base_image}",
        "noise", "worker-cpu", timeout=1800, check=False,
    )  # fmt: skip
    (stack.out / "build.log").write_text(result.stdout + result.stderr)
    expect(result.returncode == 0, f"build failed: {result.stderr[-3000:]}")
    sizes = {}
    for image in ("sigmaserve/noise:latest", "sigmaserve/worker:latest", stack.base_image):
        size = int(stack.docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
        sizes[image] = f"{size / 1e6:.0f} MB"
    detail["image_sizes"] = sizes
    detail["base_image"] = stack.base_image


def up(stack: Stack, detail: dict[str, Any]) -> None:
    stack.compose("up", "-d", timeout=600)
    services = {"noise": NOISE_REPLICAS, "worker-cpu": 1}
    deadline = time.monotonic() + 240
    while True:
        health = {
            stack.name(c): stack.inspect(c)["State"].get("Health", {}).get("Status")
            for s in services
            for c in stack.containers(s)
        }
        if len(health) == sum(services.values()) and set(health.values()) == {"healthy"}:
            break
        expect(time.monotonic() < deadline, f"not healthy after 240 s: {health}")
        time.sleep(2)
    detail["health"] = health


def hardening(stack: Stack, detail: dict[str, Any]) -> None:
    noise = stack.containers("noise")
    for container in noise:
        info = stack.inspect(container)
        expect(info["Config"]["User"].split(":")[0] == UID, f"user {info['Config']['User']}")
        expect(info["HostConfig"]["ReadonlyRootfs"] is True, "root filesystem is writable")
        uid = stack.docker("exec", container, "id", "-u").stdout.strip()
        expect(uid == UID, f"runs as uid {uid}")
        write = stack.docker(
            "exec", container, "python", "-c", "open('/opt/venv/probe', 'w')", check=False
        )
        expect("Read-only file system" in write.stderr, f"write to /opt/venv: {write.stderr}")
    no_torch = stack.docker("exec", noise[0], "python", "-c", "import torch", check=False)
    expect("No module named 'torch'" in no_torch.stderr, "the noise image has torch")
    detail["noise"] = {"user": UID, "read_only_root": True, "torch": False}
    # The build's CA bundle was a secret: no image has it, nor a PIP_CERT pointing at it.
    for image in ("sigmaserve/noise:latest", "sigmaserve/worker:latest"):
        env = json.loads(
            stack.docker("image", "inspect", "-f", "{{json .Config.Env}}", image).stdout
        )
        expect(not any(e.startswith(("PIP_CERT", "CARGO_HTTP_CAINFO")) for e in env), image)
        history = stack.docker("image", "history", "--no-trunc", image).stdout
        expect("BEGIN CERTIFICATE" not in history, f"{image} history holds a certificate")
        probe = stack.docker(
            "run", "--rm", "--entrypoint", "python", image, "-c",
            "import os; print(os.path.exists('/run/secrets/ca_bundle'))",
        )  # fmt: skip
        expect(probe.stdout.strip() == "False", f"{image} holds /run/secrets/ca_bundle")
    detail["ca_bundle_in_images"] = False


def security(stack: Stack, detail: dict[str, Any]) -> None:
    import grpc
    from sigmaserve import Client, RemoteError
    from sigmaserve.worker.service import WorkerClient

    replica = f"127.0.0.1:{stack.host_port(stack.containers('noise')[0], 50051)}"
    worker = f"127.0.0.1:{stack.host_port(stack.containers('worker-cpu')[0], 50052)}"
    codes = {}
    for label, token in (("without token", None), ("wrong token", "nope")):
        try:
            with Client(replica, token=token, timeout=10) as client:
                client.get_schedule("EulerDiscreteScheduler", 5)
            codes[f"noise {label}"] = "OK"
        except RemoteError as exc:
            codes[f"noise {label}"] = exc.code.name
        try:
            with WorkerClient(worker, token=token, timeout=30) as wclient:
                wclient.generate("p", seeds=[1], num_inference_steps=1, width=32, height=32)
            codes[f"worker {label}"] = "OK"
        except RemoteError as exc:
            codes[f"worker {label}"] = exc.code.name
    with Client(replica, token=stack.token, timeout=10) as client:
        client.get_schedule("EulerDiscreteScheduler", 5)
        codes["noise with the secret's token"] = "OK"
    detail["status_codes"] = codes
    expect(
        all(v == "UNAUTHENTICATED" for k, v in codes.items() if "token" in k and "secret" not in k),
        f"{codes}",
    )
    # Health needs no token (the healthchecks and Kubernetes probes call it without one).
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(replica) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=NOISE_SERVICE), timeout=5
        )
    expect(reply.status == health_pb2.HealthCheckResponse.SERVING, "health without token")
    # No container's environment holds the token (it is a file under /run/secrets).
    for service in ("noise", "worker-cpu", "smoke"):
        for container in stack.containers(service):
            env = stack.inspect(container)["Config"]["Env"] or []
            expect(not any(stack.token in e for e in env), f"token in {service}'s environment")
    # The GPU worker (gpu profile) is published on loopback only.
    config = json.loads(stack.compose("config", "--format", "json", profiles=("gpu",)).stdout)
    ports = config["services"]["worker"]["ports"]
    expect(all(p.get("host_ip") == "127.0.0.1" for p in ports), f"worker ports {ports}")
    detail["worker_ports"] = [f"{p['host_ip']}:{p['published']}->{p['target']}" for p in ports]


def smoke_args(stack: Stack) -> list[str]:
    """The smoke client's generate arguments without --worker/--token-file/--out/--json."""
    config = json.loads(stack.compose("config", "--format", "json").stdout)
    command = list(config["services"]["smoke"]["command"])
    expect(command[0] == "generate", f"smoke command {command}")
    out, skip = [], {"--worker", "--token-file", "--out"}
    args = iter(command[1:])
    for arg in args:
        if arg in skip:
            next(args)
        elif arg != "--json":
            out.append(arg)
    return out


def pixels(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def same_images(a: list[Path], b: list[Path]) -> dict[str, bool]:
    expect(len(a) == len(b) > 0, f"{len(a)} vs {len(b)} images")
    return {
        "pixels": all((pixels(x) == pixels(y)).all() for x, y in zip(a, b, strict=True)),
        "png_bytes": all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True)),
    }


def volume_copy(stack: Stack) -> Path:
    """Where the smoke check copies the volume's tiny model: under its own folder name, which
    the PNGs' parameters carry."""
    return stack.out / "model-from-volume" / "tiny"


def inprocess_generate(stack: Stack, model: Path, out: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "sigmaserve", "generate", "--model", str(model)]
    argv += ["--device", "cpu", *smoke_args(stack), "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    expect(result.returncode == 0, f"in-process generate: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def smoke(stack: Stack, detail: dict[str, Any]) -> None:
    (container,) = stack.containers("smoke")
    code = stack.docker("wait", container, timeout=600).stdout.strip()
    logs = stack.docker("logs", container).stdout
    expect(code == "0", f"smoke exited {code}: {logs[-2000:]}")
    meta = json.loads(logs.strip().splitlines()[-1])
    smoke_dir = stack.out / "smoke"
    stack.docker("cp", f"{container}:/tmp/out/.", str(smoke_dir))
    served = sorted(smoke_dir.glob("*.png"))
    expect(len(served) == len(meta["seeds"]), f"{len(served)} PNGs for seeds {meta['seeds']}")
    # The same generation without containers: the model copied out of the volume, run here.
    # Same folder name, since the PNGs' parameters name the model by it.
    model = volume_copy(stack)
    shutil.rmtree(model.parent, ignore_errors=True)
    model.parent.mkdir(parents=True)
    stack.docker("cp", f"{stack.containers('worker-cpu')[0]}:/models/tiny", str(model))
    local_meta = inprocess_generate(stack, model, stack.out / "inprocess")
    local = sorted((stack.out / "inprocess").glob("*.png"))
    same = same_images(served, local)
    detail.update(
        smoke_meta=meta,
        files=[str(p.relative_to(ROOT)) for p in served],
        inprocess_files=[str(p.relative_to(ROOT)) for p in local],
        identical_to_inprocess=same,
        scheduler=(meta["scheduler"], local_meta["scheduler"]),
    )
    expect(same["pixels"] and same["png_bytes"], f"smoke images differ from in-process: {same}")


def load_model(stack: Stack, detail: dict[str, Any]) -> None:
    """item 4: a model folder from this machine into the `models` volume, then used from there."""
    host_model = stack.out / "host-model" / "tiny"
    result = subprocess.run(
        [sys.executable, "-m", "sigmaserve.worker.tiny", "--out", str(host_model)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    expect(result.returncode == 0, result.stderr[-2000:])
    # The tiny model made here and the one the container made in the volume: same weights?
    copied = volume_copy(stack)
    weights = sorted(p.relative_to(host_model) for p in host_model.rglob("*.safetensors"))
    detail["host_and_volume_weights_identical"] = all(
        (host_model / w).read_bytes() == (copied / w).read_bytes() for w in weights
    )
    loaded = stack.compose(
        "run", "--rm", "-v", f"{host_model}:/src:ro", "load-model", "/src", "/models/loaded",
        profiles=("tools",), timeout=300,
    )  # fmt: skip
    detail["load_model"] = json.loads(loaded.stdout.strip().splitlines()[-1])
    again = stack.compose(
        "run", "--rm", "-v", f"{host_model}:/src:ro", "load-model", "/src", "/models/loaded",
        profiles=("tools",), timeout=300, check=False,
    )  # fmt: skip
    expect(again.returncode == 2 and "--replace" in again.stderr, "a second load overwrote")
    name = "sigmaserve-stack-loaded"
    stack.docker("rm", "-f", name, check=False)
    try:
        stack.docker(
            "run", "--name", name, "-e", "OMP_NUM_THREADS=1", "-v", f"{PROJECT}_models:/models:ro",
            "sigmaserve/worker:latest", "generate", "--model", "/models/loaded", "--device", "cpu",
            *smoke_args(stack), "--out", "/tmp/out", "--json", timeout=600,
        )  # fmt: skip
        stack.docker("cp", f"{name}:/tmp/out/.", str(stack.out / "loaded"))
    finally:
        stack.docker("rm", "-f", "-v", name, check=False)
    same = same_images(
        sorted((stack.out / "loaded").glob("*.png")), sorted((stack.out / "smoke").glob("*.png"))
    )
    detail["loaded_model_images_identical_to_smoke"] = same
    expect(same["pixels"], f"images from the loaded model differ: {same}")


def indexed_sample(stack: Stack, detail: dict[str, Any]) -> None:
    """The Indexed Job's `sample --part I/N` in the noise image, N containers, one volume."""
    parts, volume = 3, "sigmaserve-stack-sample"
    args = ["sample", "--seeds", "0-59", "--shard-size", "5", "--width", "64", "--height", "64"]
    args += ["--out", "/data/latents.npy", "--no-progress"]
    names = [f"sigmaserve-stack-sample-{i}" for i in range(parts)]
    stack.docker("rm", "-f", "-v", *names, check=False)  # left by an interrupted run
    stack.docker("volume", "rm", "-f", volume, check=False)
    stack.docker("volume", "create", volume)
    try:
        stack.docker(
            "run", "--rm", "--user", "0", "--entrypoint", "chown", "-v", f"{volume}:/data",
            "sigmaserve/noise:latest", f"{UID}:{UID}", "/data",
        )  # fmt: skip
        for i, name in enumerate(names):
            stack.docker(
                "run", "-d", "--name", name, "--read-only", "--user", f"{UID}:{UID}",
                "-v", f"{volume}:/data", "sigmaserve/noise:latest", *args, "--part", f"{i}/{parts}",
            )  # fmt: skip
        codes = [stack.docker("wait", n, timeout=300).stdout.strip() for n in names]
        expect(
            codes == ["0"] * parts, f"exit codes {codes}: {stack.docker('logs', names[0]).stderr}"
        )
        rerun = stack.docker(
            "run", "--rm", "--read-only", "--user", f"{UID}:{UID}", "-v", f"{volume}:/data",
            "sigmaserve/noise:latest", *args, "--part", f"1/{parts}",
        )  # fmt: skip
        expect(rerun.stdout.startswith("0 shard(s) written"), f"rerun: {rerun.stdout}")
        got = stack.out / "sample" / "containers"
        got.parent.mkdir(parents=True, exist_ok=True)
        stack.docker("cp", f"{names[0]}:/data/.", str(got))
    finally:
        stack.docker("rm", "-f", "-v", *names, check=False)
        stack.docker("volume", "rm", "-f", volume, check=False)
    want = stack.out / "sample" / "inprocess"
    local = [a if a != "/data/latents.npy" else str(want / "latents.npy") for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "sigmaserve", *local], capture_output=True, text=True, timeout=300
    )
    expect(result.returncode == 0, result.stderr)
    shards = sorted(p.name for p in want.glob("latents-*-of-*.npy"))
    identical = all((got / s).read_bytes() == (want / s).read_bytes() for s in shards)
    detail.update(parts=parts, shards=len([s for s in shards if ".seeds" not in s]),
                  identical_to_unsplit_run=identical, rerun=rerun.stdout.strip())  # fmt: skip
    expect(identical and shards, "shards differ from the unsplit run")


def metrics_counts(port: int) -> dict[str, float]:
    """NoiseService calls answered OK, by method, from one replica's /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "grpc_server_handled_total"
                and labels.get("grpc_service") == NOISE_SERVICE
                and labels.get("grpc_code") == "OK"
            ):
                counts[labels["grpc_method"]] = counts.get(labels["grpc_method"], 0) + sample.value
            if sample.name == "sigmaserve_inflight_requests":
                counts["inflight"] = sample.value
    return counts


def spread(stack: Stack, detail: dict[str, Any]) -> None:
    from sigmaserve.worker.service import WorkerClient

    replicas = {stack.name(c): stack.host_port(c, 9100) for c in stack.containers("noise")}
    before = {name: metrics_counts(port) for name, port in replicas.items()}
    worker = f"127.0.0.1:{stack.host_port(stack.containers('worker-cpu')[0], 50052)}"
    generations = 12
    with WorkerClient(worker, token=stack.token, timeout=120) as client:
        for seed in range(generations):
            client.generate("spread", seeds=[seed], num_inference_steps=2, width=32, height=32)
    after = {name: metrics_counts(port) for name, port in replicas.items()}
    per_replica = {
        name: {
            method: int(after[name].get(method, 0) - before[name].get(method, 0))
            for method in ("GetSchedule", "SampleInitLatents")
        }
        for name in replicas
    }
    detail.update(worker_generations=generations, noise_calls_per_replica=per_replica)
    totals = {name: sum(v.values()) for name, v in per_replica.items()}
    expect(len(totals) == NOISE_REPLICAS and min(totals.values()) > 0, f"not spread: {totals}")
    expect(sum(totals.values()) == 2 * generations, f"{sum(totals.values())} calls")


class Load:
    """Calls in background threads until stopped; every result is checked, every error kept."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.calls: list[tuple[str, float, float, str]] = []  # (kind, start, end, outcome)
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def add(self, kind: str, call: Callable[[int], None]) -> None:
        def loop() -> None:
            i = 0
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    call(i)
                    outcome = "ok"
                except Exception as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    self.calls.append((kind, start, time.monotonic(), outcome))
                i += 1

        thread = threading.Thread(target=loop, daemon=True)
        self.threads.append(thread)
        thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def summary(self, at: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in sorted({c[0] for c in self.calls}):
            mine = [c for c in self.calls if c[0] == kind]
            failed = [c[3] for c in mine if c[3] != "ok"]
            out[kind] = {
                "calls": len(mine),
                "failed": len(failed),
                "errors": sorted(set(failed))[:5],
                "in_flight_at_kill": sum(1 for c in mine if c[1] < at < c[2]),
            }
        return out


def noise_check(client: Any, seed: int) -> None:
    """A latents call whose bytes are compared with the same draw made here."""
    import numpy as np
    import sigmaserve

    kwargs = {"width": 512, "height": 512, "seeds": [seed, seed + 1, seed + 2, seed + 3]}
    kwargs["batch_size"] = 4
    got = client.sample_init_latents(**kwargs)
    want = sigmaserve.sample_init_latents(**kwargs)
    if not np.array_equal(got.array, want.array):
        raise AssertionError(f"seed {seed}: latents differ")


def kill_replica(stack: Stack, detail: dict[str, Any]) -> None:
    from sigmaserve import Client
    from sigmaserve.worker.service import WorkerClient

    noise = stack.containers("noise")
    endpoints = ",".join(f"127.0.0.1:{stack.host_port(c, 50051)}" for c in noise)
    worker = f"127.0.0.1:{stack.host_port(stack.containers('worker-cpu')[0], 50052)}"
    victim = noise[1]
    load = Load()
    clients = [Client(f"ipv4:{endpoints}", token=stack.token, timeout=60) for _ in range(3)]
    wclient = WorkerClient(worker, token=stack.token, timeout=120)
    try:
        for client in clients:
            load.add("noise (client -> 3 replicas)", lambda i, c=client: noise_check(c, 1000 * i))
        load.add(
            "generate (worker -> dns:///noise)",
            lambda i: wclient.generate(
                "kill", seeds=[i], num_inference_steps=2, width=32, height=32
            ),
        )
        time.sleep(4)
        killed_at = time.monotonic()
        stack.docker("kill", victim)
        time.sleep(8)
    finally:
        load.finish()
        for client in clients:
            client.close()
        wclient.close()
    summary = load.summary(killed_at)
    state = stack.inspect(victim)["State"]
    detail.update(killed=stack.name(victim), load=summary)
    detail["killed_replica_restarted_by_docker"] = bool(state["Running"])
    try:
        expect(all(v["failed"] == 0 for v in summary.values()), f"failed requests: {summary}")
        expect(all(v["calls"] > 0 for v in summary.values()), f"no load: {summary}")
    finally:
        # Back to three healthy replicas for the drain check, whatever this check found.
        if not state["Running"]:
            stack.docker("start", victim)
        deadline = time.monotonic() + 120
        while stack.inspect(victim)["State"].get("Health", {}).get("Status") != "healthy":
            expect(time.monotonic() < deadline, "the killed replica did not come back healthy")
            time.sleep(1)


def slow_stream(port: int, token: str, seed: int, done: dict[str, Any]) -> None:
    """StreamInitLatents of 16 MiB read one 1 MiB chunk every 0.5 s: about 8 s in flight.
    BDP probing off keeps the HTTP/2 window small, so the server is really still sending."""
    import grpc
    import numpy as np
    import sigmaserve
    from sigmaserve import wire
    from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

    kwargs = {"shape": (1, 4, 1024, 1024), "seeds": [seed]}
    options = [("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = pb_grpc.NoiseServiceStub(channel)
        try:
            stream = stub.StreamInitLatents(
                wire.latents_request(kwargs),
                timeout=120,
                metadata=(("authorization", f"Bearer {token}"),),
            )
            header = next(stream).header
            chunks = []
            for message in stream:
                chunks.append(message.data)
                time.sleep(0.5)
            got = wire.latents_from_chunks(header, chunks, [seed])
            want = sigmaserve.sample_init_latents(**kwargs)
            done["outcome"] = "ok" if np.array_equal(got.array, want.array) else "bytes differ"
            done["chunks"] = len(chunks)
        except grpc.RpcError as err:
            done["outcome"] = f"{err.code().name}: {err.details()}"
        done["end"] = time.monotonic()


def drain(stack: Stack, detail: dict[str, Any]) -> None:
    from sigmaserve.worker.service import WorkerClient

    noise = stack.containers("noise")
    (worker_id,) = stack.containers("worker-cpu")
    worker = f"127.0.0.1:{stack.host_port(worker_id, 50052)}"
    streams: dict[str, dict[str, Any]] = {stack.name(c): {} for c in noise}
    threads = [
        threading.Thread(
            target=slow_stream,
            args=(stack.host_port(c, 50051), stack.token, 7 + i, streams[stack.name(c)]),
        )
        for i, c in enumerate(noise)
    ]
    generation: dict[str, Any] = {}

    def long_generate() -> None:
        try:
            with WorkerClient(worker, token=stack.token, timeout=120) as client:
                reply = client.generate(
                    "drain", seeds=[3], num_inference_steps=100, width=32, height=32
                )
            generation["outcome"] = "ok" if len(reply.images) == 1 else "no image"
        except Exception as exc:
            generation["outcome"] = f"{type(exc).__name__}: {exc}"
        generation["end"] = time.monotonic()

    threads.append(threading.Thread(target=long_generate))
    metrics = {stack.name(c): stack.host_port(c, 9100) for c in noise}
    for thread in threads:
        thread.start()
    # Wait until every replica reports its stream in flight, then stop everything.
    deadline = time.monotonic() + 10
    while not all(metrics_counts(p).get("inflight", 0) >= 1 for p in metrics.values()):
        expect(time.monotonic() < deadline, "streams not in flight")
        time.sleep(0.2)
    inflight = {name: metrics_counts(port).get("inflight") for name, port in metrics.items()}
    time.sleep(0.5)
    stopped_at = time.monotonic()
    stack.compose("stop", timeout=180)
    stop_seconds = time.monotonic() - stopped_at
    for thread in threads:
        thread.join(timeout=120)
    exits = {stack.name(c): stack.inspect(c)["State"]["ExitCode"] for c in [*noise, worker_id]}
    detail.update(
        inflight_at_stop=inflight,
        streams={k: v.get("outcome") for k, v in streams.items()},
        streams_finished_after_stop_began=all(
            v.get("end", 0) > stopped_at for v in streams.values()
        ),
        generation=generation.get("outcome"),
        compose_stop_seconds=round(stop_seconds, 1),
        exit_codes=exits,
    )
    expect(all(v.get("outcome") == "ok" for v in streams.values()), f"streams {streams}")
    expect(generation.get("outcome") == "ok", f"generation {generation}")
    expect(set(exits.values()) == {0}, f"exit codes {exits}")


def teardown(stack: Stack, detail: dict[str, Any]) -> None:
    stack.compose("down", "-v", "--remove-orphans", "--timeout", "30",
                  profiles=("cpu", "gpu", "tools"), timeout=180)  # fmt: skip
    left = {
        "containers": stack.docker("ps", "-aq").stdout.split(),
        "networks": stack.docker("network", "ls", "-q", "--filter", "type=custom").stdout.split(),
        "volumes": stack.docker("volume", "ls", "-q").stdout.split(),
    }
    detail["left_behind"] = left
    # Images replaced by this run's build (the same tag, older layers) would pile up run after
    # run in the engine's data root; the current images and the build cache stay.
    stack.docker("image", "prune", "-f", check=False)
    expect(not any(left.values()), f"left behind: {left}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", required=True, help="BASE_IMAGE for the builds")
    parser.add_argument("--out", default=str(ROOT / "build" / "stack"))
    parser.add_argument("--prelude", help="JSON of the wrapper's timings (engine, base image)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    for sub in ("smoke", "inprocess", "model-from-volume", "host-model", "loaded", "sample"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(out, args.base_image, secrets.token_hex(16))
    if args.prelude and Path(args.prelude).is_file():
        stack.report["seconds"].update(json.loads(Path(args.prelude).read_text()))
    versions = stack.docker("version", "--format", "{{.Client.Version}} / {{.Server.Version}}")
    stack.report["docker"] = versions.stdout.strip()
    stack.report["compose"] = stack.docker("compose", "version", "--short").stdout.strip()
    start = time.monotonic()
    # Whatever an interrupted earlier run left in this engine goes first.
    stack.compose("down", "-v", "--remove-orphans", "--timeout", "5",
                  profiles=("cpu", "gpu", "tools"), timeout=180, check=False)  # fmt: skip
    try:
        with stack.phase("build") as detail:
            build(stack, detail)
        if not stack.report["failures"]:
            with stack.phase("up and healthy") as detail:
                up(stack, detail)
        if not stack.report["failures"]:
            for name, check in (
                ("hardening", hardening),
                ("security", security),
                ("smoke and in-process", smoke),
                ("load-model", load_model),
                ("indexed sample", indexed_sample),
                ("spread", spread),
                ("kill a replica", kill_replica),
                ("drain on compose stop", drain),
            ):
                with stack.phase(name) as detail:
                    check(stack, detail)
    finally:
        if stack.report["failures"]:
            with contextlib.suppress(Exception):
                logs = stack.compose("logs", "--no-color", "--tail", "200", check=False).stdout
                (out / "compose.log").write_text(logs)
        with stack.phase("teardown") as detail:
            teardown(stack, detail)
        stack.report["seconds"]["total"] = round(time.monotonic() - start, 1)
        stack.report["ok"] = not stack.report["failures"]
        stack.save()
    log(f"report: {out / 'report.json'}")
    print(json.dumps({k: stack.report[k] for k in ("ok", "failures", "seconds")}, indent=1))
    return 0 if stack.report["ok"] else 1


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    raise SystemExit(main())
