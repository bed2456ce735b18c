"""The hand-off is bit-exact: service schedule + latents through the worker == diffusers directly.

A tiny, randomly initialised SD1.5-style pipeline (built in code) runs twice on the CPU: once with
torch.Generator("cpu").manual_seed(seed) and the scheduler built from the model's config (what a
diffusers user does), once through the worker with the Schedule and Latents fetched from the
in-process NoiseService. The images must be equal bit for bit.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import sigmaserve  # noqa: E402
from sigmaserve.errors import InvalidArgumentError  # noqa: E402
from sigmaserve.worker import handoff  # noqa: E402
from sigmaserve.worker.engine import Worker  # noqa: E402
from sigmaserve.worker.tiny import IMAGE_SIZE, build_tiny_pipeline  # noqa: E402

STEPS = 4
PROMPT = "a red cube on a table"
SCHEDULERS = [
    "EulerDiscreteScheduler",  # Euler-style (init_noise_sigma = max sigma)
    "EulerAncestralDiscreteScheduler",  # ancestral: fresh noise from the generators every step
    "DPMSolverMultistepScheduler",  # DPM-Solver++ (init_noise_sigma = 1)
    "DDIMScheduler",  # DDIM, int64 timesteps, no sigmas
]
SEED_SETS = [pytest.param([20240531], id="one-seed"), pytest.param([0, 1, 42], id="three-seeds")]


@pytest.fixture(scope="module")
def pipe() -> Any:
    torch.set_num_threads(2)
    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def model_config(pipe: Any) -> dict[str, Any]:
    return dict(pipe.scheduler.config)


class RecordingNoise:
    """The service client, recording what the worker asked for."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_schedule(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_schedule", {"args": args, **kwargs}))
        return self.client.get_schedule(*args, **kwargs)

    def sample_init_latents(self, **kwargs: Any) -> Any:
        self.calls.append(("sample_init_latents", kwargs))
        return self.client.sample_init_latents(**kwargs)


def direct(
    pipe: Any, config: dict[str, Any], scheduler: str, seeds: list[int], **extra: Any
) -> Any:
    """diffusers alone: scheduler from the model config, one CPU generator per seed."""
    pipe.scheduler = getattr(diffusers, scheduler).from_config(config, **extra)
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    return pipe(
        PROMPT,
        num_inference_steps=STEPS,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        generator=generators[0] if len(generators) == 1 else generators,
        num_images_per_prompt=len(seeds),
        output_type="np",
    ).images


def latents_kwargs(pipe: Any, seeds: list[int]) -> dict[str, Any]:
    """What the worker asks the service for: SD 1.5's unscaled latents for these seeds."""
    return handoff.latents_kwargs(
        pipe, seeds, batch_size=len(seeds), height=IMAGE_SIZE, width=IMAGE_SIZE, num_frames=None
    )


def reset(pipe: Any, config: dict[str, Any]) -> None:
    pipe.scheduler = diffusers.PNDMScheduler.from_config(config)


