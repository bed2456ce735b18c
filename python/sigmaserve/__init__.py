"""sigmaserve: diffusion noise schedules and torch-exact seeded latents.

Local API: :func:`get_schedule`, :func:`randn`, :class:`Generator`, :func:`sample_init_latents`.
Remote API: :class:`Client` and :class:`AsyncClient` return the same objects over gRPC.
"""

from sigmaserve._core import __version__
from sigmaserve.client import AsyncClient, Client, RemoteError
from sigmaserve.ecosystem import compare_schedules, ecosystem_schedule
from sigmaserve.errors import InvalidArgumentError, SigmaserveError, TooLargeError
from sigmaserve.latents import LATENT_FORMATS, Latents, sample_init_latents
from sigmaserve.noise import Generator, randn
from sigmaserve.schedules import Schedule, get_schedule, list_presets

__all__ = [
    "LATENT_FORMATS",
    "AsyncClient",
    "Client",
    "Generator",
    "InvalidArgumentError",
    "Latents",
    "RemoteError",
    "Schedule",
    "SigmaserveError",
    "TooLargeError",
    "__version__",
    "compare_schedules",
    "ecosystem_schedule",
    "get_schedule",
    "list_presets",
    "randn",
    "sample_init_latents",
]
