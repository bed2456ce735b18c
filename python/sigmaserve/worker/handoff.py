"""Hand a service ``Schedule`` and ``Latents`` to a diffusers pipeline, bit for bit.

What a pipeline does with its own ``generator=`` and what it does with ``latents=`` differ, and the
hand-off has to make up for each difference (diffusers 0.42.1):

* **Scaling.** ``StableDiffusionPipeline`` and ``StableDiffusionXLPipeline`` multiply a given
  ``latents=`` by ``scheduler.init_noise_sigma`` themselves (``prepare_latents``), exactly as they
  scale their own draw; ``StableDiffusion3Pipeline`` and ``FluxPipeline`` (flow matching) never
  scale. Either way the pipeline must receive the *unscaled* noise, so the worker asks the service
  for ``sigma=1.0`` and lets the pipeline do the one multiply its generator path does.
* **Layout.** Flux takes ``latents=`` already packed into 2x2 patches, ``(B, h/2 * w/2, 64)``;
  ``WanPipeline`` takes video latents ``(B, C, F, H, W)`` as it draws them.
* **Dtype.** The pipeline draws in ``prompt_embeds.dtype`` (float16 on GPU); the service draws in
  the same dtype, which for torch's CPU generator is not the float32 draw rounded. ``WanPipeline``
  draws float32 whatever its dtype.
* **The generator after the draw.** Ancestral and SDE schedulers draw fresh noise at every step
  from the pipeline's generator(s). The pipeline's own path would leave each CPU generator just past
  the initial draw, so the worker hands it generators in exactly that state (torch's
  ``Generator.get_state()`` bytes).
* **The schedule's extras.** Flux passes its own ``sigmas`` (none when the scheduler's config has
  ``use_flow_sigmas``) and ``mu``; SD3 passes ``mu`` when the scheduler's config has
  ``use_dynamic_shifting``. The pipeline reads these off the scheduler that runs, so the worker
  reads them off that scheduler's config too (the model's config with the request's overrides).
* **The schedule.** The scheduler is built from ``Schedule.scheduler`` and ``Schedule.config``; when
  the pipeline then calls ``set_timesteps``, the Schedule's own ``timesteps`` and ``sigmas`` are
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

from sigmaserve.errors import InvalidArgumentError, invalid

log = logging.getLogger("sigmaserve.worker")

# Pipeline families by diffusers class name (subclasses are matched through the MRO).
_FAMILY_BY_CLASS = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "FluxPipeline": "flux",
    "WanPipeline": "wan",
}


@dataclass(frozen=True)
class PipelineKind:
    """What the hand-off needs to know about a pipeline class."""

    family: str  # "sd", "sdxl", "sd3", "flux", "wan"
    # prepare_latents multiplies a given latents= by scheduler.init_noise_sigma.
    scales_latents: bool
    # latents= is expected packed into 2x2 patches (Flux).
    packed: bool
    # Preset name sigmaserve uses for this family.
    preset: str
    # A video pipeline: (B, C, F, H, W) latents, num_frames and num_videos_per_prompt in,
    # ``.frames`` out.
    video: bool = False
    # prepare_latents draws in this dtype whatever the pipeline's (WanPipeline: float32); None:
    # the pipeline's dtype.
    noise_dtype: str | None = None


# TODO(issue 14): these rows (and noise_shape, pipeline_schedule_overrides) restate the pipeline
# conventions the core's pipeline presets own once they land on main; then the hand-off asks
# the core (get_schedule(preset=..., pipeline=True), sample_init_latents(preset=...)).
KINDS = {
    "sd": PipelineKind("sd", scales_latents=True, packed=False, preset="sd15"),
    "sdxl": PipelineKind("sdxl", scales_latents=True, packed=False, preset="sdxl"),
    "sd3": PipelineKind("sd3", scales_latents=False, packed=False, preset="sd3"),
    "flux": PipelineKind("flux", scales_latents=False, packed=True, preset="flux-dev"),
    "wan": PipelineKind(
        "wan",
        scales_latents=False,
        packed=False,
        preset="wan2.1",
        video=True,
        noise_dtype="float32",
    ),
}


def pipeline_kind(pipe: Any) -> PipelineKind:
    """The family of a diffusers pipeline (SD1.x/2.x, SDXL, SD3, Flux)."""
    for cls in type(pipe).__mro__:
        family = _FAMILY_BY_CLASS.get(cls.__name__)
        if family is not None:
            return KINDS[family]
    raise invalid(
        "pipeline",
        f"{type(pipe).__name__} is not supported; expected one of {sorted(_FAMILY_BY_CLASS)}",
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
    """(height, width) a pipeline uses when none is given."""
    kind = pipeline_kind(pipe)
    call_height, call_width = _call_default(pipe, "height"), _call_default(pipe, "width")
    if isinstance(call_height, int) and isinstance(call_width, int):
        return call_height, call_width  # WanPipeline: 480 x 832
    config = _denoiser_config(pipe)
    if kind.family == "flux":
        size = int(getattr(pipe, "default_sample_size", 128)) * pipe.vae_scale_factor
        return size, size
    sample = config.sample_size
    if isinstance(sample, (list, tuple)):
        return int(sample[0]) * pipe.vae_scale_factor, int(sample[1]) * pipe.vae_scale_factor
    size = int(sample) * pipe.vae_scale_factor
    return size, size


def default_num_frames(pipe: Any) -> int | None:
    """The frames a video pipeline makes when none are given (None for image pipelines)."""
    if not pipeline_kind(pipe).video:
        return None
    return int(_call_default(pipe, "num_frames"))


def size_multiple(pipe: Any) -> int:
    """Sizes must be multiples of this: the VAE factor; twice that for Flux's packing and for
    Wan's 2x2 patches (``WanPipeline.check_inputs`` wants multiples of 16)."""
    kind = pipeline_kind(pipe)
    factor = _spatial_factor(pipe)
    if kind.video:
        return factor * int(_denoiser_config(pipe).patch_size[1])
    return factor * 2 if kind.packed else factor


