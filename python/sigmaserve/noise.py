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

from sigmaserve import _core, tensors
from sigmaserve.errors import invalid

if TYPE_CHECKING:
    import torch

Shape = Union[int, Sequence[int]]  # noqa: UP007 (runtime alias, Python 3.10)
GpuSpec = Union[str, tuple[int, int], None]  # noqa: UP007
OutT = TypeVar("OutT")  # the caller's `out` buffer (numpy array or torch tensor), returned as is

DTYPES = ("float32", "float64", "float16", "bfloat16")
SOURCES = ("cpu", "cuda", "a1111_nv")
SEED_MODES = ("per_item", "batch", "a1111")
CPU_KERNELS = ("avx2", "default")
_SEED_MIN = -(2**63)
_SEED_END = 2**64


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _seed(value: Any, field: str = "seed") -> int:
    if not _is_int(value):
        raise invalid(field, f"a seed must be an int in [-2**63, 2**64), got {value!r}")
    seed = int(value)
    if not _SEED_MIN <= seed < _SEED_END:
        raise invalid(field, f"seed {seed} is outside torch's range [-2**63, 2**64)")
    return seed


def _seeds(value: Any, field: str) -> list[int]:
    if _is_int(value):
        return [_seed(value, field)]
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise invalid(field, f"must be an int or a sequence of ints, got {type(value).__name__}")
    seeds = [_seed(v, field) for v in value]
    if not seeds:
        raise invalid(field, "at least one seed is required")
    return seeds


def _shape(shape: Any) -> list[int]:
    if _is_int(shape):
        dims = [shape]
    elif isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, np.ndarray)):
        raise invalid("shape", f"must be an int or a sequence of ints, got {shape!r}")
    else:
        dims = list(shape)
    out = []
    for d in dims:
        if not _is_int(d) or int(d) < 0:
            raise invalid("shape", f"dimensions must be non-negative ints, got {shape!r}")
        out.append(int(d))
    return out


