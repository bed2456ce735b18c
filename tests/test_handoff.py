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
    # Everything came from the service: unscaled noise of the pipeline's shape, one per seed.
    kinds = [name for name, _ in noise.calls]
    assert kinds == ["get_schedule", "sample_init_latents"]
    latents_call = noise.calls[1][1]
    assert latents_call["sigma"] == 1.0
    assert latents_call["seeds"] == seeds
    assert latents_call["seed_mode"] == "per_item"
    assert tuple(latents_call["shape"]) == (len(seeds), 4, IMAGE_SIZE // 8, IMAGE_SIZE // 8)
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
    shape = handoff.noise_shape(pipe, len(seeds), IMAGE_SIZE, IMAGE_SIZE)
    latents = client.sample_init_latents(shape=shape, seeds=seeds, sigma=1.0, preset=None)
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
    seeds = [5, 2**32 + 5, -1]
    shape = (1, 4, 5, 7)  # numel 140: the 16-block path with a re-drawn tail
    states = handoff.replay_generator_states(seeds, (3, *shape[1:]), dtype=dtype)
    for seed, state in zip(seeds, states, strict=True):
        g = torch.Generator("cpu").manual_seed(seed)
        torch.randn(shape, generator=g, dtype=getattr(torch, dtype))
        assert state == g.get_state().numpy().tobytes()
    (batch_state,) = handoff.replay_generator_states(
        seeds[:1], (3, *shape[1:]), dtype=dtype, seed_mode="batch"
    )
    g = torch.Generator("cpu").manual_seed(seeds[0])
    torch.randn((3, 4, 5, 7), generator=g, dtype=getattr(torch, dtype))
    assert batch_state == g.get_state().numpy().tobytes()


def test_sigmaserve_generator_gives_the_state(client: Any) -> None:
    """The worker replays with the service's own Generator when it exposes get_state."""
    import sigmaserve

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
    shape = handoff.noise_shape(pipe, 1, IMAGE_SIZE, IMAGE_SIZE)
    latents = client.sample_init_latents(shape=shape, seeds=[1], sigma=1.0, preset=None)
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


def test_pipeline_families() -> None:
    def fake(name: str) -> Any:
        return type(name, (), {})()

    assert handoff.pipeline_kind(fake("StableDiffusionPipeline")).scales_latents
    assert handoff.pipeline_kind(fake("StableDiffusionXLPipeline")).scales_latents
    assert not handoff.pipeline_kind(fake("StableDiffusion3Pipeline")).scales_latents
    flux = handoff.pipeline_kind(fake("FluxPipeline"))
    assert flux.packed and not flux.scales_latents
    with pytest.raises(InvalidArgumentError):
        handoff.pipeline_kind(fake("KandinskyPipeline"))


def test_flux_packing_matches_diffusers() -> None:
    from diffusers import FluxPipeline

    noise = torch.randn((2, 16, 8, 6), generator=torch.Generator().manual_seed(0))
    want = FluxPipeline._pack_latents(noise, 2, 16, 8, 6)
    assert torch.equal(handoff.pack_flux_latents(noise), want)


def test_flux_schedule_extras_follow_the_pipeline() -> None:
    """Flux passes linspace sigmas and mu from the image's token count to set_timesteps."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    fake_flux = type("FluxPipeline", (types.SimpleNamespace,), {})
    pipe = fake_flux(
        vae_scale_factor=8,
        transformer=types.SimpleNamespace(config=types.SimpleNamespace(in_channels=64)),
        scheduler=types.SimpleNamespace(
            config={
                "use_dynamic_shifting": True,
                "base_image_seq_len": 256,
                "max_image_seq_len": 4096,
                "base_shift": 0.5,
                "max_shift": 1.15,
            }
        ),
    )
    extras = handoff.pipeline_schedule_overrides(pipe, 28, 1024, 768)
    assert extras["mu"] == calculate_shift(64 * 48, 256, 4096, 0.5, 1.15)
    assert extras["sigmas"] == np.linspace(1.0, 1 / 28, 28).tolist()
    assert handoff.noise_shape(pipe, 2, 1024, 768) == (2, 16, 128, 96)