def frame_multiple(pipe: Any) -> int:
    """Video pipelines make ``k * frame_multiple + 1`` frames (the VAE's temporal factor)."""
    return int(pipe.vae_scale_factor_temporal)


def noise_shape(
    pipe: Any, batch_size: int, height: int, width: int, num_frames: int | None = None
) -> tuple[int, ...]:
    """The noise tensor the pipeline's prepare_latents would draw (before packing): (B, C, h, w),
    or (B, C, f, h, w) for video pipelines (``num_frames`` of the form k * temporal + 1)."""
    kind = pipeline_kind(pipe)
    config = _denoiser_config(pipe)
    factor = _spatial_factor(pipe)
    if kind.video:
        if num_frames is None:
            raise invalid("num_frames", f"{type(pipe).__name__} needs a number of frames")
        frames = (num_frames - 1) // frame_multiple(pipe) + 1
        return (batch_size, int(config.in_channels), frames, height // factor, width // factor)
    if kind.family == "flux":
        channels = int(config.in_channels) // 4
        return (batch_size, channels, 2 * (height // (factor * 2)), 2 * (width // (factor * 2)))
    return (batch_size, int(config.in_channels), height // factor, width // factor)


def model_scheduler_config(pipe: Any) -> dict[str, Any]:
    """The pipeline's scheduler config as ``from_config`` would read it.

    Keys that only hold the class's defaults (``_use_default_values``) are dropped, as diffusers
    drops them when another class is built ``from_config``: SD 1.5's config has no
    ``timestep_spacing``, so Euler gets its own default ("linspace"), not PNDM's ("leading").
    """
    config = dict(pipe.scheduler.config)
    defaults = set(config.pop("_use_default_values", None) or ())
    return {k: v for k, v in config.items() if not k.startswith("_") and k not in defaults}


def pipeline_schedule_overrides(
    pipe: Any,
    num_inference_steps: int,
    height: int,
    width: int,
    scheduler_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """set_timesteps extras the pipeline passes itself (Flux: linspace sigmas and ``mu``; SD3: mu).

    ``scheduler_config`` is the config of the scheduler that will run (``run_config``; default:
    the pipeline's own scheduler): the pipeline reads ``use_flow_sigmas``,
    ``use_dynamic_shifting`` and the shift bounds off it. Asking the service for the schedule
    with the same extras makes its Schedule the one the pipeline would compute.
    """
    kind = pipeline_kind(pipe)
    config = pipe.scheduler.config if scheduler_config is None else scheduler_config
    if kind.family == "flux":
        seq_len = (height // (pipe.vae_scale_factor * 2)) * (width // (pipe.vae_scale_factor * 2))
        extras: dict[str, Any] = {
            "mu": calculate_shift(seq_len, config, max_shift_default=1.15),
        }
        if not config.get("use_flow_sigmas", False):
            n = num_inference_steps
            extras["sigmas"] = np.linspace(1.0, 1 / n, n).tolist()
        return extras
    if kind.family == "sd3" and config.get("use_dynamic_shifting", None):
        patch = int(_denoiser_config(pipe).patch_size)
        factor = int(pipe.vae_scale_factor)
        seq_len = (height // factor // patch) * (width // factor // patch)
        return {"mu": calculate_shift(seq_len, config, max_shift_default=1.16)}
    return {}


def calculate_shift(seq_len: int, config: Mapping[str, Any], *, max_shift_default: float) -> float:
    # diffusers.pipelines.flux.pipeline_flux.calculate_shift, same float arithmetic.
    base_seq = config.get("base_image_seq_len", 256)
    max_seq = config.get("max_image_seq_len", 4096)
    base_shift = config.get("base_shift", 0.5)
    max_shift = config.get("max_shift", max_shift_default)
    m = (max_shift - base_shift) / (max_seq - base_seq)
    b = base_shift - m * base_seq
    return float(seq_len * m + b)


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
    if ":" in name:
        name = str(config.get("_class_name") or _ecosystem_class(model_class))
    cls = scheduler_class(name)
    accepted = set(inspect.signature(cls).parameters) - {"args", "kwargs"}
    kwargs = {k: _plain(v) for k, v in config.items() if k in accepted}
    return cls.from_config(kwargs)


def run_config(
    name: str,
    model_config: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    model_class: str | None = None,
) -> Mapping[str, Any]:
    """The config of the scheduler that will run: class ``name`` (an ecosystem schedule's, as
    :func:`scheduler_from_schedule` picks it) from the model's scheduler config with the
    request's config overrides (keys the class lacks are dropped, as ``from_config`` drops
    them). A name that is no diffusers class comes back as the merged config: the service
    refuses it, naming the nearest classes."""
    config = {**model_config, **(overrides or {})}
    try:
        return _scheduler_from_config(name, config, model_class).config
    except InvalidArgumentError:
        return config


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


def pack_flux_latents(latents: Any) -> Any:
    """FluxPipeline._pack_latents: (B, C, h, w) -> (B, h/2 * w/2, C * 4)."""
    b, c, h, w = latents.shape
    latents = latents.view(b, c, h // 2, 2, w // 2, 2)
    latents = latents.permute(0, 2, 4, 1, 3, 5)
    return latents.reshape(b, (h // 2) * (w // 2), c * 4)


def pipeline_latents(pipe: Any, latents: Any, *, device: Any = None, dtype: Any = None) -> Any:
    """The ``latents=`` tensor that makes ``pipe`` start from exactly this noise.

    ``latents`` must be unscaled noise (``Latents.init_noise_sigma == 1``): SD and SDXL multiply
    by their scheduler's ``init_noise_sigma`` themselves, and SD3 and Flux never scale, so in both
    cases the unscaled noise is what the pipeline's own generator path starts from. The copy to a
    CUDA device goes through pinned memory, non-blocking.
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
    tensor = latents.to_torch(device=device, dtype=dtype)
    if kind.packed:
        tensor = pack_flux_latents(tensor)
    return tensor


def replay_generator_states(
    seeds: Sequence[int],
    shape: Sequence[int],
    *,
    dtype: str = "float32",
    seed_mode: str = "per_item",
    source: str = "cpu",
) -> list[bytes]:
    """Each generator's state right after the pipeline's initial draw of a ``shape`` batch
    (torch ``get_state()`` bytes: the CPU generator's, or the CUDA generator's seed and offset).

    ``per_item``: one generator per seed, each past one ``(1, C, h, w)`` draw (diffusers' list of
    generators); ``batch``: one generator (the first seed) past the whole ``(B, C, h, w)`` draw.
    The replay is the core's (``LatentsRequest.generator_states``), the same the service answers
    with.
    """
    from sigmaserve.latents import latents_request

    request = latents_request(
        shape=tuple(shape),
        seeds=list(seeds) if seed_mode == "per_item" else [seeds[0]],
        seed_mode=seed_mode,
        source=source,
        dtype=dtype,
        sigma=1.0,
        preset=None,
        return_generator_states=True,
    )
    return [bytes(state) for state in request.generator_states()]


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
                seeds,
                tuple(latents.array.shape),
                dtype=torch_dtype_name(dtype),
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

    name = pipeline_kind(pipe).noise_dtype
    return getattr(torch, name) if name else _pipeline_dtype(pipe)


def _pipeline_dtype(pipe: Any) -> Any:
    for name in ("text_encoder", "unet", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None:
            return module.dtype
    return pipe.dtype
