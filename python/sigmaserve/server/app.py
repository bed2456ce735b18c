"""Builds and runs the grpc.aio server: NoiseService, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sigmaserve.server.config import ServerConfig
from sigmaserve.server.servicer import NoiseServicer
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

log = logging.getLogger("sigmaserve.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NoiseService"].full_name


class PortInUseError(RuntimeError):
    """The requested address could not be bound."""


@dataclass
class RunningServer:
    """A started server and what stopping it needs."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    config: ServerConfig

    async def shutdown(self, grace: float | None = None) -> None:
        """Health turns NOT_SERVING, then in-flight calls get ``grace`` seconds to finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_seconds if grace is None else grace)


def server_options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", config.max_unary_reply_bytes + (1 << 20)),
        ("grpc.max_receive_message_length", config.max_receive_message_bytes),
        # A second server on the same port must fail, not silently share it.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
        ("grpc.max_connection_age_ms", 300_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


async def start_server(config: ServerConfig) -> RunningServer:
    """Start serving on ``config.host:config.port`` (port 0 picks a free one)."""
    server = grpc.aio.server(
        options=server_options(config), maximum_concurrent_rpcs=config.max_concurrent_rpcs
    )
    pb_grpc.add_NoiseServiceServicer_to_server(NoiseServicer(config), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = f"{config.host}:{config.port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise PortInUseError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise PortInUseError(f"cannot listen on {address}: address in use or not available")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("sigmaserve listening on %s:%d", config.host, port)
    return RunningServer(server, health_servicer, port, config)


async def serve(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    running = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down (grace %.1f s)", config.grace_seconds)
    await running.shutdown()


@contextlib.contextmanager
def server_in_thread(config: ServerConfig | None = None) -> Iterator[RunningServer]:
    """Run a server on its own event loop in a background thread (tests, benchmarks)."""
    config = config or ServerConfig(port=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sigmaserve-server", daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start_server(config), loop).result(timeout=30)
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.shutdown(grace=1.0), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
