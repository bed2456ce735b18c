"""Ecosystem schedules (ComfyUI, AUTOMATIC1111, k-diffusion, Align Your Steps) and side-by-side
comparison.

Names are written ``"<tool>:<name>"`` with ``tool`` one of ``comfyui``, ``a1111``, ``kdiffusion``,
``ays`` (case-insensitive after the colon), e.g. ``"comfyui:karras"``, ``"a1111:beta"``,
``"kdiffusion:polyexponential"``, ``"ays:sdxl"``. :func:`ecosystem_schedule` returns every detail
(both timestep mappings, the tool's initial-noise rule); :func:`sigmaserve.get_schedule` accepts the
same names and returns the common :class:`~sigmaserve.Schedule`. :func:`compare_schedules` puts
the same request through several tools and reports where they differ most.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sigmaserve import _core
from sigmaserve.errors import invalid

__all__ = [
    "TOOLS",
    "EcosystemSchedule",
    "ScheduleComparison",
    "SigmaDifference",
    "compare_schedules",
    "ecosystem_schedule",
    "is_ecosystem_name",
    "list_ecosystem_schedules",
]

TOOLS = ("comfyui", "a1111", "kdiffusion", "ays")


def is_ecosystem_name(scheduler: str) -> bool:
    """Whether ``scheduler`` is written ``"<tool>:<name>"`` with a known tool."""
    tool, sep, _ = scheduler.partition(":")
    return bool(sep) and tool.strip().lower() in TOOLS


def _readonly(array: Any) -> np.ndarray | None:
    if array is None:
        return None
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class EcosystemSchedule:
    """A schedule as an ecosystem tool builds it.

    ``sigmas`` (float32, descending) is what the sampler walks; ``timesteps`` is what the tool
    feeds its model at ``sigmas[:-1]`` (ComfyUI: quantised integers for discrete models, A1111 and
    k-diffusion: interpolated). ``init_noise_sigma`` is the factor the tool multiplies its unit
    noise by, applied as ``init_noise`` says: ``"sigma"`` (``noise * sigma_0``), ``"sqrt1p"``
    (``noise * sqrt(1 + sigma_0**2)``) or ``"flow"`` (``sigma_0 * noise + (1 - sigma_0) *
    latent``).
    """

    scheduler: str
    sigmas: np.ndarray
    timesteps: np.ndarray
    init_noise_sigma: float
    init_noise: str
    num_inference_steps: int
    model_sampling: str
    model_sigma_range: tuple[float, float]
    config: dict[str, Any]
    warnings: tuple[str, ...] = ()
    timesteps_quantized: np.ndarray | None = None
    timesteps_interpolated: np.ndarray | None = None
    betas: np.ndarray | None = None
    alphas_cumprod: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in (
            "sigmas",
            "timesteps",
            "timesteps_quantized",
            "timesteps_interpolated",
            "betas",
            "alphas_cumprod",
        ):
            object.__setattr__(self, name, _readonly(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (arrays as lists)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out


def ecosystem_schedule(
    scheduler: str,
    num_inference_steps: int = 20,
    *,
    preset: str | None = "sd15",
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> EcosystemSchedule:
    """The schedule ``"<tool>:<name>"`` for ``num_inference_steps`` steps.

    ``preset`` picks the model table (``"sd15"``, ``"sdxl"``, ``"sd21-v"``, ``"sd3"``,
    ``"flux-dev"``, ``"flux-schnell"``, ``"auraflow"``, ``"svd"``, ...). ``config`` is a diffusers
    scheduler config (keys a schedule does not use are ignored); ``overrides`` are options
    (``sigma_min``, ``sigma_max``, ``rho``, ``denoise``, ``sampler``, ``denoising_strength``,
    ``zsnr``, ``shift``, ``mu``, ...), and one a schedule does not use is an error naming it.
    """
    if not isinstance(scheduler, str) or not is_ecosystem_name(scheduler):
        raise invalid(
            "scheduler", f"expected '<tool>:<name>' with tool in {TOOLS}, got {scheduler!r}"
        )
    if isinstance(num_inference_steps, bool) or not isinstance(
        num_inference_steps, (int, np.integer)
    ):
        raise invalid("num_inference_steps", f"expected an int, got {num_inference_steps!r}")
    if config is not None and not isinstance(config, Mapping):
        raise invalid("config", f"expected a mapping or None, got {type(config).__name__}")
    raw = _core.ecosystem_schedule(
        scheduler,
        int(num_inference_steps),
        preset,
        None if config is None else dict(config),
        overrides,
    )
    raw["warnings"] = tuple(raw["warnings"])
    raw["model_sigma_range"] = tuple(raw["model_sigma_range"])
    return EcosystemSchedule(**raw)


def list_ecosystem_schedules() -> dict[str, tuple[str, ...]]:
    """The schedule names per tool."""
    return {tool: tuple(_core.ecosystem_names(tool)) for tool in TOOLS}


@dataclasses.dataclass(frozen=True)
class SigmaDifference:
    """How two schedules of a comparison differ.

    ``max_abs`` / ``max_rel`` are the largest absolute / relative sigma differences over the
    common length (relative to the larger of the two values), found at ``index`` with values
    ``a_value`` and ``b_value``; ``steps`` gives both step counts and ``init_noise_sigma`` both
    initial-noise factors.
    """

    a: str
    b: str
    max_abs: float
    max_rel: float
    index: int
    a_value: float
    b_value: float
    steps: tuple[int, int]
    init_noise_sigma: tuple[float, float]

    @property
    def same_length(self) -> bool:
        """Whether both schedules have the same number of steps."""
        return self.steps[0] == self.steps[1]


@dataclasses.dataclass(frozen=True)
class ScheduleComparison:
    """Several tools' answers to the same request, and their pairwise differences (largest
    relative difference first)."""

    num_inference_steps: int
    preset: str | None
    schedules: dict[str, Any]
    differences: tuple[SigmaDifference, ...]

    @property
    def largest(self) -> SigmaDifference | None:
        """The pair that differs most (``None`` with fewer than two schedules)."""
        return self.differences[0] if self.differences else None

    def table(self, decimals: int = 6) -> str:
        """The sigmas side by side, one column per schedule, as text."""
        names = list(self.schedules)
        cols = [np.asarray(self.schedules[n].sigmas, dtype=np.float64) for n in names]
        width = max(12, *(len(n) for n in names)) + 2
        lines = ["step".ljust(6) + "".join(n.rjust(width) for n in names)]
        for i in range(max(len(c) for c in cols)):
            cells = [f"{c[i]:.{decimals}f}" if i < len(c) else "-" for c in cols]
            lines.append(str(i).ljust(6) + "".join(x.rjust(width) for x in cells))
        lines.append(
            "init".ljust(6)
            + "".join(
                f"{float(self.schedules[n].init_noise_sigma):.{decimals}f}".rjust(width)
                for n in names
            )
        )
        return "\n".join(lines)


def _difference(a: str, sa: Any, b: str, sb: Any) -> SigmaDifference:
    x = np.asarray(sa.sigmas, dtype=np.float64)
    y = np.asarray(sb.sigmas, dtype=np.float64)
    n = min(len(x), len(y))
    if n == 0:
        index, max_abs, max_rel = 0, math.nan, math.nan
    else:
        d = np.abs(x[:n] - y[:n])
        scale = np.maximum(np.abs(x[:n]), np.abs(y[:n]))
        rel = np.divide(d, scale, out=np.zeros_like(d), where=scale > 0)
        index = int(np.argmax(rel))
        max_abs, max_rel = float(d.max()), float(rel[index])
    return SigmaDifference(
        a=a,
        b=b,
        max_abs=max_abs,
        max_rel=max_rel,
        index=index,
        a_value=float(x[index]) if n else math.nan,
        b_value=float(y[index]) if n else math.nan,
        steps=(len(x) - 1, len(y) - 1),
        init_noise_sigma=(float(sa.init_noise_sigma), float(sb.init_noise_sigma)),
    )


def compare_schedules(
    schedulers: Sequence[str] | Mapping[str, Mapping[str, Any]],
    num_inference_steps: int = 20,
    *,
    preset: str | None = "sd15",
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ScheduleComparison:
    """The same request in several tools side by side, with the largest differences.

    ``schedulers`` lists names (``"comfyui:karras"``, ``"a1111:karras"``, ``"kdiffusion:karras"``,
    or diffusers class names such as ``"EulerDiscreteScheduler"``), or maps each name to its own
    options. ``overrides`` apply to every schedule (each must accept them). Pairs are ranked by
    their largest relative sigma difference; a step-count mismatch ranks first.
    """
    if isinstance(schedulers, str):
        raise invalid("schedulers", "expected a list of scheduler names, got a single str")
    if isinstance(schedulers, Mapping):
        items = [(str(k), dict(v or {})) for k, v in schedulers.items()]
    else:
        items = [(s, {}) for s in schedulers]
    if not items:
        raise invalid("schedulers", "expected at least one scheduler name")
    results: dict[str, Any] = {}
    for name, own in items:
        if not isinstance(name, str):
            raise invalid("schedulers", f"names must be str, got {type(name).__name__}")
        opts = {**overrides, **own}
        if is_ecosystem_name(name):
            results[name] = ecosystem_schedule(
                name, num_inference_steps, preset=preset, config=config, **opts
            )
        else:
            from sigmaserve.schedules import get_schedule

            schedule = get_schedule(name, num_inference_steps, preset=preset, config=config, **opts)
            if schedule.sigmas is None:
                raise invalid("schedulers", f"{name} has no sigmas to compare")
            results[name] = schedule
    diffs = [
        _difference(a, results[a], b, results[b]) for a, b in itertools.combinations(results, 2)
    ]
    diffs.sort(
        key=lambda d: (d.same_length, -(d.max_rel if not math.isnan(d.max_rel) else math.inf))
    )
    return ScheduleComparison(
        num_inference_steps=num_inference_steps,
        preset=preset,
        schedules=results,
        differences=tuple(diffs),
    )
