"""Diffusion noise schedules, computed exactly as diffusers computes them.

:func:`get_schedule` reproduces ``Scheduler.from_config(config)`` followed by
``set_timesteps(...)`` for every diffusers scheduler class sigmaserve supports, with model presets
(:func:`list_presets`). The result is an immutable :class:`Schedule`. :func:`scheduler_families`
and :func:`excluded_schedulers` describe the classes for a catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigmaserve import _core
from sigmaserve.results import ConfigDict, Img2Img, Schedule

__all__ = [
    "ConfigDict",
    "Img2Img",
    "Schedule",
    "excluded_schedulers",
    "get_schedule",
    "list_presets",
    "list_schedulers",
    "scheduler_families",
    "scheduler_family_descriptions",
]


class _DefaultSteps(int):
    """The default step count (50), recognisable so custom ``timesteps``/``sigmas`` can set it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "50"


_DEFAULT_STEPS = _DefaultSteps(50)


def get_schedule(
    scheduler: str = "EulerDiscreteScheduler",
    num_inference_steps: int | None = _DEFAULT_STEPS,
    *,
    preset: str | None = "sd15",
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Schedule:
    """The schedule diffusers' ``scheduler`` gives after ``set_timesteps(num_inference_steps)``.

    Precedence: class defaults < ``preset`` < ``config`` < ``overrides``. ``overrides`` take any
    diffusers config key and the ``set_timesteps`` extras ``timesteps``, ``sigmas``, ``mu`` and
    ``strength`` (img2img), plus those of single classes: ``max_timesteps`` and
    ``intermediate_timesteps`` (SCM; ``None`` is a value there), ``jump_length`` and
    ``jump_n_sample`` (RePaint), ``stage_index`` and ``is_amplify_first_chunk`` (Helios) and
    ``start_time`` (RFD4Proteina). With custom ``timesteps``/``sigmas`` the default step count is
    dropped; an explicit ``num_inference_steps`` must then agree with their length.
    """
    if num_inference_steps is _DEFAULT_STEPS:
        custom = overrides.get("timesteps") is not None or overrides.get("sigmas") is not None
        num_inference_steps = None if custom else 50
    raw = _core.schedule_get(scheduler, num_inference_steps, preset, config, overrides)
    return Schedule._from_core(raw)


def list_presets() -> dict[str, dict[str, Any]]:
    """The presets by name: repository, scheduler class, latent format and scheduler config."""
    return {p.pop("name"): p for p in _core.schedule_presets()}


def list_schedulers() -> tuple[str, ...]:
    """The diffusers scheduler class names :func:`get_schedule` accepts."""
    return tuple(_core.schedule_schedulers())


def scheduler_families() -> dict[str, str]:
    """The family of every class :func:`get_schedule` accepts, by class name.

    Families (:func:`scheduler_family_descriptions`): ``alpha`` (DDPM/DDIM style), ``sigma``
    (k-diffusion style), ``multistep`` (DPM-Solver family), ``flow_match`` (rectified flow),
    ``edm`` (EDM and variance-exploding sigmas) and ``consistency`` (consistency-model samplers).
    """
    return dict(_core.schedule_families())


def scheduler_family_descriptions() -> dict[str, str]:
    """One line describing each scheduler family, by family name."""
    return dict(_core.schedule_family_descriptions())


def excluded_schedulers() -> dict[str, str]:
    """The diffusers 0.42.1 scheduler classes sigmaserve does not reproduce, with the reason.

    With :func:`list_schedulers` this accounts for every class ``diffusers.schedulers`` exports;
    the excluded ones sample discrete tokens and have no noise schedule for continuous latents.
    """
    return dict(_core.schedule_excluded())
