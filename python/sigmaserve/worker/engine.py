"""The worker: loads a diffusers pipeline and makes images from the noise service's latents."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sigmaserve.catalog import resolve_name
from sigmaserve.errors import invalid
from sigmaserve.worker import handoff

log = logging.getLogger("sigmaserve.worker")

DEFAULT_STEPS = 30
MAX_STEPS = 1000
# Images one pipeline call makes at most (accelerator memory); more run as several calls.
MAX_BATCH = 16
# Images one request may ask for (its reply carries every PNG); `sigmaserve generate` sends
# more seeds as several requests.
MAX_IMAGES = 64
MAX_PIXELS = 2048 * 2048
MAX_FRAMES = 1025
# Pixels times frames of one video: 64 frames at the largest image size (Wan 2.1 720p, 81 frames
# of 1280 x 720, is 75 M).
MAX_VIDEO_PIXELS = 64 * MAX_PIXELS
# How seeds map onto images: per_item (a generator per seed), batch (one seed, one generator for
# the whole batch), a1111 (one seed, image i drawn from seed + i).


class NoiseSource(Protocol):
    """What the worker needs from the noise service: a ``Client``, an ``AsyncClient`` run in a
    thread, or the ``sigmaserve`` module itself (local calls, same results)."""

    def get_schedule(
        self, scheduler: str, num_inference_steps: int | None, **kwargs: Any
    ) -> Any: ...

    def sample_init_latents(self, *, seeds: int | Sequence[int], **kwargs: Any) -> Any: ...


@dataclass
class Generation:
    """What one ``Worker.generate`` call made and used."""

    images: list[Any]  # PIL images (or numpy arrays with output_type="np"); [] for video
    seeds: list[int]
    scheduler: str
    timesteps: np.ndarray
    sigmas: np.ndarray | None
    init_noise_sigma: float
    num_inference_steps: int
    device: str
    dtype: str
    pipeline: str
    width: int
    height: int
    seconds: float = 0.0
    schedule_installed: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    prompt: str = ""
    negative_prompt: str | None = None
    guidance_scale: float | None = None
    source: str = "cpu"
    seed_mode: str = "per_item"
    model: str = ""
    warnings: tuple[str, ...] = ()
    # Video pipelines: one sequence of frames per seed (lists of PIL images, or (F, H, W, 3)
    # arrays with output_type="np"), and the frames per video.
    videos: list[Any] = field(default_factory=list)
    num_frames: int | None = None

    def parameters(self, index: int) -> str:
        """Image ``index``'s parameters in AUTOMATIC1111's "parameters" text (what its PNG Info
        tab, ComfyUI and image sites read): the prompt, the negative prompt, then
        ``key: value`` pairs (modules/processing.py ``create_infotext``, webui 1.10)."""
        from sigmaserve import __version__

        pairs: dict[str, Any] = {"Steps": self.num_inference_steps, "Sampler": self.sampler}
        if ":" in self.scheduler:
            pairs["Schedule type"] = self.scheduler
        if self.guidance_scale is not None:
            pairs["CFG scale"] = f"{self.guidance_scale:g}"
        pairs.update(
            {
                "Seed": self.seeds[index],
                "Size": f"{self.width}x{self.height}",
                "Model": self.model or self.pipeline,
                "RNG": RNG_NAMES.get(self.source, self.source),
                "Seed mode": self.seed_mode,
                "Init noise sigma": f"{self.init_noise_sigma:.6g}",
                "Version": f"sigmaserve {__version__}",
            }
        )
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in pairs.items()))
        return "\n".join(lines)

    @property
    def sampler(self) -> str:
        """The scheduler class that ran (an ecosystem schedule runs on one)."""
        return str(self.extras.get("scheduler_class", self.scheduler))

    def png_bytes(self) -> list[bytes]:
        """Each image as PNG file bytes, its parameters in a ``parameters`` text chunk."""
        return [to_png(image, self.parameters(i)) for i, image in enumerate(self.images)]

    def video_png_bytes(self) -> list[list[bytes]]:
        """Each video's frames as PNG file bytes, the video's parameters on its first frame."""
        return [
            [to_png(frame, self.parameters(i) if n == 0 else None) for n, frame in enumerate(video)]
            for i, video in enumerate(self.videos)
        ]


# AUTOMATIC1111's names of the noise sources (its "RNG" setting).
RNG_NAMES = {"cpu": "CPU", "cuda": "GPU", "a1111_nv": "NV"}


def _quote(value: Any) -> str:
    # AUTOMATIC1111's infotext quoting (modules/infotext_utils.py `quote`, webui 1.10): a value
    # holding a comma, a colon or a newline is written as a JSON string.
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def to_png(image: Any, parameters: str | None = None) -> bytes:
    """PNG file bytes of a PIL image (or a float array in [0, 1]), with ``parameters`` in a
    ``parameters`` text chunk when given."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    if isinstance(image, np.ndarray):
        image = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    info = None
    if parameters is not None:
        info = PngInfo()
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def pick_device(requested: str | None = None) -> str:
    """``requested``, else ``cuda`` when a CUDA device is usable, else ``cpu``."""
    import torch

    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, requested: str | None = None) -> Any:
    """float16 on CUDA, float32 on CPU, unless ``requested`` names one."""
    import torch

    if requested and requested != "auto":
        return getattr(torch, requested)
    return torch.float16 if device.startswith("cuda") else torch.float32


