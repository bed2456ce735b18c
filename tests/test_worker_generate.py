"""``generate`` and the worker as a person meets them (issue 16): seed ranges and any number of
seeds, seed modes and noise sources, ecosystem schedules with their tool's scale, warnings for
config keys that do not apply, the A1111 ``parameters`` chunk, a quiet log. Every image is
compared with diffusers run directly on the same tiny pipeline."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import sigmaserve  # noqa: E402
from sigmaserve.worker import cli as worker_cli  # noqa: E402
from sigmaserve.worker import handoff  # noqa: E402
from sigmaserve.worker.engine import Worker  # noqa: E402
from sigmaserve.worker.service import WorkerClient, worker_in_thread  # noqa: E402
from sigmaserve.worker.tiny import IMAGE_SIZE, write_tiny_pipeline  # noqa: E402
from test_worker_helpers import sigmaserve_argv  # noqa: E402

STEPS = 3
SIZE = {"width": IMAGE_SIZE, "height": IMAGE_SIZE}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def worker(tiny_dir: Path) -> Worker:
    # Three images per pipeline call, so a handful of seeds takes several calls.
    return Worker(
        Worker.from_model(tiny_dir, sigmaserve, device="cpu").pipe, sigmaserve, max_batch=3
    )


def pixels(image: Any) -> np.ndarray:
    from PIL import Image

    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    return np.asarray(image.convert("RGB"))


def direct(
    pipe: Any,
    scheduler: str,
    *,
    generator: Any,
    count: int,
    latents: Any = None,
    prompt: str = "a boat",
) -> list[np.ndarray]:
    """diffusers alone: the scheduler from the model's config, the pipeline's own generator
    path (or the given ``latents=``)."""
    original = pipe.scheduler
    pipe.scheduler = getattr(diffusers, scheduler).from_config(original.config)
    try:
        images = pipe(
            prompt,
            num_inference_steps=STEPS,
            generator=generator,
            num_images_per_prompt=count,
            latents=latents,
            **SIZE,
        ).images
    finally:
        pipe.scheduler = original
    return [pixels(image) for image in images]


def per_item(pipe: Any, scheduler: str, seeds: list[int]) -> list[np.ndarray]:
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    return direct(pipe, scheduler, generator=generators, count=len(seeds))


def same(images: list[Any], expected: list[np.ndarray]) -> bool:
    return len(images) == len(expected) and all(
        np.array_equal(pixels(a), b) for a, b in zip(images, expected, strict=True)
    )


def test_more_seeds_than_a_pipeline_call_run_in_calls(worker: Worker) -> None:
    seeds = [0, 1, 2, 3, 4, 5, 6]
    generation = worker.generate(
        "a boat", seeds=seeds, scheduler="EulerAncestralDiscreteScheduler",
        num_inference_steps=STEPS, **SIZE,
    )  # fmt: skip
    assert generation.seeds == seeds
    # Each call of three is what diffusers makes for those three seeds (per-item generators).
    expected = [
        image
        for chunk in ([0, 1, 2], [3, 4, 5], [6])
        for image in per_item(worker.pipe, "EulerAncestralDiscreteScheduler", chunk)
    ]
    assert same(generation.images, expected)


def test_batch_mode_is_diffusers_single_generator(worker: Worker) -> None:
    # Ancestral steps draw from the one generator after the whole batch's initial draw.
    generation = worker.generate(
        "a boat", seeds=[7], seed_mode="batch", batch_size=3,
        scheduler="EulerAncestralDiscreteScheduler", num_inference_steps=STEPS, **SIZE,
    )  # fmt: skip
    assert generation.seeds == [7, 7, 7]
    expected = direct(
        worker.pipe,
        "EulerAncestralDiscreteScheduler",
        generator=torch.Generator("cpu").manual_seed(7),
        count=3,
    )
    assert same(generation.images, expected)
    with pytest.raises(sigmaserve.InvalidArgumentError, match="batch_size"):
        worker.generate("a boat", seeds=[7], seed_mode="batch", batch_size=4, **SIZE)


def test_a1111_mode_is_seed_plus_i(worker: Worker) -> None:
    generation = worker.generate(
        "a boat", seeds=[-2], seed_mode="a1111", batch_size=4, scheduler="DDIMScheduler",
        num_inference_steps=STEPS, **SIZE,
    )  # fmt: skip
    assert generation.seeds == [-2, -1, 0, 1]
    expected = per_item(worker.pipe, "DDIMScheduler", [-2, -1, 0]) + per_item(
        worker.pipe, "DDIMScheduler", [1]
    )
    assert same(generation.images, expected)
    # The library's own a1111 mode draws the same initial noise.
    a1111 = sigmaserve.sample_init_latents(
        shape=(4, 4, 4, 4), seeds=[-2], seed_mode="a1111", sigma=1.0, preset=None
    )
    listed = sigmaserve.sample_init_latents(
        shape=(4, 4, 4, 4), seeds=[-2, -1, 0, 1], sigma=1.0, preset=None
    )
    assert a1111.array.tobytes() == listed.array.tobytes()


def test_cuda_source_starts_from_cudas_noise(worker: Worker) -> None:
    generation = worker.generate(
        "a boat", seeds=[3], source="cuda", scheduler="DDIMScheduler",
        num_inference_steps=STEPS, **SIZE,
    )  # fmt: skip
    noise = sigmaserve.randn((1, 4, 4, 4), 3, source="cuda")
    assert not np.array_equal(noise, sigmaserve.randn((1, 4, 4, 4), 3))
    expected = direct(
        worker.pipe,
        "DDIMScheduler",
        generator=torch.Generator("cpu").manual_seed(3),
        count=1,
        latents=torch.from_numpy(noise),
    )
    assert same(generation.images, expected)
    # On a CPU pipeline the sampler's later noise cannot come from a CUDA generator: said so.
    assert any("source cuda" in w and "CPU generators" in w for w in generation.warnings)


def test_ecosystem_schedule_runs_with_its_tools_scale(worker: Worker) -> None:
    seen: list[tuple[torch.Tensor, float]] = []

    def first_input(module: Any, args: tuple, kwargs: dict) -> None:
        seen.append((args[0].detach().clone(), float(args[1])))

    handle = worker.pipe.unet.register_forward_pre_hook(first_input, with_kwargs=True)
    try:
        generation = worker.generate(
            "a boat", seeds=[5], scheduler="comfyui:karras", num_inference_steps=STEPS, **SIZE
        )
    finally:
        handle.remove()
    schedule = sigmaserve.get_schedule(
        "comfyui:karras", STEPS, preset=None, config=worker.base_scheduler_config
    )
    # ComfyUI's scale, sqrt(1 + sigma_0^2), not the 14.6146 Euler would compute.
    assert generation.init_noise_sigma == pytest.approx(14.6488, abs=5e-5)
    assert generation.init_noise_sigma == pytest.approx(schedule.init_noise_sigma, rel=1e-7)
    assert generation.scheduler == "comfyui:karras"
    assert generation.extras["scheduler_class"] == "EulerDiscreteScheduler"
    np.testing.assert_array_equal(generation.sigmas, schedule.sigmas)
    # The first model input: the unit noise times the tool's scale, through Euler's
    # scale_model_input (divided by sqrt(sigma_0^2 + 1)), at ComfyUI's first timestep.
    noise = torch.from_numpy(sigmaserve.randn((1, 4, 4, 4), 5))
    sample, timestep = seen[0]
    sigma0 = float(schedule.sigmas[0])
    want = noise * np.float32(schedule.init_noise_sigma) / np.float32((sigma0**2 + 1) ** 0.5)
    torch.testing.assert_close(sample[:1], want, rtol=1e-6, atol=1e-6)
    assert timestep == float(schedule.timesteps[0])
    png = generation.png_bytes()[0]
    from PIL import Image

    text = Image.open(io.BytesIO(png)).text["parameters"]
    assert 'Sampler: EulerDiscreteScheduler, Schedule type: "comfyui:karras"' in text
    assert "Init noise sigma: 14.6488" in text


def test_unknown_config_keys_are_warned(worker: Worker) -> None:
    generation = worker.generate(
        "a boat", seeds=[1], scheduler_overrides={"use_karras_sigmas": True},
        num_inference_steps=STEPS, **SIZE,
    )  # fmt: skip
    local = sigmaserve.get_schedule(
        "PNDMScheduler", STEPS, preset=None, config=worker.base_scheduler_config,
        use_karras_sigmas=True,
    )  # fmt: skip
    assert generation.warnings == local.warnings
    assert "use_karras_sigmas" in generation.warnings[0]


def test_no_per_request_warnings_in_the_log(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    diffs = []
    for scheduler in ("PNDMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler"):
        generation = worker.generate(
            "a boat", seeds=[2], scheduler=scheduler, num_inference_steps=STEPS, **SIZE
        )
        diffs.append(generation.extras["schedule_max_rel_diff"])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_grpc_generate_takes_modes_sources_and_signed_seeds(worker: Worker) -> None:
    from google.protobuf import json_format
    from sigmaserve.v1 import worker_service_pb2 as pb
    from sigmaserve.v1 import worker_service_pb2_grpc as pb_grpc

    with worker_in_thread(worker) as running:
        target = f"127.0.0.1:{running.port}"
        with WorkerClient(target) as client:
            reply = client.generate(
                "a boat", seeds=[-1], seed_mode="a1111", batch_size=2, source="cpu",
                num_inference_steps=STEPS, scheduler_overrides={"use_karras_sigmas": True},
                **SIZE,
            )  # fmt: skip
        assert [image.seed for image in reply.images] == [2**64 - 1, 0]  # uint64 on the wire
        assert "use_karras_sigmas" in reply.warnings[0]
        # grpcurl-style JSON with negative seeds.
        import grpc

        request = json_format.Parse(
            json.dumps({"prompt": "a boat", "signed_seeds": [-1, 0], "num_inference_steps": STEPS,
                        "width": IMAGE_SIZE, "height": IMAGE_SIZE}),
            pb.GenerateRequest(),
        )  # fmt: skip
        with grpc.insecure_channel(target) as channel:
            signed = pb_grpc.WorkerServiceStub(channel).Generate(request, timeout=120)
    assert same([a.png for a in signed.images], [pixels(b.png) for b in reply.images])
    expected = per_item(worker.pipe, "PNDMScheduler", [-1, 0])
    assert same([a.png for a in signed.images], expected)


def test_generate_command_takes_ranges_and_any_number_of_seeds(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """More seeds than one request takes go as several requests, in order."""
    from sigmaserve.cli import main

    calls: list[list[int]] = []
    original = Worker.generate

    def counted(self: Worker, prompt: str, **kwargs: Any) -> Any:
        calls.append(list(kwargs["seeds"]))
        return original(self, prompt, **kwargs)

    monkeypatch.setattr(worker_cli, "MAX_IMAGES", 2)
    monkeypatch.setattr(Worker, "generate", counted)
    argv = ["generate", "--model", str(tiny_dir), "--device", "cpu", "--prompt", "a boat",
            "--seed", "0-2", "--seed", "9,-4", "--steps", str(STEPS), "--width",
            str(IMAGE_SIZE), "--height", str(IMAGE_SIZE), "--out", str(tmp_path),
            "--json"]  # fmt: skip
    assert main(argv) == 0
    meta = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert calls == [[0, 1], [2, 9], [-4]]
    assert meta["seeds"] == [0, 1, 2, 9, -4]
    assert [Path(f).name for f in meta["files"]] == [
        "00-seed0.png", "01-seed1.png", "02-seed2.png", "03-seed9.png", "04-seed-4.png",
    ]  # fmt: skip


def generate_argv(tiny_dir: Path, out: Path, *args: str) -> list[str]:
    return ["generate", "--model", str(tiny_dir), "--device", "cpu", "--prompt", "a boat",
            "--steps", "2", "--width", str(IMAGE_SIZE), "--height", str(IMAGE_SIZE),
            "--out", str(out), *args]  # fmt: skip


def test_generate_command_is_quiet(tiny_dir: Path, tmp_path: Path) -> None:
    argv = sigmaserve_argv(
        generate_argv(tiny_dir, tmp_path, "--set", "use_karras_sigmas=true", "--seed", "1")
    )
    ok = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert ok.returncode == 0, ok.stderr[-3000:]
    # Only the warning, as `sigmaserve schedule` shows it: no deprecations, progress bars or
    # import-time notices of the dependencies.
    assert ok.stderr.strip().splitlines() == [
        "warning: `use_karras_sigmas` is not a config option of PNDMScheduler; ignored "
        "(diffusers' from_config ignores it too)"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--scheduler", "Eulr"], 'did you mean "Euler"'),
        (["--scheduler", "comfyui:karas"], "karras"),
        (["--seed", "3-1"], "empty seed range"),
        (["--seed-mode", "batch", "--seed", "1", "--seed", "2"], "takes one seed"),
        (["--source", "gpu"], 'did you mean "cpu"?'),
        (["--seed-mode", "batchh"], 'did you mean "batch"?'),
    ],
)
def test_generate_mistakes_are_one_line(
    tiny_dir: Path, tmp_path: Path, capsys: Any, args: list[str], expected: str
) -> None:
    from sigmaserve.cli import main

    try:
        status = main(generate_argv(tiny_dir, tmp_path, *args))
    except SystemExit as exit_:  # argparse's own mistakes end the parse
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err


def test_worker_ping_policy_is_grpc_cores() -> None:
    from sigmaserve.server.app import server_options
    from sigmaserve.server.config import ServerConfig
    from sigmaserve.worker.service import worker_server_options

    noise = dict(server_options(ServerConfig()))
    worker_options = dict(worker_server_options())
    # grpc-core's argument (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS).
    name = "grpc.http2.min_ping_interval_without_data_ms"
    assert worker_options[name] == noise[name] == ServerConfig().min_ping_interval_ms
    assert not any("min_recv_ping" in key for key in worker_options)


def test_flow_pipelines_run_ecosystem_schedules_on_their_own_class() -> None:
    assert handoff._ecosystem_class("FlowMatchEulerDiscreteScheduler") == (
        "FlowMatchEulerDiscreteScheduler"
    )
    assert handoff._ecosystem_class("PNDMScheduler") == "EulerDiscreteScheduler"
