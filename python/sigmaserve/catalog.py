"""Everything sigmaserve knows by name: :func:`catalog` lists it, :func:`resolve_name` reads a
name the way every call does (case-insensitive, with the tools' aliases) and explains unknown
ones with the nearest valid names. Both ask the core, which owns every table and the one
resolver.
"""

from __future__ import annotations

from typing import Any

from sigmaserve import _core

#: The name kinds :func:`resolve_name` takes.
NAME_KINDS: tuple[str, ...] = tuple(_core.name_kinds())


def catalog() -> dict[str, Any]:
    """The schedulers, presets and names sigmaserve accepts, as plain data (JSON-friendly).

    - ``schedulers``: every name ``get_schedule`` takes as ``scheduler``, each with ``name``,
      ``family`` and ``tool`` (``diffusers`` for the classes; ``comfyui``, ``a1111``,
      ``kdiffusion`` or ``ays`` for the ecosystem schedules ``"<tool>:<name>"``);
    - ``aliases``: the tools' own names for diffusers schedulers (A1111 sampler names, ComfyUI
      sampler/scheduler pairs), each with the diffusers ``scheduler`` and ``options`` it means;
    - ``presets``: each with ``name``, ``repo``, ``pipeline``, ``scheduler`` (the pipeline's
      default), ``steps``, the default ``width``/``height``/``num_frames``, ``model``,
      ``convention`` (what the pipeline passes to its scheduler), the latent ``layout``,
      ``aliases`` and the repository's scheduler ``config``;
    - ``excluded``: the diffusers classes sigmaserve does not reproduce, with the ``reason``;
    - ``families``: the scheduler families with a description;
    - ``names``: the valid names of the other kinds (``tool``, ``source``, ``seed_mode``,
      ``dtype``, ``gpu``, ``cpu_kernel``).
    """
    families = dict(_core.schedule_families())
    schedulers = [
        {"name": name, "family": families[name], "tool": "diffusers"}
        for name in _core.schedule_schedulers()
    ]
    schedulers += [
        {"name": name, "family": "sigma", "tool": name.split(":", 1)[0]}
        for name in _core.schedule_ecosystem_names()
    ]
    aliases = [
        {
            "name": a["name"],
            "tool": a["tool"],
            "scheduler": a["scheduler"],
            "options": dict(sorted(a["options"].items())),
        }
        for a in _core.schedule_aliases()
    ]
    presets = []
    for p in _core.schedule_presets():
        presets.append(
            {
                "name": p["name"],
                "repo": p["repo"],
                "pipeline": p["pipeline"],
                "pipeline_file": p["pipeline_file"],
                "scheduler": p["class_name"],
                "steps": p["steps"],
                "width": p["width"],
                "height": p["height"],
                "num_frames": p["num_frames"],
                "model": p["model"],
                "convention": p["convention"],
                "layout": dict(p["layout"]),
                "aliases": list(p["aliases"]),
                "config": dict(p["config"]),
            }
        )
    excluded = [{"name": n, "reason": r} for n, r in _core.schedule_excluded()]
    descriptions = [{"name": n, "description": d} for n, d in _core.schedule_family_descriptions()]
    names = {
        kind: list(_core.valid_names(kind))
        for kind in NAME_KINDS
        if kind not in ("scheduler", "preset")
    }
    return {
        "schedulers": schedulers,
        "aliases": aliases,
        "presets": presets,
        "excluded": excluded,
        "families": descriptions,
        "names": names,
    }


def resolve_name(kind: str, name: str) -> str:
    """The canonical spelling of ``name`` as a ``kind`` (one of :data:`NAME_KINDS`: scheduler,
    preset, tool, source, seed_mode, dtype, gpu, cpu_kernel).

    ``resolve_name("scheduler", "DPM++ 2M Karras")`` is ``"DPMSolverMultistepScheduler"`` (the
    options the alias selects: :func:`resolve_scheduler`); an unknown name raises
    :class:`~sigmaserve.InvalidArgumentError` suggesting the nearest valid names.
    """
    return _core.resolve_name(kind, name)[0]


def resolve_scheduler(name: str) -> tuple[str, str, dict[str, Any]]:
    """``(scheduler, tool, options)`` for a scheduler name: the diffusers class (or canonical
    ``"<tool>:<name>"``), the tool whose name it is (``"diffusers"`` for class names) and the
    config options an alias selects (``{"use_karras_sigmas": True}`` for "DPM++ 2M Karras")."""
    canonical, tool, options = _core.resolve_name("scheduler", name)
    return canonical, tool or "diffusers", dict(options)


__all__ = ["NAME_KINDS", "catalog", "resolve_name", "resolve_scheduler"]