def quiet_dependencies() -> None:
    """Keep the dependencies' notices out of the worker's log: deprecations, import-time
    suggestions (torchvision, accelerate) and loading progress bars. Their errors still show;
    ``--log-level DEBUG`` keeps everything. Process-wide (logging, warnings filters): the
    ``worker`` and ``generate`` commands call it, the library itself does not."""
    if log.isEnabledFor(logging.DEBUG):
        return
    for variable in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(variable, "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(diffusers|transformers)\.")
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    try:
        import transformers
    except ImportError:  # only pipelines with text encoders need it
        return
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_pipeline(model: str | Path, *, device: str, dtype: Any) -> Any:
    """A diffusers pipeline from a local model folder (no network), on ``device``."""
    from diffusers import DiffusionPipeline

    path = Path(model)
    if not Path(path, "model_index.json").is_file():
        raise FileNotFoundError(f"{path} is not a diffusers model folder (no model_index.json)")
    # `dtype`: diffusers 0.42 deprecates `torch_dtype` (with a FutureWarning per load).
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    index = Path(path, "model_index.json").read_text(encoding="utf-8")
    if '"safety_checker"' in index:
        kwargs["safety_checker"] = None
        kwargs["requires_safety_checker"] = False
    pipe = DiffusionPipeline.from_pretrained(str(path), **kwargs)
    handoff.pipeline_kind(pipe)  # refuse unsupported classes early
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


