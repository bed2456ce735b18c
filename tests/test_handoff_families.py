"""The hand-off is bit-exact for SDXL, SD3, Flux and Wan 2.1 video (test_handoff.py: SD 1.5).

Tiny random pipelines built in code (``sigmaserve.worker.tiny``) keep the real models' latent
layouts (channels, VAE factors, Flux's 2x2 packing, SD3's patches, Wan's frames) and scheduler
configs. Each case runs three times on the CPU: diffusers alone (the scheduler ``from_config`` of
the model's config, ``torch.Generator("cpu").manual_seed(seed)``), the worker fed by a real
sigmaserve server through the client, and the worker fed by the library in-process. The latents
each run starts from (what ``prepare_latents`` returns) and the images or video frames it ends
with must be equal bit for bit, for the schedulers each family's users run
(``selfcheck.SCHEDULERS``) and for one and three seeds.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import sigmaserve  # noqa: E402
from sigmaserve.errors import InvalidArgumentError  # noqa: E402
from sigmaserve.worker import handoff  # noqa: E402
from sigmaserve.worker.engine import Worker  # noqa: E402
from sigmaserve.worker.selfcheck import (  # noqa: E402
    HEIGHT,
    SCHEDULERS,
    SEED_SETS,
    VIDEO_FRAMES,
    WIDTH,
    diffusers_reference,
    scheduler_name,
)
from sigmaserve.worker.service import WorkerClient, worker_in_thread  # noqa: E402
from sigmaserve.worker.tiny import build_tiny, write_tiny_pipeline  # noqa: E402

FAMILIES = ("sdxl", "sd3", "flux", "wan")
# The core's preset of each family's pipeline class (sigmaserve.catalog()).
PRESETS = {"sdxl": "sdxl", "sd3": "sd3", "flux": "flux-dev", "wan": "wan2.1"}
STEPS = 3
PROMPT = "a red cube on a table"


@pytest.fixture(scope="module")
def pipes() -> Callable[[str], Any]:
    """The tiny pipeline of a family, built once per module."""
    torch.set_num_threads(2)
    built: dict[str, Any] = {}

    def get(family: str) -> Any:
        if family not in built:
            built[family] = build_tiny(family)
        return built[family]

    return get


def frames_for(family: str) -> int | None:
    return VIDEO_FRAMES if family == "wan" else None


class RecordingNoise:
    """A noise source (the client or the library), recording what the worker asked for."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_schedule(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_schedule", {"args": args, **kwargs}))
        return self.source.get_schedule(*args, **kwargs)

    def sample_init_latents(self, **kwargs: Any) -> Any:
        self.calls.append(("sample_init_latents", kwargs))
        return self.source.sample_init_latents(**kwargs)


@contextlib.contextmanager
def recorded_latents(pipe: Any) -> Iterator[list[Any]]:
    """What the pipeline's own ``prepare_latents`` returns during the block (a copy per call)."""
    seen: list[Any] = []
    own = pipe.prepare_latents

    def prepare_latents(*args: Any, **kwargs: Any) -> Any:
        result = own(*args, **kwargs)
        latents = result[0] if isinstance(result, tuple) else result  # Flux: (latents, ids)
        seen.append(latents.detach().clone())
        return result

    pipe.prepare_latents = prepare_latents
    try:
        yield seen
    finally:
        del pipe.prepare_latents


def stacked(generation: Any) -> np.ndarray:
    return np.stack(generation.videos if generation.videos else generation.images)


CASES = [
    pytest.param(
        family,
        scheduler,
        overrides,
        id="-".join([family, scheduler or "default", *(f"{k}={v}" for k, v in overrides.items())]),
    )
    for family in FAMILIES
    for scheduler, overrides in SCHEDULERS[family]
]


