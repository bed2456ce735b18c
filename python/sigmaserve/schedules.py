"""Diffusion noise schedules, computed exactly as diffusers computes them.

:func:`get_schedule` reproduces what a preset's diffusers pipeline sets on its scheduler (its
``__call__`` conventions), or the bare ``Scheduler.from_config(config)`` followed by
``set_timesteps(...)``, for every diffusers scheduler class sigmaserve supports, with model presets
(:func:`list_presets`). The result is an immutable :class:`Schedule`. :func:`scheduler_families`
and :func:`excluded_schedulers` describe the classes for a catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigmaserve import _core
from sigmaserve.arguments import scheduler_arguments
from sigmaserve.results import ConfigDict, Img2Img, Schedule

__all__ = [
    "ConfigDict",
    "Img2Img",
    "Schedule",
    "excluded_schedulers",
    "get_schedule",
    "list_presets",
    "list_schedulers",
    "pipeline_call",
    "scheduler_families",
    "scheduler_family_descriptions",
]


def get_schedule(
    scheduler: Any = None,
    num_inference_steps: int | None = None,
    *,
    preset: str | None = "sd15",
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    pipeline: bool = True,
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Schedule:
    """The schedule a diffusers pipeline (or scheduler) runs for ``num_inference_steps``.

    ``scheduler`` is a diffusers class name (any case), an A1111 sampler name ("DPM++ 2M
    Karras"), a ComfyUI sampler/scheduler pair ("dpmpp_2m karras"), an ecosystem schedule
    ``"<tool>:<name>"``, a diffusers scheduler object or class (its name and ``.config``), or
    ``None``: the ``_class_name`` of ``config``, else the preset pipeline's default scheduler.

    With a ``preset`` and ``pipeline=True`` the result is what that preset's diffusers pipeline
    sets on its scheduler for this size (``width``, ``height``, ``num_frames``; the pipeline's
    defaults when not given): FluxPipeline's own sigmas and ``mu`` from the packed sequence
    length, SD3's ``mu`` where the config enables dynamic shifting, the video pipelines' sigmas;
    its default steps when ``num_inference_steps`` is ``None``. A scheduler of a family the
    preset's model cannot run (a DDPM-family scheduler on a flow-matching model) is an
    ``InvalidArgumentError`` then, and a warning with ``pipeline=False``, the bare
    ``Scheduler.from_config(config).set_timesteps(...)``.

    Precedence: class defaults < ``preset`` < ``config`` < an alias's options < ``overrides``.
    ``overrides`` take any diffusers config key and the ``set_timesteps`` extras ``timesteps``,
    ``sigmas``, ``mu`` and ``strength`` (img2img), plus those of single classes:
    ``max_timesteps`` and ``intermediate_timesteps`` (SCM; ``None`` is a value there),
    ``jump_length`` and ``jump_n_sample`` (RePaint), ``stage_index`` and
    ``is_amplify_first_chunk`` (Helios) and ``start_time`` (RFD4Proteina). With custom
    ``timesteps``/``sigmas`` the step count comes from their length; an explicit
    ``num_inference_steps`` must then agree with it.
    """
    if scheduler is None or type(scheduler) is str:
        name = scheduler
    else:
        name, config = scheduler_arguments(scheduler, config)
    raw = _core.schedule_get(
        name,
        num_inference_steps,
        preset,
        config,
        overrides,
        width,
        height,
        num_frames,
        pipeline,
    )
    if raw["img2img"] is not None:
        return Schedule._from_core(raw)
    # Schedule._from_core inlined: this function is the hot path of a schedule request.
    schedule = _new(Schedule)
    _set(schedule, "__dict__", raw)
    return schedule


def pipeline_call(
    preset: str,
    scheduler: Any = None,
    num_inference_steps: int | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """What ``preset``'s diffusers pipeline passes to its scheduler's ``set_timesteps`` for
    this request (the arguments of :func:`get_schedule` with ``pipeline=True``), with the
    numbers it derives them from: the explanation of that schedule.

    Keys: ``preset``, ``pipeline`` (class), ``scheduler``, ``convention``,
    ``num_inference_steps``, the ``width``/``height``/``num_frames`` it runs at (defaults filled
    in), ``sigmas`` (the list the pipeline passes, or ``None``: the scheduler's own spacing),
    ``mu`` and ``shift`` (``None``, or how ``calculate_shift`` got ``mu``: ``image_seq_len``,
    ``base_image_seq_len``, ``max_image_seq_len``, ``base_shift``, ``max_shift``, ``mu``).
    An ecosystem schedule has convention ``"ecosystem"`` and nothing passed.
    """
    if scheduler is None or type(scheduler) is str:
        name = scheduler
    else:
        name, config = scheduler_arguments(scheduler, config)
    return _core.schedule_pipeline_call(
        name, num_inference_steps, preset, config, overrides, width, height, num_frames
    )


_new = object.__new__
_set = object.__setattr__


def list_presets() -> dict[str, dict[str, Any]]:
    """The presets by name: repository, pipeline, default scheduler (``class_name``), steps and
    size, latent layout, schedule convention and scheduler config."""
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
