"""Hand a service ``Schedule`` and ``Latents`` to a diffusers pipeline, bit for bit.

What a pipeline does with its own ``generator=`` and what it does with ``latents=`` differ, and the
hand-off has to make up for each difference (diffusers 0.42.1). The pipeline's conventions are the
core's pipeline presets (``sigmaserve.catalog()``): the worker names the preset of the pipeline's
class and the size, and the service answers with what that pipeline computes.

* **Latents.** ``sample_init_latents(preset=..., width, height, num_frames)`` is what the
  pipeline's ``prepare_latents`` draws: its shape and axis order (Wan's ``(B, C, F, H, W)``), its
  packing (Flux's 2x2 patches, ``(B, h/2 * w/2, 64)``) and its draw dtype
  (``prompt_embeds.dtype``, float16 on GPU, which for torch's CPU generator is not the float32
  draw rounded; Wan draws float32 whatever its dtype).
* **Scaling.** ``StableDiffusionPipeline`` and ``StableDiffusionXLPipeline`` multiply a given
  ``latents=`` by ``scheduler.init_noise_sigma`` themselves (``prepare_latents``), exactly as they
  scale their own draw; ``StableDiffusion3Pipeline``, ``FluxPipeline`` and ``WanPipeline`` (flow
  matching) never scale. Either way the pipeline must receive the *unscaled* noise, so the worker
  asks the service for ``sigma=1.0`` and lets the pipeline do the one multiply its generator path
  does.
* **The generator after the draw.** Ancestral and SDE schedulers draw fresh noise at every step
  from the pipeline's generator(s). The pipeline's own path would leave each CPU generator just past
  the initial draw, so the worker hands it generators in exactly that state (torch's
  ``Generator.get_state()`` bytes, which the service returns with the latents).
* **The schedule.** ``get_schedule(..., preset=..., width, height, num_frames, pipeline=True)``
  is what the pipeline's ``__call__`` sets on its scheduler (Flux's own sigmas, or none when the
  scheduler has ``use_flow_sigmas``, and mu; SD3's mu when the scheduler shifts dynamically),
  for the config of the scheduler that will run, every key of it: the model's config with the
  request's overrides (``run_config``), so no key of the preset's own config stands in for the
  model's. The scheduler is built from ``Schedule.scheduler`` and ``Schedule.config``; when the
  pipeline then calls ``set_timesteps``, the Schedule's own ``timesteps`` and ``sigmas`` are
  checked against what diffusers computed and installed in their place if they differ (custom and
  ecosystem schedules), so the pipeline runs the Schedule it was given.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sigmaserve.errors import invalid

log = logging.getLogger("sigmaserve.worker")

# The pipeline classes the worker runs (subclasses are matched through the MRO), each proven
# bit-identical end to end on a tiny random pipeline (tests/test_handoff.py,
# tests/test_handoff_families.py). Their conventions (latent layout, draw dtype, scaling, the
# schedule the pipeline sets) are the core's: the preset naming the class in sigmaserve.catalog().
_FAMILY_BY_CLASS = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "FluxPipeline": "flux",
    "WanPipeline": "wan",
}


@dataclass(frozen=True)
class PipelineKind:
    """A supported pipeline class and the core's preset for it."""

    family: str  # "sd", "sdxl", "sd3", "flux", "wan"
    # The first preset in sigmaserve.catalog() naming the class ("sd15", "flux-dev", "wan2.1"):
    # its pipeline conventions are the class's; the model's own scheduler config always goes
    # with it (run_config), so the preset's config never stands in for the model's.
    preset: str
    # That preset's latent layout (channels, VAE factors, packing, axes, noise dtype, scaling).
    layout: Mapping[str, Any]

    @property
    def video(self) -> bool:
        """(B, C, F, H, W) latents, num_frames and num_videos_per_prompt in, ``.frames`` out."""
        return self.layout["vae_temporal_factor"] is not None

    @property
    def scales_latents(self) -> bool:
        """prepare_latents multiplies a given latents= by scheduler.init_noise_sigma."""
        return bool(self.layout["scales_by_init_noise_sigma"])


