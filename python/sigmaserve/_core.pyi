"""Type stubs of ``sigmaserve._core``, the PyO3 binding (rust_py/). Checked by mypy.stubtest."""

from collections.abc import Mapping, Sequence
from typing import Any, Self, TypeAlias, final

import numpy as np

__version__: str
__all__ = [
    "Generator",
    "LatentsRequest",
    "PayloadStream",
    "__version__",
    "ecosystem_names",
    "ecosystem_schedule",
    "latents_default_preset",
    "latents_noise_option_keys",
    "name_kinds",
    "noise_gpu_presets",
    "noise_randn",
    "noise_set_simd",
    "noise_simd_isa",
    "resolve_name",
    "schedule_aliases",
    "schedule_ecosystem_names",
    "schedule_excluded",
    "schedule_families",
    "schedule_family_descriptions",
    "schedule_get",
    "schedule_pipeline_call",
    "schedule_presets",
    "schedule_schedulers",
    "valid_names",
]

# --- noise (rust_py/src/noise.rs): arguments are type-checked here, validated by the core ---

_Shape: TypeAlias = int | Sequence[int]
_GpuArg: TypeAlias = str | tuple[int, int] | None

def noise_randn(
    shape: _Shape,
    seed: int,
    source: str | None = None,
    dtype: str | None = None,
    cpu_kernel: str | None = None,
    gpu: _GpuArg = None,
    max_elements: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray: ...
def noise_gpu_presets() -> list[tuple[str, int, int]]: ...
def noise_simd_isa() -> str: ...
def noise_set_simd(enabled: bool) -> None: ...

@final
class Generator:
    def __new__(
        cls,
        seed: int,
        source: str | None = None,
        cpu_kernel: str | None = None,
        gpu: _GpuArg = None,
    ) -> Self: ...
    def randn(
        self,
        shape: _Shape,
        dtype: str | None = None,
        max_elements: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray: ...
    def skip(self, shape: _Shape, dtype: str | None = None) -> None: ...
    def get_state(self) -> bytes: ...
    def set_state(self, state: bytes) -> None: ...
    @property
    def seed(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def cpu_kernel(self) -> str | None: ...
    @property
    def gpu(self) -> tuple[int, int] | None: ...
    @property
    def offset(self) -> int | None: ...

def schedule_get(
    scheduler: str | None,
    num_inference_steps: int | None,
    preset: str | None,
    config: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    pipeline: bool = True,
) -> dict[str, Any]:
    """Compute a schedule (the preset pipeline's conventions unless ``pipeline`` is false);
    returns the attribute dict of ``sigmaserve.Schedule``.

    Keys: ``scheduler`` (str), ``timesteps`` (read-only int64/float32/float64 array),
    ``sigmas`` (read-only float32/float64 array or None), ``init_noise_sigma`` (float),
    ``betas`` and ``alphas_cumprod`` (read-only float32/float64 arrays, empty where the
    scheduler has none), ``config``
    (dict), ``warnings`` (tuple[str, ...]), ``num_inference_steps`` (int), ``order`` (int),
    ``img2img`` (dict with strength, begin_index, num_timesteps, start_timestep; or None).
    Raises ``sigmaserve.errors.InvalidArgumentError`` (``TooLargeError`` for sizes) naming the
    field at fault.
    """

def schedule_pipeline_call(
    scheduler: str | None,
    num_inference_steps: int | None,
    preset: str | None,
    config: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
) -> dict[str, Any]:
    """What the preset's pipeline passes to ``set_timesteps`` (a preset is required): keys
    ``preset``, ``pipeline``, ``scheduler``, ``convention``, ``num_inference_steps``, ``width``,
    ``height``, ``num_frames``, ``sigmas`` (list or None), ``mu`` (float or None) and ``shift``
    (None, or a dict of ``calculate_shift``'s inputs ``image_seq_len``, ``base_image_seq_len``,
    ``max_image_seq_len``, ``base_shift``, ``max_shift`` and its ``mu``)."""

def schedule_presets() -> list[dict[str, Any]]:
    """The presets: dicts with name, repo, class_name, pipeline, pipeline_file, steps, width,
    height, num_frames, model, convention, latent_channels, vae_scale_factor, pack_factor,
    layout, aliases, config."""

def schedule_schedulers() -> list[str]:
    """The diffusers scheduler class names ``schedule_get`` accepts."""

def schedule_families() -> list[tuple[str, str]]:
    """``(class name, family)`` for every class ``schedule_get`` accepts."""

def schedule_family_descriptions() -> list[tuple[str, str]]:
    """``(family, description)`` of every scheduler family."""

def schedule_excluded() -> list[tuple[str, str]]:
    """``(class name, reason)`` of the diffusers classes sigmaserve does not reproduce."""

def schedule_aliases() -> list[dict[str, Any]]:
    """The A1111 / ComfyUI scheduler aliases: dicts with name, tool, scheduler, options."""

def schedule_ecosystem_names() -> list[str]:
    """Every ecosystem schedule as ``"<tool>:<name>"``."""

def resolve_name(kind: str, name: str) -> tuple[str, str | None, dict[str, Any]]:
    """``(canonical name, tool or None, alias options)`` of a name of ``kind``."""

def name_kinds() -> list[str]:
    """The kinds ``resolve_name`` takes."""

def valid_names(kind: str) -> list[str]:
    """Every valid (canonical) name of ``kind``."""

# --- ecosystem schedules (rust_py/src/ecosystem.rs) ---

def ecosystem_schedule(
    scheduler: str,
    num_inference_steps: int,
    preset: str | None = None,
    config: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]: ...
def ecosystem_names(tool: str) -> list[str]: ...

# --- latents (rust_py/src/latents.rs): the one latents request ---

def latents_default_preset() -> str: ...
def latents_noise_option_keys() -> list[str]: ...

@final
class LatentsRequest:
    """A validated ``sample_init_latents`` request (every rule is the core's)."""

    def __new__(
        cls,
        *,
        seeds: int | Sequence[int],
        shape: _Shape | None = None,
        width: int | None = None,
        height: int | None = None,
        batch_size: int | None = None,
        num_frames: int | None = None,
        preset: str | None = ...,
        seed_mode: str | None = None,
        source: str | None = None,
        dtype: str | None = None,
        sigma: float | None = None,
        scheduler: str | None = None,
        num_inference_steps: int | None = None,
        scheduler_overrides: Mapping[str, Any] | None = None,
        noise_options: Mapping[str, Any] | None = None,
        return_generator_states: bool = False,
        max_elements: int | None = None,
    ) -> Self: ...
    def with_seeds(self, seeds: int | Sequence[int]) -> LatentsRequest: ...
    def check_size(self, max_elements: int, max_bytes: int | None = None) -> None: ...
    def sample(self, out: np.ndarray | None = None) -> np.ndarray: ...
    def reply(self, prefix: bytes) -> bytes: ...
    def stream(self, chunk_bytes: int, tag: bytes) -> PayloadStream: ...
    def generator_states(self) -> list[bytes]: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def drawn_shape(self) -> tuple[int, ...]: ...
    @property
    def draw_dtype(self) -> str: ...
    @property
    def numel(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def seeds(self) -> list[int]: ...
    @property
    def wrapped_seeds(self) -> list[int]: ...
    @property
    def init_noise_sigma(self) -> float: ...
    @property
    def preset(self) -> str | None: ...
    @property
    def return_generator_states(self) -> bool: ...
    @property
    def is_small(self) -> bool: ...
    @property
    def working_bytes(self) -> int: ...

@final
class PayloadStream:
    def next_message(self) -> bytes | None: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def remaining_bytes(self) -> int: ...
