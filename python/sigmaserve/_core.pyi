"""Type stubs of ``sigmaserve._core``, the PyO3 binding (rust_py/). Checked by mypy.stubtest."""

from collections.abc import Mapping
from typing import Any, Self, final

import numpy as np

__version__: str
__all__ = [
    "BatchStream",
    "Generator",
    "__version__",
    "ecosystem_names",
    "ecosystem_schedule",
    "noise_gpu_presets",
    "noise_randn",
    "noise_sample",
    "noise_set_simd",
    "noise_simd_isa",
    "schedule_get",
    "schedule_presets",
    "schedule_schedulers",
    "wire_latents_reply",
]

def noise_randn(
    shape: list[int],
    seed: int,
    source: str = "cpu",
    dtype: str = "float32",
    cpu_kernel: str | None = None,
    gpu: str | None = None,
    max_elements: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray: ...
def noise_sample(
    shape: list[int],
    seeds: list[int],
    seed_mode: str = "per_item",
    source: str = "cpu",
    dtype: str = "float32",
    cpu_kernel: str | None = None,
    gpu: str | None = None,
    batch_index: list[int] | None = None,
    subseeds: list[int] | None = None,
    subseed_strength: float = 0.0,
    seed_resize_from: tuple[int, int] | None = None,
    max_elements: int | None = None,
) -> np.ndarray: ...
def noise_gpu_presets() -> list[tuple[str, int, int]]: ...
def noise_simd_isa() -> str: ...
def noise_set_simd(enabled: bool) -> None: ...

@final
class Generator:
    def __new__(
        cls, seed: int, source: str = "cpu", cpu_kernel: str | None = None, gpu: str | None = None
    ) -> Self: ...
    def randn(
        self,
        shape: list[int],
        dtype: str = "float32",
        max_elements: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray: ...
    def skip(self, shape: list[int], dtype: str = "float32") -> None: ...
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
    scheduler: str,
    num_inference_steps: int | None,
    preset: str | None,
    config: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Compute a diffusers schedule; returns the attribute dict of ``sigmaserve.Schedule``.

    Keys: ``scheduler`` (str), ``timesteps`` (read-only int64/float32/float64 array),
    ``sigmas`` (read-only float32 array or None), ``init_noise_sigma`` (float), ``betas`` and
    ``alphas_cumprod`` (read-only float32 arrays, empty for EDM and flow matching), ``config``
    (dict), ``warnings`` (tuple[str, ...]), ``num_inference_steps`` (int), ``order`` (int),
    ``img2img`` (dict with strength, begin_index, num_timesteps, start_timestep; or None).
    Raises ``sigmaserve.errors.InvalidArgumentError`` (``TooLargeError`` for sizes) naming the
    field at fault.
    """

def schedule_presets() -> list[dict[str, Any]]:
    """The presets: dicts with name, repo, class_name, latent_channels, vae_scale_factor, config."""

def schedule_schedulers() -> list[str]:
    """The diffusers scheduler class names ``schedule_get`` accepts."""

# --- ecosystem schedules (rust_py/src/ecosystem.rs) ---

def ecosystem_schedule(
    scheduler: str,
    num_inference_steps: int,
    preset: str | None = None,
    config: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]: ...
def ecosystem_names(tool: str) -> list[str]: ...

# --- gRPC hot path (rust_py/src/wire.rs) ---

def wire_latents_reply(
    prefix: bytes,
    factor: float,
    shape: list[int],
    seeds: list[int],
    seed_mode: str = "per_item",
    source: str = "cpu",
    dtype: str = "float32",
    cpu_kernel: str | None = None,
    gpu: str | None = None,
    batch_index: list[int] | None = None,
    subseeds: list[int] | None = None,
    subseed_strength: float = 0.0,
    seed_resize_from: tuple[int, int] | None = None,
    max_elements: int | None = None,
    strategy: str = "inplace",
) -> bytes: ...

@final
class BatchStream:
    def __new__(
        cls,
        seed: int,
        numel: int,
        dtype: str = "float32",
        factor: float = 1.0,
        cpu_kernel: str | None = None,
        source: str = "cpu",
        gpu: str | None = None,
    ) -> Self: ...
    def next_chunk(self, chunk_bytes: int) -> bytes | None: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def offset(self) -> int: ...
