"""The foundation's end-to-end promises, checked against the installed diffusers and torch."""

from __future__ import annotations

import numpy as np
import pytest
import sigmaserve
import torch
from conftest import SD15_SCHEDULER_CONFIG
from diffusers import EulerDiscreteScheduler, LMSDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor


def diffusers_scheduler(cls, **overrides):
    scheduler = cls.from_config({**SD15_SCHEDULER_CONFIG, **overrides})
    return scheduler


@pytest.mark.parametrize("steps", [1, 2, 25, 50, 999])
@pytest.mark.parametrize("cls", [LMSDiscreteScheduler, EulerDiscreteScheduler])
def test_client_schedule_equals_diffusers_sd15(client, cls, steps):
    reference = diffusers_scheduler(cls)
    reference.set_timesteps(steps)
    got = client.get_schedule(cls.__name__, steps, preset="sd15")
    np.testing.assert_array_equal(got.timesteps, reference.timesteps.numpy())
    assert got.timesteps.dtype == reference.timesteps.numpy().dtype
    np.testing.assert_allclose(got.sigmas, reference.sigmas.numpy(), rtol=2e-7, atol=0)
    assert got.init_noise_sigma == pytest.approx(float(reference.init_noise_sigma), rel=2e-7)


def test_client_schedule_equals_local(client):
    local = sigmaserve.get_schedule("EulerDiscreteScheduler", 30, preset="sdxl")
    remote = client.get_schedule("EulerDiscreteScheduler", 30, preset="sdxl")
    np.testing.assert_array_equal(remote.timesteps, local.timesteps)
    np.testing.assert_array_equal(remote.sigmas, local.sigmas)
    assert remote.init_noise_sigma == local.init_noise_sigma
    assert remote.config == local.config
    assert remote.warnings == local.warnings


def reference_latents(shape, seeds, steps=50):
    scheduler = diffusers_scheduler(LMSDiscreteScheduler)
    scheduler.set_timesteps(steps)
    if isinstance(seeds, int):
        generator = torch.Generator("cpu").manual_seed(seeds)
    else:
        generator = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    noise = randn_tensor(shape, generator=generator, dtype=torch.float32)
    return (noise * scheduler.init_noise_sigma).numpy(), float(scheduler.init_noise_sigma)


def test_sample_init_latents_is_bit_identical_to_diffusers(client):
    expected, sigma = reference_latents((1, 4, 64, 64), 42)
    kwargs = dict(
        shape=(1, 4, 64, 64),
        seeds=42,
        seed_mode="batch",
        scheduler="LMSDiscreteScheduler",
        num_inference_steps=50,
        preset="sd15",
    )
    local = sigmaserve.sample_init_latents(**kwargs)
    remote = client.sample_init_latents(**kwargs)
    for result in (local, remote):
        assert result.array.dtype == np.float32
        assert result.array.tobytes() == expected.tobytes()
        assert result.init_noise_sigma == pytest.approx(sigma, rel=2e-7)
        assert result.seeds == (42,)


def test_per_item_seeds_match_a_list_of_generators(client):
    seeds = [0, 7, 2**32 + 5]
    expected, _ = reference_latents((3, 4, 32, 40), seeds)
    kwargs = dict(
        width=320,
        height=256,
        batch_size=3,
        seeds=seeds,
        scheduler="LMSDiscreteScheduler",
        num_inference_steps=50,
    )
    assert sigmaserve.sample_init_latents(**kwargs).array.tobytes() == expected.tobytes()
    assert client.sample_init_latents(**kwargs).array.tobytes() == expected.tobytes()


def test_unscaled_noise_and_explicit_sigma(client):
    noise = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(3)).numpy()
    plain = client.sample_init_latents(shape=(2, 4, 8, 8), seeds=3, seed_mode="batch")
    assert plain.init_noise_sigma == 1.0
    assert plain.array.tobytes() == noise.tobytes()
    scaled = client.sample_init_latents(shape=(2, 4, 8, 8), seeds=3, seed_mode="batch", sigma=2.5)
    assert scaled.array.tobytes() == (noise * np.float32(2.5)).tobytes()


def test_large_tensor_goes_through_the_stream(client, server):
    # 2 x 4 x 256 x 256 float32 = 2 MiB; the client streams above its threshold.
    small_threshold = sigmaserve.Client(f"127.0.0.1:{server.port}", stream_threshold_bytes=1 << 20)
    with small_threshold as c:
        got = c.sample_init_latents(shape=(2, 4, 256, 256), seeds=[1, 2])
    expected = sigmaserve.sample_init_latents(shape=(2, 4, 256, 256), seeds=[1, 2])
    assert got.array.tobytes() == expected.array.tobytes()


async def _async_roundtrip(target):
    async with sigmaserve.AsyncClient(target) as c:
        schedule = await c.get_schedule("LMSDiscreteScheduler", 20)
        latents = await c.sample_init_latents(
            shape=(1, 4, 16, 16), seeds=5, sigma=schedule.init_noise_sigma
        )
    return schedule, latents


def test_async_client_equals_local(target):
    import asyncio

    schedule, latents = asyncio.run(_async_roundtrip(target))
    local = sigmaserve.get_schedule("LMSDiscreteScheduler", 20)
    np.testing.assert_array_equal(schedule.sigmas, local.sigmas)
    expected = sigmaserve.sample_init_latents(
        shape=(1, 4, 16, 16), seeds=5, sigma=local.init_noise_sigma
    )
    assert latents.array.tobytes() == expected.array.tobytes()