@functools.cache
def _presets_by_pipeline() -> dict[str, tuple[str, Mapping[str, Any]]]:
    import sigmaserve

    presets: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for preset in sigmaserve.catalog()["presets"]:
        presets.setdefault(str(preset["pipeline"]), (str(preset["name"]), preset["layout"]))
    return presets


def pipeline_kind(pipe: Any) -> PipelineKind:
    """The supported class of a diffusers pipeline and its preset; the model must have the
    preset's latent layout (``InvalidArgumentError`` on field ``pipeline`` otherwise)."""
    for cls in type(pipe).__mro__:
        family = _FAMILY_BY_CLASS.get(cls.__name__)
        if family is not None:
            preset, layout = _presets_by_pipeline()[cls.__name__]
            kind = PipelineKind(family, preset, layout)
            _check_layout(pipe, kind)
            return kind
    raise invalid(
        "pipeline",
        f"{type(pipe).__name__} is not supported; expected one of {sorted(_FAMILY_BY_CLASS)}",
    )


def _check_layout(pipe: Any, kind: PipelineKind) -> None:
    """The model's latents are the preset's: channels (times the packed patch), VAE factors."""
    layout = kind.layout
    packed_channels = int(layout["channels"]) * int(layout["pack_factor"]) ** 2
    have = {
        "latent channels": int(_denoiser_config(pipe).in_channels),
        "VAE factor": _spatial_factor(pipe),
        "temporal VAE factor": getattr(pipe, "vae_scale_factor_temporal", None),
    }
    want = {
        "latent channels": packed_channels,
        "VAE factor": int(layout["vae_scale_factor"]),
        "temporal VAE factor": layout["vae_temporal_factor"],
    }
    for what, value in want.items():
        if have[what] != value:
            raise invalid(
                "pipeline",
                f"this {type(pipe).__name__} model has {what} {have[what]}, preset "
                f"{kind.preset!r} (whose latents the worker asks for) has {value}",
            )


def _denoiser_config(pipe: Any) -> Any:
    model = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if model is None:
        raise invalid("pipeline", "pipeline has neither a unet nor a transformer")
    return model.config


def _call_default(pipe: Any, name: str) -> Any:
    """The default of ``pipe.__call__``'s argument ``name`` (None when it has none)."""
    parameter = inspect.signature(type(pipe).__call__).parameters.get(name)
    return None if parameter is None else parameter.default


def _spatial_factor(pipe: Any) -> int:
    """Pixels per latent cell along each side (``vae_scale_factor``, Wan's ``_spatial``)."""
    return int(getattr(pipe, "vae_scale_factor_spatial", None) or pipe.vae_scale_factor)


def default_size(pipe: Any) -> tuple[int, int]:
    """(height, width) the pipeline's ``__call__`` uses when none is given: its own defaults
    (Wan), else ``default_sample_size`` (SDXL, SD3, Flux) or the UNet's sample size (SD) times
    the VAE factor."""
    call_height, call_width = _call_default(pipe, "height"), _call_default(pipe, "width")
    if isinstance(call_height, int) and isinstance(call_width, int):
        return call_height, call_width
    factor = _spatial_factor(pipe)
    sample = getattr(pipe, "default_sample_size", None) or _denoiser_config(pipe).sample_size
    if isinstance(sample, (list, tuple)):
        return int(sample[0]) * factor, int(sample[1]) * factor
    return int(sample) * factor, int(sample) * factor


def default_num_frames(pipe: Any) -> int | None:
    """The frames a video pipeline makes when none are given (None for image pipelines)."""
    if not pipeline_kind(pipe).video:
        return None
    return int(_call_default(pipe, "num_frames"))


def size_multiple(pipe: Any) -> int:
    """Sizes must be multiples of this: whole latent patches, i.e. the VAE factor times the
    packed patch (Flux) times the denoiser's patch (SD3, Wan), at least the preset's own
    multiple (its pipeline's ``check_inputs``)."""
    layout = pipeline_kind(pipe).layout
    patch = getattr(_denoiser_config(pipe), "patch_size", None) or 1
    spatial_patch = int(patch[-1]) if isinstance(patch, (list, tuple)) else int(patch)
    whole = int(layout["vae_scale_factor"]) * int(layout["pack_factor"]) * spatial_patch
    return max(whole, int(layout["size_multiple"]))