@pytest.mark.parametrize("seeds", SEED_SETS)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_worker_image_is_bit_identical_to_diffusers(
    pipe: Any, model_config: dict[str, Any], client: Any, scheduler: str, seeds: list[int]
) -> None:
    reset(pipe, model_config)
    noise = RecordingNoise(client)
    worker = Worker(pipe, noise, device="cpu")
    got = worker.generate(
        PROMPT,
        seeds=seeds,
        num_inference_steps=STEPS,
        scheduler=scheduler,
        width=IMAGE_SIZE,
        height=IMAGE_SIZE,
        output_type="np",
    )
    want = direct(pipe, model_config, scheduler, seeds)
    images = np.stack(got.images)
    assert images.shape == (len(seeds), IMAGE_SIZE, IMAGE_SIZE, 3)
    assert np.array_equal(images, want), f"max |diff| {np.abs(images - want).max()}"
    # The schedule the scheduler computed is the service's, untouched (no install needed).
    assert not got.schedule_installed
    assert got.scheduler == scheduler
    # Everything came from the service, asked by SD 1.5's preset: the pipeline-level schedule
    # for the running scheduler's full config, and unscaled noise, one draw per seed.
    kinds = [name for name, _ in noise.calls]
    assert kinds == ["get_schedule", "sample_init_latents"]
    schedule_call, latents_call = noise.calls[0][1], noise.calls[1][1]
    assert schedule_call["preset"] == "sd15" and schedule_call["pipeline"] is True
    assert schedule_call["config"] == handoff.run_config(
        scheduler, handoff.model_scheduler_config(pipe), model_class="PNDMScheduler"
    )
    assert latents_call["sigma"] == 1.0
    assert latents_call["seeds"] == seeds
    assert latents_call["seed_mode"] == "per_item"
    assert latents_call["preset"] == "sd15" and latents_call["batch_size"] == len(seeds)
    assert (latents_call["width"], latents_call["height"]) == (IMAGE_SIZE, IMAGE_SIZE)
    schedule = client.get_schedule(
        scheduler, STEPS, preset=None, config=handoff.model_scheduler_config(pipe)
    )
    assert got.init_noise_sigma == pytest.approx(schedule.init_noise_sigma, rel=1e-6)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_service_schedule_equals_diffusers(
    pipe: Any, model_config: dict[str, Any], client: Any, scheduler: str
) -> None:
    """The Schedule the worker gets equals what the pipeline's scheduler computes itself.

    Timesteps are compared exactly. Sigmas and init_noise_sigma are compared to 2e-7 relative:
    torch's float32 sqrt on x86 wheels is not correctly rounded (about 1 in 6 training sigmas is
    1 ulp off IEEE), so no IEEE implementation can match it bit for bit everywhere. The worker
    keeps diffusers' own arrays for such rounding-level differences, which is why the image
    tests above are bit-identical.
    """
    reset(pipe, model_config)
    config = handoff.model_scheduler_config(pipe)
    schedule = client.get_schedule(scheduler, STEPS, preset=None, config=config)
    own = getattr(diffusers, scheduler).from_config(model_config)
    own.set_timesteps(STEPS)
    assert np.array_equal(np.asarray(schedule.timesteps), own.timesteps.numpy())
    if getattr(own, "sigmas", None) is not None:
        assert schedule.sigmas is not None
        np.testing.assert_allclose(np.asarray(schedule.sigmas), own.sigmas.numpy(), rtol=2e-7)
    assert schedule.init_noise_sigma == pytest.approx(float(own.init_noise_sigma), rel=2e-7)


def test_ancestral_needs_the_generator_state_after_the_draw(
    pipe: Any, model_config: dict[str, Any], client: Any
) -> None:
    """Negative control: generators at manual_seed (not advanced past the draw) change the image."""
    seeds = [0, 1, 42]
    reset(pipe, model_config)
    name = "EulerAncestralDiscreteScheduler"
    config = handoff.model_scheduler_config(pipe)
    schedule = client.get_schedule(name, STEPS, preset=None, config=config)
    latents = client.sample_init_latents(**latents_kwargs(pipe, seeds))
    fresh = [torch.Generator("cpu").manual_seed(s).get_state().numpy().tobytes() for s in seeds]
    run = handoff.run_pipeline(
        pipe,
        schedule=schedule,
        latents=latents,
        prompt=PROMPT,
        num_inference_steps=STEPS,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        generator_states=fresh,
        output_type="np",
    )
    want = direct(pipe, model_config, name, seeds)
    assert not np.array_equal(run.output.images, want)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_generator_states_match_torch_after_the_initial_draw(dtype: str) -> None:
    """The replay for a source that sends no states: each generator past its item's draw."""
    seeds = [5, 2**32 + 5, -1]
    # 4 x 5 x 7 = 140 latents per item: the 16-block path with a re-drawn tail
    size = {"height": 40, "width": 56, "num_frames": None}
    pipe = build_tiny_pipeline().to(dtype=getattr(torch, dtype))  # draws in the pipeline's dtype
    states = handoff.replay_generator_states(pipe, seeds, batch_size=3, **size)
    shape = (1, 4, 5, 7)
    for seed, state in zip(seeds, states, strict=True):
        g = torch.Generator("cpu").manual_seed(seed)
        torch.randn(shape, generator=g, dtype=getattr(torch, dtype))
        assert state == g.get_state().numpy().tobytes()
    (batch_state,) = handoff.replay_generator_states(
        pipe, seeds[:1], batch_size=3, seed_mode="batch", **size
    )
    g = torch.Generator("cpu").manual_seed(seeds[0])
    torch.randn((3, 4, 5, 7), generator=g, dtype=getattr(torch, dtype))
    assert batch_state == g.get_state().numpy().tobytes()


