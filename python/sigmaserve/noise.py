"""Seeded Gaussian noise bit-identical to torch's generators.

``source="cpu"`` reproduces ``torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed),
dtype=...)`` bit for bit (x86-64 wheels' AVX2 kernel by default, ``cpu_kernel="default"`` for torch
without AVX2); ``source="cuda"`` the Philox stream of ``torch.Generator("cuda")`` computed on the
CPU (exact stream and offsets, values within about 1e-6 of a GPU); ``source="a1111_nv"``
AUTOMATIC1111's "NV" formula, bit-identical.

Seeds are ints in [-2**63, 2**64); negative seeds wrap like torch's ``manual_seed``. The CPU source
uses only the low 32 bits of the seed (as torch does: seeds ``s`` and ``s + 2**32`` give the same
noise); the CUDA and NV sources use all 64. bfloat16 comes back as ``uint16`` bit patterns (numpy
has no bfloat16); :func:`to_torch` turns any result into a torch tensor of the right dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Union, overload

import numpy as np

from sigmaserve import _core
from sigmaserve.dtypes import dtype_name
from sigmaserve.errors import invalid

if TYPE_CHECKING:
    import torch

Shape = Union[int, Sequence[int]]  # noqa: UP007 (runtime alias, Python 3.10)
GpuSpec = Union[str, tuple[int, int], None]  # noqa: UP007
OutT = TypeVar("OutT")  # the caller's `out` buffer (numpy array or torch tensor), returned as is

# The canonical names, as the core's resolver owns them (sigmaserve.catalog()["names"]).
DTYPES: tuple[str, ...] = tuple(_core.valid_names("dtype"))
SOURCES: tuple[str, ...] = tuple(_core.valid_names("source"))
SEED_MODES: tuple[str, ...] = tuple(_core.valid_names("seed_mode"))


def _out_array(out: Any, dtype: str) -> np.ndarray:
    """The numpy array the core fills for ``out``: the array itself, or a view of a CPU
    torch tensor's memory. 16-bit floats are handed over as their uint16 bits (a view, no copy).
    The core checks the element type against ``dtype``, the shape, contiguity and
    writeability."""
    if isinstance(out, np.ndarray):
        arr = out
    elif type(out).__module__.startswith("torch") and hasattr(out, "numpy"):
        import torch

        if out.device.type != "cpu":
            raise invalid("out", f"must be a CPU tensor, got one on {out.device}")
        if out.dtype != getattr(torch, dtype, None):
            raise invalid("out", f"has dtype {out.dtype}, expected torch.{dtype}")
        if out.requires_grad:
            raise invalid("out", "must not require grad")
        if out.layout != torch.strided:
            raise invalid("out", f"must be a dense tensor, got layout {out.layout}")
        if out.dtype in (torch.float16, torch.bfloat16):
            out = out.view(torch.int16)
        arr = out.numpy()
    else:
        raise invalid(
            "out", f"must be a numpy array or a CPU torch tensor, got {type(out).__name__}"
        )
    if arr.dtype == np.int16 or (arr.dtype == np.float16 and dtype != "bfloat16"):
        if not arr.flags.c_contiguous:
            raise invalid("out", "must be C-contiguous")
        arr = arr.view(np.uint16)
    return arr


@overload
def randn(
    shape: Shape,
    seed: int,
    *,
    source: str = "cpu",
    dtype: Any = "float32",
    cpu_kernel: str | None = None,
    gpu: GpuSpec = None,
    max_elements: int | None = None,
    out: None = None,
) -> np.ndarray: ...


@overload
def randn(
    shape: Shape,
    seed: int,
    *,
    source: str = "cpu",
    dtype: Any = "float32",
    cpu_kernel: str | None = None,
    gpu: GpuSpec = None,
    max_elements: int | None = None,
    out: OutT,
) -> OutT: ...


def randn(
    shape: Shape,
    seed: int,
    *,
    source: str = "cpu",
    dtype: Any = "float32",
    cpu_kernel: str | None = None,
    gpu: GpuSpec = None,
    max_elements: int | None = None,
    out: Any = None,
) -> Any:
    """``torch.randn(shape, generator=Generator(device).manual_seed(seed), dtype=dtype)`` as numpy.

    ``gpu`` (``source="cuda"`` only) is a preset name (see :func:`gpu_presets`) or
    ``(sm_count, max_threads_per_sm)``; it decides the values beyond the GPU's thread count. The
    default is an unlimited grid (A1111's indexing, equal to every GPU up to its thread count).

    ``out`` fills an existing C-contiguous array of exactly ``shape`` in place and returns it: a
    numpy array of the dtype (``uint16`` for bfloat16) or a CPU torch tensor of it, pinned memory
    included. Reusing a buffer skips the allocation and page faults of a fresh array.
    """
    name = dtype_name(dtype)
    result = _core.noise_randn(
        shape,
        seed,
        source=source,
        dtype=name,
        cpu_kernel=cpu_kernel,
        gpu=gpu,
        max_elements=max_elements,
        out=None if out is None else _out_array(out, name),
    )
    return result if out is None else out


class Generator:
    """One noise stream, like a seeded ``torch.Generator``.

    Successive :meth:`randn` calls continue the stream exactly as successive
    ``torch.randn(..., generator=g)`` calls do: the CPU source's cached second value of the
    numel < 16 path and the CUDA source's philox offset included.
    """

    def __init__(
        self,
        seed: int,
        *,
        source: str = "cpu",
        cpu_kernel: str | None = None,
        gpu: GpuSpec = None,
    ) -> None:
        self._inner = _core.Generator(seed, source=source, cpu_kernel=cpu_kernel, gpu=gpu)

    def manual_seed(self, seed: int) -> Generator:
        """Re-seeds in place (like ``torch.Generator.manual_seed``) and returns ``self``."""
        self._inner = _core.Generator(
            seed, source=self.source, cpu_kernel=self.cpu_kernel, gpu=self._inner.gpu
        )
        return self

    @overload
    def randn(
        self,
        shape: Shape,
        dtype: Any = "float32",
        *,
        max_elements: int | None = None,
        out: None = None,
    ) -> np.ndarray: ...

    @overload
    def randn(
        self,
        shape: Shape,
        dtype: Any = "float32",
        *,
        max_elements: int | None = None,
        out: OutT,
    ) -> OutT: ...

    def randn(
        self,
        shape: Shape,
        dtype: Any = "float32",
        *,
        max_elements: int | None = None,
        out: Any = None,
    ) -> Any:
        """One ``torch.randn(shape, generator=self, dtype=dtype)`` call; ``out`` as in
        :func:`randn` (the stream advances only when the call succeeds)."""
        name = dtype_name(dtype)
        target = None if out is None else _out_array(out, name)
        result = self._inner.randn(shape, name, max_elements, target)
        return result if out is None else out

    def skip(self, shape: Shape, dtype: Any = "float32") -> None:
        """Advances the stream as ``randn(shape, dtype)`` would, without computing the values."""
        self._inner.skip(shape, dtype_name(dtype))

    def get_state(self) -> bytes:
        """The state: for the CPU source exactly the bytes of torch's ``Generator.get_state()``
        (5056 bytes); for CUDA torch's (seed, offset) 16 bytes; for NV (seed, call counter)."""
        return bytes(self._inner.get_state())

    def set_state(self, state: Any) -> None:
        """Restores bytes from :meth:`get_state` (or a torch ``get_state()`` uint8 tensor)."""
        if hasattr(state, "numpy"):
            state = state.numpy()
        if isinstance(state, np.ndarray):
            state = state.astype(np.uint8, copy=False).tobytes()
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise invalid("state", f"must be bytes, got {type(state).__name__}")
        self._inner.set_state(bytes(state))

    def to_torch(self) -> torch.Generator:
        """A ``torch.Generator("cpu")`` in the same state (CPU source only)."""
        import torch

        if self.source != "cpu":
            raise invalid("source", "only a CPU generator converts to a torch.Generator")
        g = torch.Generator("cpu")
        g.set_state(torch.frombuffer(bytearray(self.get_state()), dtype=torch.uint8))
        return g

    @property
    def seed(self) -> int:
        """The seed (all 64 bits, as torch's ``initial_seed()``)."""
        return int(self._inner.seed)

    def initial_seed(self) -> int:
        """torch-style alias of :attr:`seed`."""
        return self.seed

    @property
    def source(self) -> str:
        """``"cpu"``, ``"cuda"`` or ``"a1111_nv"``."""
        return str(self._inner.source)

    @property
    def cpu_kernel(self) -> str | None:
        """``"avx2"`` or ``"default"`` for the CPU source, else None."""
        kernel = self._inner.cpu_kernel
        return None if kernel is None else str(kernel)

    @property
    def gpu(self) -> tuple[int, int] | None:
        """(sm_count, max_threads_per_sm) of the emulated GPU ((0, 0): unlimited), or None."""
        return self._inner.gpu

    @property
    def offset(self) -> int | None:
        """The philox offset (CUDA, torch's ``get_offset()``) or call counter (NV); None on CPU."""
        return self._inner.offset

    def get_offset(self) -> int:
        """torch-style offset accessor; the CPU generator has none (like torch, an error)."""
        offset = self.offset
        if offset is None:
            raise invalid("source", "the CPU generator has no offset")
        return offset

    def __repr__(self) -> str:
        return f"sigmaserve.Generator(seed={self.seed}, source={self.source!r})"


def sample_noise(
    shape: Shape,
    seeds: int | Sequence[int],
    *,
    seed_mode: str = "per_item",
    source: str = "cpu",
    dtype: Any = "float32",
    max_elements: int | None = None,
    **noise_options: Any,
) -> np.ndarray:
    """Unscaled noise for a batch ``shape = (B, ...)`` under a seed policy.

    - ``seed_mode="per_item"``: B seeds, one fresh generator and one ``(1, ...)`` draw per item
      (diffusers' list of generators).
    - ``"batch"``: one seed, one draw of the whole tensor (diffusers' single generator, ComfyUI's
      ``prepare_noise``); with ``batch_index`` (ComfyUI), ``max(batch_index) + 1`` successive
      ``(1, ...)`` draws, item j being draw ``batch_index[j]``.
    - ``"a1111"``: one seed (``seed + i`` per image; the same seed for every image when
      ``subseed_strength`` is set, as in A1111) or B seeds, one generator per image.

    ``noise_options`` as :func:`sigmaserve.sample_init_latents` takes them: ``cpu_kernel``,
    ``gpu``, ``batch_index``, A1111's ``subseeds`` with ``subseed_strength`` in [0, 1]
    (variation seeds, 4-D shapes; in a1111 mode one subseed means ``subseed + i``) and
    ``seed_resize_from=(width, height)`` in **latent** pixels. ``max_elements`` bounds the work
    before anything is allocated (``TooLargeError``).
    """
    from sigmaserve.latents import latents_request

    request = latents_request(
        shape=shape,
        seeds=seeds,
        seed_mode=seed_mode,
        source=source,
        dtype=dtype,
        sigma=1.0,
        preset=None,
        noise_options=noise_options,
        max_elements=max_elements,
    )
    return request.sample()


def gpu_presets() -> dict[str, tuple[int, int]]:
    """GPU presets for ``source="cuda"``: name -> (sm_count, max_threads_per_sm)."""
    return {name: (sm, threads) for name, sm, threads in _core.noise_gpu_presets()}


def simd_isa() -> str:
    """The active kernel set: ``"avx2+fma"`` or ``"portable"`` (same bits either way)."""
    return str(_core.noise_simd_isa())


def set_simd_enabled(enabled: bool) -> None:
    """Turns the SIMD fast paths on or off process-wide (results are identical; for tests)."""
    _core.noise_set_simd(bool(enabled))


def to_torch(array: np.ndarray, dtype: Any = None) -> torch.Tensor:
    """A torch tensor from a result of this module (bfloat16: the uint16 bits reinterpreted)."""
    import torch

    from sigmaserve.torch_utils import c_contiguous

    name = None if dtype is None else dtype_name(dtype)
    if name == "bfloat16" or (name is None and array.dtype == np.uint16):
        bits = c_contiguous(array, np.uint16)
        return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(c_contiguous(array))


__all__ = [
    "DTYPES",
    "SEED_MODES",
    "SOURCES",
    "Generator",
    "gpu_presets",
    "randn",
    "sample_noise",
    "set_simd_enabled",
    "simd_isa",
    "to_torch",
]