def frame_multiple(pipe: Any) -> int:
    """Video pipelines make ``k * frame_multiple + 1`` frames (whole latent frames of the
    causal video VAE)."""
    return int(pipeline_kind(pipe).layout["vae_temporal_factor"])


def resolve_scheduler(name: str) -> tuple[str, dict[str, Any]]:
    """The canonical name of a scheduler name (a class, an A1111 or ComfyUI alias, an ecosystem
    schedule) and the config options an alias selects, from the core's resolver; an unknown
    name is its ``InvalidArgumentError``, suggesting the nearest names."""
    import sigmaserve

    canonical, _, options = sigmaserve.resolve_scheduler(name)
    return canonical, options


def schedule_kwargs(
    pipe: Any,
    scheduler: str,
    *,
    height: int,
    width: int,
    num_frames: int | None,
    model_config: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``get_schedule(scheduler, steps, **these)``: the schedule ``pipe``'s ``__call__`` sets on
    ``scheduler`` (a canonical name) for this size (the preset pipeline's conventions: Flux's
    sigmas and mu, SD3's dynamic shift), built from the model's config with the request's
    ``overrides`` (an alias's options among them).

    The config sent is every key of the scheduler that will run (``run_config``): the core
    layers a preset's config under the given one (class < preset < config), so a key the model's
    config lacks would otherwise come from the preset (SD 1.5's ``steps_offset`` under Euler).
    """
    kind = pipeline_kind(pipe)
    return {
        "preset": kind.preset,
        "width": width,
        "height": height,
        "num_frames": num_frames,
        "pipeline": True,
        "config": run_config(scheduler, model_config, overrides, type(pipe.scheduler).__name__),
        **dict(overrides or {}),
    }


def latents_kwargs(
    pipe: Any,
    seeds: Sequence[int],
    *,
    batch_size: int,
    height: int,
    width: int,
    num_frames: int | None,
    seed_mode: str = "per_item",
    source: str = "cpu",
) -> dict[str, Any]:
    """``sample_init_latents(**these)``: what ``pipe``'s ``prepare_latents`` draws for a batch of
    ``batch_size`` from ``seeds`` (one per item, or the one seed of ``batch`` mode): the preset's
    shape, axis order, packing and draw dtype, unscaled, with each generator's state after the
    draw."""
    kind = pipeline_kind(pipe)
    return {
        "preset": kind.preset,
        "width": width,
        "height": height,
        "num_frames": num_frames,
        "batch_size": batch_size,
        "seeds": list(seeds),
        "seed_mode": seed_mode,
        "source": source,
        "dtype": torch_dtype_name(noise_dtype(pipe)),
        "sigma": 1.0,
        "return_generator_states": True,
    }


def model_scheduler_config(pipe: Any) -> dict[str, Any]:
    """The pipeline's scheduler config as ``from_config`` would read it.

    Keys that only hold the class's defaults (``_use_default_values``) are dropped, as diffusers
    drops them when another class is built ``from_config``: SD 1.5's config has no
    ``timestep_spacing``, so Euler gets its own default ("linspace"), not PNDM's ("leading").
    """
    config = dict(pipe.scheduler.config)
    defaults = set(config.pop("_use_default_values", None) or ())
    return {k: v for k, v in config.items() if not k.startswith("_") and k not in defaults}


# ---- scheduler from a Schedule ---------------------------------------------------------------


def scheduler_class(name: str) -> Any:
    """The diffusers scheduler class called ``name``."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and hasattr(cls, "set_timesteps")):
        raise invalid("scheduler", f"{name!r} is not a diffusers scheduler class")
    return cls


def scheduler_from_schedule(
    schedule: Any, fallback_config: Mapping[str, Any] | None = None, model_class: str | None = None
) -> Any:
    """A fresh diffusers scheduler configured like ``schedule`` (class and resolved config).

    Ecosystem schedules (``"comfyui:karras"``...) name no diffusers class: they run on the class
    of ``schedule.config["_class_name"]`` if present, else on the model's own class when that is
    a flow-matching one (SD3, Flux), else on Euler (the k-diffusion sampler of sigma
    schedules), with the schedule's sigmas and timesteps installed (:func:`install_schedule`)
    and the tool's initial scale (:func:`scaled_by`).
    """
    config = dict(getattr(schedule, "config", None) or fallback_config or {})
    return _scheduler_from_config(str(schedule.scheduler), config, model_class)


def _scheduler_from_config(
    name: str, config: Mapping[str, Any], model_class: str | None = None
) -> Any:
    cls = _class_for(name, config, model_class)
    accepted = set(inspect.signature(cls).parameters) - {"args", "kwargs"}
    kwargs = {k: _plain(v) for k, v in config.items() if k in accepted}
    return cls.from_config(kwargs)


def _class_for(name: str, config: Mapping[str, Any], model_class: str | None) -> Any:
    if ":" in name:  # an ecosystem schedule runs on a diffusers class (scheduler_from_schedule)
        name = str(config.get("_class_name") or _ecosystem_class(model_class))
    return scheduler_class(name)


def run_config(
    name: str,
    model_config: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    model_class: str | None = None,
) -> dict[str, Any]:
    """The config of the scheduler that will run, as diffusers builds it from the model's:
    ``cls.from_config(model_config, **overrides)`` for class ``name`` (an ecosystem schedule's,
    as :func:`scheduler_from_schedule` picks it), every key explicit.

    As in diffusers, keys of the model's own scheduler class (``model_class``) that ``cls``
    lacks are dropped and any other key is kept (a pipeline reads Flux's shift bounds off
    whichever scheduler runs); ``overrides`` that are ``set_timesteps`` arguments (``sigmas``,
    ``mu``...) are not config.
    """
    cls = _class_for(name, model_config, model_class)
    set_timesteps = set(inspect.signature(cls.set_timesteps).parameters)
    config = {"_class_name": model_class, **model_config} if model_class else dict(model_config)
    config.update({k: v for k, v in (overrides or {}).items() if k not in set_timesteps})
    built = cls.from_config(config)
    return {k: _plain(v) for k, v in built.config.items() if not k.startswith("_")}


def _ecosystem_class(model_class: str | None) -> str:
    from sigmaserve.schedules import scheduler_families

    if model_class and scheduler_families().get(model_class) == "flow_match":
        return model_class
    return "EulerDiscreteScheduler"


def scaled_by(scheduler: Any, init_noise_sigma: float) -> Any:
    """``scheduler`` reporting ``init_noise_sigma`` as its initial scale, the factor SD and SDXL
    pipelines multiply ``latents=`` by: an ecosystem tool's own scale (ComfyUI's
    sqrt(1 + sigma_0^2) = 14.6488 for SD), which the diffusers class it runs on would compute
    differently (its sigma_0, 14.6146). The class keeps its name and behaviour otherwise."""
    base = type(scheduler)
    scaled = type(
        base.__name__,
        (base,),
        {"__module__": base.__module__, "init_noise_sigma": property(lambda _: init_noise_sigma)},
    )
    scheduler.__class__ = scaled
    return scheduler


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class InstallRecord:
    """What happened when the pipeline called ``set_timesteps``."""

    calls: int = 0
    # True when diffusers' own arrays differed from the Schedule's and were replaced.
    installed: bool = False
    # Largest relative difference seen between the Schedule's float arrays and diffusers' own
    # (0.0 when bit-identical); differences within ROUNDING_TOLERANCE keep diffusers' arrays.
    max_rel_diff: float = 0.0


# Rounding-level disagreement (a few float32 ulps) between the Schedule and what the scheduler
# computes from the Schedule's own class, config and steps is float noise, not a different
# schedule: the scheduler's arrays are kept, so the run is exactly what diffusers would do.
ROUNDING_TOLERANCE = 1e-6


def install_schedule(scheduler: Any, schedule: Any) -> InstallRecord:
    """Make every later ``scheduler.set_timesteps(...)`` end with the Schedule's arrays.

    diffusers computes its arrays as usual. When they equal the Schedule's (the normal case: the
    service reproduces diffusers) nothing is touched; within ``ROUNDING_TOLERANCE`` they are
    kept too (and the difference is logged). Otherwise (custom sigmas, an ecosystem schedule) the
    Schedule's ``timesteps`` and ``sigmas`` replace them in place, with diffusers' own device and
    dtype; a length mismatch is an error.
    """
    record = InstallRecord()
    original = scheduler.set_timesteps

    @functools.wraps(original)
    def set_timesteps(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        record.calls += 1
        _install_arrays(scheduler, schedule, record)
        return result

    scheduler.set_timesteps = set_timesteps
    return record


def _install_arrays(scheduler: Any, schedule: Any, record: InstallRecord) -> None:
    import torch

    pairs = []
    for name in ("timesteps", "sigmas"):
        wanted = getattr(schedule, name, None)
        current = getattr(scheduler, name, None)
        if wanted is None or not isinstance(current, torch.Tensor):
            continue
        wanted = np.asarray(wanted)
        have = current.detach().cpu().numpy()
        if have.shape != wanted.shape:
            raise invalid(
                name,
                f"the schedule has {wanted.shape[0]} {name} but {type(scheduler).__name__} made "
                f"{have.shape[0]} for these steps",
            )
        pairs.append((name, current, have, wanted))
    rel = 0.0
    exact_kinds = True
    for _, _, have, wanted in pairs:
        if np.issubdtype(have.dtype, np.integer) or np.issubdtype(wanted.dtype, np.integer):
            if not np.array_equal(have, wanted.astype(have.dtype)):
                exact_kinds = False
            continue
        a, b = have.astype(np.float64), wanted.astype(np.float64)
        scale = np.maximum(np.abs(a), np.abs(b))
        diff = np.abs(a - b)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = np.where(diff == 0, 0.0, diff / np.where(scale == 0, 1.0, scale))
        rel = max(rel, float(ratios.max(initial=0.0)))
    record.max_rel_diff = max(record.max_rel_diff, rel)
    if exact_kinds and rel == 0.0:
        return
    if exact_kinds and rel <= ROUNDING_TOLERANCE:
        # Float rounding (a few ulps), expected on some requests: not worth a warning each time.
        log.debug(
            "schedule differs from %s's own arrays by %.3g (relative); keeping diffusers' arrays",
            type(scheduler).__name__,
            rel,
        )
        return
    for name, current, _, wanted in pairs:
        replacement = torch.from_numpy(np.array(wanted, copy=True)).to(
            device=current.device, dtype=current.dtype
        )
        setattr(scheduler, name, replacement)
    record.installed = True


# ---- latents and generators ----------------------------------------------------------------


def torch_dtype_name(dtype: Any) -> str:
    """The sigmaserve dtype name of a torch dtype."""
    import torch

    names = {
        torch.float32: "float32",
        torch.float16: "float16",
        torch.bfloat16: "bfloat16",
        torch.float64: "float64",
    }
    if dtype not in names:
        raise invalid("dtype", f"unsupported pipeline dtype {dtype}")
    return names[dtype]


def pipeline_latents(pipe: Any, latents: Any, *, device: Any = None, dtype: Any = None) -> Any:
    """The ``latents=`` tensor that makes ``pipe`` start from exactly this noise (as the service
    laid it out and packed it for the pipeline's preset).

    ``latents`` must be unscaled noise (``Latents.init_noise_sigma == 1``): SD and SDXL multiply
    by their scheduler's ``init_noise_sigma`` themselves, and SD3, Flux and Wan never scale, so
    in both cases the unscaled noise is what the pipeline's own generator path starts from. The
    copy to a CUDA device goes through pinned memory, non-blocking.
    """
    kind = pipeline_kind(pipe)
    factor = float(getattr(latents, "init_noise_sigma", 1.0))
    if factor != 1.0:
        what = (
            "multiplies latents= by init_noise_sigma itself"
            if kind.scales_latents
            else "starts from unscaled noise"
        )
        raise invalid(
            "latents",
            f"{type(pipe).__name__} {what}; pass unscaled noise (sample_init_latents(..., "
            f"sigma=1.0)), got latents scaled by {factor}",
        )
    return latents.to_torch(device=device, dtype=dtype)


def replay_generator_states(
    pipe: Any,
    seeds: Sequence[int],
    *,
    batch_size: int,
    height: int,
    width: int,
    num_frames: int | None = None,
    seed_mode: str = "per_item",
    source: str = "cpu",
) -> list[bytes]:
    """Each generator's state right after ``pipe``'s initial draw of a batch (torch
    ``get_state()`` bytes: the CPU generator's, or the CUDA generator's seed and offset), for a
    noise source that sent none.

    ``per_item``: one generator per seed, each past its item's draw (diffusers' list of
    generators); ``batch``: one generator (the one seed) past the whole draw. The replay is the
    core's (``LatentsRequest.generator_states`` of the same request), the same the service
    answers with.
    """
    from sigmaserve.latents import latents_request

    arguments = latents_kwargs(
        pipe,
        seeds,
        batch_size=batch_size,
        height=height,
        width=width,
        num_frames=num_frames,
        seed_mode=seed_mode,
        source=source,
    )
    return [bytes(state) for state in latents_request(**arguments).generator_states()]


def generators_from_states(states: Sequence[bytes], device: str = "cpu") -> list[Any]:
    """``torch.Generator`` objects on ``device`` set to each state (``Generator.get_state()``
    bytes: 5056 for the CPU generator, seed and offset for a CUDA one)."""
    import torch

    generators = []
    for state in states:
        generator = torch.Generator(device)
        generator.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
        generators.append(generator)
    return generators


def pipeline_generator(generators: Sequence[Any]) -> Any:
    """One generator for a batch of one (what the pipeline gets from manual_seed), else the list."""
    return generators[0] if len(generators) == 1 else list(generators)


# ---- running ---------------------------------------------------------------------------------


@dataclass
class HandoffRun:
    """The pipeline's output plus what ran."""

    output: Any
    scheduler: Any
    init_noise_sigma: float
    installed: bool
    max_rel_diff: float = 0.0
    # The guidance scale the pipeline used (its default when none was given).
    guidance_scale: float | None = None


def run_pipeline(
    pipe: Any,
    *,
    schedule: Any,
    latents: Any,
    prompt: str | Sequence[str],
    num_inference_steps: int,
    height: int,
    width: int,
    num_frames: int | None = None,
    generator_states: Sequence[bytes] | None = None,
    seed_mode: str = "per_item",
    source: str = "cpu",
    negative_prompt: str | Sequence[str] | None = None,
    guidance_scale: float | None = None,
    output_type: str = "pil",
    device: Any = None,
    **pipeline_kwargs: Any,
) -> HandoffRun:
    """Run ``pipe`` from the service's ``latents`` and ``schedule``.

    The pipeline's scheduler is swapped for one built from ``schedule`` for the call and put
    back afterwards (so calls on one pipeline object must be serialised). ``generator_states``
    are the generators' states after the initial draw; without them they are replayed from
    ``latents.seeds``. For ``source`` "cuda" and "a1111_nv" (CUDA's Philox) the generators are
    CUDA ones when the pipeline runs on CUDA, so ancestral steps continue the very stream;
    elsewhere they are CPU generators seeded alike. One prompt makes the batch's images
    (``num_images_per_prompt``), or videos of ``num_frames`` frames for video pipelines
    (``num_videos_per_prompt``).
    """
    scheduler = scheduler_from_schedule(
        schedule, model_scheduler_config(pipe), type(pipe.scheduler).__name__
    )
    if ":" in str(schedule.scheduler) and pipeline_kind(pipe).scales_latents:
        scheduler = scaled_by(scheduler, float(schedule.init_noise_sigma))
    record = install_schedule(scheduler, schedule)
    original_scheduler = pipe.scheduler
    pipe.scheduler = scheduler
    try:
        return _run(
            pipe,
            scheduler,
            record,
            schedule=schedule,
            latents=latents,
            prompt=prompt,
            num_inference_steps=num_inference_steps,
            height=height,
            width=width,
            num_frames=num_frames,
            generator_states=generator_states,
            seed_mode=seed_mode,
            source=source,
            negative_prompt=negative_prompt,
            guidance_scale=guidance_scale,
            output_type=output_type,
            device=device,
            **pipeline_kwargs,
        )
    finally:
        pipe.scheduler = original_scheduler


def _run(
    pipe: Any,
    scheduler: Any,
    record: InstallRecord,
    *,
    schedule: Any,
    latents: Any,
    prompt: str | Sequence[str],
    num_inference_steps: int,
    height: int,
    width: int,
    num_frames: int | None,
    generator_states: Sequence[bytes] | None,
    seed_mode: str,
    source: str,
    negative_prompt: str | Sequence[str] | None,
    guidance_scale: float | None,
    output_type: str,
    device: Any,
    **pipeline_kwargs: Any,
) -> HandoffRun:
    import torch

    if device is None:
        device = getattr(pipe, "_execution_device", None) or pipe.device
    device = torch.device(device)
    dtype = noise_dtype(pipe)
    tensor = pipeline_latents(pipe, latents, device=device, dtype=dtype)
    batch = int(latents.array.shape[0])
    seeds = list(latents.seeds)
    if source != "cpu" and device.type != "cuda":
        # No CUDA generator off CUDA: the later noise comes from CPU generators (the caller
        # is told so); the initial noise is the source's all the same.
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    else:
        if generator_states is None:
            generator_states = replay_generator_states(
                pipe,
                seeds,
                batch_size=batch,
                height=height,
                width=width,
                num_frames=num_frames,
                seed_mode=seed_mode,
                source=source,
            )
        generators = generators_from_states(
            generator_states, "cpu" if source == "cpu" else str(device)
        )
    if len(generators) not in (1, batch):
        raise invalid("seeds", f"{len(generators)} generators for a batch of {batch}")

    kind = pipeline_kind(pipe)
    kwargs: dict[str, Any] = dict(pipeline_kwargs)
    if kind.video:
        kwargs["num_frames"] = num_frames
    if negative_prompt is not None:
        kwargs["negative_prompt"] = negative_prompt
    if guidance_scale is not None:
        kwargs["guidance_scale"] = guidance_scale
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if len(prompts) == 1:
        kwargs["num_videos_per_prompt" if kind.video else "num_images_per_prompt"] = batch
    elif len(prompts) != batch:
        raise invalid("prompt", f"{len(prompts)} prompts for {batch} seeds")
    with torch.inference_mode():
        output = pipe(
            prompt=prompts[0] if len(prompts) == 1 else prompts,
            num_inference_steps=num_inference_steps,
            height=height,
            width=width,
            latents=tensor,
            generator=pipeline_generator(generators),
            output_type=output_type,
            **kwargs,
        )
    if record.calls == 0:
        raise RuntimeError(f"{type(pipe).__name__} never called set_timesteps")
    sigma = getattr(scheduler, "init_noise_sigma", 1.0) if kind.scales_latents else 1.0
    used = getattr(pipe, "_guidance_scale", guidance_scale)
    return HandoffRun(
        output,
        scheduler,
        float(sigma),
        record.installed,
        record.max_rel_diff,
        None if used is None else float(used),
    )


def noise_dtype(pipe: Any) -> Any:
    """The torch dtype the pipeline's prepare_latents draws in."""
    import torch

    name = str(pipeline_kind(pipe).layout["noise_dtype"])
    return _pipeline_dtype(pipe) if name == "pipeline" else getattr(torch, name)


def _pipeline_dtype(pipe: Any) -> Any:
    for name in ("text_encoder", "unet", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None:
            return module.dtype
    return pipe.dtype