def test_sigmaserve_generator_gives_the_state(client: Any) -> None:
    """The worker replays with the service's own Generator when it exposes get_state."""
    generator = sigmaserve.Generator(7)
    if not hasattr(generator, "get_state"):
        pytest.skip("sigmaserve.Generator has no get_state yet (torch replay is used)")
    generator.randn((1, 4, 4, 4))
    g = torch.Generator("cpu").manual_seed(7)
    torch.randn((1, 4, 4, 4), generator=g)
    assert bytes(generator.get_state()) == g.get_state().numpy().tobytes()


def test_scheduler_overrides_reach_both_sides(
    pipe: Any, model_config: dict[str, Any], client: Any
) -> None:
    """Karras sigmas through the service equal diffusers' own use_karras_sigmas=True."""
    reset(pipe, model_config)
    worker = Worker(pipe, client, device="cpu")
    got = worker.generate(
        PROMPT,
        seeds=[3],
        num_inference_steps=STEPS,
        scheduler="DPMSolverMultistepScheduler",
        scheduler_overrides={"use_karras_sigmas": True},
        width=IMAGE_SIZE,
        height=IMAGE_SIZE,
        output_type="np",
    )
    want = direct(pipe, model_config, "DPMSolverMultistepScheduler", [3], use_karras_sigmas=True)
    assert np.array_equal(np.stack(got.images), want)


def test_a_schedule_that_differs_is_installed(
    pipe: Any, model_config: dict[str, Any], client: Any
) -> None:
    reset(pipe, model_config)
    config = handoff.model_scheduler_config(pipe)
    schedule = client.get_schedule("EulerDiscreteScheduler", STEPS, preset=None, config=config)
    custom = np.array([10.0, 5.0, 2.0, 0.5, 0.0], dtype=np.float32)
    changed = types.SimpleNamespace(
        scheduler=schedule.scheduler,
        config=schedule.config,
        timesteps=np.asarray(schedule.timesteps),
        sigmas=custom,
    )
    latents = client.sample_init_latents(**latents_kwargs(pipe, [1]))
    run = handoff.run_pipeline(
        pipe,
        schedule=changed,
        latents=latents,
        prompt=PROMPT,
        num_inference_steps=STEPS,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        output_type="latent",
    )
    assert run.installed
    assert np.array_equal(run.scheduler.sigmas.numpy(), custom)
    assert run.init_noise_sigma == pytest.approx(10.0)


def test_scaled_latents_are_refused(pipe: Any, client: Any) -> None:
    """SD multiplies latents= by init_noise_sigma itself: pre-scaled noise would be scaled twice."""
    latents = client.sample_init_latents(
        shape=(1, 4, 4, 4), seeds=[1], scheduler="EulerDiscreteScheduler", num_inference_steps=4
    )
    assert latents.init_noise_sigma > 1
    with pytest.raises(InvalidArgumentError, match="unscaled"):
        handoff.pipeline_latents(pipe, latents)


def test_model_scheduler_config_drops_default_only_keys(
    pipe: Any, model_config: dict[str, Any]
) -> None:
    reset(pipe, model_config)
    config = handoff.model_scheduler_config(pipe)
    # SD 1.5's file has no timestep_spacing: Euler.from_config must see its own default.
    assert "timestep_spacing" not in config
    assert config["steps_offset"] == 1
    assert not any(key.startswith("_") for key in config)


def test_pipeline_families(pipe: Any) -> None:
    """A supported class takes the core's preset naming it; another class is refused."""
    kind = handoff.pipeline_kind(pipe)
    assert (kind.family, kind.preset, kind.scales_latents, kind.video) == (
        "sd",
        "sd15",
        True,
        False,
    )
    assert kind.layout == sigmaserve.list_presets()["sd15"]["layout"]
    with pytest.raises(InvalidArgumentError, match=r"^pipeline: "):
        handoff.pipeline_kind(type("KandinskyPipeline", (), {})())