class Worker:
    """A loaded pipeline plus a noise source; ``generate`` is serialised (one pipeline)."""

    def __init__(
        self,
        pipe: Any,
        noise: NoiseSource,
        *,
        device: str | None = None,
        default_steps: int = DEFAULT_STEPS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.pipe = pipe
        self.noise = noise
        self.kind = handoff.pipeline_kind(pipe)
        self.device = str(device or pipe.device)
        self.default_steps = default_steps
        self.max_batch = max_batch
        self.base_scheduler_config = handoff.model_scheduler_config(pipe)
        self.default_scheduler = type(pipe.scheduler).__name__
        # The model folder's name, for the images' parameters.
        self.model = Path(str(getattr(pipe, "name_or_path", "") or "")).name
        self._lock = threading.Lock()

    @classmethod
    def from_model(
        cls,
        model: str | Path,
        noise: NoiseSource,
        *,
        device: str | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> Worker:
        device = pick_device(device)
        pipe = load_pipeline(model, device=device, dtype=pick_dtype(device, dtype))
        return cls(pipe, noise, device=device, **kwargs)

    @property
    def dtype(self) -> Any:
        return handoff._pipeline_dtype(self.pipe)

    @property
    def is_video(self) -> bool:
        return self.kind.video

    def generate(
        self,
        prompt: str,
        *,
        seeds: int | Sequence[int],
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        scheduler: str | None = None,
        guidance_scale: float | None = None,
        width: int | None = None,
        height: int | None = None,
        scheduler_overrides: Mapping[str, Any] | None = None,
        source: str = "cpu",
        seed_mode: str = "per_item",
        batch_size: int | None = None,
        output_type: str = "pil",
        num_frames: int | None = None,
    ) -> Generation:
        """Images for ``prompt`` from the service's schedule and latents: one per seed
        (``per_item``), or ``batch_size`` from one seed (``batch``: one generator, ``a1111``:
        seed + i). Up to ``MAX_IMAGES`` images, made ``max_batch`` at a time. Video pipelines
        make videos of ``num_frames`` frames instead, one per image."""
        plan = _seed_plan(seeds, seed_mode, batch_size, self.max_batch)
        source = resolve_name("source", source)
        steps = self.default_steps if num_inference_steps is None else num_inference_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 < steps <= MAX_STEPS:
            raise invalid("num_inference_steps", f"must be an integer in 1..{MAX_STEPS}")
        height, width = self._size(height, width)
        frames = self._frames(num_frames, height * width)
        # Names resolve as everywhere (any case, the tools' aliases, the core's resolver); an
        # unknown one is refused, naming the nearest, before anything runs.
        name, alias_options = handoff.resolve_scheduler(scheduler or self.default_scheduler)
        overrides = {**alias_options, **dict(scheduler_overrides or {})}

        started = time.perf_counter()
        # What the pipeline's __call__ sets on the scheduler that runs (the core's preset of
        # the pipeline's class, for this size).
        schedule = self.noise.get_schedule(
            name,
            steps,
            **handoff.schedule_kwargs(
                self.pipe,
                name,
                height=height,
                width=width,
                num_frames=frames,
                model_config=self.base_scheduler_config,
                overrides=overrides,
            ),
        )
        notes = list(schedule.warnings)
        if source != "cpu" and not self.device.startswith("cuda"):
            notes.append(
                f"source {source}: the initial noise is that generator's, but a pipeline on "
                f"{self.device} draws the sampler's later noise (ancestral and SDE schedulers) "
                "from CPU generators"
            )
        outputs: list[Any] = []
        run = None
        for chunk in plan.chunks:
            latents = self.noise.sample_init_latents(
                **handoff.latents_kwargs(
                    self.pipe,
                    chunk.seeds,
                    batch_size=chunk.size,
                    height=height,
                    width=width,
                    num_frames=frames,
                    seed_mode=chunk.mode,
                    source=source,
                )
            )
            with self._lock:
                run = handoff.run_pipeline(
                    self.pipe,
                    schedule=schedule,
                    latents=latents,
                    prompt=prompt,
                    negative_prompt=negative_prompt or None,
                    guidance_scale=guidance_scale,
                    num_inference_steps=steps,
                    height=height,
                    width=width,
                    num_frames=frames,
                    generator_states=getattr(latents, "generator_states", None),
                    seed_mode=chunk.mode,
                    source=source,
                    output_type=output_type,
                    device=self.device,
                )
            outputs += list(run.output.frames if self.is_video else run.output.images)
        assert run is not None  # a plan has at least one chunk
        timesteps = _array(getattr(run.scheduler, "timesteps", None))
        return Generation(
            images=[] if self.is_video else outputs,
            seeds=plan.image_seeds,
            scheduler=str(schedule.scheduler),
            timesteps=np.asarray(schedule.timesteps) if timesteps is None else timesteps,
            sigmas=_array(getattr(run.scheduler, "sigmas", None)),
            init_noise_sigma=run.init_noise_sigma,
            num_inference_steps=steps,
            device=self.device,
            dtype=handoff.torch_dtype_name(self.dtype),
            pipeline=type(self.pipe).__name__,
            width=width,
            height=height,
            seconds=time.perf_counter() - started,
            schedule_installed=run.installed,
            extras={
                "schedule_max_rel_diff": run.max_rel_diff,
                "scheduler_class": type(run.scheduler).__name__,
            },
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            guidance_scale=run.guidance_scale,
            source=source,
            seed_mode=plan.mode,
            model=self.model,
            warnings=tuple(notes),
            videos=outputs if self.is_video else [],
            num_frames=frames,
        )

    def _frames(self, num_frames: int | None, pixels: int) -> int | None:
        """The frames to make: None for image pipelines, else ``num_frames`` or the pipeline's
        default, of the form ``k * temporal + 1`` (the pipeline would round anything else)."""
        if not self.is_video:
            if num_frames is not None:
                raise invalid("num_frames", f"{type(self.pipe).__name__} makes images, not videos")
            return None
        frames = handoff.default_num_frames(self.pipe) if num_frames is None else num_frames
        multiple = handoff.frame_multiple(self.pipe)
        if isinstance(frames, bool) or not isinstance(frames, int) or not 0 < frames <= MAX_FRAMES:
            raise invalid("num_frames", f"must be an integer in 1..{MAX_FRAMES}, got {frames!r}")
        if (frames - 1) % multiple:
            raise invalid(
                "num_frames",
                f"{type(self.pipe).__name__} makes {multiple}k+1 frames "
                f"(1, {multiple + 1}, {2 * multiple + 1}, ...), got {frames}",
            )
        if frames * pixels > MAX_VIDEO_PIXELS:
            raise invalid(
                "num_frames",
                f"{frames} frames of {pixels} pixels are over the worker's {MAX_VIDEO_PIXELS} "
                "pixels per video",
            )
        return frames

    def _size(self, height: int | None, width: int | None) -> tuple[int, int]:
        default_h, default_w = handoff.default_size(self.pipe)
        height = height or default_h
        width = width or default_w
        multiple = handoff.size_multiple(self.pipe)
        for field_name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise invalid(field_name, f"must be a positive integer, got {value!r}")
            if value % multiple:
                raise invalid(field_name, f"must be a multiple of {multiple}, got {value}")
        if height * width > MAX_PIXELS:
            raise invalid("width", f"{width}x{height} is over the worker's {MAX_PIXELS} pixels")
        return height, width


def _array(value: Any) -> np.ndarray | None:
    """A scheduler's tensor attribute as numpy (None when the scheduler has none)."""
    if value is None or not hasattr(value, "detach"):
        return None
    return np.asarray(value.detach().cpu().numpy())


@dataclass(frozen=True)
class SeedChunk:
    """One pipeline call: its seeds as the service takes them, and how many images."""

    seeds: list[int]
    mode: str  # "per_item" or "batch"
    size: int


@dataclass(frozen=True)
class SeedPlan:
    """The pipeline calls of a request and the seed each image is labelled with."""

    mode: str
    chunks: list[SeedChunk]
    image_seeds: list[int]


def _seed_plan(
    seeds: int | Sequence[int], mode: str, batch_size: int | None, max_batch: int
) -> SeedPlan:
    """The pipeline calls for ``seeds`` in seed ``mode``.

    ``per_item`` and ``a1111`` (seed + i, drawn as a list of per-item generators, as A1111
    does) split into calls of ``max_batch`` images: every image has its own generator, so the
    split changes nothing. ``batch`` is one generator for the whole batch and cannot be split."""
    values = _seeds(seeds)
    mode = resolve_name("seed_mode", mode)  # the core's names: any case, did-you-mean
    if mode == "per_item":
        if batch_size not in (None, 0, len(values)):
            raise invalid("batch_size", "per_item makes one image per seed; leave batch_size unset")
        items = values
    else:
        if len(values) != 1:
            raise invalid("seeds", f"seed_mode {mode} takes one seed, got {len(values)}")
        count = batch_size or 1
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise invalid("batch_size", f"must be a positive integer, got {batch_size!r}")
        if mode == "batch":
            if count > max_batch:
                raise invalid(
                    "batch_size",
                    f"one generator for the whole batch: at most {max_batch} images (this "
                    f"worker's pipeline batch), got {count}",
                )
            return SeedPlan(mode, [SeedChunk(values, "batch", count)], values * count)
        # Seed + i on the signed reading of the seed: a uint64 from the wire (2**64 - 1 for -1)
        # then counts on as torch would (-1, 0, 1 ...), never past 2**64.
        first = values[0] - (1 << 64) if values[0] >= 1 << 63 else values[0]
        items = _seeds([first + i for i in range(count)])
    if len(items) > MAX_IMAGES:
        raise invalid("seeds", f"at most {MAX_IMAGES} images per request, got {len(items)}")
    chunks = [
        SeedChunk(items[i : i + max_batch], "per_item", len(items[i : i + max_batch]))
        for i in range(0, len(items), max_batch)
    ]
    return SeedPlan(mode, chunks, items)


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    values = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not values:
        raise invalid("seeds", "give at least one seed")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise invalid("seeds", f"seeds must be integers, got {value!r}")
        if not -(1 << 63) <= int(value) < (1 << 64):
            raise invalid("seeds", f"seed {value} is outside [-2**63, 2**64)")
        out.append(int(value))
    return out
