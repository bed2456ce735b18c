"""Shared fixtures: one in-process server on an ephemeral port for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sigmaserve import Client
from sigmaserve.server import RunningServer, ServerConfig, server_in_thread

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json, as the model repository ships it
# (the upstream file, not our output): what `pipe.scheduler.config` holds for SD 1.5.
SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "runtime: needs only sigmaserve's runtime dependencies; `make test-runtime` runs these "
        "in a virtualenv without torch, diffusers or prometheus-client",
    )


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    config = ServerConfig(port=0, max_unary_reply_bytes=8 << 20, max_elements=1 << 24)
    with server_in_thread(config) as running:
        yield running


@pytest.fixture(scope="session")
def target(server: RunningServer) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture()
def client(target: str) -> Iterator[Client]:
    with Client(target, timeout=60) as c:
        yield c
