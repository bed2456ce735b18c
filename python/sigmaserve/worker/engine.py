"""The worker: loads a diffusers pipeline and makes images from the noise service's latents."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sigmaserve.errors import invalid
from sigmaserve.worker import handoff

log = logging.getLogger("sigmaserve.worker")

DEFAULT_STEPS = 30
MAX_STEPS = 1000
MAX_BATCH = 16
MAX_PIXELS = 2048 * 2048
MAX_FRAMES = 1025
# Pixels times frames of one video: 64 frames at the largest image size (Wan 2.1 720p, 81 frames
# of 1280 x 720, is 75 M).
MAX_VIDEO_PIXELS = 64 * MAX_PIXELS


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
    # Video pipelines: one sequence of frames per seed (lists of PIL images, or (F, H, W, 3)
    # arrays with output_type="np"), and the frames per video.
    videos: list[Any] = field(default_factory=list)
    num_frames: int | None = None

    def png_bytes(self) -> list[bytes]:
        """Each image as PNG file bytes."""
        return [to_png(image) for image in self.images]

    def video_png_bytes(self) -> list[list[bytes]]:
        """Each video's frames as PNG file bytes."""
        return [[to_png(frame) for frame in video] for video in self.videos]


def to_png(image: Any) -> bytes:
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
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


def load_pipeline(model: str | Path, *, device: str, dtype: Any) -> Any:
    """A diffusers pipeline from a local model folder (no network), on ``device``."""
    from diffusers import DiffusionPipeline

    path = Path(model)
    if not Path(path, "model_index.json").is_file():
        raise FileNotFoundError(f"{path} is not a diffusers model folder (no model_index.json)")
    kwargs: dict[str, Any] = {"torch_dtype": dtype, "local_files_only": True}
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
        output_type: str = "pil",
        num_frames: int | None = None,
    ) -> Generation:
        """Images (videos of ``num_frames`` frames for video pipelines) for ``prompt``, one per
        seed, from the service's schedule and latents."""
        seed_list = _seeds(seeds, self.max_batch)
        steps = self.default_steps if num_inference_steps is None else num_inference_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 < steps <= MAX_STEPS:
            raise invalid("num_inference_steps", f"must be an integer in 1..{MAX_STEPS}")
        height, width = self._size(height, width)
        frames = self._frames(num_frames, height * width)
        name = scheduler or self.default_scheduler
        if ":" not in name:
            handoff.scheduler_class(name)
        overrides = dict(scheduler_overrides or {})
        run_config = handoff.run_config(name, self.base_scheduler_config, overrides)
        overrides.update(
            handoff.pipeline_schedule_overrides(self.pipe, steps, height, width, run_config)
        )
        shape = handoff.noise_shape(self.pipe, len(seed_list), height, width, frames)
        dtype_name = handoff.torch_dtype_name(handoff.noise_dtype(self.pipe))

        started = time.perf_counter()
        schedule = self.noise.get_schedule(
            name, steps, preset=None, config=self.base_scheduler_config, **overrides
        )
        latents = self.noise.sample_init_latents(
            shape=shape,
            seeds=seed_list,
            seed_mode="per_item",
            dtype=dtype_name,
            sigma=1.0,
            preset=None,
        )
        states = getattr(latents, "generator_states", None)
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
                generator_states=states,
                output_type=output_type,
                device=self.device,
            )
        videos = list(run.output.frames) if self.is_video else []
        images = [] if self.is_video else list(run.output.images)
        timesteps = _array(getattr(run.scheduler, "timesteps", None))
        sigmas = _array(getattr(run.scheduler, "sigmas", None))
        return Generation(
            images=images,
            seeds=seed_list,
            scheduler=type(run.scheduler).__name__,
            timesteps=np.asarray(schedule.timesteps) if timesteps is None else timesteps,
            sigmas=sigmas,
            init_noise_sigma=run.init_noise_sigma,
            num_inference_steps=steps,
            device=self.device,
            dtype=handoff.torch_dtype_name(self.dtype),
            pipeline=type(self.pipe).__name__,
            width=width,
            height=height,
            seconds=time.perf_counter() - started,
            schedule_installed=run.installed,
            extras={"schedule_max_rel_diff": run.max_rel_diff},
            videos=videos,
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


def _seeds(seeds: int | Sequence[int], max_batch: int) -> list[int]:
    values = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not values:
        raise invalid("seeds", "give at least one seed")
    if len(values) > max_batch:
        raise invalid("seeds", f"at most {max_batch} seeds per request, got {len(values)}")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise invalid("seeds", f"seeds must be integers, got {value!r}")
        if not -(1 << 63) <= int(value) < (1 << 64):
            raise invalid("seeds", f"seed {value} is outside [-2**63, 2**64)")
        out.append(int(value))
    return out
