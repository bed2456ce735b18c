"""WorkerService over gRPC, the generate/worker commands, health, errors, and the CUDA path."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from sigmaserve.worker import handoff  # noqa: E402
from sigmaserve.worker.engine import Worker, to_png  # noqa: E402
from sigmaserve.worker.service import WorkerClient, worker_in_thread  # noqa: E402
from sigmaserve.worker.tiny import IMAGE_SIZE, build_tiny_pipeline, write_tiny_pipeline  # noqa: E402
from test_worker_helpers import HEALTHCHECK, free_port, sigmaserve_argv  # noqa: E402

STEPS = 3


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def worker(tiny_dir: Path, target: str) -> Worker:
    from sigmaserve import Client

    return Worker.from_model(tiny_dir, Client(target, timeout=60), device="cpu")


@pytest.fixture(scope="module")
def worker_target(worker: Worker) -> Any:
    with worker_in_thread(worker) as running_worker:
        yield f"127.0.0.1:{running_worker.port}"


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def png_parameters(png: bytes) -> str:
    """The ``parameters`` text chunk (AUTOMATIC1111's infotext) of a PNG."""
    from PIL import Image

    return Image.open(io.BytesIO(png)).text["parameters"]


def direct_pngs(pipe: Any, scheduler: str, seeds: list[int], steps: int) -> list[np.ndarray]:
    """The pixels diffusers alone makes: the scheduler built from the model's scheduler config,
    CPU generators."""
    original = pipe.scheduler
    pipe.scheduler = getattr(diffusers, scheduler).from_config(original.config)
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    images = pipe(
        "a boat",
        num_inference_steps=steps,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        generator=generators if len(seeds) > 1 else generators[0],
        num_images_per_prompt=len(seeds),
        negative_prompt="blurry",
    ).images
    pipe.scheduler = original
    return [pixels(to_png(image)) for image in images]


def test_loaded_model_folder_matches_the_sd15_layout(tiny_dir: Path, worker: Worker) -> None:
    assert worker.kind.family == "sd" and worker.device == "cpu"
    assert json.loads((tiny_dir / "model_index.json").read_text())["_class_name"] == (
        "StableDiffusionPipeline"
    )
    scheduler_json = json.loads((tiny_dir / "scheduler" / "scheduler_config.json").read_text())
    assert "timestep_spacing" not in scheduler_json
    # The folder and the in-code builder are the same model.
    built = build_tiny_pipeline()
    for name, tensor in built.unet.state_dict().items():
        assert torch.equal(tensor, worker.pipe.unet.state_dict()[name]), name


def test_generate_over_grpc_returns_the_direct_pngs(worker: Worker, worker_target: str) -> None:
    seeds = [11, 12]
    with WorkerClient(worker_target) as client:
        reply = client.generate(
            "a boat",
            seeds=seeds,
            negative_prompt="blurry",
            num_inference_steps=STEPS,
            scheduler="EulerAncestralDiscreteScheduler",
            width=IMAGE_SIZE,
            height=IMAGE_SIZE,
        )
    with worker._lock:
        want = direct_pngs(worker.pipe, "EulerAncestralDiscreteScheduler", seeds, STEPS)
    for image, expected in zip(reply.images, want, strict=True):
        assert np.array_equal(pixels(image.png), expected)
    assert [image.seed for image in reply.images] == seeds
    assert png_parameters(reply.images[1].png) == (
        "a boat\nNegative prompt: blurry\nSteps: 3, Sampler: EulerAncestralDiscreteScheduler, "
        "CFG scale: 7.5, Seed: 12, Size: 32x32, Model: tiny, RNG: CPU, Seed mode: per_item, "
        f"Init noise sigma: {reply.init_noise_sigma:.6g}, Version: sigmaserve "
        f"{__import__('sigmaserve').__version__}"
    )
    assert list(reply.seeds) == seeds
    assert reply.scheduler == "EulerAncestralDiscreteScheduler"
    assert reply.pipeline == "StableDiffusionPipeline"
    assert reply.device == "cpu" and reply.dtype == "float32"
    assert reply.num_inference_steps == STEPS
    sigmas = np.frombuffer(reply.sigmas.data, dtype="<f4")
    assert sigmas.shape == (STEPS + 1,) and sigmas[-1] == 0
    assert reply.init_noise_sigma == pytest.approx(float(sigmas[0]), rel=1e-6)
    from PIL import Image

    assert Image.open(io.BytesIO(reply.images[0].png)).size == (IMAGE_SIZE, IMAGE_SIZE)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": [1], "width": 30}, "width"),
        ({"seeds": [1], "scheduler": "NoSuchScheduler"}, "scheduler"),
        ({"seeds": [1], "num_inference_steps": 0}, "num_inference_steps"),
    ],
)
def test_bad_requests_are_invalid_argument(worker_target: str, kwargs: dict, field: str) -> None:
    from sigmaserve.v1 import worker_service_pb2_grpc as pb_grpc
    from sigmaserve.worker.service import build_request

    with grpc.insecure_channel(worker_target) as channel:
        stub = pb_grpc.WorkerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Generate(build_request("x", **kwargs), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")


def test_health_probe_answers_for_the_worker(worker_target: str) -> None:
    for service in ("", "sigmaserve.v1.WorkerService"):
        result = subprocess.run(
            [sys.executable, str(HEALTHCHECK), "--addr", worker_target, "--service", service],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "SERVING" in result.stdout
    missing = subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--addr", worker_target, "--service", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0
    closed = subprocess.run(
        [
            sys.executable,
            str(HEALTHCHECK),
            "--addr",
            f"127.0.0.1:{free_port()}",
            "--timeout",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert closed.returncode == 2


def test_register_adds_generate_and_worker() -> None:
    from sigmaserve.worker.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "generate",
            "--prompt",
            "p",
            "--seed",
            "1",
            "--seed",
            "2",
            "--set",
            "use_karras_sigmas=true",
        ]
    )
    assert args.seeds == [[1], [2]] and args.overrides == [("use_karras_sigmas", True)]
    args = parser.parse_args(["worker", "--model", "/m", "--noise", "dns:///noise:50051"])
    assert args.port == 50052 and args.noise == "dns:///noise:50051"


def test_generate_command_writes_the_direct_pngs(
    tiny_dir: Path, target: str, tmp_path: Path, worker: Worker
) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        sigmaserve_argv(
            [
                "generate",
                "--model",
                str(tiny_dir),
                "--noise",
                target,
                "--device",
                "cpu",
                "--prompt",
                "a boat",
                "--negative-prompt",
                "blurry",
                "--seed",
                "5",
                "--steps",
                str(STEPS),
                "--scheduler",
                "DDIMScheduler",
                "--width",
                str(IMAGE_SIZE),
                "--height",
                str(IMAGE_SIZE),
                "--out",
                str(out),
                "--json",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    assert meta["scheduler"] == "DDIMScheduler" and meta["seeds"] == [5]
    with worker._lock:
        (want,) = direct_pngs(worker.pipe, "DDIMScheduler", [5], STEPS)
    assert np.array_equal(pixels(Path(meta["files"][0]).read_bytes()), want)


def test_generate_command_through_a_worker(worker_target: str, tmp_path: Path) -> None:
    result = subprocess.run(
        sigmaserve_argv(
            [
                "generate",
                "--worker",
                worker_target,
                "--prompt",
                "a boat",
                "--seed",
                "1",
                "--steps",
                "2",
                "--width",
                str(IMAGE_SIZE),
                "--height",
                str(IMAGE_SIZE),
                "--out",
                str(tmp_path),
                "--json",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(meta["files"][0]).read_bytes().startswith(b"\x89PNG")


def test_worker_command_exits_cleanly_when_the_port_is_taken(
    tiny_dir: Path, worker_target: str
) -> None:
    port = worker_target.rsplit(":", 1)[1]
    result = subprocess.run(
        sigmaserve_argv(["worker", "--model", str(tiny_dir), "--device", "cpu", "--port", port]),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 2
    assert "cannot listen" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CUDA)")
def test_cuda_handoff_selfcheck() -> None:
    """On CUDA: pinned non-blocking latents, CPU generators, fp32 and fp16 pipelines, bit-exact."""
    from sigmaserve.worker.selfcheck import main

    assert main(["--device", "cuda", "--require-device"]) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CUDA)")
def test_latents_go_to_cuda_pinned_and_non_blocking(client: Any) -> None:
    pipe = build_tiny_pipeline().to("cuda")
    latents = client.sample_init_latents(shape=(1, 4, 4, 4), seeds=[1], sigma=1.0, preset=None)
    tensor = handoff.pipeline_latents(pipe, latents, device="cuda", dtype=torch.float16)
    assert tensor.device.type == "cuda" and tensor.dtype == torch.float16
    want = torch.randn((1, 4, 4, 4), generator=torch.Generator().manual_seed(1)).half()
    assert torch.equal(tensor.cpu(), want)


def test_device_selection_without_cuda() -> None:
    from sigmaserve.worker.engine import pick_device, pick_dtype

    if torch.cuda.is_available():
        assert pick_device() == "cuda" and pick_dtype("cuda") == torch.float16
    else:
        assert pick_device() == "cpu" and pick_dtype("cpu") == torch.float32
        with pytest.raises(RuntimeError, match="CUDA"):
            pick_device("cuda")