def _dtype(dtype: Any) -> str:
    name = dtype if isinstance(dtype, str) else None
    if name is None:
        text = str(dtype)
        if text.startswith("torch."):
            name = text[len("torch.") :]
        else:
            try:
                name = np.dtype(dtype).name
            except TypeError:
                name = text
    aliases = {"float": "float32", "double": "float64", "half": "float16"}
    name = aliases.get(name, name)
    if name not in DTYPES:
        raise invalid("dtype", f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return name


def _source(source: Any) -> str:
    if not isinstance(source, str) or source not in SOURCES:
        raise invalid(
            "source", f"unknown noise source {source!r}; expected one of {', '.join(SOURCES)}"
        )
    return source


def _cpu_kernel(kernel: Any) -> str | None:
    if kernel is None:
        return None
    if not isinstance(kernel, str) or kernel not in CPU_KERNELS:
        raise invalid("cpu_kernel", f"unknown CPU kernel {kernel!r}; expected 'avx2' or 'default'")
    return kernel


def _gpu(gpu: Any) -> str | None:
    if gpu is None:
        return None
    if isinstance(gpu, str):
        return gpu
    if (
        isinstance(gpu, (tuple, list))
        and len(gpu) == 2
        and all(_is_int(v) and int(v) >= 0 for v in gpu)
    ):
        return f"{int(gpu[0])}x{int(gpu[1])}"
    raise invalid("gpu", f"must be a preset name or (sm_count, max_threads_per_sm), got {gpu!r}")


def _max_elements(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or int(value) < 0:
        raise invalid("max_elements", f"must be a non-negative int, got {value!r}")
    return int(value)


def _out_array(out: Any, dtype: str) -> np.ndarray:
    """The numpy array the core fills for ``out``: the array itself, or a view of a CPU
    torch tensor's memory. 16-bit floats are handed over as their uint16 bits (a view, no copy).
    The core checks the shape, contiguity and writeability."""
    if isinstance(out, np.ndarray):
        want = tensors.storage_dtype(dtype)
        if out.dtype != want:
            raise invalid("out", f"has dtype {out.dtype}, expected {want} for dtype={dtype!r}")
        arr = out
    elif type(out).__module__.startswith("torch") and hasattr(out, "numpy"):
        import torch

        if out.device.type != "cpu":
            raise invalid("out", f"must be a CPU tensor, got one on {out.device}")
        if out.dtype != getattr(torch, dtype):
            raise invalid("out", f"has dtype {out.dtype}, expected torch.{dtype}")
        if out.requires_grad:
            raise invalid("out", "must not require grad")
        if out.layout != torch.strided:
            raise invalid("out", f"must be a dense tensor, got layout {out.layout}")
        if dtype in ("float16", "bfloat16"):
            out = out.view(torch.int16)
        arr = out.numpy()
    else:
        raise invalid(
            "out", f"must be a numpy array or a CPU torch tensor, got {type(out).__name__}"
        )
    if dtype in ("float16", "bfloat16") and arr.dtype != np.uint16:
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
    name = _dtype(dtype)
    result = _core.noise_randn(
        _shape(shape),
        _seed(seed),
        source=_source(source),
        dtype=name,
        cpu_kernel=_cpu_kernel(cpu_kernel),
        gpu=_gpu(gpu),
        max_elements=_max_elements(max_elements),
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
        self._inner = _core.Generator(
            _seed(seed), source=_source(source), cpu_kernel=_cpu_kernel(cpu_kernel), gpu=_gpu(gpu)
        )

    def manual_seed(self, seed: int) -> Generator:
        """Re-seeds in place (like ``torch.Generator.manual_seed``) and returns ``self``."""
        self._inner = _core.Generator(
            _seed(seed), source=self.source, cpu_kernel=self.cpu_kernel, gpu=self._gpu_spec()
        )
        return self

    def _gpu_spec(self) -> str | None:
        gpu = self._inner.gpu
        return None if gpu is None else f"{gpu[0]}x{gpu[1]}"

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
        name = _dtype(dtype)
        target = None if out is None else _out_array(out, name)
        result = self._inner.randn(_shape(shape), name, _max_elements(max_elements), target)
        return result if out is None else out

    def skip(self, shape: Shape, dtype: Any = "float32") -> None:
        """Advances the stream as ``randn(shape, dtype)`` would, without computing the values."""
        self._inner.skip(_shape(shape), _dtype(dtype))

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
    cpu_kernel: str | None = None,
    gpu: GpuSpec = None,
    batch_index: Sequence[int] | None = None,
    subseeds: int | Sequence[int] | None = None,
    subseed_strength: float = 0.0,
    seed_resize_from: tuple[int, int] | None = None,
    max_elements: int | None = None,
) -> np.ndarray:
    """Noise for a batch ``shape = (B, ...)`` under a seed policy.

    - ``seed_mode="per_item"``: B seeds, one fresh generator and one ``(1, ...)`` draw per item
      (diffusers' list of generators).
    - ``"batch"``: one seed, one draw of the whole tensor (diffusers' single generator, ComfyUI's
      ``prepare_noise``); with ``batch_index`` (ComfyUI), ``max(batch_index) + 1`` successive
      ``(1, ...)`` draws, item j being draw ``batch_index[j]``.
    - ``"a1111"``: one seed (``seed + i`` per image; the same seed for every image when
      ``subseed_strength`` is set, as in A1111) or B seeds, one generator per image.

    A1111 extras (4-D shapes): ``subseeds`` with ``subseed_strength`` in [0, 1] (variation seeds,
    A1111's slerp along H; in a1111 mode one subseed means ``subseed + i``), and
    ``seed_resize_from=(width, height)`` in **latent** pixels (A1111's pixels // 8).
    ``max_elements`` bounds the work before anything is allocated (``TooLargeError``).
    """
    if seed_mode not in SEED_MODES:
        raise invalid(
            "seed_mode", f"unknown seed mode {seed_mode!r}; expected one of {', '.join(SEED_MODES)}"
        )
    if isinstance(subseed_strength, bool) or not isinstance(
        subseed_strength, (int, float, np.floating, np.integer)
    ):
        raise invalid("subseed_strength", f"must be a number in [0, 1], got {subseed_strength!r}")
    if batch_index is not None:
        if isinstance(batch_index, (str, bytes)) or not isinstance(
            batch_index, (Sequence, np.ndarray)
        ):
            raise invalid("batch_index", f"must be a sequence of ints, got {batch_index!r}")
        if not all(_is_int(i) and int(i) >= 0 for i in batch_index):
            raise invalid("batch_index", f"indices must be non-negative ints, got {batch_index!r}")
        batch_index = [int(i) for i in batch_index]
    resize = None
    if seed_resize_from is not None:
        if (
            not isinstance(seed_resize_from, (tuple, list))
            or len(seed_resize_from) != 2
            or not all(_is_int(v) and int(v) > 0 for v in seed_resize_from)
        ):
            raise invalid(
                "seed_resize_from",
                f"must be (width, height) in latent pixels, both >= 1, got {seed_resize_from!r}",
            )
        resize = (int(seed_resize_from[0]), int(seed_resize_from[1]))
    return _core.noise_sample(
        _shape(shape),
        _seeds(seeds, "seeds"),
        seed_mode=seed_mode,
        source=_source(source),
        dtype=_dtype(dtype),
        cpu_kernel=_cpu_kernel(cpu_kernel),
        gpu=_gpu(gpu),
        batch_index=batch_index,
        subseeds=None if subseeds is None else _seeds(subseeds, "subseeds"),
        subseed_strength=float(subseed_strength),
        seed_resize_from=resize,
        max_elements=_max_elements(max_elements),
    )


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

    name = None if dtype is None else _dtype(dtype)
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
