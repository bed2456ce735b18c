"""Seeded initial latents: noise shaped for a model family, scaled like its pipeline scales it.

Every rule of a latents request (shapes, seeds, seed modes, noise options, the scale) lives in
the Rust core's ``LatentsRequest``; this module turns keyword arguments into one and wraps the
result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sigmaserve import _core
from sigmaserve.dtypes import dtype_name
from sigmaserve.results import Latents

DEFAULT_PRESET: str = _core.latents_default_preset()


@dataclass(frozen=True)
class LatentFormat:
    """How a model family's pipeline shapes its latents (the core's table, read-only here)."""

    channels: int
    vae_scale_factor: int
    # Flux packs 2x2 patches, so its pipelines size latents from multiples of 16 pixels.
    pack_factor: int = 1


def _latent_formats() -> Mapping[str, LatentFormat]:
    formats = {
        p["name"]: LatentFormat(p["latent_channels"], p["vae_scale_factor"], p["pack_factor"])
        for p in _core.schedule_presets()
    }
    return MappingProxyType(formats)


#: The presets' latent formats, from the core.
LATENT_FORMATS: Mapping[str, LatentFormat] = _latent_formats()


def latents_request(
    *,
    seeds: Any,
    dtype: Any = "float32",
    noise_options: Mapping[str, Any] | None = None,
    scheduler_overrides: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> _core.LatentsRequest:
    """The core's validated request for the arguments of :func:`sample_init_latents`."""
    return _core.LatentsRequest(
        seeds=seeds,
        dtype=dtype_name(dtype),
        noise_options=noise_options,
        scheduler_overrides=scheduler_overrides,
        **arguments,
    )


def latents_of(request: _core.LatentsRequest, out: Any = None) -> Latents:
    """Draws a request's latents (into ``out`` when given) as a :class:`Latents`."""
    array = request.sample(out)
    states = tuple(request.generator_states()) if request.return_generator_states else None
    return Latents(
        array=array,
        init_noise_sigma=request.init_noise_sigma,
        seeds=tuple(request.seeds),
        dtype=request.dtype,
        generator_states=states,
    )


def sample_init_latents(
    *,
    shape: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    batch_size: int = 1,
    preset: str | None = DEFAULT_PRESET,
    seeds: int | Sequence[int],
    source: str = "cpu",
    dtype: Any = "float32",
    sigma: Any = None,
    scheduler: str | None = None,
    num_inference_steps: int | None = None,
    seed_mode: str = "per_item",
    noise_options: Mapping[str, Any] | None = None,
    max_elements: int | None = None,
    return_generator_states: bool = False,
    **scheduler_overrides: Any,
) -> Latents:
    """Seeded initial latents exactly as a diffusers pipeline (or ComfyUI, A1111) draws them.

    With ``width``/``height`` (and ``num_frames`` for video presets; the pipeline's default when
    not given) the latents are what the preset pipeline's ``prepare_latents`` returns: its shape
    and axis order (CogVideoX: ``(B, F, C, H, W)``), frame rules (Wan's 4k + 1 rounding,
    CogVideoX 1.5's padding), packing (Flux's 2x2 patches, LTX's tokens) and the dtype it draws
    in (Wan, HunyuanVideo, LTX and Mochi draw float32; another ``dtype`` casts that draw, which
    is what Mochi does). ``shape`` instead gives the drawn shape directly. ``seeds`` is one int
    or a list; ``seed_mode`` is ``"per_item"`` (one generator per item), ``"batch"`` (one
    generator for the whole tensor) or ``"a1111"`` (seed + i).

    Scale: ``sigma`` when given (any real number, a numpy or torch float32 scalar included:
    torch multiplies float32 latents by it in float32, and so does sigmaserve); else, with a
    preset, what its pipeline multiplies by: the ``init_noise_sigma`` of ``scheduler`` (default:
    the pipeline's) at ``num_inference_steps`` (default: the pipeline's) with
    ``scheduler_overrides`` for the pipelines that scale (SD, SDXL, CogVideoX), 1.0 for the
    flow-matching ones; without a preset, the named scheduler's ``init_noise_sigma``, else 1.0.
    ``sigma=1.0`` gives unscaled noise.

    ``noise_options`` passes generator options and seed features through (``cpu_kernel``,
    ``gpu``, ``batch_index``, ``subseeds``, ``subseed_strength``, ``seed_resize_from`` in latent
    pixels, or A1111's ``seed_resize_from_w``/``_h`` in image pixels); ``max_elements`` bounds
    the tensor before anything is allocated. ``return_generator_states`` adds each generator's
    state after the draw, so a pipeline's ancestral steps can continue the same stream.
    """
    request = latents_request(
        shape=shape,
        width=width,
        height=height,
        num_frames=num_frames,
        batch_size=batch_size,
        preset=preset,
        seeds=seeds,
        source=source,
        dtype=dtype,
        sigma=sigma,
        scheduler=scheduler,
        num_inference_steps=num_inference_steps,
        seed_mode=seed_mode,
        noise_options=noise_options,
        max_elements=max_elements,
        return_generator_states=return_generator_states,
        scheduler_overrides=scheduler_overrides,
    )
    return latents_of(request)


__all__ = [
    "DEFAULT_PRESET",
    "LATENT_FORMATS",
    "LatentFormat",
    "Latents",
    "latents_of",
    "latents_request",
    "sample_init_latents",
]