@pytest.mark.parametrize("seeds", [list(s) for s in SEED_SETS], ids=["one-seed", "three-seeds"])
@pytest.mark.parametrize(("family", "scheduler", "overrides"), CASES)
def test_worker_output_is_bit_identical_to_diffusers(
    pipes: Callable[[str], Any],
    client: Any,
    family: str,
    scheduler: str | None,
    overrides: dict[str, Any],
    seeds: list[int],
) -> None:
    pipe = pipes(family)
    frames = frames_for(family)
    size = {"height": HEIGHT, "width": WIDTH}
    with recorded_latents(pipe) as own_latents:
        want = diffusers_reference(
            pipe, scheduler, overrides, seeds, steps=STEPS, prompt=PROMPT, num_frames=frames, **size
        )
    assert np.isfinite(want).all()
    for source_name, source in (("server", client), ("local", sigmaserve)):
        noise = RecordingNoise(source)
        worker = Worker(pipe, noise, device="cpu")
        with recorded_latents(pipe) as handed_latents:
            got = worker.generate(
                PROMPT,
                seeds=seeds,
                num_inference_steps=STEPS,
                scheduler=scheduler,
                scheduler_overrides=overrides,
                num_frames=frames,
                output_type="np",
                **size,
            )
        # The pipeline starts from the very latents its own generator path makes (layout,
        # packing, dtype and init_noise_sigma scaling included) ...
        assert handed_latents[0].shape == own_latents[0].shape, source_name
        assert handed_latents[0].dtype == own_latents[0].dtype, source_name
        assert torch.equal(handed_latents[0], own_latents[0]), source_name
        # ... runs the schedule diffusers computes (the service's arrays needed no install) ...
        assert not got.schedule_installed, source_name
        assert got.scheduler == scheduler_name(pipe, scheduler)
        # ... and ends with the same images or frames, bit for bit.
        images = stacked(got)
        assert images.shape == want.shape, source_name
        diff = np.abs(images - want).max()
        assert np.array_equal(images, want), f"{source_name}: max |diff| {diff}"
        # Everything came from the service, asked by the preset of the pipeline's class: the
        # pipeline-level schedule and unscaled noise, one draw per seed.
        assert [name for name, _ in noise.calls] == ["get_schedule", "sample_init_latents"]
        schedule_call, latents_call = noise.calls[0][1], noise.calls[1][1]
        preset = PRESETS[family]
        assert schedule_call["preset"] == preset and schedule_call["pipeline"] is True
        assert latents_call["preset"] == preset
        assert (latents_call["width"], latents_call["height"]) == (WIDTH, HEIGHT)
        assert latents_call["num_frames"] == frames == got.num_frames
        assert latents_call["sigma"] == 1.0
        assert latents_call["seeds"] == seeds
        assert latents_call["seed_mode"] == "per_item"
        assert latents_call["dtype"] == str(own_latents[0].dtype).removeprefix("torch.")


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each family's tiny pipeline written as a model folder, once per module."""
    root = tmp_path_factory.mktemp("families")
    written: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in written:
            written[family] = write_tiny_pipeline(root / family, family=family)
        return written[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_over_grpc_from_a_model_folder(
    model_folders: Callable[[str], Path], target: str, family: str
) -> None:
    """The worker as served: the model loaded from its folder, the noise service over gRPC,
    PNG images (video frames) over WorkerService.Generate, equal to diffusers' own PNGs."""
    from sigmaserve import Client

    seeds = [11, 12]
    frames = frames_for(family)
    with Client(target, timeout=60) as noise:
        worker = Worker.from_model(model_folders(family), noise, device="cpu")
        assert type(worker.pipe).__name__ == type(build_tiny(family)).__name__
        with worker_in_thread(worker) as running, WorkerClient(f"127.0.0.1:{running.port}") as wc:
            reply = wc.generate(
                PROMPT,
                seeds=seeds,
                negative_prompt="blurry",
                num_inference_steps=STEPS,
                width=WIDTH,
                height=HEIGHT,
                num_frames=frames,
            )
    want = diffusers_reference(
        worker.pipe,
        None,
        {},
        seeds,
        steps=STEPS,
        prompt=PROMPT,
        negative_prompt="blurry",
        height=HEIGHT,
        width=WIDTH,
        num_frames=frames,
        output_type="pil",
    )
    assert list(reply.seeds) == seeds
    assert reply.pipeline == type(worker.pipe).__name__
    assert reply.scheduler == type(worker.pipe.scheduler).__name__
    if frames is None:
        assert not reply.videos and reply.num_frames == 0
        assert [pixels(image.png) for image in reply.images] == [pixels(image) for image in want]
        assert [image.seed for image in reply.images] == seeds
    else:
        assert not reply.images and reply.num_frames == frames
        assert [video.seed for video in reply.videos] == seeds
        for video, frames_want in zip(reply.videos, want, strict=True):
            assert (video.width, video.height) == (WIDTH, HEIGHT)
            assert [pixels(png) for png in video.frames] == [pixels(f) for f in frames_want]


def pixels(image: Any) -> bytes:
    """The RGB bytes of a PNG file (bytes) or a PIL image: what a PNG's metadata leaves alone."""
    from PIL import Image

    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    return bytes(image.convert("RGB").tobytes())


def test_generate_command_writes_video_frames(
    pipes: Callable[[str], Any], client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sigmaserve generate --worker ... --num-frames 5`` writes one PNG per frame."""
    import json

    from sigmaserve.worker.cli import main

    worker = Worker(pipes("wan"), client, device="cpu")
    with worker_in_thread(worker) as running:
        argv = ["generate", "--worker", f"127.0.0.1:{running.port}", "--prompt", PROMPT]
        argv += ["--seed", "3", "--steps", "2", "--num-frames", "5", "--out", str(tmp_path)]
        argv += ["--width", str(WIDTH), "--height", str(HEIGHT), "--json"]
        assert main(argv) == 0
    meta = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert meta["num_frames"] == 5 and meta["pipeline"] == "WanPipeline"
    names = [Path(name).name for name in meta["files"]]
    assert names == [f"00-seed3-frame{n:03d}.png" for n in range(5)]
    assert all(Path(name).read_bytes().startswith(b"\x89PNG") for name in meta["files"])


@pytest.mark.parametrize(
    ("family", "kwargs", "field"),
    [
        ("wan", {"num_frames": 10}, "num_frames"),  # Wan makes 4k+1 frames
        ("wan", {"num_frames": 0}, "num_frames"),
        ("wan", {"num_frames": 1025, "width": 2048, "height": 2048}, "num_frames"),  # too much
        ("wan", {"width": 40}, "width"),  # Wan wants multiples of 16
        ("sdxl", {"num_frames": 9}, "num_frames"),  # an image pipeline
        ("flux", {"height": 40}, "height"),  # Flux packs 2x2: multiples of 16
    ],
)
def test_bad_sizes_name_their_field(
    pipes: Callable[[str], Any], family: str, kwargs: dict[str, Any], field: str
) -> None:
    worker = Worker(pipes(family), sigmaserve, device="cpu")
    arguments: dict[str, Any] = {"width": WIDTH, "height": HEIGHT, "num_frames": frames_for(family)}
    arguments.update(kwargs)
    with pytest.raises(InvalidArgumentError, match=f"^{field}: "):
        worker.generate(PROMPT, seeds=[1], num_inference_steps=1, **arguments)


def test_bad_num_frames_is_invalid_argument_over_grpc(pipes: Callable[[str], Any]) -> None:
    import grpc
    from sigmaserve.v1 import worker_service_pb2_grpc as pb_grpc
    from sigmaserve.worker.service import build_request

    worker = Worker(pipes("wan"), sigmaserve, device="cpu")
    with (
        worker_in_thread(worker) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as err,
    ):
        stub = pb_grpc.WorkerServiceStub(channel)
        stub.Generate(build_request("x", seeds=[1], num_frames=8), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "num_frames" in (err.value.details() or "")


def test_a_model_whose_latents_are_not_the_presets_is_refused(pipes: Callable[[str], Any]) -> None:
    """A WanPipeline whose VAE is not Wan 2.1's (Wan 2.2's 5B model: 16x spatial, 48 channels)
    would get latents of the wrong shape: the worker refuses it when it is loaded."""
    import copy

    other = copy.copy(pipes("wan"))
    other.vae_scale_factor_spatial = 16
    with pytest.raises(InvalidArgumentError, match=r"^pipeline: .*VAE factor 16.*'wan2\.1'"):
        Worker(other, sigmaserve, device="cpu")


def test_run_config_is_every_key_of_the_scheduler_that_runs(pipes: Callable[[str], Any]) -> None:
    """The config sent with the preset is the running scheduler's, complete: the pipeline reads
    use_flow_sigmas, use_dynamic_shifting and the shift bounds off it, and no key of the preset's
    own config may stand in for the model's."""
    flux = pipes("flux")
    overrides = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
    config = handoff.run_config(
        "DPMSolverMultistepScheduler",
        handoff.model_scheduler_config(flux),
        overrides,
        type(flux.scheduler).__name__,
    )
    own = diffusers.DPMSolverMultistepScheduler.from_config(flux.scheduler.config, **overrides)
    assert config == {k: v for k, v in own.config.items() if not k.startswith("_")}
    assert config["max_shift"] == flux.scheduler.config.max_shift  # Flux's, kept as diffusers does
