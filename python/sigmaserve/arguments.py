"""Arguments the local API and the clients share before the core (or the wire) sees them.

A diffusers scheduler object (or class) given as ``scheduler`` becomes its class name and its
``.config``, so ``get_schedule(pipe.scheduler, 30)`` means ``get_schedule(
type(pipe.scheduler).__name__, 30, config=pipe.scheduler.config)``. Which names are valid is
the core's rule; nothing here imports the compiled core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigmaserve.errors import invalid


def scheduler_arguments(
    scheduler: Any, config: Mapping[str, Any] | None
) -> tuple[str | None, Mapping[str, Any] | None]:
    """``(name, config)`` for a scheduler given as a name, ``None``, a diffusers scheduler object
    or class. An object's ``.config`` comes first; keys of an explicit ``config`` win."""
    if scheduler is None or isinstance(scheduler, str):
        return scheduler, config
    if isinstance(scheduler, type):
        if not hasattr(scheduler, "set_timesteps"):
            raise invalid("scheduler", f"{scheduler.__name__} is not a diffusers scheduler class")
        return scheduler.__name__, config
    own = getattr(scheduler, "config", None)
    if not hasattr(scheduler, "set_timesteps") or not isinstance(own, Mapping):
        raise invalid(
            "scheduler",
            "expected a scheduler name, a diffusers scheduler object or class, or None; got "
            f"{type(scheduler).__name__}",
        )
    merged = {**own, **(config or {})}
    # The object's class decides, whatever its config's `_class_name` says.
    merged.pop("_class_name", None)
    return type(scheduler).__name__, merged


__all__ = ["scheduler_arguments"]
