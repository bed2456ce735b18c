"""sigmaserve: diffusion noise schedules and torch-exact seeded latents.

Local API: :func:`get_schedule`, :func:`randn`, :class:`Generator`, :func:`sample_init_latents`,
and :func:`catalog` / :func:`resolve_name` for everything sigmaserve knows by name.
Remote API: :class:`Client` and :class:`AsyncClient` return the same objects over gRPC; they
load on first use, so ``import sigmaserve`` does not import grpc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sigmaserve._core import __version__
from sigmaserve.catalog import catalog, resolve_name, resolve_scheduler
from sigmaserve.ecosystem import compare_schedules, ecosystem_schedule
from sigmaserve.errors import InvalidArgumentError, SigmaserveError, TooLargeError
from sigmaserve.latents import LATENT_FORMATS, sample_init_latents
from sigmaserve.noise import Generator, randn
from sigmaserve.results import Latents, Schedule
from sigmaserve.schedules import get_schedule, list_presets

if TYPE_CHECKING:
    from sigmaserve.client import AsyncClient, Client, RemoteError, ServerInfo

_CLIENT_NAMES = frozenset({"AsyncClient", "Client", "RemoteError", "ServerInfo"})


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from sigmaserve import client

        return getattr(client, name)
    raise AttributeError(f"module 'sigmaserve' has no attribute {name!r}")


__all__ = [
    "LATENT_FORMATS",
    "AsyncClient",
    "Client",
    "Generator",
    "InvalidArgumentError",
    "Latents",
    "RemoteError",
    "Schedule",
    "ServerInfo",
    "SigmaserveError",
    "TooLargeError",
    "__version__",
    "catalog",
    "compare_schedules",
    "ecosystem_schedule",
    "get_schedule",
    "list_presets",
    "randn",
    "resolve_name",
    "resolve_scheduler",
    "sample_init_latents",
]
