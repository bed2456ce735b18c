"""What the local API and the clients return (plain data, no core or transport needed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


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


_ARRAYS = ("timesteps", "sigmas", "betas", "alphas_cumprod")
_FLOAT_ARRAYS = ("sigmas", "betas", "alphas_cumprod")


class ConfigDict(dict[str, Any]):
    """A read-only ``dict``: the resolved configuration of a :class:`Schedule`.

    Schedules with the same resolved configuration share one instance; copy it with
    ``dict(schedule.config)`` to modify it. It serialises (JSON, pickle) as a plain dict.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("Schedule.config is read-only; copy it with dict(schedule.config)")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def copy(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


@dataclasses.dataclass(frozen=True)
class Img2Img:
    """What an img2img pipeline does with the schedule for a ``strength``.

    The pipeline iterates ``timesteps[begin_index:]`` (``num_timesteps`` of them), calls
    ``scheduler.set_begin_index(begin_index)`` and noises the init image to ``start_timestep``
    (``None`` when nothing is left to denoise). SD/SDXL pipelines floor ``n * strength``; the
    SD3/Flux pipelines (flow matching) effectively take its ceiling.
    """

    strength: float
    begin_index: int
    num_timesteps: int
    start_timestep: float | None


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """A schedule as the diffusers scheduler holds it after ``set_timesteps``.

    Every array has diffusers' dtype: ``timesteps`` float32 for the sigma-space family, int64 for
    the DDIM/DDPM/PNDM/DPM-Solver family, float64 for DPMSolverSDE, CMStochasticIterative,
    FlowMapEuler and multi-stage Helios; ``sigmas`` float32 (float64 for FlowMapEuler and
    multi-stage Helios) or ``None``; ``betas`` and ``alphas_cumprod`` the training arrays,
    float32 (float64 for CogVideoX with ``scaled_linear`` betas), empty where the scheduler has
    none. KarrasVe reports its ``schedule`` attribute as ``sigmas``. Arrays are read-only.
    """

    scheduler: str
    timesteps: np.ndarray
    sigmas: np.ndarray | None
    init_noise_sigma: float
    betas: np.ndarray
    alphas_cumprod: np.ndarray
    config: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    num_inference_steps: int = 0
    order: int = 1
    img2img: Img2Img | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.config, ConfigDict):
            object.__setattr__(self, "config", ConfigDict(self.config))
        for name in _ARRAYS:
            array = getattr(self, name)
            if array is not None:
                owned = array if isinstance(array, np.ndarray) and array.flags.owndata else None
                fresh = owned if owned is not None else np.array(array, copy=True)
                object.__setattr__(self, name, _readonly(fresh))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if field.name in _ARRAYS:
                if (mine is None) != (theirs is None):
                    return False
                if mine is not None and not (
                    mine.dtype == theirs.dtype and np.array_equal(mine, theirs, equal_nan=True)
                ):
                    return False
            elif mine != theirs:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (arrays as lists, plus ``timesteps_dtype`` and, where an array
        is not float32, ``<name>_dtype``)."""
        wide = {
            f"{name}_dtype": str(array.dtype)
            for name in _FLOAT_ARRAYS
            if (array := getattr(self, name)) is not None and array.dtype != np.float32
        }
        return {
            "scheduler": self.scheduler,
            "timesteps": self.timesteps.tolist(),
            "timesteps_dtype": str(self.timesteps.dtype),
            **wide,
            "sigmas": None if self.sigmas is None else self.sigmas.tolist(),
            "init_noise_sigma": float(self.init_noise_sigma),
            "betas": self.betas.tolist(),
            "alphas_cumprod": self.alphas_cumprod.tolist(),
            "config": dict(self.config),
            "warnings": list(self.warnings),
            "num_inference_steps": self.num_inference_steps,
            "order": self.order,
            "img2img": None if self.img2img is None else dataclasses.asdict(self.img2img),
        }

    @classmethod
    def _from_core(cls, raw: dict[str, Any]) -> Schedule:
        """Wrap what ``_core.schedule_get`` returns (arrays already fresh and read-only)."""
        img2img = raw["img2img"]
        if img2img is not None:
            raw["img2img"] = Img2Img(**img2img)
        schedule = object.__new__(cls)
        object.__setattr__(schedule, "__dict__", raw)
        return schedule

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        """Rebuild a schedule from :meth:`to_dict` output (lists or arrays)."""
        timesteps = data["timesteps"]
        sigmas = data.get("sigmas")
        img2img = data.get("img2img")

        def dtype(name: str, values: Any, default: str) -> Any:
            return data.get(f"{name}_dtype") or getattr(values, "dtype", None) or default

        def floats(name: str) -> np.ndarray:
            values = data.get(name, ())
            return np.asarray(values, dtype=dtype(name, values, "float32"))

        return cls(
            scheduler=str(data["scheduler"]),
            timesteps=np.asarray(timesteps, dtype=dtype("timesteps", timesteps, "float32")),
            sigmas=None if sigmas is None else floats("sigmas"),
            init_noise_sigma=float(data["init_noise_sigma"]),
            betas=floats("betas"),
            alphas_cumprod=floats("alphas_cumprod"),
            config=ConfigDict(data.get("config") or {}),
            warnings=tuple(data.get("warnings") or ()),
            num_inference_steps=int(data.get("num_inference_steps", len(timesteps))),
            order=int(data.get("order", 1)),
            img2img=None if img2img is None else Img2Img(**img2img),
        )


__all__ = ["ConfigDict", "Img2Img", "Latents", "Schedule"]
