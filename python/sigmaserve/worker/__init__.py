"""The Stable Diffusion worker: diffusers pipelines fed by the noise service.

``Worker`` (``sigmaserve.worker.engine``) loads a local pipeline folder and makes images from the
service's ``Schedule`` and ``Latents``; ``sigmaserve.worker.handoff`` is the bit-exact hand-off;
``sigmaserve.worker.service`` serves ``sigmaserve.v1.WorkerService``. Importing this package does
not import torch or diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sigmaserve.worker.engine import Generation, Worker

__all__ = ["Generation", "Worker"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sigmaserve.worker import engine

        return getattr(engine, name)
    raise AttributeError(name)
