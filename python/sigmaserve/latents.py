"""Seeded initial latents: noise shaped for a model family, scaled like its pipeline scales it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sigmaserve import noise
from sigmaserve.bf16 import bfloat16_bits_from_float32, float32_from_bfloat16_bits
from sigmaserve.errors import invalid
from sigmaserve.schedules import get_schedule

if TYPE_CHECKING:
    import torch

DEFAULT_STEPS = 50  # diffusers pipelines' default num_inference_steps


@dataclass(frozen=True)
class LatentFormat:
    """How a model family shapes its latents."""

    channels: int
    vae_scale_factor: int
    # Flux packs 2x2 patches, so its pipelines size latents from multiples of 16 pixels.
    pack_factor: int = 1

    def shape(self, batch_size: int, height: int, width: int) -> tuple[int, int, int, int]:
        """The (B, C, H, W) noise shape the pipeline draws for this image size."""
        step = self.vae_scale_factor * self.pack_factor
        return (
            batch_size,
            self.channels,
            self.pack_factor * (height // step),
            self.pack_factor * (width // step),
        )


# diffusers 0.42.1 pipelines: StableDiffusion(XL)Pipeline.prepare_latents (4 channels, VAE /8),
# StableDiffusion3Pipeline (16 channels), FluxPipeline (16 channels, 2 * (size // 16)).
LATENT_FORMATS: dict[str, LatentFormat] = {
    "sd15": LatentFormat(4, 8),
    "sd21": LatentFormat(4, 8),
    "sd21-v": LatentFormat(4, 8),
    "sdxl": LatentFormat(4, 8),
    "sdxl-turbo": LatentFormat(4, 8),
    "sd3": LatentFormat(16, 8),
    "sd35": LatentFormat(16, 8),
    "flux-dev": LatentFormat(16, 8, pack_factor=2),
    "flux-schnell": LatentFormat(16, 8, pack_factor=2),
}


@dataclass(frozen=True)
class Latents:
    """Initial latents: ``array`` is the scaled noise (bfloat16 as uint16 bit patterns)."""

    array: np.ndarray
    init_noise_sigma: float
    seeds: tuple[int, ...]
    dtype: str = "float32"
    # Each generator's state after the initial draw (torch get_state() layout), when asked for.
    generator_states: tuple[bytes, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def to_torch(self, device: Any = None, dtype: Any = None) -> torch.Tensor:
        """The latents as a torch tensor, optionally moved (pinned, non-blocking) and cast."""
        from sigmaserve.torch_utils import numpy_to_torch

        return numpy_to_torch(self.array, self.dtype, device=device, dtype=dtype)


def resolve_shape(
    shape: Sequence[int] | None,
    width: int | None,
    height: int | None,
    batch_size: int,
    preset: str | None,
) -> tuple[int, ...]:
    """The noise shape from an explicit ``shape`` or from the image size and the preset."""
    if shape is not None:
        if width is not None or height is not None:
            raise invalid("shape", "give either shape or width/height, not both")
        dims = tuple(_positive_int(d, "shape") for d in shape)
        if not dims:
            raise invalid("shape", "must have at least one dimension")
        return dims
    if width is None or height is None:
        raise invalid("shape", "give shape=(B, C, H, W) or both width and height")
    if preset is None:
        raise invalid("preset", "width/height need a preset to know the latent channels")
    fmt = LATENT_FORMATS.get(preset)
    if fmt is None:
        raise invalid(
            "preset", f"unknown preset {preset!r}; expected one of {list(LATENT_FORMATS)}"
        )
    for name, value in (("width", width), ("height", height)):
        if _positive_int(value, name) % fmt.vae_scale_factor:
            raise invalid(name, f"must be a multiple of {fmt.vae_scale_factor}, got {value}")
    return fmt.shape(_positive_int(batch_size, "batch_size"), height, width)


def resolve_sigma(
    sigma: Any,
    scheduler: str | None,
    num_inference_steps: int | None,
    preset: str | None,
    scheduler_overrides: Mapping[str, Any],
) -> float:
    """The factor the noise is multiplied by: ``sigma``, else the schedule's init_noise_sigma.

    ``sigma`` may also be a numpy or torch scalar, e.g. a pipeline's own float32
    ``init_noise_sigma``: float32 -> float -> float32 is exact, so the multiplication is the
    caller's own (torch multiplies a float32 tensor by a scalar in float32).
    """
    if sigma is not None:
        if not isinstance(sigma, (bool, int, float)) and getattr(sigma, "shape", None) == ():
            sigma = sigma.item()
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
            raise invalid("sigma", f"must be a number, got {type(sigma).__name__}")
        if not math.isfinite(sigma) or sigma < 0:
            raise invalid("sigma", f"must be finite and non-negative, got {sigma}")
        return float(sigma)
    if scheduler is None:
        if scheduler_overrides:
            raise invalid(next(iter(scheduler_overrides)), "scheduler options need a scheduler")
        return 1.0
    steps = DEFAULT_STEPS if num_inference_steps is None else num_inference_steps
    schedule = get_schedule(scheduler, steps, preset=preset, **scheduler_overrides)
    return schedule.init_noise_sigma


def scale_noise(array: np.ndarray, dtype: str, factor: float) -> np.ndarray:
    """``latents * init_noise_sigma`` with torch's CPU arithmetic for each dtype.

    torch multiplies a tensor by a scalar in the tensor's "opmath" type: float32 for float32,
    float16 and bfloat16 tensors (rounded back to the storage type), float64 for float64.
    """
    if factor == 1.0:
        return array
    if dtype == "float64":
        return array * np.float64(factor)
    if dtype == "float32":
        return array * np.float32(factor)
    if dtype == "float16":
        return (array.astype(np.float32) * np.float32(factor)).astype(np.float16)
    return bfloat16_bits_from_float32(float32_from_bfloat16_bits(array) * np.float32(factor))


def sample_init_latents(
    *,
    shape: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
    batch_size: int = 1,
    preset: str | None = "sd15",
    seeds: int | Sequence[int],
    source: str = "cpu",
    dtype: str = "float32",
    sigma: float | None = None,
    scheduler: str | None = None,
    num_inference_steps: int | None = None,
    seed_mode: str = "per_item",
    noise_options: Mapping[str, Any] | None = None,
    max_elements: int | None = None,
    return_generator_states: bool = False,
    **scheduler_overrides: Any,
) -> Latents:
    """Seeded initial latents exactly as a diffusers pipeline (or ComfyUI, A1111) draws them.

    ``noise_options`` passes generator options through (``cpu_kernel``, ``gpu``, variation
    seeds...); ``max_elements`` bounds the tensor before anything is allocated.
    ``return_generator_states`` adds each generator's state after the draw, so a pipeline's
    ancestral steps can continue the same stream.
    """
    dims = resolve_shape(shape, width, height, batch_size, preset)
    seed_values = seed_list(seeds)
    factor = resolve_sigma(sigma, scheduler, num_inference_steps, preset, scheduler_overrides)
    array = noise.sample_noise(
        dims,
        seed_values,
        seed_mode=seed_mode,
        source=source,
        dtype=dtype,
        max_elements=max_elements,
        **dict(noise_options or {}),
    )
    states = None
    if return_generator_states:
        states = generator_states_after_draw(
            dims, seed_values, seed_mode, source, dtype, noise_options or {}
        )
    return Latents(
        array=scale_noise(array, dtype, factor),
        init_noise_sigma=factor,
        seeds=tuple(seed_values),
        dtype=dtype,
        generator_states=states,
    )


def generator_states_after_draw(
    dims: Sequence[int],
    seeds: Sequence[int],
    seed_mode: str,
    source: str,
    dtype: str,
    noise_options: Mapping[str, Any],
) -> tuple[bytes, ...]:
    """The state of each generator once the initial latents are drawn (a replay that only
    advances the streams, so it costs a fraction of the draw)."""
    generator_options = {k: noise_options[k] for k in ("cpu_kernel", "gpu") if k in noise_options}
    if seed_mode not in ("per_item", "batch") or set(noise_options) - set(generator_options):
        raise invalid(
            "return_generator_states",
            "generator states are defined for per_item and batch seed modes without "
            "batch_index or variation seeds",
        )
    per_draw = (1, *dims[1:]) if seed_mode == "per_item" else tuple(dims)
    states = []
    for seed in seeds:
        generator = noise.Generator(seed, source=source, **generator_options)
        generator.skip(per_draw, dtype)
        states.append(generator.get_state())
    return tuple(states)


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``seeds`` as a list: one int becomes a list of one (items are checked by the noise
    engine)."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return [int(seeds)]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise invalid("seeds", f"must be an int or a list of ints, got {type(seeds).__name__}")
    return list(seeds)


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise invalid(field, f"must be an integer, got {value!r}")
    if value <= 0:
        raise invalid(field, f"must be positive, got {value}")
    return int(value)
